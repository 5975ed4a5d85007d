// The Reports page through the real console, in headless Chromium: sam — security — makes
// the compliance report of the last full month for the north site, sees its summary, opens
// the signed page with the console's cookie, and the page verifies offline with
// `jitgate evidence verify-report` and the evidence public key file; one changed byte does
// not. alice, who does not see everything, is told why she cannot. Against `jitgate up`.
//
//   cd e2e/console && npm ci && node --test reports.test.mjs
//
// Build first: cargo build -p jitgate. Environment: see support.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, stopAll, startUp, signInPage } from './support.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-reports-e2e-'));
let base, browser, creds;
const errors = [];

const signIn = (who) => signInPage(browser, base, creds, who, errors);

before(async () => {
  for (const [what, file] of [['jitgate', BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; see the comment at the top of this file`);
  }
  ({ base, creds } = await startUp(tmp));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('sam makes the north report of last month, and its page verifies offline', async () => {
  const page = await signIn('sam');
  await page.getByRole('link', { name: 'Reports' }).click();
  await page.getByLabel('Site').selectOption('north');
  await page.getByRole('button', { name: 'Make the report' }).click();
  const open = page.getByRole('link', { name: 'Open the printable report' });
  await open.waitFor();
  assert.match(await page.locator('#report-links').textContent(), /grants issued, .* h of access, teardowns \d+ verified/);
  const href = await open.getAttribute('href');
  assert.match(href, /^\/api\/v1\/reports\/compliance\?.*format=html/);
  assert.match(href, /site=north/);
  // The link works with the console's cookie (what a click in a new tab does).
  const html = await page.evaluate(async (u) => (await fetch(u, { credentials: 'same-origin' })).text(), href);
  assert.match(html, /<h1>Compliance report — north<\/h1>/);
  const keys = await page.evaluate(async () => (await fetch('/api/v1/evidence/keys', { credentials: 'same-origin' })).json());
  const keyFile = path.join(tmp, 'evidence.pub');
  fs.writeFileSync(keyFile, keys.key_file);
  const file = path.join(tmp, 'north.html');
  fs.writeFileSync(file, html);
  const ok = spawnSync(BIN, ['evidence', 'verify-report', file, '--key', keyFile], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /compliance report verified: site north/);
  fs.writeFileSync(file, html.replace('Grants issued', 'Grants lssued'));
  const bad = spawnSync(BIN, ['evidence', 'verify-report', file, '--key', keyFile], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /does NOT verify/);
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'reports-01-sam.png'), fullPage: true });
  await page.context().close();
});

test('alice, who does not see everything, is told why', async () => {
  const page = await signIn('alice');
  await page.goto(`${base}/console/reports`);
  await page.getByText('Compliance reports are for security, audit and admin roles.').waitFor();
  await page.context().close();
});

test('no Content-Security-Policy violation', () => {
  assert.deepEqual(errors, []);
});
