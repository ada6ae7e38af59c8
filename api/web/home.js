// The landing page for signed-out visitors: what the service does, the community's featured
// montages playing, and signing up as the main action.

import { call } from './api.js';
import { count, h, show } from './ui.js';

const POINTS = [
  ['Cut on the beat', 'Every cut lands on the music: a catalogue track or your own.'],
  ['Your best moments, found', 'Kills, clutches and loud moments are picked from your clips for you.'],
  ['Ready for every feed', 'Landscape for YouTube, portrait for TikTok and Shorts, with your facecam on top, at 60 fps.'],
  ['One tap to share', 'A link friends open anywhere, or straight to your linked accounts.'],
];

const stillPictures = () => window.matchMedia('(prefers-reduced-motion: reduce)').matches;

/** A featured montage, playing muted on a loop (still for visitors who ask for less motion). */
function featured(montage) {
  const output = montage.outputs[0];
  const still = stillPictures();
  return h('li', { class: 'card' },
    h('video', { src: output.video_url, poster: output.poster_url, muted: true, loop: true, playsinline: true,
      autoplay: !still, controls: still, preload: still ? 'none' : 'auto', 'aria-label': `Montage by ${montage.owner || 'a player'}` }),
    h('p', { class: 'muted' }, `${montage.owner || 'A player'} · ${count(montage.views, 'view')}`));
}

async function showcase() {
  const listing = (featuredOnly) => call('GET', `/api/v2/weekly-montages?limit=6&featured_only=${featuredOnly}`, { auth: false });
  let { montages } = await listing(true);
  if (montages.length === 0) ({ montages } = await listing(false));
  const playable = montages.filter((m) => m.outputs.length > 0);
  if (playable.length === 0) return '';
  return h('section', { 'aria-labelledby': 'made-here' }, h('h2', { id: 'made-here' }, 'Made here this week'),
    h('ul', { class: 'plain gallery' }, playable.map(featured)));
}

export async function homeView() {
  const hero = h('section', { class: 'hero' },
    h('p', { class: 'lead' }, 'Drop in your clips. Get a montage cut to the beat, in landscape and portrait, ready to post.'),
    h('div', { class: 'row' },
      h('a', { href: '#/signup', class: 'button big' }, 'Make your first montage, free'),
      h('a', { href: '#/signin', class: 'button secondary' }, 'Sign in')));
  const points = h('ul', { class: 'plain points' },
    POINTS.map(([title, text]) => h('li', {}, h('strong', {}, title), h('span', { class: 'muted' }, text))));
  // The page stands without the showcase: a listing that fails leaves it out.
  const playing = await showcase().catch(() => '');
  show('Your best plays, made into montages', hero, points, playing);
}
