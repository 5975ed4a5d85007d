// Standing exceptions through the real console, in headless Chromium: the Exceptions page
// lists an active exception with its state, owner, next re-validation and expiry; its detail
// page shows the terms and uses; the owner re-validates it (an empty note is refused with
// the API's message), then ends it, and the page shows it ended as revoked. Against
// `jitgate up` with the default policies, except that the batch-job exception needs one
// security approver (the sample plant has one).
//
//   cd e2e/console && npm ci && node --test exceptions.test.mjs
//
// Build first: cargo build -p jitgate. Environment: see support.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, repo, freePort, start, stopAll, waitFor, waitPort, readCreds, watchCsp, signedInApi } from './support.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-exceptions-e2e-'));
let base, browser, creds, page;
const errors = [];
const shared = {};

let api;

async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const ONE_SECURITY_APPROVER = `
@id("exception-workload-batch-read")
@approvals("1")
@approver_role("security")
@max_duration("365d")
permit (principal, action == Jitgate::Action::"request", resource)
when {
  principal.kind == "workload" && context.path == "standing" &&
  resource.enforcement == "brokered" && !context.writes && resource.criticality_rank <= 2
};
`;

before(async () => {
  for (const [what, file] of [['jitgate', BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; see the comment at the top of this file`);
  }
  const policies = path.join(tmp, 'policies');
  fs.mkdirSync(policies);
  for (const f of fs.readdirSync(path.join(repo, 'policies'))) {
    if (f.endsWith('.cedar') && f !== '50-exceptions.cedar') fs.copyFileSync(path.join(repo, 'policies', f), path.join(policies, f));
  }
  fs.writeFileSync(path.join(policies, '50-exceptions.cedar'), ONE_SECURITY_APPROVER);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const data = path.join(tmp, 'data');
  const up = start('jitgate up', BIN, ['up', '--data-dir', data, '--listen', `127.0.0.1:${port}`, '--policies', policies],
    { env: { ...process.env, JITGATE_LOG: 'warn' } });
  await waitPort(port, up);
  const credsFile = path.join(data, 'bootstrap-credentials.toml');
  await waitFor('bootstrap credentials', () => fs.existsSync(credsFile));
  creds = readCreds(credsFile);
  api = signedInApi(base, creds);

  // alice files an exception for the historian collector she owns; sam (security) approves.
  const ex = await api('alice', 'POST', '/exceptions', {
    subject: 'svc-historian',
    scope: [{ asset: 'historian', modbus: ['read holding 0-999'] }],
    expires_in: '180d', revalidate_every: '30d', owner: 'oscar',
    controls: ['sessions recorded, reviewed weekly', 'read-only by policy'],
    reason: 'nightly historian export', reference: 'RA-17',
  });
  assert.equal(ex.state, 'pending');
  const req = await api('sam', 'GET', `/requests/${ex.request_id}`);
  await api('sam', 'POST', `/requests/${ex.request_id}/approve`, { scope_digest: req.scope_digest, comment: 'reviewed with QA' });
  shared.ex = await api('oscar', 'GET', `/exceptions/${ex.id}`);
  assert.equal(shared.ex.state, 'active');

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await watchCsp(context, 'oscar', errors);
  page = await context.newPage();
  await page.goto(`${base}/console/`);
  await page.getByLabel('Identity').fill('oscar');
  await page.getByLabel('Password').fill(creds.passwords.oscar);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the Exceptions page lists the exception with state, owner, re-validation and expiry', async () => {
  await page.getByRole('link', { name: 'Exceptions' }).click();
  const row = page.locator('#exceptions-list tr', { hasText: shared.ex.id });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[0], shared.ex.id);
  assert.equal(cells[1], 'active');
  assert.equal(cells[2], 'svc-historian');
  assert.equal(cells[3], 'historian');
  assert.equal(cells[4], 'oscar');
  assert.match(cells[5], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.match(cells[6], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.equal(cells[7], '0');
  // The state filter asks the API: nothing is ended yet.
  await page.getByRole('button', { name: 'ended', exact: true }).click();
  await page.locator('#exceptions-list', { hasText: 'None.' }).waitFor();
  await page.getByRole('button', { name: 'all', exact: true }).click();
  await row.waitFor();
  await shot('exceptions-01-list');
});

test('the owner re-validates it on its detail page', async () => {
  await page.locator('#exceptions-list a', { hasText: shared.ex.id }).click();
  const detail = page.locator('#exception-detail');
  await detail.getByText('sessions recorded, reviewed weekly').waitFor();
  assert.match(await detail.textContent(), /Last re-validated\s*never/);
  const form = page.getByRole('form', { name: `Re-validate: exception ${shared.ex.id}` });
  // An empty note: the API's refusal is shown, nothing changes.
  await form.getByRole('button', { name: 'Re-validate' }).click();
  await form.locator('.error, .form-error', { hasText: /note/ }).first().waitFor();
  await form.getByLabel('Note').fill('export still feeds the QA report');
  await form.getByRole('button', { name: 'Re-validate' }).click();
  await detail.getByText(/Last re-validated\s*\d{4}-.* by oscar/).waitFor();
  const after = await api('sam', 'GET', `/exceptions/${shared.ex.id}`);
  assert.equal(after.last_revalidated_by, 'oscar');
  assert.ok(new Date(after.next_revalidation) > new Date(shared.ex.next_revalidation), 'the due date moved');
  const events = (await api('sam', 'GET', '/events?limit=1000')).filter((e) => e.kind === 'exception.revalidated');
  assert.equal(events.length, 1);
  assert.equal(events[0].data.note, 'export still feeds the QA report');
  await shot('exceptions-02-revalidated');
});

test('the owner ends it; the page shows it ended, revoked', async () => {
  const form = page.getByRole('form', { name: `End now: exception ${shared.ex.id}` });
  await form.getByLabel('Reason').fill('export job retired');
  await form.getByRole('button', { name: 'End now' }).click();
  const detail = page.locator('#exception-detail');
  await detail.locator('header .state', { hasText: 'ended' }).waitFor();
  assert.match(await detail.textContent(), /Ended\s*revoked/);
  assert.equal(await page.getByRole('form', { name: `Re-validate: exception ${shared.ex.id}` }).count(), 0);
  const grant = await api('sam', 'GET', `/grants/${shared.ex.grant_id}`);
  assert.equal(grant.end_reason.kind, 'revoked');
  assert.equal(grant.end_reason.by, 'oscar');
  await shot('exceptions-03-ended');
  assert.deepEqual(errors, []);
});
