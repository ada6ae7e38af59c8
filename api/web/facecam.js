// Placing the streamer's camera by hand: a box over a clip's thumbnail, dragged (its corner
// handle resizes it) or moved with the arrow keys (Shift resizes). It sets the form's
// `facecam` choice to where the box is, as `x,y,w,h` fractions of the frame.

import { h } from './ui.js';

const SMALLEST = 0.05;
const STEP = 0.01;

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
const rounded = (box) => [box.x, box.y, box.w, box.h].map((v) => v.toFixed(3)).join(',');

/** The placer for `select` (the camera choice): `frame` to put on the page, `showOn(url)` once a thumbnail exists. */
export function facecamPlacer(select) {
  let box = { x: 0.73, y: 0.03, w: 0.25, h: 0.3 };
  const placed = h('option', { value: '' }, 'Where I placed it on my clip');
  const handle = h('span', { class: 'handle', 'aria-hidden': 'true' });
  const marker = h('div', { class: 'facecam-box', tabindex: 0, role: 'group',
    'aria-label': 'Your camera on the clip: drag it or use the arrow keys; Shift with the arrows resizes it' }, handle);
  const picture = h('img', { alt: 'Your first clip' });
  const frame = h('div', { class: 'facecam-frame', hidden: true }, picture, marker);

  const draw = () => {
    box = { w: clamp(box.w, SMALLEST, 1), h: clamp(box.h, SMALLEST, 1), x: box.x, y: box.y };
    box.x = clamp(box.x, 0, 1 - box.w);
    box.y = clamp(box.y, 0, 1 - box.h);
    Object.assign(marker.style, { left: `${box.x * 100}%`, top: `${box.y * 100}%`, width: `${box.w * 100}%`, height: `${box.h * 100}%` });
    placed.value = rounded(box);
  };
  const choose = () => {
    draw();
    if (!placed.isConnected) select.append(placed);
    select.value = placed.value;
  };

  marker.addEventListener('pointerdown', (start) => {
    start.preventDefault();
    marker.setPointerCapture(start.pointerId);
    const bounds = frame.getBoundingClientRect();
    const from = { ...box };
    const resizing = start.target === handle;
    const move = (event) => {
      const dx = (event.clientX - start.clientX) / bounds.width;
      const dy = (event.clientY - start.clientY) / bounds.height;
      box = resizing ? { ...from, w: from.w + dx, h: from.h + dy } : { ...from, x: from.x + dx, y: from.y + dy };
      choose();
    };
    marker.addEventListener('pointermove', move);
    marker.addEventListener('pointerup', () => marker.removeEventListener('pointermove', move), { once: true });
  });
  marker.addEventListener('keydown', (event) => {
    const arrows = { ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, -STEP], ArrowDown: [0, STEP] };
    const step = arrows[event.key];
    if (!step) return;
    event.preventDefault();
    const [dx, dy] = step;
    box = event.shiftKey ? { ...box, w: box.w + dx, h: box.h + dy } : { ...box, x: box.x + dx, y: box.y + dy };
    choose();
  });
  // A corner chosen in the list moves the box there.
  select.addEventListener('change', () => {
    const [x, y, w, hh] = select.value.split(',').map(Number);
    if (select.value && select.value !== placed.value) box = { x, y, w, h: hh };
    draw();
  });
  draw();
  return {
    frame,
    showOn(url) {
      if (!frame.hidden) return;
      picture.src = url;
      frame.hidden = false;
    },
  };
}
