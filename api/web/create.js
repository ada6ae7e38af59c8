// Making a montage: clips uploaded straight to storage (drop or pick, a bar per file,
// resumable), then style, formats and length within what the plan allows.

import { ClipStatus, OutputFormat } from './contract.js';
import { call } from './api.js';
import { h, show, errorLine, onSubmit, bytes, seconds, capitalized } from './ui.js';
import { uploadClip } from './upload.js';
import { facecamPlacer } from './facecam.js';

let stylesCache = null;
let musicCache = null;

/** Every style with its description (public, read once). */
export async function styles() {
  if (stylesCache === null) {
    const { presets } = await call('GET', '/api/v2/styles', { auth: false });
    stylesCache = await Promise.all(presets.map((id) => call('GET', `/api/v2/styles/${id}`, { auth: false })));
  }
  return stylesCache;
}

/** The music catalogue (public, read once). */
export async function catalogue() {
  if (musicCache === null) ({ tracks: musicCache } = await call('GET', '/api/v2/music', { auth: false }));
  return musicCache;
}

/** The music select's value for "my own track" (no catalogue id has a colon). */
const OWN_TRACK = ':own';

/**
 * The music choice (`chosen` first): none, a catalogue track by mood with a player to hear it,
 * or (with `own`) the player's own audio file, sent with the job.
 */
export function musicField(tracks, chosen = null, { own = false } = {}) {
  const player = h('audio', { controls: true, preload: 'none', hidden: true, 'aria-label': 'Preview of the chosen track' });
  const file = h('input', { id: 'f-music', name: 'music', type: 'file', hidden: true, 'aria-label': 'Your track',
    accept: 'audio/mpeg,audio/mp4,audio/aac,audio/ogg,audio/flac,audio/wav,.mp3,.m4a,.aac,.ogg,.opus,.flac,.wav' });
  const moods = [...new Set(tracks.map((t) => t.mood))];
  const select = h('select', { id: 'f-music_id', name: 'music_id' },
    h('option', { value: '' }, 'No music: the game sound only'),
    own && h('option', { value: OWN_TRACK }, 'My own track…'),
    moods.map((mood) => h('optgroup', { label: capitalized(mood) },
      tracks.filter((t) => t.mood === mood).map((t) => h('option', { value: t.id }, `${t.title} (${t.bpm} BPM)`)))));
  const preview = () => {
    const track = tracks.find((t) => t.id === select.value);
    player.hidden = !track;
    if (track) player.src = track.preview_url;
    else player.removeAttribute('src');
    file.hidden = select.value !== OWN_TRACK;
    file.required = !file.hidden;
  };
  select.value = chosen || '';
  preview();
  select.addEventListener('change', preview);
  return h('label', { for: 'f-music_id' }, 'Music ', select, player, file,
    h('span', { class: 'hint' }, 'Cuts land on the beat; the game sound rises over the music at its loudest moments. ',
      tracks.length ? `Tracks by ${tracks[0].artist}, ${tracks[0].licence} licence.` : ''));
}

/** Where streamers usually put their camera, as `x,y,w,h` fractions of the frame. */
export const CAMERA_CORNERS = [
  ['Top left', '0.02,0.03,0.25,0.3'], ['Top right', '0.73,0.03,0.25,0.3'],
  ['Bottom left', '0.02,0.67,0.25,0.3'], ['Bottom right', '0.73,0.67,0.25,0.3'],
];

/** Where the player's camera sits in their clips, if anywhere: the portrait cut puts it on top. */
function facecamField() {
  return h('label', { for: 'f-facecam' }, 'Your camera ',
    h('select', { id: 'f-facecam', name: 'facecam' },
      h('option', { value: '' }, 'No camera in my clips'),
      CAMERA_CORNERS.map(([name, box]) => h('option', { value: box }, name))),
    h('span', { class: 'hint' }, 'The portrait cut shows your camera in its top third and the game below it.'));
}

/** The outputs' frame rate: as the clips are (the service's default), or a fixed one. */
function frameRateField() {
  return h('label', { for: 'f-fps' }, 'Frame rate ',
    h('select', { id: 'f-fps', name: 'fps' },
      h('option', { value: '' }, 'Match my clips (60 fps when most are)'),
      h('option', { value: '60' }, '60 fps: smoothest motion'),
      h('option', { value: '30' }, '30 fps: smaller files')));
}

/** The player's plan with its limits, and the best plan on offer. */
export async function planLimits() {
  const [me, { plans }] = await Promise.all([call('GET', '/api/users/me'), call('GET', '/api/v2/billing/plans', { auth: false })]);
  const plan = plans.find((p) => p.id === me.plan) || plans[0];
  const best = plans.reduce((a, b) => (b.limits.max_duration > a.limits.max_duration ? b : a));
  return { me, plan, best };
}

/** The samples the service rendered of its styles, by style (none yet: an empty map). */
async function styleSamples() {
  const { samples } = await call('GET', '/api/v2/style-samples', { auth: false }).catch(() => ({ samples: [] }));
  return new Map(samples.map((sample) => [sample.style, sample.video_url]));
}

/** A style's looping sample, muted (still, with controls, for visitors who ask for less motion). */
function samplePlayer(url) {
  if (!url) return '';
  const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  return h('video', { class: 'sample', src: url, muted: true, loop: true, playsinline: true, autoplay: !still,
    preload: still ? 'none' : 'auto', 'aria-hidden': 'true', tabindex: -1 });
}

/** The style, format and length controls, shared with re-rendering library clips. */
export async function optionFields() {
  const [all, { plan, best }, tracks, samples] = await Promise.all([styles(), planLimits(), catalogue(), styleSamples()]);
  const max = plan.limits.max_duration;
  const reason = best.id === plan.id
    ? `Your plan, ${plan.name}, allows up to ${max} s.`
    : `Your plan, ${plan.name}, allows up to ${max} s; ${best.name} allows ${best.limits.max_duration} s.`;
  const value = h('output', { for: 'f-target_duration' }, `${Math.min(30, max)} s`);
  const length = h('input', { id: 'f-target_duration', name: 'target_duration', type: 'range', min: 10, max, step: 5, value: Math.min(30, max) });
  length.addEventListener('input', () => { value.textContent = `${length.value} s`; });
  return h('div', { class: 'options' },
    h('fieldset', {}, h('legend', {}, 'Style'),
      h('div', { class: 'styles' }, all.map((style, index) => h('label', {}, samplePlayer(samples.get(style.id)),
        h('input', { type: 'radio', name: 'style', value: style.id, checked: index === 0 }),
        style.name, h('span', { class: 'hint', style: false }, h('br'), style.description))))),
    h('fieldset', {}, h('legend', {}, 'Formats'),
      h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'formats', value: OutputFormat.LANDSCAPE, checked: true }), 'Landscape 16:9 (YouTube)'),
      h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'formats', value: OutputFormat.PORTRAIT, checked: true }), 'Portrait 9:16 (TikTok, Shorts)')),
    h('label', { for: 'f-target_duration' }, 'Length ', value, length, h('span', { class: 'hint' }, reason,
      plan.limits.watermark ? ' Videos on this plan carry a watermark.' : '', ' ', best.id !== plan.id ? h('a', { href: '#/plan' }, 'See plans') : '')),
    h('label', { for: 'f-title' }, 'Title ',
      h('input', { id: 'f-title', name: 'title', maxlength: 40, placeholder: 'Shown over the first seconds (optional)' })),
    musicField(tracks, null, { own: true }), facecamField(), frameRateField());
}

/** Starts a job from library clips with the options in `data`; answers its id. */
export async function startJob(clipIds, data) {
  const formats = data.getAll('formats');
  if (formats.length === 0) throw Object.assign(new Error(), { friendly: 'Choose at least one format.' });
  const form = new FormData();
  form.set('clip_ids', clipIds.join(','));
  form.set('style', data.get('style'));
  form.set('formats', formats.join(','));
  form.set('target_duration', data.get('target_duration'));
  for (const field of ['music_id', 'facecam', 'title', 'fps']) {
    const value = data.get(field)?.trim();
    if (value && value !== OWN_TRACK) form.set(field, value);
  }
  // The player's own track is a file: it goes after the options.
  if (data.get('music_id') === OWN_TRACK) form.set('music', data.get('music'));
  const job = await call('POST', '/api/v2/jobs', { form });
  return job.job_id;
}

const CHECK_EVERY_MS = 2000;

/**
 * One clip of the montage being made, in the montage's order: its thumbnail and length once
 * the service has examined it, its upload's progress, buttons to move it and to take it out.
 */
function clipRow(file, list, onChange) {
  const bar = h('progress', { max: 100, value: 0, 'aria-label': `Upload of ${file.name}` });
  const note = h('span', { class: 'muted' }, `${bytes(file.size)}, waiting`);
  const thumb = h('div', { class: 'thumb placeholder', 'aria-hidden': 'true' });
  const move = (label, step) => h('button', { type: 'button', class: 'secondary icon', 'aria-label': `Move ${file.name} ${label}`,
    onclick: () => {
      const sibling = step < 0 ? row.previousElementSibling : row.nextElementSibling;
      if (sibling) sibling.insertAdjacentElement(step < 0 ? 'beforebegin' : 'afterend', row);
      onChange();
    } }, step < 0 ? '↑' : '↓');
  const remove = h('button', { type: 'button', class: 'secondary icon', 'aria-label': `Remove ${file.name}`,
    onclick: () => { row.remove(); onChange(); } }, '✕');
  const row = h('li', { class: 'clip', draggable: true },
    thumb, h('div', { class: 'clip-facts' }, h('strong', {}, file.name), note, bar),
    h('div', { class: 'clip-actions' }, move('earlier', -1), move('later', 1), remove));
  row.addEventListener('dragstart', () => row.classList.add('dragging'));
  row.addEventListener('dragend', () => { row.classList.remove('dragging'); onChange(); });
  list.append(row);
  return { row, bar, note, thumb };
}

/** Drag to reorder: the dragged clip goes before the clip under the pointer. */
function reorderable(list) {
  list.addEventListener('dragover', (event) => {
    const dragged = list.querySelector('.dragging');
    if (!dragged) return;
    event.preventDefault();
    const after = [...list.children].find((row) => row !== dragged
      && event.clientY < row.getBoundingClientRect().top + row.offsetHeight / 2);
    list.insertBefore(dragged, after || null);
  });
  return list;
}

/** The thumbnail and length the service found, or why it refused the clip. */
function showExamined(clip, shown, onThumbnail) {
  if (clip.thumbnail_url) {
    shown.thumb.replaceChildren(h('img', { src: clip.thumbnail_url, alt: '' }));
    onThumbnail(clip.thumbnail_url);
  }
  shown.thumb.classList.remove('placeholder');
  shown.note.textContent = clip.rejection || `${seconds(clip.duration)} · ${bytes(clip.size)}, uploaded`;
  shown.note.className = clip.rejection ? 'error' : 'ok';
}

/**
 * Follows the uploaded clips until the service has examined them: one listing every few
 * seconds for all the clips waiting, not a request per clip (they share the rate budget).
 * Answers `watch(clipId, shown)`, which resolves to the clip's status once examined.
 */
function examinations(stillHere, onThumbnail) {
  const waiting = new Map();
  let polling = false;
  const poll = async () => {
    polling = true;
    while (waiting.size > 0 && stillHere()) {
      await new Promise((done) => { setTimeout(done, CHECK_EVERY_MS); });
      const { clips } = await call('GET', '/api/v2/clips?limit=100').catch(() => ({ clips: [] }));
      for (const clip of clips) {
        const entry = waiting.get(clip.clip_id);
        if (!entry || clip.status === ClipStatus.PENDING) continue;
        waiting.delete(clip.clip_id);
        if (entry.shown.row.isConnected) showExamined(clip, entry.shown, onThumbnail);
        entry.resolve(clip.status);
      }
    }
    polling = false;
  };
  return (clipId, shown) => new Promise((resolve) => {
    waiting.set(clipId, { shown, resolve });
    if (!polling) poll();
  });
}

export async function createView() {
  let uploading = 0;
  let here = true;
  const list = reorderable(h('ul', { class: 'plain clips', 'aria-label': 'Clips, in the montage\'s order' }));
  const line = errorLine();
  const start = h('button', { type: 'submit', disabled: true }, 'Make my montage');
  // The montage's clips are the uploaded rows, in the order they stand.
  const chosen = () => [...list.querySelectorAll('li[data-clip]')].map((row) => row.dataset.clip);
  const ready = () => { start.disabled = uploading > 0 || chosen().length === 0; };

  const add = async (file) => {
    const shown = clipRow(file, list, ready);
    uploading += 1;
    ready();
    try {
      const clip = await uploadClip(file, (sent, total) => {
        shown.bar.value = Math.floor((sent / total) * 100);
        shown.note.textContent = `${bytes(sent)} of ${bytes(total)}`;
      });
      shown.row.dataset.clip = clip.clip_id;
      shown.note.textContent = `${bytes(file.size)}, uploaded`;
      shown.note.className = 'ok';
      examined(clip.clip_id, shown).then((status) => {
        if (status === ClipStatus.REJECTED) delete shown.row.dataset.clip;
        ready();
      });
    } catch (error) {
      shown.note.textContent = error.friendly || 'The upload failed.';
      shown.note.className = 'error';
    } finally {
      uploading -= 1;
      ready();
    }
  };

  const picker = h('input', { id: 'f-files', type: 'file', accept: 'video/*', multiple: true });
  picker.addEventListener('change', () => { [...picker.files].forEach(add); picker.value = ''; });
  const drop = h('div', { class: 'drop' },
    h('p', {}, 'Drop your clips here, or choose them:'),
    h('label', { for: 'f-files' }, 'Choose clips', picker),
    h('p', { class: 'hint' }, 'Up to 20 clips. Large files resume where they stopped if the connection drops.'));
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    [...event.dataTransfer.files].filter((f) => f.type.startsWith('video/') || f.type === '').forEach(add);
  });

  const form = h('form', { class: 'wide', 'aria-label': 'Montage options' }, await optionFields(), line, start);
  // The camera can be placed by hand on the first clip's thumbnail.
  const camera = form.querySelector('#f-facecam');
  const placer = facecamPlacer(camera);
  const examined = examinations(() => here, placer.showOn);
  camera.closest('label').after(placer.frame);
  onSubmit(form, line, async (data) => {
    location.hash = `#/jobs/${await startJob(chosen(), data)}`;
  });
  show('Make a montage',
    h('section', {}, h('h2', {}, '1. Your clips'), drop, list,
      h('p', { class: 'hint' }, 'Or pick clips you uploaded before in your ', h('a', { href: '#/library' }, 'library'), '.')),
    h('section', {}, h('h2', {}, '2. How it looks'), form));
  return () => { here = false; };
}
