// Passkeys for step-up through the real console, in headless Chromium with its virtual
// authenticator (DevTools protocol: WebAuthn.enable, WebAuthn.addVirtualAuthenticator; CTAP2,
// internal transport, user verification): bob enrols a passkey, an assertion obtained for one
// request is refused when a tampered client sends it with the approval of another, the real
// approval with the passkey goes through, and after removing the passkey the console says
// there is none. Against `jitgate up` over plain HTTP on loopback, browsed as
// http://localhost:<port> — the relying party the server defaults to.
//
//   cd e2e/console && npm ci && npm test
//
// Build first: cargo build -p jitgate. Environment: see support.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, stopAll, waitFor, startUp, signInPage, signedInApi } from './support.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-passkeys-e2e-'));
let base, browser, creds, page, cdp, authenticatorId;
const errors = [];
const shared = {};

/** `/api/v1` as `who` (signed in with their password once). */
let api;

async function events(kind) {
  const all = await api('sam', 'GET', '/events?limit=1000');
  return all.filter((e) => e.kind === kind);
}

async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** oscar asks to write coils on the safety PLC: two engineers approve, with step-up. */
function writeRequest(reference) {
  return api('oscar', 'POST', '/requests', {
    scope: [{ asset: 'plc-7', modbus: ['write coil 10-20 unit 1'] }],
    duration: '2h', reason: 'replace valve positioner', reference, path: 'planned',
  });
}

before(async () => {
  for (const [what, file] of [['jitgate', BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; see the comment at the top of this file`);
  }
  ({ base, creds } = await startUp(tmp));
  api = signedInApi(base, creds);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await signInPage(browser, base, creds, 'bob', errors, { width: 1280 });
  // The virtual authenticator: a platform authenticator (internal transport) with CTAP2,
  // resident keys and user verification, which verifies the user at every ceremony.
  cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  }));
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('bob enrols a passkey on the Passkeys page', async () => {
  await page.getByRole('link', { name: 'Passkeys' }).click();
  await page.getByText('No passkey yet.').waitFor();
  const form = page.locator('#passkey-form');
  await form.getByLabel('Name').fill('laptop');
  await form.getByRole('button', { name: 'Add passkey' }).click();
  const card = page.locator('article.passkey', { hasText: 'laptop' });
  await card.waitFor();
  assert.match(await card.textContent(), /Last used\s*never/);
  shared.credentialId = await card.getAttribute('data-credential');
  // The authenticator holds it, resident, and the server lists it as bob's.
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true);
  assert.equal(Buffer.from(credentials[0].credentialId, 'base64').toString('base64url'), shared.credentialId);
  const listed = await api('bob', 'GET', '/auth/passkeys');
  assert.deepEqual(listed.map((k) => [k.credential_id, k.name]), [[shared.credentialId, 'laptop']]);
  const enrolled = await events('auth.passkey_enrolled');
  assert.equal(enrolled.length, 1);
  assert.equal(enrolled[0].data.identity, 'bob');
  await shot('passkeys-01-enrolled');
});

test('an assertion for one request, sent by a tampered client with the approval of another, is refused', async () => {
  const a = await writeRequest('WO-PK-1');
  const b = await writeRequest('WO-PK-2');
  shared.a = a;
  shared.b = b;
  await page.getByRole('link', { name: /Inbox/ }).click();
  const card = page.locator('article', { hasText: a.id });
  await card.waitFor();
  assert.match(await card.textContent(), /TOTP code or a passkey \(step-up\)/);
  // The client is made to send what the passkey signed for request a as the approval of b.
  const tamper = (url) => url.pathname === `/api/v1/requests/${a.id}/approve`;
  await page.route(tamper, (route) => route.continue({ url: route.request().url().replace(a.id, b.id) }));
  await card.getByRole('button', { name: 'Use passkey' }).click();
  const error = card.locator('.form-error');
  await waitFor('the refusal on the card', async () => /another request/.test(await error.textContent()), 15000);
  await page.unroute(tamper);
  await shot('passkeys-02-wrong-request-refused');
  const after = await api('oscar', 'GET', `/requests/${b.id}`);
  assert.deepEqual(after.approved_by, [], 'nothing approved b');
  const refused = await events('auth.passkey_refused');
  assert.equal(refused.length, 1);
  assert.equal(refused[0].data.reason, 'wrong_request');
  assert.equal(refused[0].data.request_id, b.id);
  assert.equal(refused[0].data.credential_id, shared.credentialId);
});

test('bob approves the step-up request with his passkey', async () => {
  const a = shared.a;
  const card = page.locator('article', { hasText: a.id });
  await card.getByLabel('Comment').fill('ok for WO-PK-1');
  await card.getByRole('button', { name: 'Use passkey' }).click();
  await card.waitFor({ state: 'detached', timeout: 15000 });
  const after = await api('oscar', 'GET', `/requests/${a.id}`);
  assert.deepEqual(after.approved_by, ['bob']);
  assert.equal(after.approvals[0].step_up, true);
  const recorded = (await events('approval.recorded')).filter((e) => e.request_id === a.id);
  assert.deepEqual(recorded[0].data.step_up_method, { method: 'passkey', credential_id: shared.credentialId });
  await page.getByRole('link', { name: 'Passkeys' }).click();
  const keyCard = page.locator('article.passkey', { hasText: 'laptop' });
  await keyCard.waitFor();
  assert.doesNotMatch(await keyCard.textContent(), /Last used\s*never/);
});

test('after removing the passkey the console says there is none to use', async () => {
  const keyCard = page.locator('article.passkey', { hasText: 'laptop' });
  // Signed in minutes ago: removal needs no code.
  await keyCard.getByRole('button', { name: 'Remove' }).click();
  await page.getByText('No passkey yet.').waitFor();
  const removed = await events('auth.passkey_removed');
  assert.equal(removed.length, 1);
  assert.equal(removed[0].data.confirmed_by, 'recent_sign_in');
  await page.getByRole('link', { name: /Inbox/ }).click();
  const card = page.locator('article', { hasText: shared.b.id });
  await card.waitFor();
  await card.getByRole('button', { name: 'Use passkey' }).click();
  const error = card.locator('.form-error');
  await waitFor('the refusal on the card', async () => /no passkey enrolled/.test(await error.textContent()), 15000);
  await shot('passkeys-03-none-left');
  const after = await api('oscar', 'GET', `/requests/${shared.b.id}`);
  assert.deepEqual(after.approved_by, []);
  assert.deepEqual(errors, [], 'no script errors and no Content-Security-Policy violations');
});
