// Direct uploads: the file goes to storage in parts, each PUT to a presigned URL the API
// gives. What is stored survives a dropped connection or a closed tab: the upload's id is
// kept per file, and resuming asks the API which parts it still needs.

import { call, ApiError } from './api.js';

const PARTS_IN_FLIGHT = 3;
const TRIES_PER_PART = 4;

function memoryKey(file) {
  return `montage.upload:${file.name}:${file.size}:${file.lastModified}`;
}

async function startOrResume(file) {
  const key = memoryKey(file);
  const kept = localStorage.getItem(key);
  if (kept !== null) {
    try {
      return await call('GET', `/api/v2/uploads/${kept}`);
    } catch (error) {
      if (error.status !== 404) throw error;
      localStorage.removeItem(key);
    }
  }
  const upload = await call('POST', '/api/v2/uploads', { json: { name: file.name, size: file.size } });
  localStorage.setItem(key, upload.upload_id);
  return upload;
}

/** PUTs one part; `onBytes(n)` reports how much of it has gone so far. */
function putPart(file, upload, part, onBytes) {
  const start = (part.part_number - 1) * upload.part_size;
  const body = file.slice(start, start + part.size);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', part.url);
    request.upload.onprogress = (event) => onBytes(event.loaded);
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new ApiError(request.status, 'STORAGE', `storage answered ${request.status}`));
    };
    request.onerror = () => reject(new ApiError(0, 'NETWORK', 'Network error'));
    request.send(body);
  });
}

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function sendWithRetries(file, upload, part, onBytes) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await putPart(file, upload, part, onBytes);
    } catch (error) {
      onBytes(0);
      // A refused signature (an expired link) needs fresh URLs: the caller asks again.
      if (attempt >= TRIES_PER_PART || error.status === 403) throw error;
      if (!navigator.onLine) await new Promise((resolve) => { window.addEventListener('online', resolve, { once: true }); });
      await pause(500 * 2 ** attempt);
    }
  }
}

/**
 * Uploads `file` into the library; `onProgress(sentBytes, totalBytes)` as it goes.
 * Answers the new library clip.
 */
export async function uploadClip(file, onProgress) {
  let upload = await startOrResume(file);
  let stalledRounds = 0;
  while (upload.parts_to_send.length > 0) {
    const stored = upload.parts_stored.reduce((sum, part) => sum + part.size, 0);
    const inFlight = new Map();
    const report = () => onProgress(stored + [...inFlight.values()].reduce((a, b) => a + b, 0), file.size);
    report();
    const queue = [...upload.parts_to_send];
    const lane = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        await sendWithRetries(file, upload, part, (n) => { inFlight.set(part.part_number, n); report(); });
      }
    };
    const outcomes = await Promise.allSettled(Array.from({ length: PARTS_IN_FLIGHT }, lane));
    const before = upload.parts_to_send.length;
    upload = await call('GET', `/api/v2/uploads/${upload.upload_id}`);
    stalledRounds = upload.parts_to_send.length < before ? 0 : stalledRounds + 1;
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed && stalledRounds >= 3) throw failed.reason;
  }
  onProgress(file.size, file.size);
  const clip = await call('POST', `/api/v2/uploads/${upload.upload_id}/complete`);
  localStorage.removeItem(memoryKey(file));
  return clip;
}
