// Signing up and in (with the second step when multi-factor login is on), and the pages the
// verification and password-reset mails link to.

import { call, keep, signedIn } from './api.js';
import { h, show, field, errorLine, onSubmit, toast } from './ui.js';

const PASSWORD_HINT = '10 to 128 characters, with a letter and a digit.';

function after(returnTo) {
  location.hash = returnTo && returnTo !== '#/signin' ? returnTo : '#/';
}

export function signInView(returnTo) {
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Sign in' },
    field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
    field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    line,
    h('button', { type: 'submit' }, 'Sign in'));
  onSubmit(form, line, async (data) => {
    const answer = await call('POST', '/api/auth/login', {
      auth: false, json: { email: data.get('email'), password: data.get('password') },
    });
    if (answer.mfa_required) return codeStep(answer.mfa_token, returnTo);
    keep(answer);
    after(returnTo);
  });
  show('Sign in', h('section', {}, form,
    h('p', {}, h('a', { href: '#/forgot' }, 'Forgot your password?')),
    h('p', {}, 'New here? ', h('a', { href: '#/signup' }, 'Create an account'))));
}

function codeStep(mfaToken, returnTo) {
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Sign-in code' },
    field('Code from your authenticator app', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true },
      'Or one of your recovery codes.'),
    line,
    h('button', { type: 'submit' }, 'Continue'));
  onSubmit(form, line, async (data) => {
    const code = String(data.get('code')).trim();
    const body = /^\d{6}$/.test(code) ? { mfa_token: mfaToken, code } : { mfa_token: mfaToken, recovery_code: code };
    keep(await call('POST', '/api/auth/mfa/login', { auth: false, json: body }));
    after(returnTo);
  });
  show('One more step', h('section', {}, form));
}

export function signUpView() {
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Create an account' },
    field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
    field('Username (optional)', { name: 'username', autocomplete: 'username', minlength: 3, maxlength: 50 }),
    field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 }, PASSWORD_HINT),
    line,
    h('button', { type: 'submit' }, 'Create account'));
  onSubmit(form, line, async (data) => {
    const body = { email: data.get('email'), password: data.get('password') };
    if (data.get('username')) body.username = data.get('username');
    await call('POST', '/api/auth/register', { auth: false, json: body });
    keep(await call('POST', '/api/auth/login', { auth: false, json: { email: body.email, password: body.password } }));
    toast('Welcome! We mailed you a link to confirm your address.');
    location.hash = '#/';
  });
  show('Create your account', h('section', {}, form,
    h('p', {}, 'Already have one? ', h('a', { href: '#/signin' }, 'Sign in'))));
}

export function forgotView() {
  const line = errorLine();
  const done = h('p', { class: 'ok', role: 'status' });
  const form = h('form', { 'aria-label': 'Reset your password' },
    field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
    line, done,
    h('button', { type: 'submit' }, 'Mail me a link'));
  onSubmit(form, line, async (data) => {
    await call('POST', '/api/auth/password/forgot', { auth: false, json: { email: data.get('email') } });
    done.textContent = 'If that address has an account, a link to reset the password is on its way.';
  });
  show('Forgot your password?', h('section', {}, form));
}

export async function verifyEmailView(token) {
  const status = h('p', { role: 'status' }, 'Confirming your address…');
  show('Confirm your email', h('section', {}, status));
  try {
    await call('POST', '/api/auth/verify-email', { auth: false, json: { token: token || '' } });
    status.className = 'ok';
    status.textContent = 'Your email address is confirmed. Thank you!';
  } catch (error) {
    status.className = 'error';
    status.textContent = error.friendly;
  }
  status.after(h('p', {}, h('a', { href: signedIn() ? '#/' : '#/signin' }, signedIn() ? 'Make a montage' : 'Sign in')));
}

export function resetPasswordView(token) {
  const line = errorLine();
  const form = h('form', { 'aria-label': 'Choose a new password' },
    field('New password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 }, PASSWORD_HINT),
    line,
    h('button', { type: 'submit' }, 'Set password'));
  onSubmit(form, line, async (data) => {
    await call('POST', '/api/auth/password/reset', { auth: false, json: { token: token || '', password: data.get('password') } });
    toast('Your password is changed. Sign in with it.');
    location.hash = '#/signin';
  });
  show('Choose a new password', h('section', {}, form));
}
