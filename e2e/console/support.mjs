// What the console's end-to-end tests share: where the binaries are, child processes, waiting,
// HTTPS calls that trust only the test server's CA, and the Content-Security-Policy watch.
//
// Environment: JITGATE_BIN (default <target>/debug/jitgate), JITGATE_SIM_PLC (default
// <target>/debug/examples/sim_plc), where <target> is $CARGO_TARGET_DIR or ../../target;
// CHROMIUM (default /usr/bin/chromium); SCREENSHOTS (default <target>/console-screenshots).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
const target = process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR) : path.join(repo, 'target');
export const BIN = process.env.JITGATE_BIN || path.join(target, 'debug', 'jitgate');
export const SIM_PLC = process.env.JITGATE_SIM_PLC || path.join(target, 'debug', 'examples', 'sim_plc');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = process.env.SCREENSHOTS || path.join(repo, 'target', 'console-screenshots');

/** Every child started here, stopped by `stopAll`. */
export const children = [];

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function start(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  child.log = '';
  child.stdout.on('data', (d) => { child.log += d; });
  child.stderr.on('data', (d) => { child.log += d; });
  child.on('exit', (code, sig) => { child.exited = `${code ?? sig}`; });
  child.name = name;
  children.push(child);
  return child;
}

export async function stopAll() {
  for (const c of [...children].reverse()) {
    if (c.exited === undefined) c.kill('SIGTERM');
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const c of children) if (c.exited === undefined) c.kill('SIGKILL');
}

export async function waitFor(what, fn, ms = 30000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export async function waitPort(port, child) {
  await waitFor(`${child.name} on port ${port}`, async () => {
    if (child.exited !== undefined) throw new Error(`${child.name} exited (${child.exited}): ${child.log}`);
    return portOpen(port);
  }, 60000);
}

/** The two tables of bootstrap-credentials.toml (`key = "value"` lines). */
export function readCreds(file) {
  const out = {};
  let section = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const sec = line.match(/^\[(.+)\]\s*$/);
    if (sec) { section = sec[1]; out[section] = {}; continue; }
    const kv = line.match(/^\s*"?([\w-]+)"?\s*=\s*"(.*)"\s*$/);
    if (kv && section) out[section][kv[1]] = kv[2];
  }
  return out;
}

/** One HTTPS request, trusting only `ca` (the CA `jitgate up --tls` generated). */
export function request(url, { method = 'GET', headers = {}, body, ca } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/** `/api/v1` calls as a bearer of `token`: parsed JSON, or a thrown error naming the answer. */
export function apiClient(base, ca) {
  return async function apiAs(token, method, p, body) {
    const r = await request(`${base}/api/v1${p}`, {
      method, ca,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = r.text ? JSON.parse(r.text) : null;
    if (r.status >= 400) throw new Error(`${method} ${p}: ${r.status} ${r.text}`);
    return data;
  };
}

/**
 * A `jitgate up` on a free port with its data in `dir/data`: its base URL, its bootstrap
 * credentials and its data directory, once all are there. Plain HTTP on loopback
 * (`http://localhost:PORT`), or with `tls` its own certificate (`https://127.0.0.1:PORT`,
 * and `ca`: the PEM of the CA that signed it). `env`: more environment for the server.
 */
export async function startUp(dir, { tls = false, env = {} } = {}) {
  const port = await freePort();
  const data = path.join(dir, 'data');
  const args = ['up', ...(tls ? ['--tls'] : []), '--data-dir', data, '--listen', `127.0.0.1:${port}`];
  const up = start('jitgate up', BIN, args, { env: { ...process.env, JITGATE_LOG: 'warn', ...env } });
  await waitPort(port, up);
  const credsFile = path.join(data, 'bootstrap-credentials.toml');
  await waitFor('bootstrap credentials', () => fs.existsSync(credsFile));
  return {
    base: tls ? `https://127.0.0.1:${port}` : `http://localhost:${port}`,
    creds: readCreds(credsFile),
    data,
    ca: tls ? fs.readFileSync(path.join(data, 'tls', 'ca-cert.pem')) : undefined,
  };
}

/**
 * A page of a new browser context signed in to the console as `who` with the password of
 * `creds`; the context's CSP violations and script errors go to `errors` (see watchCsp),
 * named `name` (default: `who`). A server on `https:` is one `startUp` gave its own
 * certificate, which the browser is told to accept.
 */
export async function signInPage(browser, base, creds, who, errors, { name = who, width = 1400 } = {}) {
  const context = await browser.newContext({
    viewport: { width, height: 900 }, ignoreHTTPSErrors: base.startsWith('https:'),
  });
  await watchCsp(context, name, errors);
  const page = await context.newPage();
  await page.goto(`${base}/console/`);
  await page.getByLabel('Identity').fill(who);
  await page.getByLabel('Password').fill(creds.passwords[who]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  return page;
}

/**
 * `/api/v1` calls as named identities over plain HTTP: each signs in once with its password
 * from `creds` and its token is kept; `bearer` (an API key) replaces it for one call. Parsed
 * JSON, or a thrown error naming the answer.
 */
export function signedInApi(base, creds) {
  const tokens = {};
  return async function api(who, method, p, body, bearer) {
    if (!bearer && !tokens[who]) {
      const r = await fetch(`${base}/api/v1/auth/login`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ identity: who, password: creds.passwords[who] }),
      });
      const text = await r.text();
      if (r.status !== 200) throw new Error(`login ${who}: ${r.status} ${text}`);
      tokens[who] = JSON.parse(text).token;
    }
    const r = await fetch(`${base}/api/v1${p}`, {
      method,
      headers: { Authorization: `Bearer ${bearer || tokens[who]}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    if (r.status >= 400) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/**
 * Report every Content-Security-Policy violation in every page and frame of `context` (the
 * console page and the sandboxed recording player) into `sink`, with the script errors.
 * Playwright's init script runs in each frame before the page's own scripts; it marks the
 * frame (`__cspWatch`), so a test can check the watch ran where it matters.
 */
export async function watchCsp(context, name, sink) {
  await context.addInitScript(() => {
    window.__cspWatch = true;
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} in ${e.documentURI}`);
    });
  });
  context.on('page', (page) => watchPage(page, name, sink));
  for (const page of context.pages()) watchPage(page, name, sink);
}

function watchPage(page, name, sink) {
  page.on('console', (m) => {
    if (/CSP violation|Content Security Policy|Refused to/.test(m.text())) sink.push(`${name}: ${m.text()}`);
  });
  page.on('pageerror', (e) => sink.push(`${name}: script error: ${e.message}`));
}
