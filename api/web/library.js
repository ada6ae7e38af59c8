// The clip library: everything uploaded or imported, a page at a time; pick clips and
// render them again, in any style.

import { ClipStatus } from './contract.js';
import { call } from './api.js';
import { h, show, actionButton, errorLine, onSubmit, bytes, seconds, when, pager, toast } from './ui.js';
import { CAMERA_CORNERS, optionFields, startJob } from './create.js';

/** The clip's camera corner, kept with the clip for every montage made from it. */
function cameraChoice(clip) {
  const box = ({ x, y, w, h: height }) => [x, y, w, height].join(',');
  const kept = clip.facecam ? box(clip.facecam) : '';
  const known = CAMERA_CORNERS.some(([, value]) => value === kept);
  const select = h('select', { 'aria-label': `Camera in ${clip.name}` },
    h('option', { value: '' }, 'No camera'),
    CAMERA_CORNERS.map(([name, value]) => h('option', { value }, `Camera ${name.toLowerCase()}`)),
    kept && !known ? h('option', { value: kept }, 'Camera where you set it') : '');
  select.value = kept;
  select.addEventListener('change', async () => {
    const [x, y, w, height] = select.value ? select.value.split(',').map(Number) : [];
    const facecam = select.value ? { x, y, w, h: height } : null;
    try {
      await call('PUT', `/api/v2/clips/${clip.clip_id}/facecam`, { json: { facecam } });
      toast(facecam ? 'Camera saved: portrait cuts show it on top.' : 'Camera cleared.');
    } catch (error) {
      select.value = kept;
      toast(error.friendly || 'The camera could not be saved.');
    }
  });
  return select;
}

function clipRow(clip, picked, redraw) {
  const usable = clip.status !== ClipStatus.REJECTED;
  const box = h('input', { type: 'checkbox', id: `c-${clip.clip_id}`, disabled: !usable, checked: picked.has(clip.clip_id) });
  box.addEventListener('change', () => { if (box.checked) picked.add(clip.clip_id); else picked.delete(clip.clip_id); });
  const facts = [clip.duration ? seconds(clip.duration) : '', clip.width ? `${clip.width}×${clip.height}` : '', bytes(clip.size), when(clip.created_at)]
    .filter(Boolean).join(' · ');
  const thumb = clip.thumbnail_url
    ? h('div', { class: 'thumb' }, h('img', { src: clip.thumbnail_url, alt: '', loading: 'lazy' }))
    : h('div', { class: `thumb ${clip.status === ClipStatus.PENDING ? 'placeholder' : ''}`, 'aria-hidden': 'true' });
  const state = clip.status === ClipStatus.PENDING ? 'Checking…' : clip.status === ClipStatus.REJECTED ? 'Not usable' : 'Ready';
  return h('li', { class: 'clip' }, thumb,
    h('div', { class: 'clip-facts' },
      h('label', { class: 'inline', for: `c-${clip.clip_id}` }, box, h('strong', {}, clip.name)),
      h('span', { class: 'muted' }, facts),
      h('span', { class: `status ${clip.status === ClipStatus.REJECTED ? 'FAILED' : ''}` }, state),
      clip.rejection ? h('span', { class: 'error' }, clip.rejection) : '',
      usable ? cameraChoice(clip) : ''),
    h('div', { class: 'clip-actions' }, actionButton('✕', async () => {
      await call('DELETE', `/api/v2/clips/${clip.clip_id}`);
      picked.delete(clip.clip_id);
      toast(`${clip.name} deleted.`);
      redraw();
    }, { class: 'secondary icon', 'aria-label': `Delete ${clip.name}`,
      ask: { title: `Delete ${clip.name}?`, text: 'The clip leaves your library for good. Montages already made stay as they are.', yes: 'Delete' } })));
}

export async function libraryView(offset) {
  const picked = new Set();
  const redraw = () => libraryView(offset);
  const page = await call('GET', `/api/v2/clips?limit=12&offset=${offset}`);
  if (page.total === 0) {
    show('Library', h('p', {}, 'Your library is empty. ', h('a', { href: '#/' }, 'Upload clips'), ' or ', h('a', { href: '#/accounts' }, 'import them'), '.'));
    return;
  }
  const line = errorLine();
  const form = h('form', { class: 'wide', 'aria-label': 'Render the chosen clips' }, await optionFields(), line,
    h('button', { type: 'submit' }, 'Render the chosen clips'));
  onSubmit(form, line, async (data) => {
    if (picked.size === 0) throw Object.assign(new Error(), { friendly: 'Choose at least one clip above.' });
    location.hash = `#/jobs/${await startJob([...picked], data)}`;
  });
  show('Library',
    h('section', {}, h('ul', { class: 'plain clips library', 'aria-label': 'Clips' }, page.clips.map((clip) => clipRow(clip, picked, redraw))),
      page.total > page.limit ? pager(page, (next) => { location.hash = `#/library?offset=${Math.max(0, next)}`; }) : ''),
    h('section', {}, h('h2', {}, 'Render them again'), form));
}
