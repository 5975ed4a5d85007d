// jitgate web console. Plain JavaScript, no build step: every view calls /api/v1 with the
// session cookie (and the CSRF token on changes) and shows what the API answers, including
// its error messages, next to the field they are about.
'use strict';

const S = {
  me: null,          // the signed-in identity
  csrf: '',
  seesEverything: false,
  assets: new Map(), // id -> asset
  stream: null,
  view: null,        // {name, refresh(background)}
  refreshTimer: null,
};

// ------------------------------------------------------------------ DOM helpers

/**
 * Text as shown: control characters (other than newline and tab), DEL, C1 controls and the
 * bidirectional overrides that would reorder what is shown are written visibly as \u{XXXX}.
 * The server refuses them in free text; records from before or from elsewhere may hold them.
 */
const HIDDEN_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
function visible(text) {
  return String(text).replace(HIDDEN_CHARS, (c) => `\\u{${c.codePointAt(0).toString(16).padStart(4, '0')}}`);
}

/** h('div', {class: 'x', onclick: f}, child, 'text', [more]) — never parses HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = visible(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}
function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(visible(c)));
  }
  return el;
}
const $ = (sel, root = document) => root.querySelector(sel);
let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function announce(text) {
  const el = $('#announce');
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 30);
}

// ------------------------------------------------------------------ formatting

function dur(secs) {
  secs = Math.max(0, Math.round(secs));
  if (secs < 60) return `${secs} s`;
  const d = Math.floor(secs / 86400), hr = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60);
  const parts = [];
  if (d) parts.push(`${d} d`);
  if (hr) parts.push(`${hr} h`);
  if (m && !d) parts.push(`${m} min`);
  if (!d && !hr && secs % 60) parts.push(`${secs % 60} s`);
  return parts.join(' ');
}
function when(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function left(ts) {
  const s = (new Date(ts).getTime() - Date.now()) / 1000;
  return s > 0 ? `${dur(s)} left` : 'expired';
}
/** A span whose text counts down to `ts` (updated every second). */
function countdown(ts) {
  return h('span', { class: 'countdown', 'data-expires': ts, text: left(ts) });
}
function state(s) {
  return h('span', { class: `state state-${s}`, text: s });
}
function assetLabel(id) {
  const a = S.assets.get(id);
  if (!a) return id;
  return `${a.id} — ${a.name} (${a.site}, ${a.zone}, ${a.criticality})`;
}
function assetsOf(scope) {
  const ids = new Set();
  for (const item of (scope && scope.items) || []) ids.add(item.asset);
  return [...ids];
}
function obligationsText(o, approvedBy) {
  const out = [];
  if (o.approvals === 0) out.push('no approval needed');
  else {
    const plural = o.approvals > 1 ? 's' : '';
    let who = `${o.approver_roles && o.approver_roles.length ? o.approver_roles.join(' + ') : 'approver'}${plural}`;
    if (o.approver_groups && o.approver_groups.length) who += ` in ${o.approver_groups.join(' or ')}`;
    if (o.approver_site) who += ' of the asset\'s site';
    out.push(`${o.approvals} approval${plural} from ${who}` +
      ` — ${approvedBy.length} so far${approvedBy.length ? ` (${approvedBy.join(', ')})` : ''}`);
  }
  if (o.step_up_passkey) out.push('approvers confirm with a passkey (step-up; a TOTP code does not do)');
  else if (o.step_up) out.push('approvers confirm with a fresh TOTP code or a passkey (step-up)');
  if (o.review) out.push('a post-session review is required');
  out.push(`at most ${dur(o.max_duration_secs)}`);
  return out;
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = S.csrf;
  if (opts.background) headers['X-Jitgate-Background'] = '1';
  const url = path.startsWith('/console/') ? path : `/api/v1${path}`;
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The server cannot be reached; check the connection and try again.');
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new ApiError(resp.status, data && data.code || 'error', data && data.message || resp.statusText);
    if (resp.status === 401 && err.code === 'unauthenticated' && S.me) signedOut(err.message);
    throw err;
  }
  // A list comes in pages: load the following ones (`x-next-cursor`), so no list is cut
  // short; `limit=` only sets the page size. `opts.onePage` asks for the first page alone.
  const next = resp.headers.get('x-next-cursor');
  if (method === 'GET' && next && Array.isArray(data) && !opts.onePage) {
    const base = path.replace(/[?&]cursor=[^&]*$/, '');
    const rest = await api('GET', `${base}${base.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(next)}`, undefined, opts);
    return data.concat(rest);
  }
  return data;
}

// ------------------------------------------------------------------ forms and errors

/** A labelled field: input (or select/textarea) with its hint and inline error slot. */
function field(label, input, hint) {
  const id = input.id || nextId('f');
  input.id = id;
  const err = h('p', { class: 'error', id: `${id}-error` });
  const describedBy = [`${id}-error`];
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${id}-hint`, text: hint });
    describedBy.push(`${id}-hint`);
  }
  input.setAttribute('aria-describedby', describedBy.join(' '));
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hintEl, err);
}
function setError(input, message) {
  const slot = document.getElementById(`${input.id}-error`);
  if (slot) slot.textContent = message || '';
  if (message) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}
function clearErrors(form) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.error, .form-error')) el.textContent = '';
}
/** Show an API error next to the field it is about (or at the top of the form). */
function showError(form, err, pick) {
  const target = pick ? pick(err) : null;
  if (target) {
    setError(target, err.message);
    target.focus();
  } else {
    const top = form.querySelector('.form-error');
    top.textContent = err.message;
    top.setAttribute('tabindex', '-1');
    top.focus();
  }
  announce(err.message);
}
async function busy(button, fn) {
  button.disabled = true;
  try { return await fn(); } finally { button.disabled = false; }
}

// ------------------------------------------------------------------ routing

const VIEWS = {
  inbox: { title: 'Inbox', render: viewInbox },
  requests: { title: 'My access', render: viewRequests },
  sessions: { title: 'Live sessions', render: viewSessions },
  grants: { title: 'Grants', render: viewGrants },
  grant: { title: 'Grant timeline', render: viewGrant },
  session: { title: 'Session recording', render: viewSession }, // recordings.js
  reviews: { title: 'Reviews', render: viewReviews },
  exceptions: { title: 'Exceptions', render: viewExceptions }, // exceptions.js
  exception: { title: 'Exception', render: viewException }, // exceptions.js
  campaigns: { title: 'Review campaigns', render: viewCampaigns }, // campaigns.js
  reports: { title: 'Compliance report', render: viewReports }, // reports.js
  campaign: { title: 'Review campaign', render: viewCampaign }, // campaigns.js
  passkeys: { title: 'Passkeys', render: viewPasskeys }, // passkeys.js
  findings: { title: 'Findings', render: viewFindings }, // findings.js
};

function route() {
  const parts = location.pathname.replace(/^\/console\/?/, '').split('/').filter(Boolean);
  if (parts[0] === 'grants' && parts[1] && parts[2] === 'sessions' && parts[3]) {
    return { name: 'session', arg: [decodeURIComponent(parts[1]), decodeURIComponent(parts[3])] };
  }
  if (parts[0] === 'grants' && parts[1]) return { name: 'grant', arg: decodeURIComponent(parts[1]) };
  if (parts[0] === 'exceptions' && parts[1]) return { name: 'exception', arg: decodeURIComponent(parts[1]) };
  if (parts[0] === 'campaigns' && parts[1]) return { name: 'campaign', arg: decodeURIComponent(parts[1]) };
  if (parts[0] && VIEWS[parts[0]]) return { name: parts[0] };
  return { name: 'inbox' };
}

function go(path) {
  if (location.pathname !== path) history.pushState({}, '', path);
  render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-link]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', () => render());

async function render() {
  if (!S.me) return viewSignIn();
  const r = route();
  const v = VIEWS[r.name];
  document.title = `${v.title} — jitgate`;
  for (const a of document.querySelectorAll('#nav a')) {
    const current = a.dataset.view === r.name || ((r.name === 'grant' || r.name === 'session') && a.dataset.view === 'grants')
      || (r.name === 'exception' && a.dataset.view === 'exceptions') || (r.name === 'campaign' && a.dataset.view === 'campaigns');
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const main = $('#main');
  main.replaceChildren(h('h1', { text: v.title }));
  S.view = { name: r.name, refresh: null };
  try {
    await v.render(main, r.arg);
  } catch (err) {
    if (err.code !== 'unauthenticated') main.append(h('p', { class: 'form-error', text: err.message }));
  }
  main.focus();
  updateInboxCount(true);
}

/** Re-render the current view's data (after a live event), keeping what is being typed. */
function refreshSoon() {
  clearTimeout(S.refreshTimer);
  S.refreshTimer = setTimeout(async () => {
    if (S.view && S.view.refresh) {
      try { await S.view.refresh(true); } catch (e) { /* shown at the next action */ }
    }
    updateInboxCount(true);
  }, 250);
}

/**
 * Keep `container`'s children in step with `items`: an item whose version did not change
 * keeps its element (and whatever is typed in it), new ones are rendered, gone ones removed.
 */
function reconcile(container, items, key, version, renderItem, emptyText) {
  const old = new Map();
  for (const el of [...container.children]) if (el.dataset.key) old.set(el.dataset.key, el);
  const next = [];
  for (const item of items) {
    const k = key(item), ver = version(item);
    let el = old.get(k);
    if (!el || el.dataset.version !== ver) {
      const fresh = renderItem(item);
      fresh.dataset.key = k;
      fresh.dataset.version = ver;
      if (el && el.contains(document.activeElement)) {
        el.dataset.version = ''; // changed under the person's hands: replace after they leave it
        next.push(el);
        continue;
      }
      el = fresh;
    }
    next.push(el);
  }
  container.replaceChildren(...next);
  if (!items.length && emptyText) container.append(h('p', { class: 'empty', text: emptyText }));
}

// ------------------------------------------------------------------ session

async function boot() {
  applyTheme(localStorage.getItem('jitgate-theme'));
  $('#theme').addEventListener('click', toggleTheme);
  $('#logout').addEventListener('click', signOut);
  try {
    const me = await api('GET', '/console/me');
    signedIn(me);
  } catch (e) {
    S.me = null;
  }
  render();
  setInterval(tick, 1000);
}

function signedIn(session) {
  S.me = session.identity;
  S.csrf = session.csrf_token;
  S.seesEverything = session.sees_everything;
  $('#who').textContent = `${session.identity.name || session.identity.id} (${session.identity.id})`;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  openStream();
}

function signedOut(message) {
  S.me = null;
  S.csrf = '';
  if (S.stream) { S.stream.close(); S.stream = null; }
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  $('#live-dot').hidden = true;
  $('#who').textContent = '';
  viewSignIn(message);
}

async function signOut() {
  try { await api('POST', '/console/logout'); } catch (e) { /* signed out either way */ }
  history.pushState({}, '', '/console/');
  signedOut('You are signed out.');
}

function openStream() {
  if (S.stream) S.stream.close();
  const es = new EventSource('/console/stream');
  S.stream = es;
  es.addEventListener('open', () => { $('#live-dot').hidden = false; });
  es.addEventListener('error', () => { $('#live-dot').hidden = true; });
  es.addEventListener('change', () => refreshSoon());
  es.addEventListener('signed-out', (e) => {
    es.close();
    let message = 'Your session ended; sign in again.';
    try { message = JSON.parse(e.data).message || message; } catch (x) { /* keep default */ }
    signedOut(message);
  });
}

async function updateInboxCount(background) {
  if (!S.me) return;
  try {
    const waiting = await api('GET', '/requests?awaiting=me', undefined, { background });
    const badge = $('#inbox-count');
    badge.textContent = String(waiting.length);
    badge.hidden = waiting.length === 0;
    badge.setAttribute('aria-label', `${waiting.length} waiting for you`);
  } catch (e) { /* not critical */ }
}

function tick() {
  for (const el of document.querySelectorAll('[data-expires]')) {
    el.textContent = left(el.dataset.expires);
  }
}

function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === 'dark' || theme === 'light') root.dataset.theme = theme;
  else delete root.dataset.theme;
  const dark = theme === 'dark' || (!theme && matchMedia('(prefers-color-scheme: dark)').matches);
  const b = $('#theme');
  b.setAttribute('aria-pressed', dark ? 'true' : 'false');
  b.textContent = dark ? 'Light theme' : 'Dark theme';
}
function toggleTheme() {
  const dark = $('#theme').getAttribute('aria-pressed') === 'true';
  const theme = dark ? 'light' : 'dark';
  localStorage.setItem('jitgate-theme', theme);
  applyTheme(theme);
}

// ------------------------------------------------------------------ sign-in

function viewSignIn(message) {
  document.title = 'Sign in — jitgate';
  const identity = h('input', { type: 'text', name: 'identity', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password' });
  const totp = h('input', { type: 'text', name: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6', pattern: '[0-9]*' });
  const totpField = field('Authenticator code (TOTP)', totp, 'The 6-digit code your authenticator app shows now.');
  totpField.hidden = true;
  const submit = h('button', { type: 'submit', text: 'Sign in' });
  const form = h('form', { class: 'panel signin', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', text: 'Sign in to jitgate' }),
    h('p', { class: 'notice', text: message || '' }),
    h('p', { class: 'form-error', role: 'alert' }),
    field('Identity', identity, 'Your jitgate user id, e.g. alice.'),
    field('Password', password),
    totpField,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!identity.value.trim()) { setError(identity, 'Enter your identity.'); identity.focus(); return; }
    if (!password.value) { setError(password, 'Enter your password.'); password.focus(); return; }
    const body = { identity: identity.value.trim(), password: password.value };
    if (!totpField.hidden && totp.value.trim()) body.totp = totp.value.trim();
    await busy(submit, async () => {
      try {
        const session = await api('POST', '/console/login', body);
        signedIn(session);
        if (location.pathname === '/console/login') history.replaceState({}, '', '/console/');
        announce(`Signed in as ${session.identity.id}`);
        render();
      } catch (err) {
        if (err.code === 'totp_required' && !totpField.hidden && !totp.value.trim()) {
          // Asked again with no code entered: this person has no TOTP, so the identity or
          // password is wrong (the server answers every failed sign-in without a code alike).
          const msg = 'sign-in refused: the identity or password is wrong';
          setError(password, msg);
          password.focus();
          announce(msg);
        } else if (err.code === 'totp_required') {
          // Every sign-in without a code that does not succeed is answered this way, for
          // people with TOTP whatever their password: ask for the code, say what else it means.
          totpField.hidden = false;
          setError(totp, 'Enter the code your authenticator app shows. No TOTP? Leave it empty and sign in again: the identity or password was wrong.');
          totp.focus();
          announce(err.message);
        } else {
          showError(form, err, (x) => (x.code === 'bad_totp' ? totp : x.code === 'unauthenticated' ? password : null));
        }
      }
    });
  });
  for (const el of ['#nav', '#logout']) $(el).hidden = true;
  $('#main').replaceChildren(form);
  ssoRefusal(form);
  ssoButtons(form);
  identity.focus();
}

/** A refused single sign-on comes back as `#sso_error=<code>&message=<text>`: show it. */
function ssoRefusal(form) {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const code = params.get('sso_error');
  if (!code) return;
  history.replaceState({}, '', location.pathname);
  const text = `${params.get('message') || 'The sign-in was refused.'} (${code})`;
  form.querySelector('.form-error').textContent = text;
  announce(text);
}

/** "Sign in with <provider>" for each OpenID provider the server has (none: nothing shown). */
async function ssoButtons(form) {
  let providers = [];
  try { providers = await api('GET', '/auth/sso/providers'); } catch (e) { return; }
  if (!providers.length) return;
  const box = h('div', { class: 'sso' }, h('p', { class: 'muted', text: 'Or, with your organisation\'s account:' }));
  for (const p of providers) {
    box.append(h('a', {
      class: 'button sso-button',
      href: `/api/v1/auth/sso/${encodeURIComponent(p.name)}/start`,
      text: `Sign in with ${p.display_name}`,
    }));
  }
  form.append(box);
}

// ------------------------------------------------------------------ inbox

async function loadAssets(background) {
  if (S.assets.size) return;
  const list = await api('GET', '/assets', undefined, { background });
  for (const a of list) S.assets.set(a.id, a);
}

/** How many of the newest requests the inbox searches for a requester's recent ones. */
const HISTORY_WINDOW = 300;

async function viewInbox(main) {
  main.append(h('p', { class: 'muted', text: 'Requests waiting for your decision. New ones appear here as they are filed.' }));
  const list = h('div', { class: 'cards', id: 'inbox-list' });
  main.append(list);
  const refresh = async (background) => {
    await loadAssets(background);
    const [waiting, visible] = await Promise.all([
      api('GET', '/requests?awaiting=me', undefined, { background }),
      // The requesters' history is looked up among the newest requests only (one page).
      api('GET', `/requests?limit=${HISTORY_WINDOW}`, undefined, { background, onePage: true }),
    ]);
    reconcile(list, waiting, (r) => r.id, (r) => `${r.updated_at}|${r.approved_by.length}`,
      (r) => inboxCard(r, visible), 'Nothing is waiting for you.');
  };
  S.view.refresh = refresh;
  await refresh(false);
}

function inboxCard(r, visible) {
  const o = r.obligations;
  const assets = assetsOf(r.scope);
  const history = visible.filter((x) => x.requester === r.requester && x.id !== r.id).slice(0, 5);
  const comment = h('textarea', { name: 'comment', rows: '2' });
  const totp = h('input', { type: 'text', name: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6' });
  const totpField = field('Step-up code (TOTP)', totp, 'This approval needs a fresh code from your authenticator app, or your passkey (Use passkey).');
  totpField.hidden = !o.step_up || !!o.step_up_passkey;
  const approve = h('button', { type: 'submit', class: 'ok', value: 'approve', text: 'Approve' });
  const deny = h('button', { type: 'submit', class: 'danger', value: 'deny', text: 'Deny' });
  // Step-up with a passkey: a challenge bound to this request and the scope digest shown.
  const usePasskey = h('button', { type: 'submit', class: 'ok', value: 'passkey', text: 'Use passkey' });
  usePasskey.hidden = !o.step_up;
  const form = h('form', { novalidate: true, 'aria-label': `Decide on request ${r.id}` },
    h('p', { class: 'form-error', role: 'alert' }),
    field('Comment', comment, 'Shown in the evidence log; required when denying.'),
    totpField,
    h('div', { class: 'actions' }, approve, usePasskey, deny));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const how = e.submitter && e.submitter.value;
    const verdict = how === 'deny' ? 'deny' : 'approve';
    const button = how === 'deny' ? deny : how === 'passkey' ? usePasskey : approve;
    await busy(button, async () => {
      try {
        if (verdict === 'approve') {
          const body = { scope_digest: r.scope_digest, comment: comment.value };
          if (how === 'passkey') body.passkey = await passkeyStepUp(r);
          else if (totp.value.trim()) body.totp = totp.value.trim();
          const v = await api('POST', `/requests/${encodeURIComponent(r.id)}/approve`, body);
          announce(`Approved ${r.id}: now ${v.state}`);
        } else {
          await api('POST', `/requests/${encodeURIComponent(r.id)}/deny`, { comment: comment.value, scope_digest: r.scope_digest });
          announce(`Denied ${r.id}`);
        }
        await S.view.refresh(false);
      } catch (err) {
        if (err.code === 'step_up_required' || err.code === 'bad_totp') {
          totpField.hidden = false;
          usePasskey.hidden = false;
        }
        showError(form, err, (x) => {
          if (x.code === 'step_up_required' || x.code === 'bad_totp') return totp;
          if (x.code === 'invalid_request' && /comment/i.test(x.message)) return comment;
          return null;
        });
      }
    });
  });
  const who = r.subject === r.requester ? r.requester : `${r.requester} for ${r.subject}`;
  return h('article', { class: 'card', 'aria-labelledby': `req-${r.id}` },
    h('header', {},
      h('h3', { id: `req-${r.id}`, text: `${who}: ${r.description.join('; ')}` }),
      state(r.state)),
    h('dl', { class: 'facts' },
      h('dt', { text: 'Who' }), h('dd', { text: who }),
      h('dt', { text: 'What' }), h('dd', {}, h('ul', { class: 'plain' }, r.description.map((d) => h('li', { text: d })))),
      h('dt', { text: 'Where' }), h('dd', {}, assets.map((id) => {
        const a = S.assets.get(id);
        return h('div', { class: a && (a.criticality === 'safety' || a.criticality === 'high') ? `crit-${a.criticality}` : '', text: assetLabel(id) });
      })),
      h('dt', { text: 'Why' }), h('dd', { text: `${r.reason}${r.reference ? ` (${r.reference})` : ''} — ${r.path} path` }),
      h('dt', { text: 'How long' }), h('dd', { text: `${dur(r.duration_secs)}, from ${when(r.window_start)}` }),
      h('dt', { text: 'Policy asks' }), h('dd', {}, h('ul', { class: 'plain' }, obligationsText(o, r.approved_by).map((t) => h('li', { text: t })))),
      h('dt', { text: 'Request' }), h('dd', { class: 'mono', text: r.id }),
      h('dt', { text: `${r.requester}'s recent requests` }),
      h('dd', {}, history.length
        ? h('ul', { class: 'plain' }, history.map((x) => h('li', {}, state(x.state), ' ', `${x.description.join('; ')} — ${when(x.created_at)}`)))
        : h('span', { class: 'muted', text: `none among the ${HISTORY_WINDOW} newest requests you can see` }))),
    form);
}

// ------------------------------------------------------------------ requester view

async function viewRequests(main) {
  await loadAssets(false);
  const grid = h('div', { class: 'grid2' });
  const formPanel = h('section', { class: 'panel', 'aria-labelledby': 'new-title' }, h('h2', { id: 'new-title', text: 'Request access' }));
  formPanel.append(requestForm());
  const lists = h('section', { 'aria-labelledby': 'grants-title' });
  const grantsList = h('div', { class: 'cards', id: 'my-grants' });
  const reqList = h('div', { class: 'cards', id: 'my-requests' });
  lists.append(h('h2', { id: 'grants-title', text: 'My grants' }), grantsList,
    h('h2', { text: 'My requests' }), reqList);
  grid.append(formPanel, lists);
  main.append(grid);
  const refresh = async (background) => {
    const [grants, requests] = await Promise.all([
      api('GET', '/grants?mine=true', undefined, { background }),
      api('GET', '/requests?mine=true', undefined, { background }),
    ]);
    const current = grants.filter((g) => g.state !== 'closed');
    reconcile(grantsList, current, (g) => g.id, (g) => `${g.state}`, grantCard, 'No active grants.');
    reconcile(reqList, requests.slice(0, 30), (r) => r.id, (r) => `${r.updated_at}|${r.approved_by.length}`, requestCard, 'No requests yet.');
  };
  S.view.refresh = refresh;
  await refresh(false);
}

const TABLES = [['holding', 'holding registers'], ['coil', 'coils'], ['input', 'input registers'], ['discrete', 'discrete inputs']];

function requestForm() {
  const assets = [...S.assets.values()].filter((a) => !a.lockout || true);
  const asset = h('select', { name: 'asset' }, h('option', { value: '', text: 'Choose an asset…' }),
    assets.map((a) => h('option', { value: a.id, text: `${assetLabel(a.id)}${a.lockout ? ' — locked out' : ''}` })));
  const rules = h('div', { class: 'rules' });
  const scopeBox = h('fieldset', {}, h('legend', { text: 'Scope' }));
  const scopeError = h('p', { class: 'error', id: nextId('scope-error'), role: 'alert' });
  const preview = h('p', { class: 'hint', 'aria-live': 'polite' });
  const addRule = h('button', { type: 'button', class: 'ghost', text: 'Add a Modbus rule' });
  const dnp3 = h('textarea', { name: 'dnp3', rows: '2' });
  const ssh = h('textarea', { name: 'ssh', rows: '2' });
  const dnp3Field = field('DNP3 rules, one per line', dnp3, 'e.g. read class 0,1 — operate binary-output 3-5');
  const sshField = field('SSH rules, one per line', ssh, 'shell, or command <command line>');
  const duration = h('input', { type: 'text', name: 'duration', value: '1h', list: 'durations', inputmode: 'text' });
  const durations = h('datalist', { id: 'durations' }, ['30m', '1h', '2h', '4h', '8h'].map((d) => h('option', { value: d })));
  const reason = h('textarea', { name: 'reason', rows: '2' });
  const reference = h('input', { type: 'text', name: 'reference' });
  const pathName = nextId('path');
  const paths = [['planned', 'Planned'], ['routine', 'Routine'], ['emergency', 'Emergency (break-glass)']];
  const pathBox = h('fieldset', {}, h('legend', { text: 'Path' }),
    h('div', { class: 'radios' }, paths.map(([v, label], i) => h('label', {},
      h('input', { type: 'radio', name: pathName, value: v, checked: i === 0 }), label))),
    h('p', { class: 'hint', text: 'Emergency access is active at once, short, notifies everyone and is always reviewed.' }));
  const submit = h('button', { type: 'submit', text: 'Submit request' });
  const result = h('div', { class: 'notice', role: 'status' });
  const form = h('form', { novalidate: true, id: 'request-form', 'aria-labelledby': 'new-title' },
    h('p', { class: 'form-error', role: 'alert' }),
    field('Asset', asset, 'From the inventory: id — name (site, zone, criticality).'),
    scopeBox, durations,
    field('Duration', duration, 'e.g. 30m, 2h, 1h30m; the policy sets a maximum.'),
    field('Reason', reason, 'What you will do and why; approvers read this.'),
    field('Reference', reference, 'Work order, change, incident or supplier case id.'),
    pathBox,
    h('div', { class: 'actions' }, submit),
    result);
  scopeBox.append(rules, h('div', { class: 'actions' }, addRule), preview, dnp3Field, sshField, scopeError);

  const ruleText = (row) => {
    const op = row.querySelector('[name=op]').value;
    const table = row.querySelector('[name=table]').value;
    const range = row.querySelector('[name=range]').value.trim().replace(/\s+/g, '');
    const unit = row.querySelector('[name=unit]').value;
    return `${op} ${table} ${range || '?'}${unit ? ` unit ${unit}` : ''}`;
  };
  const modbusRules = () => [...rules.querySelectorAll('.rule-row')].map(ruleText);
  const updatePreview = () => {
    const list = modbusRules();
    preview.textContent = list.length ? `Modbus: ${list.join('; ')}` : '';
  };
  const addRow = () => {
    const a = S.assets.get(asset.value);
    const units = (a && a.endpoints && a.endpoints.modbus && a.endpoints.modbus.unit_ids) || [];
    const n = rules.children.length + 1;
    const op = h('select', { name: 'op' }, h('option', { value: 'read', text: 'read' }), h('option', { value: 'write', text: 'write' }));
    const table = h('select', { name: 'table' }, TABLES.map(([v, label]) => h('option', { value: v, text: label })));
    const range = h('input', { type: 'text', name: 'range', value: '0-99', inputmode: 'numeric' });
    const unit = h('select', { name: 'unit' }, units.map((u) => h('option', { value: String(u), text: String(u) })));
    const remove = h('button', { type: 'button', class: 'ghost', text: 'Remove', 'aria-label': `Remove Modbus rule ${n}` });
    const row = h('div', { class: 'rule-row', role: 'group', 'aria-label': `Modbus rule ${n}` },
      field('Operation', op), field('Table', table),
      field('Addresses', range, '0-99, 5, 0-9,20-29 or all'), field('Unit id', unit), remove);
    remove.addEventListener('click', () => { row.remove(); updatePreview(); addRule.focus(); });
    row.addEventListener('input', updatePreview);
    row.addEventListener('change', updatePreview);
    rules.append(row);
    updatePreview();
    return op;
  };
  const onAsset = () => {
    const a = S.assets.get(asset.value);
    const ep = (a && a.endpoints) || {};
    rules.replaceChildren();
    addRule.hidden = !ep.modbus;
    dnp3Field.hidden = !ep.dnp3;
    sshField.hidden = !ep.ssh;
    if (ep.modbus) addRow();
    updatePreview();
  };
  addRule.addEventListener('click', () => addRow().focus());
  asset.addEventListener('change', onAsset);
  onAsset();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    scopeError.textContent = '';
    result.textContent = '';
    if (!asset.value) { setError(asset, 'Choose the asset you need.'); asset.focus(); return; }
    const lines = (t) => t.value.split('\n').map((s) => s.trim()).filter(Boolean);
    const scope = { asset: asset.value, modbus: modbusRules(), dnp3: dnp3Field.hidden ? [] : lines(dnp3), ssh: sshField.hidden ? [] : lines(ssh) };
    const path = form.querySelector(`input[name=${pathName}]:checked`).value;
    const body = { scope: [scope], duration: duration.value.trim(), reason: reason.value.trim(), reference: reference.value.trim(), path };
    await busy(submit, async () => {
      try {
        const v = await api('POST', '/requests', body);
        if (v.state === 'denied') {
          const why = (v.decision && v.decision.reasons || []).join('; ') || v.state_reason || 'no policy allows it';
          result.textContent = `Request ${v.id} was denied by policy: ${why}`;
        } else {
          result.textContent = `Request ${v.id} filed: ${v.state}` +
            (v.state === 'pending' ? ` — waiting for ${v.obligations.approvals} approval(s).` : '.');
        }
        announce(result.textContent);
        reason.value = '';
        reference.value = '';
        await S.view.refresh(false);
      } catch (err) {
        showError(form, err, (x) => {
          const m = x.message.toLowerCase();
          if (x.code === 'invalid_scope' || x.code === 'scope_not_exposed') {
            const bad = [...rules.querySelectorAll('[name=range]')].find((r) => m.includes(`${r.value.trim()}`) && r.value.trim()) ||
              rules.querySelector('[name=range]') || (dnp3Field.hidden ? ssh : dnp3);
            return bad;
          }
          if (x.code === 'duration_above_maximum' || m.includes('duration')) return duration;
          if (m.includes('reason')) return reason;
          if (m.includes('reference')) return reference;
          if (x.code === 'not_found' && m.includes('asset')) return asset;
          return null;
        });
      }
    });
  });
  return form;
}

function connectCommand(g) {
  return `jitgate connect ${g.id} --listen 127.0.0.1:1502`;
}

function grantCard(g) {
  const done = h('button', { type: 'button', text: 'Task done — end my access' });
  const err = h('p', { class: 'form-error', role: 'alert' });
  done.addEventListener('click', () => busy(done, async () => {
    err.textContent = '';
    try {
      await api('POST', `/grants/${encodeURIComponent(g.id)}/complete`);
      announce(`Grant ${g.id} ended: task done`);
      await S.view.refresh(false);
    } catch (e) { err.textContent = e.message; announce(e.message); }
  }));
  const cmd = connectCommand(g);
  const copy = h('button', { type: 'button', class: 'ghost', text: 'Copy command' });
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(cmd); announce('Command copied'); } catch (e) { announce('Select the command and copy it'); }
  });
  return h('article', { class: 'card grant-card', 'data-grant': g.id },
    h('header', {}, h('h3', {}, h('a', { href: `/console/grants/${encodeURIComponent(g.id)}`, 'data-link': true, text: g.id })), state(g.state)),
    h('ul', { class: 'plain' }, g.description.map((d) => h('li', { text: d }))),
    h('dl', { class: 'facts' },
      h('dt', { text: 'Expires' }), h('dd', {}, when(g.expires_at), ' — ', g.state === 'active' ? countdown(g.expires_at) : 'ended'),
      h('dt', { text: 'Reason' }), h('dd', { text: `${g.reason}${g.reference ? ` (${g.reference})` : ''}` })),
    g.state === 'active' ? [
      h('p', { text: 'Open a local Modbus port for this grant:' }),
      h('pre', { class: 'cmd', 'aria-label': 'connect command' }, h('code', { text: cmd })),
      h('div', { class: 'actions' }, copy, done),
    ] : null,
    err);
}

function requestCard(r) {
  const actions = h('div', { class: 'actions' });
  const err = h('p', { class: 'form-error', role: 'alert' });
  if (r.state === 'pending' || r.state === 'approved') {
    const w = h('button', { type: 'button', class: 'ghost', text: 'Withdraw' });
    w.addEventListener('click', () => busy(w, async () => {
      try { await api('POST', `/requests/${encodeURIComponent(r.id)}/withdraw`); await S.view.refresh(false); } catch (e) { err.textContent = e.message; }
    }));
    actions.append(w);
  }
  return h('article', { class: 'card' },
    h('header', {}, h('h3', { class: 'mono', text: r.id }), state(r.state)),
    h('ul', { class: 'plain' }, r.description.map((d) => h('li', { text: d }))),
    h('p', { class: 'muted', text: `${dur(r.duration_secs)} — ${r.reason} — filed ${when(r.created_at)}` }),
    r.state === 'pending' ? h('p', { text: `Approvals: ${r.approved_by.length} of ${r.obligations.approvals}${r.approved_by.length ? ` (${r.approved_by.join(', ')})` : ''}` }) : null,
    r.state === 'denied' ? h('p', { class: 'muted', text: (r.decision && r.decision.reasons || []).join('; ') || r.state_reason || '' }) : null,
    r.grant ? h('p', {}, 'Grant ', h('a', { href: `/console/grants/${encodeURIComponent(r.grant.id)}`, 'data-link': true, text: r.grant.id })) : null,
    actions, err);
}

// ------------------------------------------------------------------ live sessions

async function viewSessions(main) {
  main.append(h('p', { class: 'muted', text: 'Every open session through a gateway. Watch follows an SSH session\'s recording as it runs. Terminate revokes the session\'s grant: the gateway cuts it at once and refuses the credential from then on.' }));
  const body = h('tbody', {});
  const table = h('table', { class: 'list', id: 'sessions-table' },
    h('caption', { class: 'visually-hidden', text: 'Live sessions' }),
    h('thead', {}, h('tr', {}, ['Subject', 'Asset', 'Protocol', 'Gateway', 'Started', 'Time left', 'Operations', ''].map((t) => h('th', { scope: 'col', text: t })))),
    body);
  const empty = h('p', { class: 'empty', text: 'No live sessions.' });
  main.append(table, empty);
  const refresh = async (background) => {
    const sessions = await api('GET', '/sessions?live=true', undefined, { background });
    reconcile(body, sessions, (s) => s.session_id, (s) => `${s.operations}|${s.denied}|${s.live}`, sessionRow);
    empty.hidden = sessions.length > 0;
    table.hidden = sessions.length === 0;
  };
  S.view.refresh = refresh;
  await refresh(false);
}

function sessionRow(s) {
  const reason = h('input', { type: 'text', name: 'reason' });
  const confirm = h('button', { type: 'submit', class: 'danger', text: 'Terminate now' });
  const cancel = h('button', { type: 'button', class: 'ghost', text: 'Cancel' });
  const form = h('form', { novalidate: true, hidden: true, 'aria-label': `Terminate session ${s.session_id}` },
    h('p', { class: 'form-error', role: 'alert' }),
    field('Reason (recorded in the evidence log)', reason),
    h('div', { class: 'actions' }, confirm, cancel));
  const open = h('button', { type: 'button', class: 'danger', text: 'Terminate', 'aria-label': `Terminate ${s.subject}'s session on ${s.asset}` });
  open.addEventListener('click', () => { form.hidden = false; open.hidden = true; reason.focus(); });
  cancel.addEventListener('click', () => { form.hidden = true; open.hidden = false; open.focus(); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!reason.value.trim()) { setError(reason, 'Say why you terminate this session.'); reason.focus(); return; }
    await busy(confirm, async () => {
      try {
        await api('POST', `/grants/${encodeURIComponent(s.grant_id)}/revoke`, { reason: reason.value.trim() });
        announce(`Terminated: grant ${s.grant_id} revoked`);
        await S.view.refresh(false);
      } catch (err) {
        showError(form, err, (x) => (x.code === 'invalid_request' ? reason : null));
      }
    });
  });
  const td = (label, ...c) => h('td', { 'data-label': label }, ...c);
  return h('tr', { 'data-session': s.session_id },
    td('Subject', s.subject),
    td('Asset', assetLabel(s.asset)),
    td('Protocol', s.protocol),
    td('Gateway', s.gateway),
    td('Started', when(s.started_at)),
    td('Time left', countdown(s.expires_at)),
    td('Operations', `${s.operations - s.denied} allowed, ${s.denied} denied`),
    td('Action', s.protocol === 'ssh' ? h('a', { class: 'button ghost', href: sessionPath(s.grant_id, s.session_id), 'data-link': true, text: 'Watch', 'aria-label': `Watch ${s.subject}'s SSH session on ${s.asset}` }) : null,
      ' ', open, form, ' ', h('a', { href: `/console/grants/${encodeURIComponent(s.grant_id)}`, 'data-link': true, text: 'timeline' })));
}

// ------------------------------------------------------------------ grants and timeline

async function viewGrants(main) {
  const filters = h('div', { class: 'filters', role: 'group', 'aria-label': 'Grant state' });
  const body = h('tbody', {});
  const table = h('table', { class: 'list' },
    h('caption', { class: 'visually-hidden', text: 'Grants' }),
    h('thead', {}, h('tr', {}, ['Grant', 'Subject', 'Scope', 'State', 'Expires'].map((t) => h('th', { scope: 'col', text: t })))),
    body);
  let current = 'active';
  const refresh = async (background) => {
    const q = current === 'all' ? '' : `?state=${current}`;
    const grants = await api('GET', `/grants${q}`, undefined, { background });
    const td = (label, ...c) => h('td', { 'data-label': label }, ...c);
    reconcile(body, grants, (g) => g.id, (g) => g.state, (g) => h('tr', {},
      td('Grant', h('a', { href: `/console/grants/${encodeURIComponent(g.id)}`, 'data-link': true, text: g.id })),
      td('Subject', g.subject),
      td('Scope', g.description.join('; ')),
      td('State', state(g.state)),
      td('Expires', g.state === 'active' ? countdown(g.expires_at) : when(g.expires_at))));
    if (!grants.length) body.append(h('tr', {}, h('td', { colspan: '5', class: 'muted', text: 'None.' })));
  };
  for (const s of ['active', 'ending', 'failed', 'closed', 'all']) {
    const b = h('button', { type: 'button', 'aria-pressed': s === current ? 'true' : 'false', text: s });
    b.addEventListener('click', async () => {
      current = s;
      for (const x of filters.children) x.setAttribute('aria-pressed', x === b ? 'true' : 'false');
      body.replaceChildren();
      await refresh(false);
    });
    filters.append(b);
  }
  main.append(filters, table);
  S.view.refresh = refresh;
  await refresh(false);
}

const KIND_TEXT = {
  'request.submitted': 'Request filed',
  'request.decided': 'Policy decision',
  'approval.recorded': 'Approval recorded',
  'approval.withdrawn': 'Approval withdrawn',
  'request.approved': 'Request approved',
  'request.denied': 'Request denied',
  'request.withdrawn': 'Request withdrawn',
  'request.lapsed': 'Request lapsed',
  'grant.issued': 'Grant issued',
  'grant.ended': 'Grant ended',
  'context.changed': 'Context changed',
  'session.started': 'Session started',
  'session.refused': 'Session refused',
  'session.ended': 'Session ended',
  'revocation.sent': 'Revocation sent to gateways',
  'teardown.check': 'Teardown check',
  'teardown.verdict': 'Teardown verdict',
  'review.opened': 'Review opened',
  'review.completed': 'Review completed',
  'credential.issued': 'Credential issued to the subject',
  'exception.requested': 'Exception filed (owner, controls, re-validation)',
  'exception.revalidated': 'Exception re-validated',
  'exception.ended': 'Exception ended',
  'attestation.recorded': 'Attested by the subject',
  'campaign.item_decided': 'Review campaign decision',
};

function eventSummary(e) {
  const d = e.data || {};
  const detail = d.detail || {};
  switch (e.kind) {
    case 'request.decided': {
      const dec = d.decision || d;
      const allow = dec.allowed !== undefined ? (dec.allowed ? 'allow' : 'deny') : (dec.verdict || '');
      const pol = (dec.determining_policies || dec.policies || []).join(', ');
      return `${allow}${pol ? ` — ${pol}` : ''}`;
    }
    case 'approval.recorded': return `${d.verdict || ''} by ${e.actor}${d.comment ? `: “${d.comment}”` : ''}`;
    case 'grant.ended': {
      const r = d.reason || d.end_reason || '';
      if (typeof r === 'string') return r;
      return [r.kind, r.by ? `by ${r.by}` : '', r.reason ? `: ${r.reason}` : ''].filter(Boolean).join(' ');
    }
    case 'session.started': return `${detail.subject || ''} on ${detail.asset || ''}${detail.protocol ? ` over ${detail.protocol}` : ''} from ${detail.peer || '?'} via ${e.actor}`;
    case 'session.ended': return `${detail.reason || ''}: ${detail.operations ?? '?'} operations (${detail.denied ?? 0} denied)`;
    case 'session.refused': return detail.code || detail.reason || '';
    case 'teardown.check': return `${d.check || ''} ${d.target || ''}: ${d.outcome || ''}${d.detail ? ` — ${d.detail}` : ''}`;
    case 'teardown.verdict': return `${d.verdict || ''}`;
    default: return '';
  }
}

function opText(e) {
  const o = (e.data && e.data.detail) || {};
  const range = o.address !== undefined ? ` ${o.address}${o.quantity > 1 ? `–${o.address + o.quantity - 1}` : ''}` : '';
  return `${when(e.at)} unit ${o.unit} ${o.function_name || o.function}${range}: ${o.allowed ? 'allowed' : `denied${o.reason ? ` (${o.reason})` : ''}`}`;
}

async function viewGrant(main, id) {
  const path = `/grants/${encodeURIComponent(id)}`;
  const head = h('div', {});
  const tl = h('ol', { class: 'timeline', id: 'timeline' });
  const teardown = h('section', { 'aria-labelledby': 'td-title' });
  const attestation = h('div', {});
  main.append(head, attestation, h('h2', { text: 'Timeline' }), tl, teardown);
  const refresh = async (background) => {
    const g = await api('GET', path, undefined, { background });
    const [events, td, recs] = await Promise.all([
      api('GET', `/events?request=${encodeURIComponent(g.request_id)}&limit=1000`, undefined, { background }),
      api('GET', `${path}/teardown`, undefined, { background }).catch(() => null),
      api('GET', `/recordings?grant=${encodeURIComponent(g.id)}`, undefined, { background }).catch(() => []),
    ]);
    const recordings = new Map(recs.map((r) => [r.session_id, r]));
    const att = await attestationSection(g, background); // campaigns.js
    if (!attestation.firstChild || attestation.firstChild.dataset.version !== att.dataset.version) attestation.replaceChildren(att);
    head.replaceChildren(h('div', { class: 'panel' },
      h('h2', { class: 'mono', text: g.id }),
      h('dl', { class: 'facts' },
        h('dt', { text: 'State' }), h('dd', {}, state(g.state), g.state === 'active' ? [' — ', countdown(g.expires_at)] : ''),
        h('dt', { text: 'Subject' }), h('dd', { text: g.subject }),
        h('dt', { text: 'Requested by' }), h('dd', { text: g.requester }),
        h('dt', { text: 'Scope' }), h('dd', {}, h('ul', { class: 'plain' }, g.description.map((d) => h('li', { text: d })))),
        h('dt', { text: 'Window' }), h('dd', { text: `${when(g.not_before)} → ${when(g.expires_at)}` }),
        h('dt', { text: 'Reason' }), h('dd', { text: `${g.reason}${g.reference ? ` (${g.reference})` : ''}` })),
      h('div', { class: 'actions' },
        h('a', { class: 'button ghost', href: `/api/v1${path}/evidence`, download: `${g.id}-evidence.json`, text: 'Evidence bundle (JSON)' }),
        h('a', { class: 'button ghost', href: `/api/v1${path}/evidence/report`, target: '_blank', rel: 'noopener', text: 'Audit report' }))));
    // Operations are grouped under their session so the chain stays readable.
    const ops = new Map();
    const ended = new Set();
    for (const e of events) {
      if (e.kind === 'session.ended') ended.add(e.data && e.data.session_id);
      if (e.kind === 'operation') {
        const sid = e.data && e.data.session_id;
        if (!ops.has(sid)) ops.set(sid, []);
        ops.get(sid).push(e);
      }
    }
    const items = [];
    for (const e of events) {
      // Operations are folded under their session; recording chunks are counted by the
      // session's recording control (and are in the evidence bundle one by one).
      if (e.kind === 'operation' || e.kind === 'recording.chunk') continue;
      const summary = eventSummary(e);
      // Judged on what happened, not on words in the summary ("0 denied" is no failure).
      const d = e.data || {};
      const detail = d.detail || {};
      const bad = /denied|refused/.test(e.kind)
        || (e.kind === 'teardown.verdict' && d.verdict === 'failed')
        || (e.kind === 'teardown.check' && d.outcome === 'failed')
        || (e.kind === 'grant.ended' && /^revoked/.test(summary))
        || (e.kind === 'session.ended' && (detail.denied || 0) > 0);
      const li = h('li', { class: bad ? 't-bad' : (e.kind === 'teardown.verdict' || e.kind === 'grant.issued' ? 't-ok' : '') },
        h('div', {}, h('strong', { text: KIND_TEXT[e.kind] || e.kind }), ' ', h('span', { class: 'when', text: `${when(e.at)} · ${e.actor} · #${e.seq}` })),
        summary ? h('div', { text: summary }) : null);
      if (e.kind === 'session.ended' || e.kind === 'session.started') {
        const sid = e.data && e.data.session_id;
        if (e.kind === 'session.started' && recordings.has(sid)) li.append(recordingControl(g.id, recordings.get(sid), !ended.has(sid) && (g.state === 'active' || g.state === 'ending')));
        if (e.kind === 'session.ended' && ops.has(sid)) {
          const list = ops.get(sid);
          li.append(h('details', { class: 'ops' }, h('summary', { text: `${list.length} operation(s) in session ${sid}` }),
            h('ul', { class: 'plain' }, list.slice(0, 500).map((o) => h('li', { class: o.data.detail && o.data.detail.allowed === false ? 'crit-high' : '', text: opText(o) })))));
          ops.delete(sid);
        }
      }
      li.append(h('details', {}, h('summary', { text: 'event data' }), h('pre', { class: 'cmd', text: JSON.stringify(e.data, null, 2) })));
      items.push(li);
    }
    for (const [sid, list] of ops) {
      items.push(h('li', {}, h('strong', { text: `Session ${sid} (live)` }),
        h('details', { class: 'ops', open: true }, h('summary', { text: `${list.length} operation(s) so far` }),
          h('ul', { class: 'plain' }, list.slice(-200).map((o) => h('li', { text: opText(o) }))))));
    }
    tl.replaceChildren(...items);
    teardown.replaceChildren(h('h2', { id: 'td-title', text: 'Teardown' }));
    if (!td) teardown.append(h('p', { class: 'muted', text: 'Not available.' }));
    else {
      const waiting = {
        gateways: ' — waiting for a gateway that could not be asked yet (not connected, restarting or busy); it fails with an alert if that lasts (see docs/teardown.md)',
        session_ended: ' — waiting for the gateway’s session.ended events to reach the log',
      }[td.waiting_for] || '';
      teardown.append(h('p', {}, 'Verdict: ', state(td.verdict), ` — attempt ${td.attempts}${waiting}`),
        td.checks.length ? h('ul', { class: 'plain' }, td.checks.map((c) => h('li', {}, state(c.outcome), ` ${c.check} ${c.target}: ${c.detail}`))) : h('p', { class: 'muted', text: 'No checks yet: the grant has not ended.' }));
    }
  };
  S.view.refresh = refresh;
  await refresh(false);
}

// ------------------------------------------------------------------ reviews

async function viewReviews(main) {
  main.append(h('p', { class: 'muted', text: 'Post-session reviews: break-glass access and legacy assets are looked at by someone other than who used them.' }));
  const filters = h('div', { class: 'filters', role: 'group', 'aria-label': 'Review state' });
  const list = h('div', { class: 'cards', id: 'reviews-list' });
  let current = 'open';
  const refresh = async (background) => {
    const reviews = await api('GET', `/reviews?state=${current}`, undefined, { background });
    reconcile(list, reviews, (r) => `${r.grant_id}|${r.reason}`, (r) => `${r.state}|${r.completed_at || ''}`, reviewCard,
      `No ${current} reviews.`);
  };
  for (const s of ['open', 'overdue', 'done']) {
    const b = h('button', { type: 'button', 'aria-pressed': s === current ? 'true' : 'false', text: s });
    b.addEventListener('click', async () => {
      current = s;
      for (const x of filters.children) x.setAttribute('aria-pressed', x === b ? 'true' : 'false');
      await refresh(false);
    });
    filters.append(b);
  }
  main.append(filters, list);
  S.view.refresh = refresh;
  await refresh(false);
}

function reviewCard(r) {
  const facts = h('dl', { class: 'facts' },
    h('dt', { text: 'Grant' }), h('dd', {}, h('a', { href: `/console/grants/${encodeURIComponent(r.grant_id)}`, 'data-link': true, text: r.grant_id })),
    h('dt', { text: 'Subject' }), h('dd', { text: r.subject }),
    h('dt', { text: 'Why' }), h('dd', { text: `${r.reason}${r.detail && r.detail.asset ? ` (${r.detail.asset})` : ''}` }),
    h('dt', { text: 'Opened' }), h('dd', { text: when(r.opened_at) }),
    h('dt', { text: 'Due' }), h('dd', { text: when(r.due_at) }));
  const card = h('article', { class: 'card' }, h('header', {}, h('h3', { text: `Review of ${r.grant_id}` }), state(r.state)), facts);
  if (r.state === 'done') {
    facts.append(h('dt', { text: 'Outcome' }), h('dd', {}, state(r.outcome), ` by ${r.reviewer}: ${r.note || ''}`));
    return card;
  }
  const name = nextId('outcome');
  const note = h('textarea', { name: 'note', rows: '2' });
  const submit = h('button', { type: 'submit', text: 'Complete review' });
  const form = h('form', { novalidate: true, 'aria-label': `Complete the review of ${r.grant_id}` },
    h('p', { class: 'form-error', role: 'alert' }),
    h('fieldset', {}, h('legend', { text: 'Outcome' }), h('div', { class: 'radios' },
      h('label', {}, h('input', { type: 'radio', name, value: 'ok', checked: true }), 'ok — nothing wrong'),
      h('label', {}, h('input', { type: 'radio', name, value: 'finding' }), 'finding — something to follow up'))),
    field('Note', note, 'What you checked; required for a finding.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const outcome = form.querySelector(`input[name=${name}]:checked`).value;
    await busy(submit, async () => {
      try {
        await api('POST', `/grants/${encodeURIComponent(r.grant_id)}/review`, { outcome, note: note.value.trim(), reason: r.reason });
        announce(`Review of ${r.grant_id} completed`);
        await S.view.refresh(false);
      } catch (err) {
        showError(form, err, (x) => (/note/i.test(x.message) ? note : null));
      }
    });
  });
  card.append(form);
  return card;
}

boot();
