// Weekly montages: the player's own (made each week from their best clips; private until
// they publish one), the setting that turns them on or off, and the community's public ones.

import { WeeklyOutcome } from './contract.js';
import { call } from './api.js';
import { count, h, show, toast, actionButton, errorLine, onSubmit } from './ui.js';
import { catalogue, musicField, styles } from './create.js';
import { statusChip } from './job.js';

function day(iso) {
  return new Date(iso).toLocaleDateString();
}

function player(montage) {
  const output = montage.outputs[0];
  if (!output) return '';
  return h('video', { controls: true, preload: 'none', playsinline: true, src: output.video_url, poster: output.poster_url,
    'aria-label': `Weekly montage of ${day(montage.week_start)}` });
}

function montageCard(montage, mine) {
  const visibility = mine ? actionButton(montage.visibility === 'public' ? 'Make private' : 'Publish', async () => {
    const visibility = montage.visibility === 'public' ? 'private' : 'public';
    await call('PATCH', `/api/v2/weekly-montages/${montage.montage_id}`, { json: { visibility } });
    toast(visibility === 'public' ? 'Published: everyone can watch it.' : 'Private again.');
    weeklyView();
  }, { class: 'secondary' }) : '';
  return h('li', {}, h('div', { class: 'row' },
    h('strong', {}, `${day(montage.week_start)} to ${day(montage.week_end)}`),
    mine ? statusChip(montage.status) : h('span', {}, montage.owner || 'A player'),
    h('span', { class: 'muted' }, `${montage.style}, ${count(montage.clip_count, 'clip')}, ${count(montage.views, 'view')}${montage.featured ? ', featured' : ''}`),
    mine ? h('a', { href: `#/jobs/${montage.job_id}` }, 'Open') : '', visibility), player(montage));
}

async function settingsForm() {
  const [settings, all, tracks] = await Promise.all([call('GET', '/api/v2/users/me/weekly-montage'), styles(), catalogue()]);
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Weekly montage settings' },
    h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'enabled', checked: settings.enabled }), 'Make me a montage of my best clips each week'),
    h('label', { for: 'f-weekly-style' }, 'Style', h('select', { id: 'f-weekly-style', name: 'style' },
      h('option', { value: '', selected: settings.style === null }, 'The style I use most'),
      all.map((s) => h('option', { value: s.id, selected: settings.style === s.id }, s.name)))),
    musicField(tracks, settings.music_id),
    line, h('button', { type: 'submit' }, 'Save'));
  onSubmit(form, line, async (data) => {
    await call('PUT', '/api/v2/users/me/weekly-montage', { json: { enabled: data.get('enabled') === 'on', style: data.get('style') || null, music_id: data.get('music_id') || null } });
    toast('Saved.');
  });
  const latest = settings.latest_week;
  const missed = {
    [WeeklyOutcome.TOO_LITTLE]: () => `Last week had too few clips (${latest.clip_count}) for a montage.`,
    [WeeklyOutcome.OVER_QUOTA]: () => 'Last week\'s montage did not fit your plan: free some storage, or confirm your email address.',
  }[latest?.outcome];
  const note = missed ? h('p', { class: 'muted' }, missed()) : '';
  return [note, form];
}

export async function weeklyView() {
  const [mine, featured] = await Promise.all([
    call('GET', '/api/v2/weekly-montages?mine=true&limit=10'),
    call('GET', '/api/v2/weekly-montages?featured_only=true&limit=6', { auth: false })]);
  show('Weekly montages',
    h('section', {}, h('h2', {}, 'Yours'), ...(await settingsForm()),
      mine.montages.length ? h('ul', { class: 'plain' }, mine.montages.map((m) => montageCard(m, true)))
        : h('p', {}, 'None yet: play, upload clips, and your first one arrives at the end of the week.')),
    h('section', {}, h('h2', {}, 'Featured'),
      featured.montages.length ? h('ul', { class: 'plain' }, featured.montages.map((m) => montageCard(m, false)))
        : h('p', {}, 'Nothing featured this week.')));
}
