// The admin UI's entry point: sign-in, navigation and the hash router.
// Pages live in their own modules and render into <main>.

import { apiKey, setAPIKey, forgetAPIKey, request } from './api.js';
import { h, replace, problem } from './dom.js';
import { searchPage, detailPage } from './notifications.js';
import { deadLettersPage } from './deadletters.js';
import { templatesPage } from './templates.js';
import { overviewPage } from './overview.js';
import { editorPage } from './editor.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('sign-out');

// cleanup stops what the current page started (timers, pending refreshes).
let cleanup = null;

function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?', 2);
  const params = new URLSearchParams(qs || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params };
}

function render() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  if (!apiKey()) {
    showSignIn();
    return;
  }
  nav.hidden = false;
  signOutButton.hidden = false;
  const { parts, params } = route();
  const page = parts[0] || 'overview';
  for (const a of nav.querySelectorAll('a')) {
    a.classList.toggle('active', a.dataset.nav === page);
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctx = { navigate };
  let stop;
  if (page === 'overview') {
    document.title = 'Overview · Herald admin';
    stop = overviewPage(main, params, ctx);
  } else if (page === 'notifications' && parts[1]) {
    document.title = 'Notification · Herald admin';
    stop = detailPage(main, parts[1], ctx);
  } else if (page === 'notifications') {
    document.title = 'Notifications · Herald admin';
    stop = searchPage(main, params, ctx);
  } else if (page === 'dead-letters') {
    document.title = 'Dead letters · Herald admin';
    stop = deadLettersPage(main, params, ctx);
  } else if (page === 'templates' && parts[1]) {
    document.title = `${parts[1]} · Template editor · Herald admin`;
    stop = editorPage(main, parts[1], ctx);
  } else if (page === 'templates') {
    document.title = 'Templates · Herald admin';
    stop = templatesPage(main, params, ctx);
  } else {
    document.title = 'Not found · Herald admin';
    replace(main, h('section', { class: 'panel' }, h('h1', {}, 'Page not found'),
      h('p', {}, 'There is no page at this address. ', h('a', { href: '#/overview' }, 'Go to the overview'), '.')));
  }
  cleanup = typeof stop === 'function' ? stop : null;
}

function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function showSignIn(message) {
  nav.hidden = true;
  signOutButton.hidden = true;
  document.title = 'Sign in · Herald admin';
  const input = h('input', {
    id: 'api-key', name: 'api_key', type: 'password', required: true, spellcheck: 'false', autocomplete: 'off',
  });
  const error = h('div', { id: 'sign-in-error' });
  if (message) replace(error, message);
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { id: 'sign-in-form', method: 'post', autocomplete: 'off' },
    h('label', { class: 'field' }, h('span', { class: 'label' }, 'API key'), input),
    error, button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    replace(error);
    try {
      // The cheapest call every key may make: it proves the key works.
      await request('GET', '/v1/notifications?limit=1', undefined, key);
      setAPIKey(key);
      input.value = '';
      render();
    } catch (err) {
      replace(error, problem(err, 'Sign-in failed'));
    } finally {
      button.disabled = false;
    }
  });
  replace(main, h('section', { class: 'panel narrow sign-in' },
    h('h1', {}, 'Sign in to Herald'),
    h('p', { class: 'muted' }, 'Paste an API key of your app: scope ', h('code', {}, 'admin'),
      ' for everything, or ', h('code', {}, 'send'), ' to look without replaying. The key stays in this tab\u2019s ',
      'session storage and goes only to this Herald, as a Bearer token.'),
    form));
  input.focus();
}

function signOut(message) {
  forgetAPIKey();
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  showSignIn(message);
}

signOutButton.addEventListener('click', () => signOut());

// A key revoked (or mistyped) while the UI is open: back to sign-in, saying why.
window.addEventListener('herald:unauthorized', (ev) => signOut(problem(ev.detail, 'Signed out')));
window.addEventListener('hashchange', render);
render();
