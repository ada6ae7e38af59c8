// Small DOM helpers shared by the views.

/** An element: `h('button', {onclick, class: 'x'}, 'text', child…)`. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key in element && key !== 'list' && key !== 'form') element[key] = value;
    else element.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replaces the page's content; moves focus to it for keyboard and screen-reader users. */
export function show(title, ...children) {
  const main = document.getElementById('main');
  document.title = `${title} · Montage`;
  main.replaceChildren(h('h1', {}, title), ...children);
  main.focus({ preventScroll: true });
}

let toastTimer;
export function toast(text) {
  const box = document.getElementById('toast');
  box.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.textContent = ''; }, 6000);
}

/** A labelled input. */
export function field(label, props, hint) {
  const id = props.id || `f-${props.name}`;
  return h('label', { for: id }, label, h('input', { id, ...props }), hint && h('span', { class: 'hint' }, hint));
}

/** A place for a form's error, read out when it changes. */
export function errorLine() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

export function sayError(line, error) {
  line.textContent = error.friendly || 'That did not work.';
  line.hidden = false;
}

/**
 * Runs `action` for a form's submit: the button is disabled meanwhile and a refusal is
 * shown in `line`, in words.
 */
export function onSubmit(form, line, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    line.hidden = true;
    try {
      await action(new FormData(form));
    } catch (error) {
      if (!error.friendly) console.warn(error);
      sayError(line, error);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}

/**
 * Asks before something that cannot be undone, in a modal dialog: the rest of the page is
 * inert while it is open (focus stays inside), Escape or "Keep it" answers no, and focus goes
 * back to what opened it. Resolves to the answer.
 */
function confirmed({ title, text, yes }) {
  const opener = document.activeElement;
  const keep = h('button', { type: 'button', class: 'secondary' }, 'Keep it');
  const confirm = h('button', { type: 'button', class: 'danger' }, yes);
  const dialog = h('dialog', { 'aria-labelledby': 'dialog-title', 'aria-describedby': 'dialog-text' },
    h('h2', { id: 'dialog-title' }, title), h('p', { id: 'dialog-text' }, text),
    h('p', { class: 'row' }, keep, confirm));
  document.body.append(dialog);
  return new Promise((answer) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener instanceof HTMLElement) opener.focus();
      answer(dialog.returnValue === 'yes');
    });
    // The page behind is inert; Tab past either end comes round instead of leaving the page.
    dialog.addEventListener('keydown', (event) => {
      if (event.key !== 'Tab') return;
      const [end, other] = event.shiftKey ? [keep, confirm] : [confirm, keep];
      if (document.activeElement !== end) return;
      event.preventDefault();
      other.focus();
    });
    keep.addEventListener('click', () => dialog.close('no'));
    confirm.addEventListener('click', () => dialog.close('yes'));
    dialog.showModal();
    keep.focus();
  });
}

/**
 * A button whose click runs `action`, disabled meanwhile; refusals go to the toast. With
 * `ask` (`confirmed`'s question), only once the player said yes.
 */
export function actionButton(text, action, { ask, ...props } = {}) {
  const button = h('button', { type: 'button', ...props }, text);
  button.addEventListener('click', async () => {
    if (ask && !(await confirmed(ask))) return;
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      if (!error.friendly) console.warn(error);
      toast(error.friendly || 'That did not work.');
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** "1 view", "3 views". */
export function count(n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export function bytes(n) {
  if (n < 1024 * 1024) return `${Math.max(1, Math.round(n / 1024))} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

/** `word` with its first letter in capitals (style and mood ids as titles). */
export function capitalized(word) {
  return word[0].toUpperCase() + word.slice(1);
}

export function seconds(s) {
  return `${Math.round(s)} s`;
}

/** Previous/next buttons for an offset listing. */
export function pager(page, go) {
  const { total, limit, offset } = page;
  const last = Math.max(0, Math.ceil(total / limit) - 1);
  const current = Math.floor(offset / limit);
  return h('nav', { class: 'row', 'aria-label': 'Pages' },
    h('button', { type: 'button', class: 'secondary', disabled: current === 0, onclick: () => go(offset - limit) }, 'Newer'),
    h('span', { class: 'muted' }, `Page ${current + 1} of ${last + 1} (${total} in all)`),
    h('button', { type: 'button', class: 'secondary', disabled: current >= last, onclick: () => go(offset + limit) }, 'Older'));
}
