// One montage, live: stage, percent and attempts over the WebSocket; then the player with
// its poster, a download per format, sharing with its view count, posting to linked
// accounts; cancel and delete. And the history of montages, a page at a time.

import { JobStatus, LiveType, PostStatus, Stage } from './contract.js';
import { call, JOB_FAILURES } from './api.js';
import { h, show, toast, actionButton, when, bytes, seconds, pager, errorLine, onSubmit, capitalized, count } from './ui.js';
import { follow } from './live.js';

const ENDED = [JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED];
const STAGES = {
  [Stage.QUEUED]: 'Queued', [Stage.DOWNLOADING]: 'Fetching your clips', [Stage.PROBING]: 'Reading your clips',
  [Stage.ANALYZING]: 'Finding the best moments', [Stage.RENDERING]: 'Rendering', [Stage.UPLOADING]: 'Saving the video',
};

// The status as a player says it; the chip carries the state's colour.
const STATUS_WORDS = {
  [JobStatus.PENDING]: 'In line', [JobStatus.PROCESSING]: 'Working', [JobStatus.RETRYING]: 'Retrying',
  [JobStatus.SUCCESS]: 'Ready', [JobStatus.FAILED]: 'Failed', [JobStatus.CANCELLED]: 'Cancelled',
};

/** A montage's status on its coloured chip, in words. */
export function statusChip(status) {
  return h('span', { class: `status ${status}` }, STATUS_WORDS[status] || status);
}

function describe(job) {
  const stage = job.stage ? (STAGES[job.stage] || 'Working') : '';
  switch (job.status) {
    case JobStatus.PENDING: return 'Waiting for a free renderer…';
    case JobStatus.PROCESSING: return `${stage || 'Working'}…`;
    case JobStatus.RETRYING: return `Trying again (attempt ${job.attempts + 1})…`;
    case JobStatus.SUCCESS: return 'Your montage is ready to watch, download and share.';
    case JobStatus.CANCELLED: return 'You cancelled this montage.';
    default: return 'It did not work.';
  }
}

/** "About 40 s left", from this job's own pace so far; nothing until the pace means something. */
function estimate(startedAt, percent) {
  if (!startedAt || !(percent >= 5 && percent < 100)) return '';
  const elapsed = (Date.now() - new Date(startedAt).getTime()) / 1000;
  const left = (elapsed * (100 - percent)) / percent;
  if (left < 60) return `About ${Math.max(5, Math.round(left / 5) * 5)} s left`;
  return `About ${Math.round(left / 60)} min left`;
}

/** The status panel; `update(event)` takes a job or a live event. */
function statusPanel(job) {
  const status = h('span', { class: 'status' });
  const words = h('span', {});
  const bar = h('progress', { max: 100, 'aria-label': 'Progress' });
  const percent = h('span', { class: 'muted' });
  const attempts = h('span', { class: 'muted' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const running = h('div', {}, bar, h('p', { class: 'row' }, percent, attempts));
  const panel = h('div', { role: 'status', 'aria-live': 'polite' },
    h('p', { class: 'row' }, status, words), running, error);
  let startedAt = job.started_at;
  const update = (state) => {
    const pct = state.progress ? state.progress.percent : state.percent;
    startedAt = state.started_at || startedAt;
    status.textContent = STATUS_WORDS[state.status] || state.status;
    status.dataset.status = state.status;
    status.className = `status ${state.status}`;
    words.textContent = describe(state);
    running.hidden = ENDED.includes(state.status);
    bar.value = pct;
    const left = state.status === JobStatus.PROCESSING ? estimate(startedAt, pct) : '';
    percent.textContent = [`${pct}%`, left].filter(Boolean).join(' · ');
    attempts.textContent = state.attempts > 1 ? `attempt ${state.attempts}` : '';
    if (state.error) {
      error.textContent = `${JOB_FAILURES[state.error.code] || 'The montage failed.'} ${state.error.message}`;
      error.hidden = false;
    }
  };
  update(job);
  return { panel, update };
}

async function link(jobId, what, format) {
  return (await call('GET', `/api/v2/jobs/${jobId}/${what}?format=${format}&redirect=false`)).url;
}

async function outputBlock(job, output) {
  const [video, poster] = await Promise.all([
    link(job.job_id, 'download', output.format),
    output.poster_url ? link(job.job_id, 'poster', output.format) : null,
  ]);
  const download = actionButton(`Download ${output.format}`, async () => {
    const anchor = h('a', { href: await link(job.job_id, 'download', output.format), download: '' });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  }, { class: 'secondary' });
  return h('figure', { class: 'card' },
    h('video', { controls: true, preload: 'metadata', playsinline: true, src: video, poster, 'data-format': output.format,
      'aria-label': `${output.format} montage` }),
    h('figcaption', { class: 'row' }, `${output.format}: ${output.width}×${output.height}, ${seconds(output.duration)}, ${bytes(output.size)}`, download));
}

/** The public link with one-tap ways to pass it on: copy, and the phone's share sheet. */
function shareLink(share, job) {
  const copy = actionButton('Copy link', async () => {
    await navigator.clipboard.writeText(share.url);
    toast('Link copied.');
  });
  const sheet = navigator.share && actionButton('Share…', async () => {
    try {
      await navigator.share({ title: job.options.title || 'My montage', url: share.url });
    } catch (error) {
      if (error.name !== 'AbortError') throw error;
    }
  }, { class: 'secondary' });
  return h('div', { class: 'share-link' },
    h('a', { href: share.url, target: '_blank', rel: 'noopener', class: 'link' }, share.url),
    h('div', { class: 'row' }, copy, sheet));
}

async function shareBlock(job) {
  const stats = await call('GET', '/api/v2/analytics/user/stats');
  const seen = stats.views.montages.find((m) => m.job_id === job.job_id);
  const views = h('p', { class: 'muted' }, `${count(seen ? seen.total : 0, 'view')} (${seen ? seen.last_7_days : 0} this week)`);
  const place = h('div', {});
  const stop = actionButton('Stop sharing', async () => {
    await call('DELETE', `/api/v2/jobs/${job.job_id}/share`);
    place.replaceChildren(h('p', {}, 'The link no longer works.'));
  }, { class: 'secondary' });
  place.append(actionButton('Get a public link', async () => {
    place.replaceChildren(shareLink(await call('POST', `/api/v2/jobs/${job.job_id}/share`), job), stop);
  }));
  return h('section', {}, h('h2', {}, 'Share'), views, place);
}

const POST_WORDS = {
  [PostStatus.PENDING]: 'Waiting to upload', [PostStatus.UPLOADING]: 'Uploading',
  [PostStatus.PROCESSING]: 'The platform is processing it', [PostStatus.PUBLISHED]: 'Published',
  [PostStatus.FAILED]: 'Failed',
};

/** Each post of this montage and how it went; a failed one can be sent again. */
function postOutcome(post, again) {
  const outcome = h('li', {}, h('div', { class: 'row' },
    h('strong', {}, `${post.platform} · ${post.account_name}`),
    h('span', { class: `status ${post.status}` }, POST_WORDS[post.status] || post.status)));
  if (post.status === PostStatus.PUBLISHED && post.post_url) {
    outcome.append(h('a', { href: post.post_url, target: '_blank', rel: 'noopener', class: 'link' }, 'See the post'));
  }
  if (post.status === PostStatus.FAILED) {
    outcome.append(h('p', { class: 'muted' }, post.error || 'The platform refused it.'),
      actionButton('Try again', () => again(post), { class: 'secondary' }));
  }
  return outcome;
}

async function postBlock(job) {
  const { connections } = await call('GET', '/api/v2/social/connections');
  if (connections.length === 0) {
    return h('section', {}, h('h2', {}, 'Post'), h('p', {}, 'Link a YouTube or TikTok account to post from here: ', h('a', { href: '#/accounts' }, 'Linked accounts'), '.'));
  }
  const outcomes = h('ul', { class: 'plain' });
  const send = async (post) => {
    await call('POST', '/api/v2/social/posts', { json: { job_id: job.job_id, ...post } });
    await listOutcomes();
  };
  const listOutcomes = async () => {
    const { posts } = await call('GET', '/api/v2/social/posts?limit=100');
    const again = (post) => send({ platform: post.platform, format: post.format, caption: post.caption });
    outcomes.replaceChildren(...posts.filter((p) => p.job_id === job.job_id).map((p) => postOutcome(p, again)));
  };
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Post the montage' },
    h('label', { for: 'f-platform' }, 'Where', h('select', { id: 'f-platform', name: 'platform' },
      connections.map((c) => h('option', { value: c.platform }, `${c.platform}: ${c.display_name || ''}`)))),
    h('label', { for: 'f-format' }, 'Format', h('select', { id: 'f-format', name: 'format' },
      job.outputs.map((o) => h('option', { value: o.format }, o.format)))),
    h('label', { for: 'f-caption' }, 'Caption', h('textarea', { id: 'f-caption', name: 'caption', maxlength: 2200, rows: 2 })),
    line, h('button', { type: 'submit' }, 'Post'));
  onSubmit(form, line, (data) => send({ platform: data.get('platform'), format: data.get('format'), caption: data.get('caption') }));
  await listOutcomes();
  return h('section', {}, h('h2', {}, 'Post'), form, outcomes);
}

async function endedBlocks(job) {
  if (job.status !== JobStatus.SUCCESS) return [];
  if (job.outputs_expired) return [h('p', {}, "This montage's videos were deleted at the end of your plan's retention.")];
  const outputs = await Promise.all(job.outputs.map((output) => outputBlock(job, output)));
  return [h('section', { class: 'result' }, h('h2', {}, 'Your montage'), h('div', { class: 'outputs' }, ...outputs)),
    await shareBlock(job), await postBlock(job)];
}

/** Cancel while it runs; once ended, delete: a quiet action at the end, confirmed first. */
function controls(job) {
  if (!ENDED.includes(job.status)) {
    return actionButton('Cancel', async () => {
      await call('POST', `/api/v2/jobs/${job.job_id}/cancel`);
      toast('Cancelling…');
    }, { class: 'secondary' });
  }
  const ask = { title: 'Delete this montage?', text: 'Its videos go with it and its share link stops working. This cannot be undone.', yes: 'Delete' };
  return actionButton('Delete montage', async () => {
    await call('DELETE', `/api/v2/jobs/${job.job_id}`);
    toast('Deleted.');
    location.hash = '#/jobs';
  }, { class: 'secondary quiet-danger', ask });
}

export async function jobView(jobId) {
  let job = await call('GET', `/api/v2/jobs/${jobId}`);
  const { panel, update } = statusPanel(job);
  const rest = h('div', {});
  const details = h('p', { class: 'muted' });
  const status = h('section', {}, panel);
  const draw = async () => {
    update(job);
    details.textContent = `${job.options.style}, ${job.options.target_duration} s, ${job.options.formats.join(' and ')} · started ${when(job.created_at)}`;
    const result = await endedBlocks(job);
    // The result comes first once there is one; the status waits above it until then.
    rest.replaceChildren(...result, ...(result.length ? [status] : []), h('p', { class: 'row' }, controls(job)));
    if (!result.length) rest.prepend(status);
  };
  await draw();
  show(job.options.title || 'Montage', details, rest);
  if (ENDED.includes(job.status)) return undefined;
  const reread = async () => {
    const was = job.status;
    job = await call('GET', `/api/v2/jobs/${jobId}`);
    if (job.status !== was || ENDED.includes(job.status)) await draw();
    else update(job);
  };
  const live = follow((event) => {
    if (event.type !== LiveType.JOB || event.job_id !== jobId) return;
    if (ENDED.includes(event.status) || event.status !== job.status) reread();
    else update(event);
  }, reread);
  return () => live.stop();
}

/** One montage in the history: its poster (through the file pass cookie), title, style, length. */
function historyCard(job) {
  const ended = ENDED.includes(job.status);
  const poster = job.poster_url
    ? h('img', { src: job.poster_url, alt: '', loading: 'lazy', class: 'poster' })
    : h('div', { class: 'poster placeholder', 'aria-hidden': 'true' }, ended ? 'No video' : `${job.progress.percent}%`);
  return h('li', {}, h('a', { href: `#/jobs/${job.job_id}`, class: 'montage-card' }, poster,
    h('span', { class: 'montage-meta' },
      h('strong', {}, job.title || `${capitalized(job.style)} montage`),
      h('span', { class: 'muted' }, `${job.target_duration} s · ${when(job.created_at)}`),
      statusChip(job.status))));
}

export async function historyView(offset) {
  const page = await call('GET', `/api/v2/jobs?limit=12&offset=${offset}`);
  show('My montages',
    page.total === 0 ? h('p', {}, 'No montages yet. ', h('a', { href: '#/' }, 'Make one'), '.') : h('ul', { class: 'plain gallery' }, page.jobs.map(historyCard)),
    page.total > page.limit ? pager(page, (next) => { location.hash = `#/jobs?offset=${Math.max(0, next)}`; }) : '');
}
