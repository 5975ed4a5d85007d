// Console end-to-end: post-session attestation on the grant page, and a review campaign —
// opened in the console, one item ended (its still-active break-glass grant is revoked), the
// early close refused with its reason shown, the rest decided, the campaign closed. Real
// `jitgate up --tls` and Chromium; no gateway runs (nothing connects to a device), so the
// ended grant's teardown fails and is listed too.
// Environment and binaries: see support.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  BIN, CHROMIUM, SHOTS, stopAll, waitFor, apiClient, startUp, signInPage,
} from './support.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-campaigns-e2e-'));
let base, browser, creds, apiAs;
const errors = [];

async function loginApi(who) {
  const r = await apiAs('', 'POST', '/auth/login', { identity: who, password: creds.passwords[who] });
  return r.token;
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const personPage = (who) => signInPage(browser, base, creds, who, errors, { width: 1280 });

/** Break glass as oscar on plc-3: active at once. */
async function breakGlass(token, reference) {
  const req = await apiAs(token, 'POST', '/requests', {
    scope: [{ asset: 'plc-3', modbus: ['read holding 0-9 unit 1'] }],
    duration: '15m', reason: 'line stopped, checking conveyor', reference, path: 'emergency',
  });
  assert.equal(req.state, 'active', JSON.stringify(req));
  return req.grant.id;
}

before(async () => {
  for (const [what, file] of [['jitgate', BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; see support.mjs`);
  }
  let ca;
  ({ base, creds, ca } = await startUp(tmp, { tls: true }));
  apiAs = apiClient(base, ca);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('attestation on the grant page, then a campaign decided and closed in the console', async () => {
  const oscar = await loginApi('oscar');
  const sam = await loginApi('sam');
  const done = await breakGlass(oscar, 'INC-21');
  await apiAs(oscar, 'POST', `/grants/${done}/complete`);
  const open = await breakGlass(oscar, 'INC-22');
  // A grant still active shows no attestation form, only when it will be possible.
  const op = await personPage('oscar');
  await op.goto(`${base}/console/grants/${open}`);
  await op.locator('#attestation', { hasText: 'once the grant has ended' }).waitFor();

  // No gateway runs here, so the ended grant's teardown cannot be verified: it fails (after
  // the teardown timeout, 5 s). Wait for that: the campaign lists it as an item of its own.
  await waitFor('the teardown failed', async () => (await apiAs(sam, 'GET', `/grants/${done}/teardown`)).verdict === 'failed');
  // sam opens a campaign over the last 30 days: both break-glass grants and the failed
  // teardown, nothing else.
  const page = await personPage('sam');
  await page.getByRole('link', { name: 'Campaigns' }).click();
  await page.getByRole('button', { name: 'Open campaign' }).click();
  await page.locator('#campaign-items').waitFor();
  const openCard = page.locator('article', { hasText: `break_glass:${open}` });
  const doneCard = page.locator('article', { hasText: `break_glass:${done}` });
  const teardownCard = page.locator('article', { hasText: `teardown:${done}` });
  await openCard.waitFor();
  await doneCard.waitFor();
  await teardownCard.waitFor();
  assert.equal(await page.locator('#campaign-items article').count(), 3);
  await shot(page, '31-campaign-open');

  // Closing early is refused, and the page says why.
  await page.getByRole('button', { name: 'Close campaign' }).click();
  await page.locator('form[aria-label="Close the campaign"] .form-error', { hasText: /3 undecided item/ }).waitFor();

  // A decision without a note is refused inline.
  await openCard.getByLabel(/^end/).check();
  await openCard.getByRole('button', { name: 'Record decision' }).click();
  const note = openCard.getByLabel('Note');
  await waitFor('note error', async () => (await note.getAttribute('aria-invalid')) === 'true', 10000);
  // "End" on the active grant revokes it at once.
  await note.fill('no incident ticket behind INC-22; access still open');
  await openCard.getByRole('button', { name: 'Record decision' }).click();
  await waitFor('the decision shown', async () => /revoked/.test(await page.locator('article', { hasText: `break_glass:${open}` }).textContent()), 15000);
  const g = await apiAs(sam, 'GET', `/grants/${open}`);
  assert.equal(g.state !== 'active', true, JSON.stringify(g));
  assert.equal(g.end_reason.kind, 'revoked');
  assert.equal(g.end_reason.by, 'sam');

  await doneCard.getByLabel('Note').fill('INC-21 confirmed by the shift lead; attestation read');
  await doneCard.getByRole('button', { name: 'Record decision' }).click();
  await page.locator('#campaign-progress', { hasText: '2 of 3 decided' }).waitFor({ timeout: 15000 });
  await teardownCard.getByLabel(/^narrow/).check();
  await teardownCard.getByLabel('Note').fill('gw-north was down for maintenance; bring it back before the next vendor visit');
  await teardownCard.getByRole('button', { name: 'Record decision' }).click();
  await page.locator('#campaign-progress', { hasText: '3 of 3 decided' }).waitFor({ timeout: 15000 });
  await page.getByRole('button', { name: 'Close campaign' }).click();
  await waitFor('closed', async () => /closed/.test(await page.locator('.panel').first().textContent()), 15000);
  await shot(page, '32-campaign-closed');

  // oscar attests the ended grant on its page; the revoked one too has ended now.
  await op.goto(`${base}/console/grants/${done}`);
  const form = op.getByRole('form', { name: `Attest grant ${done}` });
  await form.waitFor();
  await form.getByLabel('not done').check();
  await form.getByLabel('Changes made').fill('conveyor C3 speed 1.2 -> 1.0\nreset alarm A17');
  await form.getByLabel('Note').fill('belt still slipping; WO-88 opened');
  await form.getByRole('button', { name: 'Attest' }).click();
  const section = op.locator('#attestation');
  await waitFor('the attestation shown', async () => /reset alarm A17/.test(await section.textContent()), 15000);
  assert.match(await section.textContent(), /not done/);
  assert.equal(await op.getByRole('form', { name: `Attest grant ${done}` }).count(), 0, 'attested once: no form any more');
  await shot(op, '30-attestation');
  const given = await apiAs(sam, 'GET', `/grants/${done}/attestation`);
  assert.equal(given.attester, 'oscar');
  assert.deepEqual(given.changes, ['conveyor C3 speed 1.2 -> 1.0', 'reset alarm A17']);

  const events = await apiAs(sam, 'GET', '/events?limit=1000');
  const kinds = events.map((e) => e.kind);
  assert.ok(kinds.includes('attestation.recorded'));
  assert.ok(kinds.includes('campaign.opened'));
  assert.equal(kinds.filter((k) => k === 'campaign.item_decided').length, 3);
  assert.ok(kinds.includes('campaign.closed'));
  assert.deepEqual(errors, [], 'no script errors or CSP violations');
});
