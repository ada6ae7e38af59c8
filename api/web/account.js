// The plan (Stripe Checkout to upgrade, its portal to manage), linked platform accounts, and
// the player's settings: profile, email confirmation, two-step sign-in, closing the account.

import { SyncStatus } from './contract.js';
import { call, forget } from './api.js';
import { h, show, toast, actionButton, errorLine, onSubmit, field, when } from './ui.js';

export async function planView() {
  const [{ plans }, subscription] = await Promise.all([
    call('GET', '/api/v2/billing/plans', { auth: false }), call('GET', '/api/v2/billing/subscription')]);
  const cards = plans.map((plan) => {
    const current = plan.id === subscription.plan;
    const body = new URLSearchParams({ plan: plan.id });
    return h('div', { class: 'card' }, h('h2', {}, plan.name, current ? ' (your plan)' : ''),
      h('p', {}, plan.price === 0 ? 'Free' : `$${plan.price} a month`),
      h('ul', {}, plan.features.map((f) => h('li', {}, f)), h('li', {}, `${plan.limits.active_jobs} montages rendering at once`)),
      current || plan.price === 0 ? '' : actionButton(`Upgrade to ${plan.name}`, async () => {
        location.href = (await call('POST', '/api/v2/billing/checkout', { form: body })).checkout_url;
      }));
  });
  const status = subscription.status === 'none' ? '' : h('p', {}, `Subscription: ${subscription.status}`,
    subscription.current_period_end ? `, renews ${when(subscription.current_period_end)}` : '',
    subscription.cancel_at_period_end ? ' (ends then)' : '');
  show('Your plan', status, h('div', { class: 'plans' }, cards),
    h('p', {}, actionButton('Manage payment and invoices', async () => {
      location.href = (await call('POST', '/api/v2/billing/portal')).portal_url;
    }, { class: 'secondary' })));
}

let lastLinkResult = null;

/** The OAuth callback's verdict, shown on the linked accounts view. */
export function linkedResult(params) {
  const reasons = {
    invalid_state: 'The link request expired. Please try again.',
    denied: 'You declined on the platform; nothing was linked.',
    already_linked: 'That platform account is already linked to another Montage account.',
    provider_error: 'The platform did not answer properly. Please try again later.',
  };
  lastLinkResult = params.get('status') === 'linked'
    ? `Your ${params.get('provider') || ''} account is linked.`
    : reasons[params.get('reason')] || 'Linking did not work.';
}

const SYNC_WORDS = {
  [SyncStatus.PENDING]: 'Import waiting', [SyncStatus.RUNNING]: 'Importing',
  [SyncStatus.SUCCESS]: 'Last import', [SyncStatus.FAILED]: 'Last import failed',
};

/** How the link's latest import went, the clips that still fail, and "link again" when the platform refused. */
function syncOutcome(sync, linkAgain) {
  const counts = `${sync.imported} of ${sync.found} new clips imported${sync.finished_at ? `, ${when(sync.finished_at)}` : ''}`;
  const outcome = h('div', { class: 'sync' },
    h('p', {}, h('span', { class: `status ${sync.status}` }, SYNC_WORDS[sync.status] || sync.status), ' ',
      sync.status === SyncStatus.FAILED ? sync.error : counts));
  if (sync.status === SyncStatus.FAILED) outcome.append(linkAgain());
  if (sync.failures && sync.failures.length) {
    outcome.append(h('details', {}, h('summary', {}, `${sync.failures.length} clip${sync.failures.length > 1 ? 's' : ''} could not be imported`),
      h('ul', {}, sync.failures.map((f) => h('li', {}, `${f.title}: ${f.error} (tried ${f.attempts}×)`)))));
  }
  return outcome;
}

export async function linkedView() {
  const [{ providers }, { links }] = await Promise.all([
    call('GET', '/api/v2/accounts/providers', { auth: false }), call('GET', '/api/v2/accounts/links')]);
  const notice = lastLinkResult ? h('p', { role: 'status' }, lastLinkResult) : '';
  lastLinkResult = null;
  const linkAgain = (provider) => actionButton('Link again', async () => {
    location.href = (await call('GET', `/api/v2/accounts/oauth/${provider}?redirect=false`)).authorize_url;
  }, { 'aria-label': `Link ${provider} again` });
  const linked = links.map((link) => h('li', {}, h('div', { class: 'row' },
    h('strong', {}, link.provider), link.display_name || link.external_id,
    h('span', { class: 'muted' }, `linked ${when(link.linked_at)}`),
    actionButton('Unlink', async () => {
      await call('DELETE', `/api/v2/accounts/links/${link.link_id}`);
      toast('Unlinked.');
      linkedView();
    }, { class: 'secondary', 'aria-label': `Unlink ${link.provider}` })),
  link.last_sync ? syncOutcome(link.last_sync, () => linkAgain(link.provider)) : ''));
  const offers = providers.filter((p) => !links.some((l) => l.provider === p.id)).map((p) => h('li', {},
    h('div', { class: 'row' }, h('strong', {}, p.name), h('span', { class: 'muted' }, p.description),
      actionButton(`Link ${p.name}`, async () => {
        location.href = (await call('GET', `/api/v2/accounts/oauth/${p.id}?redirect=false`)).authorize_url;
      }))));
  const importing = links.some((l) => l.can_import) ? actionButton('Import new clips now', async () => {
    await call('POST', '/api/v2/accounts/sync');
    toast('Importing: new clips appear in your library.');
  }) : '';
  show('Linked accounts', notice,
    h('section', {}, h('h2', {}, 'Linked'), links.length ? h('ul', { class: 'plain' }, linked) : h('p', {}, 'None yet.'), importing),
    h('section', {}, h('h2', {}, 'Available'), offers.length ? h('ul', { class: 'plain' }, offers) : h('p', {}, 'Every platform is linked.')));
}

function profileForm(me) {
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Profile' },
    field('Username', { name: 'username', value: me.username || '', autocomplete: 'username' }),
    field('Display name', { name: 'display_name', value: me.display_name || '' }),
    line, h('button', { type: 'submit' }, 'Save'));
  onSubmit(form, line, async (data) => {
    const body = { display_name: data.get('display_name') };
    if (data.get('username')) body.username = data.get('username');
    await call('PUT', '/api/users/me', { json: body });
    toast('Saved.');
  });
  return form;
}

function mfaBlock(me) {
  const place = h('div', {});
  const line = errorLine();
  if (me.mfa_enabled) {
    const form = h('form', { 'aria-label': 'Turn off two-step sign-in' },
      field('Current code or password', { name: 'proof', type: 'password', required: true }), line,
      h('button', { type: 'submit', class: 'secondary' }, 'Turn off'));
    onSubmit(form, line, async (data) => {
      const proof = String(data.get('proof'));
      await call('POST', '/api/auth/mfa/disable', { json: /^\d{6}$/.test(proof) ? { code: proof } : { password: proof } });
      toast('Two-step sign-in is off.');
      settingsView();
    });
    place.append(h('p', {}, 'Two-step sign-in is on.'), form);
    return place;
  }
  place.append(h('p', {}, 'Two-step sign-in is off.'), actionButton('Turn on', async () => {
    const setup = await call('POST', '/api/auth/mfa/enable');
    const form = h('form', { 'aria-label': 'Confirm two-step sign-in' },
      h('img', { class: 'qr', src: setup.qr_code, alt: 'QR code for your authenticator app' }),
      h('p', { class: 'hint' }, `Or enter this key: ${setup.secret}`),
      field('Code from the app', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true }), line,
      h('button', { type: 'submit' }, 'Confirm'));
    onSubmit(form, line, async (data) => {
      const done = await call('POST', '/api/auth/mfa/verify', { json: { code: data.get('code') } });
      place.replaceChildren(h('p', {}, 'Two-step sign-in is on. Keep these recovery codes somewhere safe; each works once:'),
        h('pre', {}, done.recovery_codes.join('\n')));
    });
    place.replaceChildren(form);
  }));
  return place;
}

function closeForm() {
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Close the account' },
    field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }), line,
    h('button', { type: 'submit', class: 'danger' }, 'Delete my account and everything in it'));
  onSubmit(form, line, async (data) => {
    await call('DELETE', '/api/users/me', { json: { password: data.get('password') } });
    forget();
    location.hash = '#/signup';
  });
  return form;
}

export async function settingsView() {
  const me = await call('GET', '/api/users/me');
  const email = h('p', {}, me.email, ' ', me.email_verified ? h('span', { class: 'ok' }, '(confirmed)') : h('span', { class: 'muted' }, '(not confirmed yet)'));
  if (!me.email_verified) {
    email.append(' ', actionButton('Mail the link again', async () => {
      await call('POST', '/api/auth/resend-verification');
      toast('Sent. Check your mail.');
    }, { class: 'secondary' }));
  }
  show('Settings',
    h('section', {}, h('h2', {}, 'Email'), email),
    h('section', {}, h('h2', {}, 'Profile'), profileForm(me)),
    h('section', {}, h('h2', {}, 'Two-step sign-in'), mfaBlock(me)),
    h('section', {}, h('h2', {}, 'Close your account'), closeForm()));
}
