// The Findings page through the real console, in headless Chromium: alice's account is used
// from two hosts at once (two gateway session reports with different peers, posted as a
// gateway posts them), and sam — security — sees the shared-identity finding with links to
// the two `session.started` events that support it, and the standing-privilege inventory
// (the plant's legacy PLC). alice, who does not see everything, is told why she cannot.
// Against `jitgate up` over plain HTTP on loopback.
//
//   cd e2e/console && npm ci && node --test findings.test.mjs
//
// Build first: cargo build -p jitgate. Environment: see support.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, stopAll, startUp, signInPage, signedInApi } from './support.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-findings-e2e-'));
let base, browser, creds;
const errors = [];

let api;

const signIn = (who) => signInPage(browser, base, creds, who, errors);

const seqs = {};

before(async () => {
  for (const [what, file] of [['jitgate', BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; see the comment at the top of this file`);
  }
  ({ base, creds } = await startUp(tmp));
  api = signedInApi(base, creds);

  // alice reads plc-7, bob approves; the gateway reports two overlapping sessions of hers
  // from two hosts.
  const req = await api('alice', 'POST', '/requests', {
    scope: [{ asset: 'plc-7', modbus: ['read holding 0-99 unit 1'] }],
    duration: '1h', reason: 'check valve positions', reference: 'WO-5150', path: 'planned',
  });
  const approved = await api('bob', 'POST', `/requests/${req.id}/approve`, { scope_digest: req.scope_digest, comment: 'ok' });
  const grant = approved.grant.id;
  const key = (await api('sam', 'POST', '/api-keys', { identity: 'gw-north', name: 'e2e-findings' })).key;
  const base0 = (await api(null, 'POST', '/gateway/events', { events: [] }, key)).delivered_seq || 0;
  const at = new Date().toISOString();
  const session = (gseq, id, peer) => ({
    gseq, kind: 'session.started', at, grant_id: grant, session_id: id,
    data: { subject: 'alice', asset: 'plc-7', protocol: 'modbus', peer, device: '127.0.0.1:5020' },
  });
  await api(null, 'POST', '/gateway/events', {
    events: [session(base0 + 1, 'desk', '10.0.0.5:50100'), session(base0 + 2, 'elsewhere', '10.20.0.99:41000')],
  }, key);
  const events = await api('sam', 'GET', '/events?limit=1000');
  for (const e of events) if (e.kind === 'session.started') seqs[e.data.session_id] = e.seq;
  assert.ok(seqs.desk && seqs.elsewhere, JSON.stringify(seqs));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('sam sees the shared account with links to its evidence, and what stands', async () => {
  const page = await signIn('sam');
  await page.getByRole('link', { name: 'Findings' }).click();
  const row = page.locator('#findings-table tbody tr[data-id="shared_identity:alice"]');
  await row.waitFor();
  const text = await row.textContent();
  assert.match(text, /shared_identity/);
  assert.match(text, /10\.0\.0\.5 and 10\.20\.0\.99/);
  const links = row.locator('a[data-seq]');
  const hrefs = await links.evaluateAll((as) => as.map((a) => [a.dataset.seq, a.getAttribute('href')]));
  assert.deepEqual(hrefs, [seqs.desk, seqs.elsewhere].map((s) => [String(s), `/api/v1/events?after=${s - 1}&limit=1`]));
  // Each link leads to the very event (with the console's cookie).
  for (const [seq, href] of hrefs) {
    const got = await page.evaluate(async (u) => (await fetch(u, { credentials: 'same-origin' })).json(), href);
    assert.equal(got.length, 1);
    assert.equal(got[0].seq, Number(seq));
    assert.equal(got[0].kind, 'session.started');
  }
  const standing = page.locator('#standing-table tbody tr[data-id="legacy_local_accounts:plc-legacy-1"]');
  await standing.waitFor();
  assert.match(await standing.textContent(), /local maintenance account/);
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'findings-01-sam.png'), fullPage: true });
  await page.context().close();
});

test('alice, who does not see everything, is told why', async () => {
  const page = await signIn('alice');
  await page.goto(`${base}/console/findings`);
  await page.getByText('lacks the `security` or `auditor` role').waitFor();
  await page.context().close();
});

test('no Content-Security-Policy violation', () => {
  assert.deepEqual(errors, []);
});
