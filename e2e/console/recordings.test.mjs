// SSH session recordings in the web console, end to end: a real OpenSSH client through the
// real `jitgate gateway` to a real `/usr/sbin/sshd` (trusting jitgate's host-access CA, as in
// crates/jitgate/tests/it/ssh_gateway.rs), the console in headless Chromium.
//
// While the shell is open and has printed a marker, the Live sessions view lists the session
// (protocol, asset, subject) and its Watch view shows the marker, saying the recording is
// incomplete; after the session ends, the grant timeline's Play recording plays it with the
// marker and says it is complete; a person who may not see the grant gets the API's refusal;
// no Content-Security-Policy violation is reported in the page or the player frame (the watch
// is shown to report one in console.test.mjs).
//
// Needs OpenSSH (ssh, ssh-keygen, /usr/sbin/sshd): skipped without it, a failure with
// JITGATE_REQUIRE_PEERS=1. Environment and binaries: see support.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  BIN, CHROMIUM, SHOTS, freePort, start, stopAll, waitFor, waitPort, apiClient, startUp, signInPage,
} from './support.mjs';

const SSHD = '/usr/sbin/sshd';
const MARKER = 'MARKER-42'; // printed by `echo MARKER-$((6*7))`: output, not the typed echo
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jitgate-recordings-e2e-'));
const problems = []; // script errors and CSP violations, every page and frame
let base, browser, creds, apiAs, cli, grantId, sessionId, ssh, timeline;

function haveOpenssh() {
  const runs = (cmd, args) => { try { execFileSync(cmd, args, { stdio: 'ignore' }); return true; } catch (e) { return e.code !== 'ENOENT'; } };
  return fs.existsSync(SSHD) && runs('ssh', ['-V']) && runs('ssh-keygen', ['-?']);
}
const required = process.env.JITGATE_REQUIRE_PEERS === '1';
const missing = haveOpenssh() ? null : 'OpenSSH (ssh, ssh-keygen, /usr/sbin/sshd: apt-get install openssh-client openssh-server) is missing';
const skip = missing ? `${missing}; set JITGATE_REQUIRE_PEERS=1 to make this a failure` : false;
if (missing && required) {
  test('OpenSSH is required (JITGATE_REQUIRE_PEERS=1)', () => assert.fail(missing));
} else if (missing) {
  console.log(`\n!!!!!!!!!!\n!!! SKIPPED: ${skip}\n!!!!!!!!!!\n`);
}
const t = (name, fn) => test(name, { skip }, fn);

async function loginApi(who) {
  return (await apiAs('', 'POST', '/auth/login', { identity: who, password: creds.passwords[who] })).token;
}

/** The jitgate CLI as `who` (its own profile), synchronously; stdout. */
function jitgate(who, args, input) {
  return execFileSync(BIN, ['--server', base, '--server-fingerprint', cli.fingerprint, '--profile', path.join(tmp, `${who}.toml`), ...args],
    { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

const person = (name, who) => signInPage(browser, base, creds, who, problems, { name, width: 1280 });

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** The text the player frame's terminal shows. */
function terminalText(page) {
  return page.frameLocator('iframe.player').locator('.ap-term').first().textContent({ timeout: 2000 });
}

/** Wait until the player shows `text`; on failure, say what the page showed instead. */
async function showing(page, what, text, ms) {
  try {
    await waitFor(what, async () => (await terminalText(page)).includes(text), ms, 500);
  } catch (e) {
    console.log(`# the page: ${await page.locator('main').innerText().catch((x) => x.message)}`);
    console.log(`# the terminal: ${await terminalText(page).catch((x) => x.message)}`);
    throw e;
  }
}

before(async () => {
  if (skip) return;
  for (const [what, file] of [['jitgate', BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}; see support.mjs`);
  }
  // Pages of 2: the recordings and sessions lists the console follows span several pages.
  const up = await startUp(tmp, { tls: true, env: { JITGATE_LIMITS_DEFAULT_PAGE_SIZE: '2' } });
  ({ base, creds } = up);
  apiAs = apiClient(base, up.ca);
  const cert = new crypto.X509Certificate(fs.readFileSync(path.join(up.data, 'tls', 'server-cert.pem')));
  cli = { fingerprint: 'sha256:' + cert.fingerprint256.replaceAll(':', '').toLowerCase() };
  jitgate('alice', ['login', '--identity', 'alice', '--password-stdin'], `${creds.passwords.alice}\n`);

  // sshd on a loopback port: it lets jitgate's host-access CA log in as whoever runs this.
  const account = os.userInfo().username;
  const sshdPort = await freePort();
  const dir = path.join(tmp, 'sshd');
  fs.mkdirSync(path.join(dir, 'principals'), { recursive: true });
  const cas = JSON.parse(jitgate('alice', ['--json', 'ssh', 'ca']));
  fs.writeFileSync(path.join(dir, 'ca.pub'), `${cas.host_access_ca.public_key}\n`);
  fs.writeFileSync(path.join(dir, 'principals', account), `${account}\n`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  fs.mkdirSync('/run/sshd', { recursive: true }); // privilege separation; Debian's sshd makes it
  fs.writeFileSync(path.join(dir, 'sshd_config'), [
    `Port ${sshdPort}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(dir, 'host_key')}`, 'PidFile none',
    'UsePAM no', 'StrictModes no', 'PermitRootLogin yes', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
    'AuthorizedKeysFile none', `TrustedUserCAKeys ${path.join(dir, 'ca.pub')}`, `AuthorizedPrincipalsFile ${path.join(dir, 'principals')}/%u`, '',
  ].join('\n'));
  const sshd = start('sshd', SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')]);
  await waitPort(sshdPort, sshd);

  // The historian's SSH endpoint is that sshd; gw-north fronts it and listens for SSH.
  const sam = await loginApi('sam');
  const historian = await apiAs(sam, 'GET', '/assets/historian');
  historian.endpoints.ssh = { ...historian.endpoints.ssh, host: `127.0.0.1:${sshdPort}`, account };
  await apiAs(sam, 'PUT', '/assets/historian', historian);
  const [gwPort, sshPort] = [await freePort(), await freePort()];
  const gwConfig = path.join(tmp, 'gateway.toml');
  fs.writeFileSync(gwConfig, `server = "${base}"\nserver_fingerprint = "${cli.fingerprint}"\napi_key = "${creds.api_keys['gw-north']}"\n`
    + `listen = "127.0.0.1:${gwPort}"\nssh_listen = "127.0.0.1:${sshPort}"\nstate_dir = "${path.join(tmp, 'gw')}"\n`);
  const gw = start('jitgate gateway', BIN, ['gateway', '--config', gwConfig]);
  await waitPort(sshPort, gw);
  await waitFor('gateway control channel', async () => {
    const list = await apiAs(sam, 'GET', '/gateways');
    return list.some((g) => g.id === 'gw-north' && g.control_connected);
  });
  cli.sshPort = sshPort;

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (ssh && ssh.exited === undefined) ssh.stdin.end();
  if (browser) await browser.close();
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

t('live: an SSH session is listed with its protocol and its Watch view shows the shell as it runs', async () => {
  // alice's shell on the historian, approved by bob.
  const alice = await loginApi('alice');
  const req = await apiAs(alice, 'POST', '/requests', {
    scope: [{ asset: 'historian', ssh: ['shell'] }], duration: '1h', reason: 'check the historian disk', reference: 'WO-77', path: 'planned',
  });
  const approved = req.state === 'active' ? req : await apiAs(await loginApi('bob'), 'POST', `/requests/${req.id}/approve`, { scope_digest: req.scope_digest, comment: 'ok' });
  assert.equal(approved.state, 'active', JSON.stringify(approved));
  grantId = approved.grant.id;
  const keys = path.join(tmp, 'alice-ssh');
  jitgate('alice', ['ssh', 'cert', grantId, '--asset', 'historian', '--out', keys]);
  // The certificate is valid from the grant's first whole second.
  await new Promise((r) => setTimeout(r, 1100));
  ssh = start('ssh', 'ssh', ['-tt', '-F', '/dev/null', '-i', path.join(keys, 'id_ed25519'),
    '-o', `CertificateFile=${path.join(keys, 'id_ed25519-cert.pub')}`, '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none',
    '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-p', String(cli.sshPort), 'historian@127.0.0.1']);
  ssh.stdin.write('echo MARKER-$((6*7))\n');
  await waitFor('the marker in the shell', () => ssh.log.includes(MARKER), 20000);

  const page = await person('sam', 'sam');
  // The casts the page fetches: while following, only the chunks it lacks (`?from=`).
  const castQueries = [];
  page.on('request', (r) => { if (/\/sessions\/[^/]+\/recording/.test(r.url())) castQueries.push(new URL(r.url()).search); });
  await page.getByRole('link', { name: 'Live sessions' }).click();
  const row = page.locator('tr[data-session]', { hasText: 'alice' });
  await row.waitFor({ timeout: 15000 });
  sessionId = await row.getAttribute('data-session');
  const cells = await row.locator('td').allTextContents();
  assert.ok(cells.includes('ssh'), `protocol: ${cells}`);
  assert.ok(cells.includes('alice'), `subject: ${cells}`);
  assert.ok(cells.some((c) => c.startsWith('historian')), `asset: ${cells}`);
  await shot(page, '20-live-sessions-ssh');
  await row.getByRole('link', { name: /Watch/ }).click();
  await page.waitForURL(`**/console/grants/${grantId}/sessions/${sessionId}`);
  const status = page.locator('#rec-status');
  // The gateway closes a chunk at least every 10 s, so the marker arrives within one or two.
  await showing(page, 'the marker in the live view', MARKER, 45000);
  assert.match(await status.textContent(), /Live: following the session.*incomplete/);
  assert.equal(await page.locator('main .state-live').count(), 1, 'marked live');
  await shot(page, '21-live-view');

  // The grant timeline says so too, and offers to watch.
  timeline = await person('sam-timeline', 'sam');
  await timeline.goto(`${base}/console/grants/${grantId}`);
  const control = timeline.locator('#timeline .rec-control');
  await control.waitFor({ timeout: 15000 });
  assert.match(await control.textContent(), /Watch live.*incomplete/);

  // More output while watching: it shows up without touching the page.
  ssh.stdin.write('echo SECOND-$((7*8))\n');
  await showing(page, 'the second marker in the live view', 'SECOND-56', 45000);
  assert.ok(castQueries.some((q) => /^\?from=[1-9]\d*$/.test(q)), `fetched only what was new: ${castQueries}`);

  // The session ends: the view says so, and becomes ordinary playback of the whole recording.
  ssh.stdin.end('exit\n');
  await waitFor('ssh to exit', () => ssh.exited !== undefined, 20000);
  await waitFor('the view to say the session ended', async () => /Session ended; the recording is complete/.test(await status.textContent()), 45000, 500);
  assert.equal(await page.locator('main .state-complete').count(), 1);
  await shot(page, '22-live-view-ended');
});

t('playback: the grant timeline plays the recording with the player\'s controls', async () => {
  // The timeline opened while the session ran has followed it (live updates).
  const page = timeline;
  const control = page.locator('#timeline .rec-control', { hasText: 'Play recording' });
  await control.waitFor({ timeout: 15000 });
  assert.match(await control.textContent(), /Play recording\s*complete/);
  await shot(page, '23-timeline-recording');
  await control.getByRole('link', { name: 'Play recording' }).click();
  await page.waitForURL(`**/sessions/${sessionId}`);
  // It plays from the start at the recorded pace: the marker comes within seconds.
  await showing(page, 'the marker in the playback', MARKER, 30000);
  const player = page.frameLocator('iframe.player');
  await player.locator('.ap-control-bar, .ap-controls').first().waitFor();
  assert.ok(await player.locator('.ap-playback-button').count() >= 1, 'play/pause');
  assert.ok(await player.locator('.ap-progressbar, .ap-timeline').count() >= 1, 'seek bar');
  // Another speed: the player goes on from where it was, at 4×.
  await page.getByLabel('Speed').selectOption('4');
  await showing(page, 'the whole session at 4×', 'SECOND-56', 30000);
  await shot(page, '24-playback');
  // The frame is a sandbox: no cookie, no way into the console page.
  const frame = page.frames().find((f) => f.url().endsWith('/console/static/player.html'));
  assert.ok(frame, 'the player frame');
  assert.equal(await frame.evaluate(() => window.__cspWatch), true, 'the CSP watch runs in the frame');
  assert.equal(await frame.evaluate(() => self.origin), 'null', 'an opaque origin');
  assert.equal(await frame.evaluate(() => { try { return document.cookie; } catch (e) { return 'refused'; } }), 'refused');
  assert.equal(await frame.evaluate(() => { try { return parent.document.title; } catch (e) { return 'refused'; } }), 'refused');
});

t('refusal: a person who may not see the grant gets the API\'s answer', async () => {
  // What the API answers vera (a vendor of another organisation) ...
  const vera = await loginApi('vera');
  const answer = await apiAs(vera, 'GET', `/sessions/${sessionId}/recording`).then(() => null, (e) => e.message);
  assert.match(answer || 'served', /^GET \S+: 404 /, 'the API refuses');
  const { message } = JSON.parse(answer.replace(/^GET \S+: 404 /, ''));
  // ... is what the console shows her, where refusals go.
  const page = await person('vera', 'vera');
  await page.goto(`${base}/console/grants/${grantId}/sessions/${sessionId}`);
  const refusal = page.locator('main .form-error');
  await refusal.waitFor({ timeout: 10000 });
  assert.equal(await refusal.textContent(), message);
  assert.match(message, new RegExp(`recording ${sessionId}`));
  assert.equal(await page.locator('iframe.player').count(), 0, 'no player');
  await shot(page, '25-recording-refused');
});

t('no CSP violation and no script error in any page or player frame', () => {
  assert.deepEqual(problems, []);
});
