// Single sign-on in the console, end to end in headless Chromium (Playwright): `jitgate serve`
// with an `[sso]` provider, and the real OpenID provider (`oidc-provider` from npm,
// oidc_provider.mjs) with its own login and consent pages. Covered: "Sign in with Plant IdP"
// signs alice in (the session cookie, her name in the header, the group's role); a login the
// mapping does not know comes back to the sign-in page with the refusal; no CSP violation or
// script error on any page of ours.
//
//   cd e2e/console && npm ci && npm test        (build first: cargo build -p jitgate)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  BIN, CHROMIUM, SHOTS, repo, freePort, start, stopAll, waitFor, waitPort, watchCsp,
} from './support.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-sso-e2e-'));
let base;
let browser;
const errors = [];

before(async () => {
  for (const [what, file] of [['jitgate', BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; build it first (see the top of this file)`);
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const callback = `${base}/api/v1/auth/sso/plant-idp/callback`;
  const op = start('oidc-provider', process.execPath, [
    path.join(repo, 'e2e', 'console', 'oidc_provider.mjs'),
    JSON.stringify({ client_id: 'jitgate', client_secret: 'e2e-secret', redirect_uris: [callback] }),
  ]);
  const issuer = await waitFor('the provider\'s issuer line', () => {
    if (op.exited !== undefined) throw new Error(`oidc-provider exited: ${op.log}`);
    const m = op.log.match(/\{"issuer":"([^"]+)"\}/);
    return m && m[1];
  });
  const secret = path.join(tmp, 'client-secret');
  fs.writeFileSync(secret, 'e2e-secret\n', { mode: 0o600 });
  const config = path.join(tmp, 'jitgate.toml');
  fs.writeFileSync(config, [
    `listen = "127.0.0.1:${port}"`,
    `data_dir = ${JSON.stringify(path.join(tmp, 'data'))}`,
    `inventory = ${JSON.stringify(path.join(repo, 'examples', 'plant.toml'))}`,
    '',
    '[sso]',
    'sso_only = ["alice"]',
    '',
    '[[sso.providers]]',
    'name = "plant-idp"',
    'display_name = "Plant IdP"',
    `issuer = ${JSON.stringify(issuer)}`,
    'client_id = "jitgate"',
    `client_secret_file = ${JSON.stringify(secret)}`,
    `redirect_url = ${JSON.stringify(callback)}`,
    'scopes = ["email", "groups"]',
    'groups_claim = "groups"',
    '',
    '[[sso.providers.map]]',
    'identity = "alice"',
    'subject = "alice"',
    '',
    '[[sso.providers.groups]]',
    'group = "ot-approvers"',
    'roles = ["security"]',
    '',
  ].join('\n'));
  const serve = start('jitgate serve', BIN, ['serve', '--config', config], {
    env: { ...process.env, JITGATE_LOG: 'warn' },
  });
  await waitPort(port, serve);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(errors, [], 'no CSP violation or script error');
});

/** Through the provider's own pages: its login form (any password), then its consent. */
async function signInAtProvider(page, login) {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
}

test('Sign in with Plant IdP: through the provider\'s pages into the console', async () => {
  const context = await browser.newContext();
  await watchCsp(context, 'sso', errors);
  const page = await context.newPage();
  await page.goto(`${base}/console/`);
  const button = page.getByRole('link', { name: 'Sign in with Plant IdP' });
  await button.waitFor();
  await button.click();
  await page.waitForURL((u) => !u.toString().startsWith(base));
  await signInAtProvider(page, 'alice');
  await page.waitForURL(`${base}/console/`);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.match(await page.locator('#who').textContent(), /alice/);
  // The session is the console's ordinary cookie session, opened by SSO.
  const who = await page.evaluate(async () => (await fetch('/api/v1/auth/whoami')).json());
  assert.equal(who.identity.id, 'alice');
  assert.equal(who.auth_method, 'oidc');
  assert.ok(who.identity.roles.includes('security'), JSON.stringify(who.identity.roles));
  const cookies = await context.cookies(base);
  const session = cookies.find((c) => c.name === '__Host-jitgate_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'sso-signed-in.png') });
  await context.close();
});

test('a login the mapping does not know comes back to the sign-in page, refused', async () => {
  const context = await browser.newContext();
  await watchCsp(context, 'sso-refused', errors);
  const page = await context.newPage();
  await page.goto(`${base}/console/`);
  await page.getByRole('link', { name: 'Sign in with Plant IdP' }).click();
  await page.waitForURL((u) => !u.toString().startsWith(base));
  await signInAtProvider(page, 'mallory');
  await page.waitForURL((u) => u.toString().startsWith(`${base}/console/`));
  const error = page.locator('.form-error');
  await error.filter({ hasText: 'sso_unmapped' }).waitFor();
  assert.match(await error.textContent(), /no identity is mapped to this login/);
  // The fragment is cleared once shown; nobody is signed in.
  assert.equal(new URL(page.url()).hash, '');
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), false);
  await page.screenshot({ path: path.join(SHOTS, 'sso-refused.png') });
  await context.close();
});
