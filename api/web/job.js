// One montage, live: stage, percent and attempts over the WebSocket; then the player with
// its poster, a download per format, sharing with its view count, posting to linked
// accounts; cancel and delete. And the history of montages, a page at a time.

import { JobStatus, LiveType, Stage } from './contract.js';
import { call, JOB_FAILURES } from './api.js';
import { h, show, toast, actionButton, when, bytes, seconds, pager, errorLine, onSubmit } from './ui.js';
import { follow } from './live.js';

const ENDED = [JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED];
const STAGES = {
  [Stage.QUEUED]: 'Queued', [Stage.DOWNLOADING]: 'Fetching your clips', [Stage.PROBING]: 'Reading your clips',
  [Stage.ANALYZING]: 'Finding the best moments', [Stage.RENDERING]: 'Rendering', [Stage.UPLOADING]: 'Saving the video',
};

function describe(job) {
  const stage = job.stage ? (STAGES[job.stage] || job.stage) : '';
  switch (job.status) {
    case JobStatus.PENDING: return 'Waiting for a free renderer…';
    case JobStatus.PROCESSING: return `${stage || 'Working'}…`;
    case JobStatus.RETRYING: return `Trying again (attempt ${job.attempts + 1})…`;
    case JobStatus.SUCCESS: return 'Done!';
    case JobStatus.CANCELLED: return 'Cancelled.';
    default: return 'It did not work.';
  }
}

/** The status panel; `update(event)` takes a job or a live event. */
function statusPanel(job) {
  const status = h('span', { class: `status ${job.status}` });
  const words = h('span', {});
  const bar = h('progress', { max: 100, 'aria-label': 'Progress' });
  const percent = h('span', { class: 'muted' });
  const attempts = h('span', { class: 'muted' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const panel = h('div', { role: 'status', 'aria-live': 'polite' },
    h('p', { class: 'row' }, status, words), bar, h('p', { class: 'row' }, percent, attempts), error);
  const update = (state) => {
    const pct = state.progress ? state.progress.percent : state.percent;
    status.textContent = state.status;
    status.className = `status ${state.status}`;
    words.textContent = describe(state);
    bar.value = state.status === JobStatus.SUCCESS ? 100 : pct;
    percent.textContent = `${bar.value}%`;
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

async function shareBlock(job) {
  const stats = await call('GET', '/api/v2/analytics/user/stats');
  const seen = stats.views.montages.find((m) => m.job_id === job.job_id);
  const views = h('p', {}, `Views: ${seen ? seen.total : 0} (${seen ? seen.last_7_days : 0} this week)`);
  const place = h('p', {});
  const showLink = (share) => place.replaceChildren('Public link: ', h('a', { href: share.url, target: '_blank', rel: 'noopener' }, share.url));
  return h('section', {}, h('h2', {}, 'Share'), views, place,
    h('div', { class: 'row' },
      actionButton('Get a public link', async () => showLink(await call('POST', `/api/v2/jobs/${job.job_id}/share`))),
      actionButton('Stop sharing', async () => {
        await call('DELETE', `/api/v2/jobs/${job.job_id}/share`);
        place.textContent = 'The link no longer works.';
      }, { class: 'secondary' })));
}

async function postBlock(job) {
  const { connections } = await call('GET', '/api/v2/social/connections');
  if (connections.length === 0) {
    return h('section', {}, h('h2', {}, 'Post'), h('p', {}, 'Link a YouTube or TikTok account to post from here: ', h('a', { href: '#/accounts' }, 'Linked accounts'), '.'));
  }
  const line = errorLine();
  const result = h('p', { role: 'status' });
  const form = h('form', { 'aria-label': 'Post the montage' },
    h('label', { for: 'f-platform' }, 'Where', h('select', { id: 'f-platform', name: 'platform' },
      connections.map((c) => h('option', { value: c.platform }, `${c.platform}: ${c.display_name || ''}`)))),
    h('label', { for: 'f-format' }, 'Format', h('select', { id: 'f-format', name: 'format' },
      job.outputs.map((o) => h('option', { value: o.format }, o.format)))),
    h('label', { for: 'f-caption' }, 'Caption', h('textarea', { id: 'f-caption', name: 'caption', maxlength: 2200, rows: 2 })),
    line, result, h('button', { type: 'submit' }, 'Post'));
  onSubmit(form, line, async (data) => {
    const post = await call('POST', '/api/v2/social/posts', { json: {
      job_id: job.job_id, platform: data.get('platform'), format: data.get('format'), caption: data.get('caption'),
    } });
    result.textContent = `Posting: ${post.status}. You can leave this page.`;
  });
  return h('section', {}, h('h2', {}, 'Post'), form);
}

async function endedBlocks(job) {
  if (job.status !== JobStatus.SUCCESS) return [];
  if (job.outputs_expired) return [h('p', {}, "This montage's videos were deleted at the end of your plan's retention.")];
  const outputs = await Promise.all(job.outputs.map((output) => outputBlock(job, output)));
  return [h('section', {}, h('h2', {}, 'Your montage'), ...outputs), await shareBlock(job), await postBlock(job)];
}

function controls(job) {
  const buttons = h('div', { class: 'row' });
  if (!ENDED.includes(job.status)) {
    buttons.append(actionButton('Cancel', async () => {
      await call('POST', `/api/v2/jobs/${job.job_id}/cancel`);
      toast('Cancelling…');
    }, { class: 'secondary' }));
  } else {
    buttons.append(actionButton('Delete', async () => {
      if (!window.confirm('Delete this montage and its videos?')) return;
      await call('DELETE', `/api/v2/jobs/${job.job_id}`);
      toast('Deleted.');
      location.hash = '#/jobs';
    }, { class: 'danger' }));
  }
  return buttons;
}

export async function jobView(jobId) {
  let job = await call('GET', `/api/v2/jobs/${jobId}`);
  const { panel, update } = statusPanel(job);
  const rest = h('div', {});
  const details = h('p', { class: 'muted' });
  const draw = async () => {
    update(job);
    details.textContent = `${job.options.style}, ${job.options.target_duration} s, ${job.options.formats.join(' and ')} · started ${when(job.created_at)}`;
    rest.replaceChildren(controls(job), ...(await endedBlocks(job)));
  };
  await draw();
  show('Montage', details, h('section', {}, panel), rest);
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

export async function historyView(offset) {
  const page = await call('GET', `/api/v2/jobs?limit=10&offset=${offset}`);
  const rows = page.jobs.map((job) => h('li', {},
    h('div', { class: 'row' }, h('a', { href: `#/jobs/${job.job_id}` }, when(job.created_at)),
      h('span', { class: `status ${job.status}` }, job.status),
      job.status === JobStatus.SUCCESS ? '' : h('span', { class: 'muted' }, `${job.progress.percent}%`))));
  show('My montages',
    page.total === 0 ? h('p', {}, 'No montages yet. ', h('a', { href: '#/' }, 'Make one'), '.') : h('ul', { class: 'plain' }, rows),
    page.total > page.limit ? pager(page, (next) => { location.hash = `#/jobs?offset=${Math.max(0, next)}`; }) : '');
}
