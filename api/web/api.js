// Calls to the Montage API: the session (a short-lived access token in memory, the refresh
// token in this browser's storage, turned over through /api/auth/refresh), the envelope
// unwrapped, and every failure turned into words a player understands.

import { ErrorCode, FailureCode } from './contract.js';

const REFRESH_KEY = 'montage.refresh_token';
let accessToken = null;

/** A refused or failed call, with `friendly` text to show. */
export class ApiError extends Error {
  constructor(status, code, message, data, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data;
    this.friendly = explain(code, status, message, retryAfter);
  }
}

const WORDS = {
  [ErrorCode.INVALID_CREDENTIALS]: () => 'That email and password do not match.',
  [ErrorCode.AUTHENTICATION_REQUIRED]: () => 'Please sign in again.',
  [ErrorCode.EMAIL_NOT_VERIFIED]: () => 'Confirm your email address first: open the link we mailed you.',
  [ErrorCode.INVALID_TOKEN]: () => 'This link has expired or was already used. Ask for a new one.',
  [ErrorCode.INVALID_MFA_CODE]: () => 'That code did not work. Codes change every 30 seconds; try the newest one.',
  [ErrorCode.RESOURCE_NOT_FOUND]: () => 'We could not find that. It may have been deleted.',
  [ErrorCode.JOB_NOT_READY]: () => 'This montage is not finished yet.',
  [ErrorCode.OUTPUTS_EXPIRED]: () => "This montage's videos were deleted at the end of your plan's retention.",
  [ErrorCode.PAYLOAD_TOO_LARGE]: (m) => `That is too big. ${m}`,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: () => 'That file is not a video we can read.',
  [ErrorCode.RATE_LIMIT_EXCEEDED]: (m, wait) => `Too many tries at once. Wait ${wait || 'a few'} seconds and try again.`,
  [ErrorCode.PAYMENT_PROVIDER_ERROR]: () => 'Payments are unavailable right now. Please try again later.',
  [ErrorCode.SERVICE_UNAVAILABLE]: () => 'Montage is busy right now. Please try again in a moment.',
  [ErrorCode.INTERNAL_SERVER_ERROR]: () => 'Something went wrong on our side. Please try again in a moment.',
  NETWORK: () => 'Cannot reach Montage. Check your connection and try again.',
};

/** Failed jobs' codes, in words. */
export const JOB_FAILURES = {
  [FailureCode.INVALID_MEDIA]: 'One of the clips is not a video we can read.',
  [FailureCode.CLIPS_TOO_SHORT]: 'The clips are too short for a montage of that length.',
  [FailureCode.RENDER_FAILED]: 'The montage could not be rendered.',
  [FailureCode.RENDER_TIMEOUT]: 'Rendering took too long and was stopped.',
  [FailureCode.MEDIA_CRASHED]: 'These clips could not be processed.',
  [FailureCode.INFRASTRUCTURE_ERROR]: 'Our service had a problem while rendering.',
  [FailureCode.WORKER_LOST]: 'The machine rendering this montage stopped.',
};

function explain(code, status, message, retryAfter) {
  const words = WORDS[code];
  if (words) return words(message, retryAfter);
  if (status >= 500) return WORDS[ErrorCode.INTERNAL_SERVER_ERROR]();
  // Validation, conflicts and quotas: the API's own sentence names the field or the limit.
  return message || 'That did not work.';
}

async function failure(response) {
  const retryAfter = response.headers.get('retry-after');
  try {
    const body = await response.json();
    const error = body.error || {};
    return new ApiError(response.status, error.code, error.message, error.data, retryAfter);
  } catch {
    return new ApiError(response.status, undefined, '', undefined, retryAfter);
  }
}

export function signedIn() {
  return localStorage.getItem(REFRESH_KEY) !== null;
}

/**
 * Keeps a token pair from login, MFA login or refresh, and asks for the file pass that lets
 * this browser navigate to its downloads (an HttpOnly cookie that lasts as long as the token).
 */
export function keep(pair) {
  accessToken = pair.access_token;
  localStorage.setItem(REFRESH_KEY, pair.refresh_token);
  send('/api/auth/file-pass', { method: 'POST', headers: { authorization: `Bearer ${pair.access_token}` } }).catch(() => {});
}

export function forget() {
  accessToken = null;
  localStorage.removeItem(REFRESH_KEY);
}

// Each refresh token works once, and reusing one ends the session everywhere: tabs take
// turns (a Web Lock), and each reads the token the last one stored.
async function refresh() {
  const turn = async () => {
    const token = localStorage.getItem(REFRESH_KEY);
    if (token === null) throw new ApiError(401, ErrorCode.AUTHENTICATION_REQUIRED, 'Not signed in');
    const response = await send('/api/auth/refresh', { method: 'POST', headers: json(), body: JSON.stringify({ refresh_token: token }) });
    if (!response.ok) {
      const error = await failure(response);
      if (response.status === 401 || response.status === 400) forget();
      throw error;
    }
    keep(await response.json());
  };
  if (navigator.locks) return navigator.locks.request('montage-refresh', turn);
  return turn();
}

function json() {
  return { 'content-type': 'application/json' };
}

async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, 'NETWORK', 'Network error');
  }
}

/**
 * Calls the API: `json` or `form` (FormData) body; `auth: false` for public routes.
 * Answers the envelope's `data` (or the bare body where the API has no envelope).
 */
export async function call(method, path, { json: body, form, auth = true } = {}) {
  for (let attempt = 0; ; attempt++) {
    if (auth && accessToken === null) await refresh();
    const headers = body === undefined ? {} : json();
    if (auth) headers.authorization = `Bearer ${accessToken}`;
    const payload = body === undefined ? form : JSON.stringify(body);
    const response = await send(path, { method, headers, body: payload });
    if (response.status === 401 && auth && attempt === 0) {
      accessToken = null;
      continue;
    }
    if (!response.ok) throw await failure(response);
    if (response.status === 204) return null;
    const document = await response.json();
    return document && document.success === true && 'data' in document ? document.data : document;
  }
}

/** The current access token (refreshed when missing), for uploads that report progress. */
export async function bearer() {
  if (accessToken === null) await refresh();
  return accessToken;
}

export async function signOut() {
  const token = localStorage.getItem(REFRESH_KEY);
  forget();
  if (token !== null) {
    await send('/api/auth/logout', { method: 'POST', headers: json(), body: JSON.stringify({ refresh_token: token }) }).catch(() => {});
  }
}
