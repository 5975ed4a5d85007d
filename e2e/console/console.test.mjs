// The jitgate web console end to end, in headless Chromium driven by Playwright, against the
// real binaries: `jitgate up` (server, sample plant), `jitgate gateway`, the simulated PLC
// (`sim_plc` example) and `jitgate connect`, with a plain TCP Modbus client.
//
//   cd e2e/console && npm ci && npm test
//
// Environment: see support.mjs (JITGATE_BIN, JITGATE_SIM_PLC, CHROMIUM, SCREENSHOTS,
// CARGO_TARGET_DIR). Every page and frame is watched for script errors and
// Content-Security-Policy violations; there must be none.
// Build first: cargo build -p jitgate && cargo build -p jitgate-gateway --features sim --example sim_plc

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  BIN, SIM_PLC, CHROMIUM, SHOTS, freePort, start, stopAll, waitFor, waitPort, readCreds,
  request as requestWithCa, apiClient, watchCsp,
} from './support.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-console-e2e-'));
let base, browser, creds, plcPort, serverCa, serverFingerprint, tlsDir, apiAs;
const ctx = {}; // browser contexts and pages by person
const shared = {};

// ------------------------------------------------------------------ helpers

/** One HTTPS request to the server, trusting only the CA `jitgate up --tls` generated. */
function request(url, opts = {}) {
  return requestWithCa(url, { ...opts, ca: serverCa });
}

async function loginApi(who, totp) {
  const body = { identity: who, password: creds.passwords[who] };
  if (totp) body.totp = totp;
  const r = await apiAs('', 'POST', '/auth/login', body).catch((e) => { throw e; });
  return r.token;
}

// RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s), as authenticator apps compute it.
function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}
function totpAt(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32(secret)).update(msg).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}
// The server accepts the previous, current and next step, each once: hand out unused ones.
const usedSteps = new Set();
async function totpCode(secret) {
  for (;;) {
    const cur = Math.floor(Date.now() / 1000 / 30);
    for (const step of [cur, cur + 1]) {
      if (!usedSteps.has(step)) { usedSteps.add(step); return totpAt(secret, step); }
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function newPerson(name, options = {}) {
  // The server's certificate is signed by the CA `jitgate up --tls` generated, which the
  // browser does not know; certificate pinning is tested through the CLI and gateway (Rust
  // suites). Here the console's behaviour over HTTPS is what is tested.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ignoreHTTPSErrors: true, ...options });
  // Script errors and Content-Security-Policy violations, in the page and its frames.
  await watchCsp(context, name, (ctx.errors ||= []));
  const page = await context.newPage();
  ctx[name] = { context, page };
  return page;
}

async function signIn(page, who, totp) {
  await page.goto(`${base}/console/`);
  await page.getByLabel('Identity').fill(who);
  await page.getByLabel('Password').fill(creds.passwords[who]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (totp) {
    const code = page.getByLabel('Authenticator code (TOTP)');
    await code.waitFor();
    await code.fill(await totp());
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** A Modbus/TCP "read holding registers" (FC3) request. */
function readHolding(tid, unit, address, quantity) {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(tid, 0); b.writeUInt16BE(0, 2); b.writeUInt16BE(6, 4);
  b.writeUInt8(unit, 6); b.writeUInt8(3, 7); b.writeUInt16BE(address, 8); b.writeUInt16BE(quantity, 10);
  return b;
}

// ------------------------------------------------------------------ the plant

before(async () => {
  for (const [what, file] of [['jitgate', BIN], ['sim_plc', SIM_PLC], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; see the comment at the top of this file`);
  }
  plcPort = await freePort();
  const plc = start('sim_plc', SIM_PLC, ['--listen', `127.0.0.1:${plcPort}`, '--units', '1']);
  await waitPort(plcPort, plc);

  const port = await freePort();
  // Over TLS, as a plant deploys it: `up --tls` generates a CA and a server certificate.
  base = `https://127.0.0.1:${port}`;
  const data = path.join(tmp, 'data');
  const up = start('jitgate up', BIN, ['up', '--tls', '--data-dir', data, '--listen', `127.0.0.1:${port}`],
    // Pages of 2: every list the console shows spans several pages, so each view must follow
    // `x-next-cursor` to show its list whole.
    { env: { ...process.env, JITGATE_LOG: 'warn', JITGATE_LIMITS_DEFAULT_PAGE_SIZE: '2' } });
  await waitPort(port, up);
  tlsDir = path.join(data, 'tls');
  serverCa = fs.readFileSync(path.join(tlsDir, 'ca-cert.pem'));
  apiAs = apiClient(base, serverCa);
  const cert = new crypto.X509Certificate(fs.readFileSync(path.join(data, 'tls', 'server-cert.pem')));
  serverFingerprint = 'sha256:' + cert.fingerprint256.replaceAll(':', '').toLowerCase();
  const credsFile = path.join(data, 'bootstrap-credentials.toml');
  await waitFor('bootstrap credentials', () => fs.existsSync(credsFile));
  creds = readCreds(credsFile);
  assert.ok(creds.passwords.alice && creds.api_keys['gw-north'], 'credentials file has passwords and keys');

  // plc-7 points at the simulated PLC.
  const sam = await loginApi('sam');
  const plc7 = await apiAs(sam, 'GET', '/assets/plc-7');
  plc7.endpoints.modbus.address = `127.0.0.1:${plcPort}`;
  await apiAs(sam, 'PUT', '/assets/plc-7', plc7);

  // bob enrols TOTP: from now on he signs in with a code.
  const bob = await loginApi('bob');
  const enrolled = await apiAs(bob, 'POST', '/auth/totp/enroll');
  shared.bobSecret = enrolled.secret;
  await apiAs(bob, 'POST', '/auth/totp/confirm', { code: await totpCode(shared.bobSecret) });

  // The gateway for plc-7, with gw-north's key.
  const gwPort = await freePort();
  const gwConfig = path.join(tmp, 'gateway.toml');
  fs.writeFileSync(gwConfig, `server = "${base}"\nserver_fingerprint = "${serverFingerprint}"\napi_key = "${creds.api_keys['gw-north']}"\nlisten = "127.0.0.1:${gwPort}"\nstate_dir = "${path.join(tmp, 'gw')}"\n`);
  const gw = start('jitgate gateway', BIN, ['gateway', '--config', gwConfig]);
  await waitPort(gwPort, gw);
  await waitFor('gateway control channel', async () => {
    const list = await apiAs(sam, 'GET', '/gateways');
    return list.some((g) => g.id === 'gw-north' && g.control_connected);
  });

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  if (ctx.errors && ctx.errors.length) console.error('page errors:', ctx.errors);
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ------------------------------------------------------------------ the tests

test('sign-in: inline errors from the API, keyboard only, secure cookie', async () => {
  const page = await newPerson('alice');
  const served = await page.goto(`${base}/console/`);
  // Served over HTTPS with HSTS: the browser will not fall back to plain HTTP.
  assert.ok(page.url().startsWith('https://'), page.url());
  assert.match(served.headers()['strict-transport-security'] || '', /max-age=\d+/);
  await shot(page, '01-sign-in');
  const identity = page.getByLabel('Identity');
  await identity.waitFor();
  // Empty form: said next to the field.
  await page.getByRole('button', { name: 'Sign in' }).click();
  await assert.doesNotReject(page.locator('#' + (await identity.getAttribute('id')) + '-error', { hasText: 'Enter your identity.' }).waitFor());
  assert.equal(await identity.getAttribute('aria-invalid'), 'true');
  // Wrong password: every failed sign-in without a code gets the same answer, so the console
  // asks for a TOTP code (saying what else it means); sent again without one, the error is
  // under the password field.
  await identity.fill('alice');
  const password = page.getByLabel('Password');
  await password.fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Authenticator code (TOTP)').waitFor();
  await page.getByRole('button', { name: 'Sign in' }).click();
  const pwError = page.locator('#' + (await password.getAttribute('id')) + '-error');
  await pwError.filter({ hasText: 'sign-in refused' }).waitFor();
  assert.equal(await password.getAttribute('aria-invalid'), 'true');
  await shot(page, '02-sign-in-error');
  // Keyboard only: the identity field has focus, before it come the theme toggle, the home
  // link and the skip link; focus is visible; Enter submits.
  await page.goto(`${base}/console/`);
  await waitFor('focus on identity', () => page.evaluate(() => document.activeElement && document.activeElement.name === 'identity'));
  const focusText = () => page.evaluate(() => document.activeElement.textContent.trim());
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focusText(), 'Dark theme');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focusText(), 'jitgate');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focusText(), 'Skip to content');
  for (let i = 0; i < 3; i++) await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'identity');
  await page.keyboard.type('alice');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    const st = getComputedStyle(el);
    return { label: el.labels && el.labels[0] && el.labels[0].textContent, outline: st.outlineStyle, width: st.outlineWidth };
  });
  assert.equal(focused.label, 'Password');
  assert.notEqual(focused.outline, 'none', 'focus is visible');
  await page.keyboard.type(creds.passwords.alice);
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  const cookies = await ctx.alice.context.cookies();
  const session = cookies.find((c) => c.name.includes('jitgate_session'));
  assert.ok(session, `session cookie set: ${JSON.stringify(cookies.map((c) => c.name))}`);
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session cookie');
});

test('requester: bad input gets inline errors, then a request is filed', async () => {
  const page = ctx.alice.page;
  await page.getByRole('link', { name: 'My access' }).click();
  const form = page.locator('#request-form');
  await form.waitFor();
  // No asset chosen.
  await page.getByRole('button', { name: 'Submit request' }).click();
  const asset = page.getByLabel('Asset', { exact: true });
  assert.equal(await asset.getAttribute('aria-invalid'), 'true');
  // The assets come in pages of 2: the picker holds every one of them.
  const token = await loginApi('sam');
  const first = await request(`${base}/api/v1/assets`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(JSON.parse(first.text).length, 2, 'one page of the default size');
  assert.ok(first.headers['x-next-cursor'], 'a next page is named');
  const all = await apiAs(token, 'GET', '/assets?limit=1000');
  assert.ok(all.length > 2, `${all.length} assets`);
  const offered = await asset.locator('option').evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
  assert.deepEqual(offered.sort(), all.map((a) => a.id).sort(), 'every asset is offered');
  await asset.selectOption('plc-7');
  // A range backwards: the API's invalid_scope message, at the addresses field.
  const range = page.getByLabel('Addresses');
  await range.fill('99-0');
  await page.getByLabel('Reason').fill('check valve positions');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await waitFor('scope error', async () => (await range.getAttribute('aria-invalid')) === 'true', 10000);
  const rangeError = await page.locator('#' + (await range.getAttribute('id')) + '-error').textContent();
  assert.match(rangeError, /99|range|0/i, rangeError);
  await range.fill('0-99');
  // A duration the API cannot read.
  const duration = page.getByLabel('Duration');
  await duration.fill('forever');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await waitFor('duration error', async () => (await duration.getAttribute('aria-invalid')) === 'true', 10000);
  const durError = await page.locator('#' + (await duration.getAttribute('id')) + '-error').textContent();
  assert.match(durError, /duration|30m/i, durError);
  assert.equal(await range.getAttribute('aria-invalid'), null, 'the old error is gone');
  await shot(page, '03-request-form-errors');
  // Good input.
  await duration.fill('1h');
  await page.getByLabel('Reference').fill('WO-1234');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.locator('#request-form .notice', { hasText: 'filed: pending' }).waitFor();
  const filed = await page.locator('#request-form .notice').textContent();
  shared.requestId = filed.match(/Request (\S+) filed/)[1];
  await page.locator('#my-requests', { hasText: shared.requestId }).waitFor();
  // Marker: the page must not reload for the grant to show up later.
  await page.evaluate(() => { window.__noReload = true; });
  await shot(page, '04-my-access-pending');
});

test('approver: signs in with TOTP in another context, sees the request, approves; the grant appears live', async () => {
  const page = await newPerson('bob');
  await signIn(page, 'bob', () => totpCode(shared.bobSecret));
  await page.getByRole('link', { name: /Inbox/ }).click();
  const card = page.locator('article', { hasText: shared.requestId });
  await card.waitFor();
  const text = await card.textContent();
  for (const want of ['alice', 'read holding 0–99', 'plc-7', 'check valve positions', 'WO-1234', '1 h', '1 approval from engineer']) {
    assert.ok(text.includes(want), `inbox card says ${want}: ${text}`);
  }
  await shot(page, '05-inbox');
  await card.getByLabel('Comment').fill('ok for WO-1234');
  await card.getByRole('button', { name: 'Approve' }).click();
  await card.waitFor({ state: 'detached' });
  // alice's page shows the active grant without a reload, with its connect command.
  const alice = ctx.alice.page;
  const grant = alice.locator('.grant-card', { hasText: 'active' });
  await grant.waitFor({ timeout: 10000 });
  assert.equal(await alice.evaluate(() => window.__noReload), true, 'no reload');
  shared.grantId = await grant.getAttribute('data-grant');
  const cmd = await grant.locator('pre.cmd').textContent();
  assert.equal(cmd, `jitgate connect ${shared.grantId} --listen 127.0.0.1:1502`);
  assert.match(await grant.textContent(), /\d+ min.* left|\d+ h.* left/);
  await shot(alice, '06-my-access-grant-live');
});

test('approver: a step-up approval asks for a fresh TOTP code', async () => {
  // oscar (operator) asks to write coils on the safety PLC: two engineers, with step-up.
  const oscar = await loginApi('oscar');
  const req = await apiAs(oscar, 'POST', '/requests', {
    scope: [{ asset: 'plc-7', modbus: ['write coil 10-20 unit 1'] }],
    duration: '2h', reason: 'replace valve positioner', reference: 'WO-99', path: 'planned',
  });
  assert.equal(req.state, 'pending');
  const page = ctx.bob.page;
  const card = page.locator('article', { hasText: req.id });
  await card.waitFor({ timeout: 10000 }); // arrives live
  assert.match(await card.textContent(), /2 approvals from engineers.*0 so far/);
  assert.match(await card.textContent(), /step-up/);
  const code = card.getByLabel('Step-up code (TOTP)');
  await card.getByRole('button', { name: 'Approve' }).click();
  await waitFor('step-up error', async () => (await code.getAttribute('aria-invalid')) === 'true', 10000);
  const err = await card.locator('#' + (await code.getAttribute('id')) + '-error').textContent();
  assert.match(err, /TOTP|code/i, err);
  await shot(page, '07-inbox-step-up');
  await code.fill(await totpCode(shared.bobSecret));
  await card.getByRole('button', { name: 'Approve' }).click();
  await card.waitFor({ state: 'detached' });
  const after = await apiAs(oscar, 'GET', `/requests/${req.id}`);
  assert.deepEqual(after.approved_by, ['bob']);
  assert.equal(after.state, 'pending', 'one of two approvals');
});

test('live sessions: security terminates a Modbus session and the client connection drops', async () => {
  // alice opens the local port with `jitgate connect`, and a Modbus client reads through it.
  const profile = path.join(tmp, 'alice.toml');
  const login = start('jitgate login', BIN, ['--server', base, '--server-fingerprint', serverFingerprint, '--profile', profile, 'login', '--identity', 'alice', '--password-stdin']);
  login.stdin.end(`${creds.passwords.alice}\n`);
  await waitFor('jitgate login', () => login.exited !== undefined);
  assert.equal(login.exited, '0', login.log);
  const localPort = await freePort();
  const connect = start('jitgate connect', BIN, ['--server', base, '--profile', profile, 'connect', shared.grantId, '--listen', `127.0.0.1:${localPort}`]);
  await waitPort(localPort, connect);
  const sock = net.connect(localPort, '127.0.0.1');
  let received = Buffer.alloc(0);
  let closedAt = null;
  sock.on('data', (d) => { received = Buffer.concat([received, d]); });
  sock.on('close', () => { closedAt = Date.now(); });
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  sock.write(readHolding(1, 1, 0, 10));
  await waitFor('a Modbus answer', () => received.length >= 9 + 20, 10000);
  assert.equal(received[7], 3, 'FC3 answered');
  assert.deepEqual([...Array(10).keys()].map((i) => received.readUInt16BE(9 + 2 * i)), [...Array(10).keys()], 'registers n hold n');

  const page = await newPerson('sam');
  await signIn(page, 'sam');
  await page.getByRole('link', { name: 'Live sessions' }).click();
  const row = page.locator('tr[data-session]', { hasText: 'alice' });
  await row.waitFor({ timeout: 15000 }); // session.started reaches the server from the gateway
  await waitFor('operations counted', async () => /1 allowed/.test(await row.textContent()), 15000);
  assert.match(await row.textContent(), /gw-north/);
  await shot(page, '08-live-sessions');
  await row.getByRole('button', { name: 'Terminate' }).first().click();
  // No reason: refused inline before anything is sent.
  await row.getByRole('button', { name: 'Terminate now' }).click();
  const reason = row.getByLabel('Reason (recorded in the evidence log)');
  assert.equal(await reason.getAttribute('aria-invalid'), 'true');
  await reason.fill('suspicious activity on the filler');
  const clicked = Date.now();
  await row.getByRole('button', { name: 'Terminate now' }).click();
  await waitFor('the client connection to drop', () => closedAt !== null, 10000, 10);
  console.log(`# connection closed ${closedAt - clicked} ms after Terminate was clicked`);
  await row.waitFor({ state: 'detached', timeout: 10000 });
  await page.locator('#main .empty', { hasText: 'No live sessions.' }).waitFor();
  // The same port refuses to carry on: a new connection is closed as soon as its client
  // speaks (`jitgate connect` opens a tunnel only when the local client sends, so a port
  // check opens no session), and nothing is answered.
  const again = net.connect(localPort, '127.0.0.1');
  let answered = 0;
  again.on('data', (d) => { answered += d.length; });
  const ended = new Promise((r) => { again.once('close', () => r(true)); again.once('error', () => r(true)); });
  await new Promise((r) => again.once('connect', r));
  again.write(readHolding(2, 1, 0, 10));
  let done = false;
  ended.then(() => { done = true; });
  await waitFor('a refused reconnect', () => done, 10000);
  assert.equal(answered, 0, 'no Modbus answer after Terminate');
});

test('grant timeline: from request to teardown verdict, with evidence downloads', async () => {
  const page = ctx.sam.page;
  await page.goto(`${base}/console/grants/${shared.grantId}`);
  const tl = page.locator('#timeline');
  await tl.waitFor();
  await waitFor('teardown verdict', async () => {
    return /Teardown verdict/.test(await tl.textContent());
  }, 30000, 500);
  const text = await tl.textContent();
  const order = ['Request filed', 'Policy decision', 'Approval recorded', 'Grant issued', 'Session started', 'Grant ended', 'Session ended', 'Teardown verdict'];
  for (const kind of order) assert.ok(text.includes(kind), `timeline has ${kind}: ${text}`);
  assert.ok(text.indexOf('Request filed') < text.indexOf('Grant issued') && text.indexOf('Grant issued') < text.indexOf('Teardown verdict'));
  assert.match(text, /operation\(s\) in session/);
  await page.locator('section', { hasText: 'Verdict' }).locator('.state-verified').first().waitFor({ timeout: 10000 });
  await shot(page, '09-grant-timeline');
  const bundle = await page.request.get(`${base}/api/v1/grants/${shared.grantId}/evidence`);
  assert.equal(bundle.status(), 200, await bundle.text());
  assert.ok(JSON.stringify(await bundle.json()).includes(shared.grantId), 'the bundle is the grant\'s');
  const report = await page.request.get(`${base}/api/v1/grants/${shared.grantId}/evidence/report`);
  assert.equal(report.status(), 200);
  assert.match(report.headers()['content-type'], /text\/html/);
  assert.equal(await page.getByRole('link', { name: 'Evidence bundle (JSON)' }).count(), 1);
});

test('reviews: a break-glass review is completed, a finding without a note is refused inline', async () => {
  const oscar = await loginApi('oscar');
  const req = await apiAs(oscar, 'POST', '/requests', {
    scope: [{ asset: 'plc-3', modbus: ['read holding 0-9 unit 1'] }],
    duration: '15m', reason: 'line stopped, checking conveyor', reference: 'INC-7', path: 'emergency',
  });
  assert.equal(req.state, 'active', JSON.stringify(req));
  await apiAs(oscar, 'POST', `/grants/${req.grant.id}/complete`);
  const page = ctx.sam.page;
  await page.getByRole('link', { name: 'Reviews' }).click();
  const card = page.locator('article', { hasText: req.grant.id });
  await card.waitFor({ timeout: 15000 });
  await card.getByLabel(/finding/).check();
  await card.getByRole('button', { name: 'Complete review' }).click();
  const note = card.getByLabel('Note');
  await waitFor('note error', async () => (await note.getAttribute('aria-invalid')) === 'true', 10000);
  await shot(page, '10-reviews');
  await card.getByLabel(/ok — nothing wrong/).check();
  await note.fill('checked the session: reads only, as stated in INC-7');
  await card.getByRole('button', { name: 'Complete review' }).click();
  await card.waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'done' }).click();
  await page.locator('article', { hasText: req.grant.id }).filter({ hasText: 'checked the session' }).waitFor();
  await shot(page, '11-reviews-done');
});

test('grants list, and 360 px phone / 1920 px screen in the dark theme', async () => {
  const page = ctx.sam.page;
  await page.getByRole('link', { name: 'Grants' }).click();
  await page.getByRole('button', { name: 'closed' }).click();
  await page.locator('table.list a', { hasText: shared.grantId }).waitFor({ timeout: 15000 });
  await shot(page, '12-grants');

  const phone = await newPerson('bob-phone', { viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
  await signIn(phone, 'bob', () => totpCode(shared.bobSecret));
  for (const [view, name] of [['inbox', '13-phone-inbox'], ['requests', '14-phone-my-access'], ['sessions', '15-phone-live-sessions'], [`grants/${shared.grantId}`, '16-phone-timeline'], ['reviews', '17-phone-reviews']]) {
    await phone.goto(`${base}/console/${view}`);
    await phone.locator('main h1').waitFor();
    await phone.locator('main > :nth-child(2)').waitFor(); // the view's content, not only its title
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${view} fits 360 px (overflows by ${overflow} px)`);
    await shot(phone, name);
  }
  const bg = await phone.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(13, 17, 23)', 'dark theme from prefers-color-scheme');

  const wall = await newPerson('sam-wall', { viewport: { width: 1920, height: 1080 } });
  await signIn(wall, 'sam');
  await wall.goto(`${base}/console/inbox`);
  await wall.locator('main h1').waitFor();
  // The toggle switches to dark and is remembered.
  await wall.getByRole('button', { name: 'Dark theme' }).click();
  assert.equal(await wall.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await wall.reload();
  await wall.locator('main h1').waitFor();
  assert.equal(await wall.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(13, 17, 23)');
  await wall.goto(`${base}/console/grants/${shared.grantId}`);
  await wall.locator('#timeline li').first().waitFor();
  await shot(wall, '18-wall-timeline-dark');
});

test('a cross-site POST without the CSRF token is refused', async () => {
  const page = ctx.alice.page;
  const before = (await apiAs(await loginApi('alice'), 'GET', '/requests?mine=true')).length;
  // A page on another origin (another port of this host, also HTTPS: same *site*, so the
  // SameSite=Strict cookie is still sent — the CSRF token is what stops it). It borrows the
  // server's certificate, which names 127.0.0.1.
  const evilPort = await freePort();
  const tlsFiles = {
    key: fs.readFileSync(path.join(tlsDir, 'server-key.pem')),
    cert: fs.readFileSync(path.join(tlsDir, 'server-cert.pem')),
  };
  const evil = https.createServer(tlsFiles, (req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<!doctype html><form id=f method=POST action="${base}/api/v1/requests" enctype="text/plain">
<input name='{"scope":[{"asset":"plc-7","modbus":["write coil 0-99 unit 1"]}],"duration":"1h","reason":"csrf","path":"planned","x":"' value='"}'>
</form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((r) => evil.listen(evilPort, '127.0.0.1', r));
  try {
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${base}/api/v1/requests` && r.request().method() === 'POST'),
      page.goto(`https://127.0.0.1:${evilPort}/`),
    ]);
    assert.equal(resp.status(), 403);
    const body = await resp.json();
    assert.equal(body.code, 'csrf_refused', JSON.stringify(body));
    await shot(page, '19-csrf-refused');
  } finally {
    evil.close();
  }
  // On the console's own origin, a script without the token is refused too.
  await page.goto(`${base}/console/requests`);
  await page.locator('#request-form').waitFor();
  const status = await page.evaluate(async () => {
    const r = await fetch('/api/v1/requests', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ scope: [{ asset: 'plc-7', modbus: ['read holding 0-9 unit 1'] }], duration: '1h', reason: 'no token', path: 'planned' }),
    });
    return [r.status, (await r.json()).code];
  });
  assert.deepEqual(status, [403, 'csrf_refused']);
  const afterCount = (await apiAs(await loginApi('alice'), 'GET', '/requests?mine=true')).length;
  assert.equal(afterCount, before, 'nothing was filed');
});

test('the CSP watch reports a violation when a page makes one', async () => {
  // Without this, the checks that no violation was reported (here and in
  // recordings.test.mjs) would prove nothing.
  const seen = [];
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await watchCsp(context, 'probe', seen);
  const page = await context.newPage();
  await page.goto(`${base}/console/`);
  // An inline style attribute (style-src has no 'unsafe-inline').
  await page.evaluate(() => document.body.setAttribute('style', 'color: red'));
  await waitFor('the violation reported', () => seen.some((s) => /CSP violation: style-src/.test(s)), 5000);
  await context.close();
});

test('signing out ends the session', async () => {
  const page = ctx.alice.page;
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Identity').waitFor();
  const r = await page.request.get(`${base}/api/v1/requests`);
  assert.equal(r.status(), 401);
  assert.deepEqual(ctx.errors || [], [], 'no script errors and no CSP violations in any page');
});
