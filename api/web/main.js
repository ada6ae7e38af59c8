// The app's entry: the navigation, the views by `#/…` address, and the pages other systems
// link to (mails, Stripe, the OAuth callback), which become views once read.

import { ErrorCode } from './contract.js';
import { signedIn, signOut } from './api.js';
import { h, toast } from './ui.js';
import * as auth from './auth.js';
import * as create from './create.js';
import * as job from './job.js';
import * as library from './library.js';
import * as account from './account.js';
import * as showcase from './showcase.js';
import * as home from './home.js';

const PRIVATE = [
  [/^\/$/, () => create.createView()],
  [/^\/jobs$/, (q) => job.historyView(Number(q.get('offset') || 0))],
  [/^\/jobs\/([\w-]+)$/, (q, id) => job.jobView(id)],
  [/^\/library$/, (q) => library.libraryView(Number(q.get('offset') || 0))],
  [/^\/weekly$/, () => showcase.weeklyView()],
  [/^\/plan$/, () => account.planView()],
  [/^\/accounts$/, () => account.linkedView()],
  [/^\/settings$/, () => account.settingsView()],
];

const PUBLIC = [
  [/^\/signin$/, () => auth.signInView()],
  [/^\/signup$/, () => auth.signUpView()],
  [/^\/forgot$/, () => auth.forgotView()],
];

const NAV = [
  ['#/', 'Create'], ['#/jobs', 'My montages'], ['#/library', 'Library'], ['#/weekly', 'Weekly'],
  ['#/accounts', 'Linked accounts'], ['#/plan', 'Plan'], ['#/settings', 'Settings'],
];

function drawNav() {
  const nav = document.getElementById('nav');
  const here = location.hash.split('?')[0] || '#/';
  if (!signedIn()) {
    nav.replaceChildren(h('a', { href: '#/signin' }, 'Sign in'), h('a', { href: '#/signup' }, 'Sign up'));
    return;
  }
  const links = NAV.map(([href, text]) => h('a', { href, 'aria-current': href === here ? 'page' : false }, text));
  const out = h('a', { href: '#/signin', onclick: async (event) => { event.preventDefault(); await signOut(); location.hash = '#/signin'; } }, 'Sign out');
  nav.replaceChildren(...links, out);
}

let leaving = () => {};

async function route() {
  leaving();
  leaving = () => {};
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(query || '');
  drawNav();
  for (const [pattern, view] of PUBLIC) {
    const match = path.match(pattern);
    if (match) return view(params, ...match.slice(1));
  }
  if (path === '/' && !signedIn()) return home.homeView();
  for (const [pattern, view] of PRIVATE) {
    const match = path.match(pattern);
    if (!match) continue;
    if (!signedIn()) return auth.signInView(location.hash);
    const stop = await view(params, ...match.slice(1));
    if (typeof stop === 'function') leaving = stop;
    return;
  }
  location.hash = '#/';
}

/**
 * The page the browser was sent to, shown as a view (or answering the `#/…` view to show);
 * its address, and any token in it, leaves the address bar.
 */
function landing() {
  const params = new URLSearchParams(location.search);
  const pages = {
    '/verify-email': () => { auth.verifyEmailView(params.get('token')); },
    '/reset-password': () => { auth.resetPasswordView(params.get('token')); },
    '/accounts/linked': () => { account.linkedResult(params); return '#/accounts'; },
    '/billing': () => '#/plan',
    '/billing/success': () => { toast('Thank you! Your plan changes as soon as the payment is confirmed.'); return '#/plan'; },
    '/billing/cancelled': () => { toast('Checkout was cancelled; nothing was charged.'); return '#/plan'; },
  };
  const page = pages[location.pathname];
  if (!page) return false;
  const next = page();
  // Without a view to go to, the address is bare `/`: any `#/…` link then changes it.
  history.replaceState(null, '', `/${next || ''}`);
  if (next) route();
  else drawNav();
  return true;
}

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (event) => {
  const error = event.reason || {};
  if (error.code === ErrorCode.AUTHENTICATION_REQUIRED || (error.status === 401)) {
    location.hash = '#/signin';
  }
  toast(error.friendly || 'Something went wrong. Please try again.');
  event.preventDefault();
});
if (!landing()) route();
