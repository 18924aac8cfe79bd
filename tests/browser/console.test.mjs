// grantry's admin console (README, The admin console) driven by a real browser: Debian's
// Chromium through playwright-core. One walk through the console as its users see it, each step
// asserting what the page shows and what the server answered:
//
//   a. the first sign-in with the one-time admin password, which asks for a new password first
//   b. Organization Settings → Application Account Access → Add Application, whose Client Id and
//      Client Secret are shown once (with Copy buttons)
//   c. Add Account Access for the admin; its refresh token is traded at /oauth/token and the
//      access token opens /rest/databases
//   d. Delete of that account access (behind a confirmation page) refuses both tokens at once
//   e. API Users: an API user with two secret keys whose bearer values open /rest/databases;
//      deleting key 1 makes key 2 key 1, and the deleted key counts down its grace period
//   f. the audit log lists what the walk did
//   g. a `user`-role account lands on My account, sees no admin navigation, and gets a 403 page
//      on an admin page
//   h. Sign out ends the session: the admin pages lead to the sign-in page again
//
// The test starts the real binary itself (GRANTRY_BIN, default <repo>/target/debug/grantry) on a
// fresh data folder and a free port, and reads the one-time admin password from its stdout.
// The walk runs on SQLite, and once more on a database it creates with psql (and drops
// afterwards) on the PostgreSQL server named by GRANTRY_TEST_DATABASE_URL when that is set
// (GRANTRY_TEST_REQUIRE_POSTGRES=1, set by ./scripts/test and CI, makes a missing URL a failure;
// GRANTRY_TEST_SKIP_POSTGRES=1 asks for the SQLite half only).
//
// With GRANTRY_SCREENSHOTS=1 (set by ./scripts/test) the SQLite walk also writes the console's
// screenshots, at laptop (1280x800) and phone (390x844) width, to docs/console/<page>-<width>.png;
// without it nothing under docs/ is written.
//
// CHROMIUM names the browser binary (default /usr/bin/chromium: scripts/install-test-deps browser).
//
// Run: ./scripts/test browser, or npm test (in tests/browser) with Node.js 20 or newer

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..', '..');
const GRANTRY_BIN = (() => {
  const bin = process.env.GRANTRY_BIN || join(REPO_ROOT, 'target', 'debug', 'grantry');
  return isAbsolute(bin) ? bin : resolve(REPO_ROOT, bin);
})();
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PG_SERVER_URL = (process.env.GRANTRY_TEST_DATABASE_URL || '').trim();
const REQUIRE_POSTGRES = (process.env.GRANTRY_TEST_REQUIRE_POSTGRES || '').trim() === '1';
const SKIP_POSTGRES = (process.env.GRANTRY_TEST_SKIP_POSTGRES || '').trim() === '1';
const SCREENSHOTS = (process.env.GRANTRY_SCREENSHOTS || '').trim() === '1';
const SCREENSHOT_DIR = join(REPO_ROOT, 'docs', 'console');
const WIDTHS = [
  ['laptop', { width: 1280, height: 800 }],
  ['phone', { width: 390, height: 844 }],
];

const STARTUP_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 10_000;
const STEP_TIMEOUT_MS = 90_000;
const ADMIN_PASSWORD_RE = /One-time admin password \(shown once, keep it\): (\S+)/;

// what the walk creates
const APP_NAME = 'Console test app';
const APP_DESCRIPTION = 'Made by the browser suite';
const APP_SCOPES = ['lists:read', 'lists:write'];
const API_USER = 'sync-bot';
const ALICE = { username: 'alice', email: 'alice@example.com', password: 'alice-password-123' };

// ---- preconditions -------------------------------------------------------------------------------

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

if (!executable(GRANTRY_BIN)) {
  throw new Error(`grantry binary not found at ${GRANTRY_BIN}; build it (cargo build -p grantry) or set GRANTRY_BIN`);
}
if (!executable(CHROMIUM)) {
  throw new Error(`Chromium not found at ${CHROMIUM}; install it (scripts/install-test-deps browser) or set CHROMIUM`);
}

// ---- the server ----------------------------------------------------------------------------------

/** The caller's environment without GRANTRY_* settings that could change what is tested. */
function childEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GRANTRY_')));
  env.GRANTRY_LOG = 'debug';
  return env;
}

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

function psql(url, sql) {
  const out = spawnSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (out.error) throw out.error;
  if (out.status !== 0) throw new Error(`psql ${sql} failed (${out.status}): ${out.stderr.trim()}`);
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** The URL without its password, for messages. */
function redacted(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return '(not a URL)';
  }
}

/** Why the PostgreSQL half cannot run, or null when the server answers. */
function postgresProblem() {
  const out = spawnSync('psql', [PG_SERVER_URL, '-X', '-q', '-t', '-c', 'SELECT 1'], { encoding: 'utf8', timeout: 30_000 });
  if (out.error?.code === 'ENOENT') return 'psql is not on PATH (the suite creates its databases with it)';
  if (out.error) return `PostgreSQL at ${redacted(PG_SERVER_URL)} did not answer: ${out.error.message}`;
  if (out.status !== 0) return `PostgreSQL is not reachable at ${redacted(PG_SERVER_URL)}: ${out.stderr.trim()}`;
  return null;
}

/** The backends to run on: SQLite, and PostgreSQL when GRANTRY_TEST_DATABASE_URL names one.
 * Refuses to start (throws, which fails the file before any test) when PostgreSQL is required
 * but not named, or named but not reachable. */
function backends() {
  if (SKIP_POSTGRES && REQUIRE_POSTGRES) {
    throw new Error('GRANTRY_TEST_SKIP_POSTGRES=1 contradicts GRANTRY_TEST_REQUIRE_POSTGRES=1 (set by ./scripts/test and CI); unset one of them');
  }
  if (SKIP_POSTGRES) {
    console.log('GRANTRY_TEST_SKIP_POSTGRES=1: the PostgreSQL half of the browser suite is skipped; the walk runs on SQLite only');
    return ['sqlite'];
  }
  if (!PG_SERVER_URL) {
    if (REQUIRE_POSTGRES) {
      throw new Error('GRANTRY_TEST_DATABASE_URL is not set, and GRANTRY_TEST_REQUIRE_POSTGRES=1 requires the PostgreSQL half: ' +
        'set it to a server on which the tests may create databases (e.g. postgres://postgres@127.0.0.1:5432/postgres), ' +
        'or run ./scripts/test browser, which does both');
    }
    console.log('GRANTRY_TEST_DATABASE_URL is not set: the browser suite runs on SQLite only');
    return ['sqlite'];
  }
  const problem = postgresProblem();
  if (problem) {
    throw new Error(`${problem}. The browser suite runs on SQLite and on the PostgreSQL server named by GRANTRY_TEST_DATABASE_URL: ` +
      'start it, or run ./scripts/test browser, which does both; GRANTRY_TEST_SKIP_POSTGRES=1 runs the SQLite half only.');
  }
  return ['sqlite', 'postgres'];
}

const BACKENDS = backends();

class Grantry {
  constructor(backend) {
    this.backend = backend;
    this.workdir = mkdtempSync(join(tmpdir(), `grantry-browser-${backend}-`));
    this.dataDir = join(this.workdir, 'data');
    this.stdoutPath = join(this.workdir, 'server.stdout.log');
    this.stderrPath = join(this.workdir, 'server.stderr.log');
    this.dbname = null;
    this.databaseUrl = null;
    this.proc = null;
    this.exited = null;
    this.base = '';
    this.adminPassword = null;
  }

  globalArgs() {
    return ['--data', this.dataDir, ...(this.databaseUrl ? ['--database', this.databaseUrl] : [])];
  }

  async start() {
    if (this.backend === 'postgres') {
      this.dbname = `grantry_browser_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
      psql(PG_SERVER_URL, `CREATE DATABASE "${this.dbname}"`);
      const url = new URL(PG_SERVER_URL);
      url.pathname = `/${this.dbname}`;
      this.databaseUrl = url.href;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const out = openSync(this.stdoutPath, 'w');
      const err = openSync(this.stderrPath, 'w');
      this.exited = null;
      this.proc = spawn(GRANTRY_BIN, [...this.globalArgs(), 'serve', '--listen', `127.0.0.1:${port}`], {
        cwd: this.workdir,
        env: childEnv(),
        stdio: ['ignore', out, err],
      });
      closeSync(out);
      closeSync(err);
      this.proc.on('exit', (code, signal) => {
        this.exited = { code, signal };
      });
      this.proc.on('error', (e) => {
        this.exited = { code: null, signal: null, error: e };
      });
      this.base = `http://127.0.0.1:${port}`;
      if (await this.waitHealthy()) {
        const match = readFileSync(this.stdoutPath, 'utf8').match(ADMIN_PASSWORD_RE);
        if (!match) throw new Error(`grantry printed no one-time admin password on its first start:\n${this.logs()}`);
        this.adminPassword = match[1];
        return;
      }
      await this.stop();
      const stderr = readFileSync(this.stderrPath, 'utf8');
      if (!/in use/i.test(stderr)) break; // not a port race: do not hide the failure
    }
    throw new Error(`grantry did not become healthy (${JSON.stringify(this.exited)}):\n${this.logs()}`);
  }

  async waitHealthy() {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exited) return false;
      try {
        const resp = await fetch(`${this.base}/healthz`, { signal: AbortSignal.timeout(500) });
        await resp.arrayBuffer();
        if (resp.status === 200) return true;
      } catch {
        // not listening yet
      }
      await sleep(25);
    }
    return false;
  }

  async stop() {
    if (this.proc && !this.exited) {
      const gone = new Promise((ok) => this.proc.once('exit', ok));
      this.proc.kill('SIGTERM');
      const killer = setTimeout(() => this.proc.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(killer);
    }
    this.proc = null;
  }

  cleanup() {
    if (this.dbname) psql(PG_SERVER_URL, `DROP DATABASE IF EXISTS "${this.dbname}" WITH (FORCE)`);
    rmSync(this.workdir, { recursive: true, force: true });
  }

  logs() {
    const read = (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return '';
      }
    };
    const strip = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
    return `--- grantry (${this.backend}) stdout (tail)\n${read(this.stdoutPath).slice(-3000)}\n` +
      `--- stderr (tail)\n${strip(read(this.stderrPath)).slice(-6000)}`;
  }

  /** Runs the CLI against the same store with --json and returns the parsed output. */
  cli(args, stdin) {
    const out = spawnSync(GRANTRY_BIN, [...this.globalArgs(), '--json', ...args], {
      cwd: this.workdir,
      env: childEnv(),
      input: stdin,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (out.error) throw out.error;
    assert.equal(out.status, 0, `grantry ${args.join(' ')} exited ${out.status}\nstdout: ${out.stdout}\nstderr: ${out.stderr}`);
    return JSON.parse(out.stdout);
  }

  url(path) {
    return `${this.base}${path}`;
  }
}

// ---- the APIs, as an integrator calls them (fetch) -------------------------------------------------

async function call(url, init = {}) {
  const resp = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  const text = await resp.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: resp.status, headers: resp.headers, text, json };
}

function refresh(server, app, refreshToken) {
  return call(server.url('/oauth/token'), {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: app.clientId,
      client_secret: app.clientSecret,
      refresh_token: refreshToken,
    }),
  });
}

function restDatabases(server, bearer) {
  return call(server.url('/rest/databases'), { headers: { authorization: `Bearer ${bearer}` } });
}

// ---- the browser -----------------------------------------------------------------------------------

/** What a page did wrong while the walk used it: 5xx answers, script errors, CSP violations. */
function watch(page, problems) {
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`${r.request().method()} ${new URL(r.url()).pathname} answered ${r.status()}`);
  });
  page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /content security policy/i.test(m.text())) problems.push(`CSP on ${page.url()}: ${m.text()}`);
  });
}

async function newPage(browser, server, problems) {
  const context = await browser.newContext({ viewport: WIDTHS[0][1], baseURL: server.base });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(15_000);
  watch(page, problems);
  return { context, page };
}

const pathOf = (page) => new URL(page.url()).pathname;

/** The page's main heading. */
async function heading(page) {
  return (await page.locator('main h1').first().textContent()).trim();
}

/** The flash message the page shows: { ok, text }, or null. */
async function flash(page) {
  const f = page.locator('main p.flash');
  if ((await f.count()) === 0) return null;
  const cls = (await f.first().getAttribute('class')) ?? '';
  return { ok: /\bok\b/.test(cls), text: (await f.first().textContent()).trim() };
}

async function assertFlash(page, pattern) {
  const f = await flash(page);
  assert.ok(f, `no flash message on ${page.url()}`);
  assert.ok(f.ok, `the flash on ${page.url()} is an error: ${f.text}`);
  assert.match(f.text, pattern);
}

/** Waits for the browser to show a new document in the page's main frame. */
function navigated(page) {
  return page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
}

/** Clicks `button`, which submits a form: asserts the POST to `post` answered `status` (and, for a
 * redirect, that it pointed at `location`), then waits until the browser shows `to` (default: where
 * the redirect pointed, else `post` itself, a page that answers the form). */
async function submit(page, button, { post, status = 303, location, to }) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === post),
    navigated(page),
    button.click(),
  ]);
  const body = status === 303 ? '' : await resp.text().catch(() => '');
  assert.equal(resp.status(), status, `POST ${post} answered ${resp.status()}, not ${status}: ${body.slice(0, 2000)}`);
  let pointed = null;
  if (status === 303) {
    pointed = new URL(resp.headers().location ?? '', resp.url()).pathname;
    if (location) assert.equal(pointed, location, `POST ${post} redirected to ${pointed}, not ${location}`);
  }
  await page.waitForLoadState('load');
  const landing = to ?? pointed ?? post;
  assert.equal(pathOf(page), landing, `after POST ${post} the browser shows ${page.url()}, not ${landing}`);
  return resp;
}

/** Clicks `link` and waits for the page at `to`, which must answer 200. */
async function follow(page, link, to) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'GET' && r.request().isNavigationRequest() && new URL(r.url()).pathname === to),
    navigated(page),
    link.click(),
  ]);
  if (resp.status() !== 200) {
    const body = await resp.text().catch(() => '');
    assert.fail(`GET ${to} answered ${resp.status()}, not 200: ${body.slice(0, 2000)}`);
  }
  await page.waitForLoadState('load');
  assert.equal(pathOf(page), to);
  return resp;
}

/** Opens `path`; returns the answer the browser ended at. */
async function open(page, path) {
  const resp = await page.goto(path);
  await page.waitForLoadState('load');
  return resp;
}

/** The console's page headers (README: no-store, CSP with only its own script, no framing). */
function assertPageHeaders(resp) {
  const h = resp.headers();
  assert.match(h['cache-control'] ?? '', /no-store/, `${resp.url()}: Cache-Control ${h['cache-control']}`);
  assert.equal((h['x-frame-options'] ?? '').toUpperCase(), 'DENY', `${resp.url()}: X-Frame-Options`);
  const csp = h['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/, `${resp.url()}: Content-Security-Policy ${csp}`);
  assert.match(csp, /frame-ancestors 'none'/, `${resp.url()}: Content-Security-Policy ${csp}`);
}

const consoleNav = (page) => page.getByRole('navigation', { name: 'Console' });

async function navLinks(page) {
  return (await consoleNav(page).getByRole('link').allTextContents()).map((t) => t.trim());
}

/** What the browser showed when a step failed: a screenshot and the HTML, next to the server's logs. */
async function keepEvidence(page, prefix) {
  if (!page || page.isClosed()) return;
  await page.screenshot({ path: `${prefix}.png`, fullPage: true }).catch(() => {});
  const html = await page.content().catch(() => '');
  try {
    writeFileSync(`${prefix}.html`, `<!-- ${page.url()} -->\n${html}`);
  } catch {
    // the evidence is a courtesy; the failure itself is reported anyway
  }
}

/** Screenshots of the page at laptop and phone width, in the SQLite walk with GRANTRY_SCREENSHOTS=1. */
async function screenshot(server, page, name) {
  if (!SCREENSHOTS || server.backend !== 'sqlite') return;
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  for (const [width, size] of WIDTHS) {
    await page.setViewportSize(size);
    await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
    await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}-${width}.png`), fullPage: true, animations: 'disabled' });
  }
  await page.setViewportSize(WIDTHS[0][1]);
}

/** The sign-in form, filled and sent; returns the POST's answer. */
async function signIn(page, { org = 'default', username, password }, landing) {
  assert.equal(pathOf(page), '/console/sign-in');
  await page.getByLabel('Organization', { exact: true }).fill(org);
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  return submit(page, page.getByRole('button', { name: 'Sign in', exact: true }), { post: '/console/sign-in', ...landing });
}

// ---- the walk ----------------------------------------------------------------------------------------

for (const backend of BACKENDS) {
  describe(`the console in Chromium on ${backend}`, () => {
    const server = new Grantry(backend);
    const problems = [];
    let browser;
    let admin; // { context, page }
    const app = {}; // clientId, clientSecret
    const access = {}; // refreshToken, accessToken
    const keys = []; // [{ secret, bearer }] in slot order
    let apiUserPath = '';
    let newAdminPassword = '';
    let failed = null;

    before(async () => {
      await server.start();
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'], headless: true });
      admin = await newPage(browser, server, problems);
    });

    after(async () => {
      await browser?.close();
      await server.stop();
      if (failed) {
        console.log(`the walk failed at "${failed}"; the server's files and the browser's last page (failure.png, ` +
          `failure.html) are kept in ${server.workdir}\n${server.logs()}`);
        if (server.dbname) psql(PG_SERVER_URL, `DROP DATABASE IF EXISTS "${server.dbname}" WITH (FORCE)`);
      } else {
        server.cleanup();
      }
    });

    /** One step of the walk; after a failed step the later ones are skipped, not failed again. */
    function step(name, fn) {
      it(name, { timeout: STEP_TIMEOUT_MS }, async (t) => {
        if (failed) {
          t.skip(`"${failed}" failed`);
          return;
        }
        try {
          await fn();
          assert.deepEqual(problems, [], 'the console misbehaved during this step');
        } catch (e) {
          failed = name;
          await keepEvidence(admin?.page, join(server.workdir, 'failure'));
          throw e;
        }
      });
    }

    step('a. the first sign-in with the one-time password asks for a new one, then shows Organization Settings', async () => {
      const { page } = admin;
      const landing = await open(page, '/');
      assert.equal(pathOf(page), '/console/sign-in', 'the root does not lead to the sign-in page');
      assert.equal(landing.status(), 200);
      assertPageHeaders(landing);
      assert.equal(await heading(page), 'Sign in to grantry');
      await screenshot(server, page, 'sign-in');

      // a wrong password is refused on the same page, which keeps what was typed
      await page.getByLabel('Organization', { exact: true }).fill('default');
      await page.getByLabel('Username', { exact: true }).fill('admin');
      await page.getByLabel('Password', { exact: true }).fill('not-the-password');
      await submit(page, page.getByRole('button', { name: 'Sign in', exact: true }), { post: '/console/sign-in', status: 401 });
      assert.match(await page.getByRole('alert').textContent(), /Wrong organization, username or password/);
      assert.equal(await page.getByLabel('Username', { exact: true }).inputValue(), 'admin');

      await signIn(page, { username: 'admin', password: server.adminPassword }, { location: '/console/password' });
      const session = (await admin.context.cookies()).find((c) => c.name === 'grantry_session');
      assert.ok(session, 'no grantry_session cookie after signing in');
      assert.equal(session.httpOnly, true, 'the session cookie is not HttpOnly');
      assert.equal(session.sameSite, 'Lax', 'the session cookie is not SameSite=Lax');
      assert.equal(await heading(page), 'Set a new password');

      // every other page sends the browser back here until the password is changed
      await open(page, '/console/settings');
      assert.equal(pathOf(page), '/console/password');

      newAdminPassword = `admin-${randomUUID()}`;
      await page.getByLabel('New password', { exact: true }).fill(newAdminPassword);
      await page.getByLabel('Repeat the new password', { exact: true }).fill(newAdminPassword);
      // /console forwards an org admin to Organization Settings
      await submit(page, page.getByRole('button', { name: 'Save password', exact: true }), {
        post: '/console/password',
        location: '/console',
        to: '/console/settings',
      });
      assert.equal(await heading(page), 'Organization Settings');
      await assertFlash(page, /Your password was changed/);
      assert.deepEqual(await navLinks(page), ['Organization Settings', 'Users', 'API Users', 'Audit log', 'My account']);
    });

    step('b. Add Application shows its Client Id and Client Secret once', async () => {
      const { page } = admin;
      const settings = await open(page, '/console/settings');
      assert.equal(settings.status(), 200);
      assertPageHeaders(settings);
      await page.getByRole('heading', { name: 'Application Account Access' }).waitFor();
      assert.match(await page.locator('main').textContent(), /No applications yet/);

      const panel = page.locator('details#add-application');
      assert.equal(await panel.getAttribute('open'), null, 'the Add Application form is open before it is asked for');
      await panel.locator('summary', { hasText: 'Add Application' }).click();
      assert.notEqual(await panel.getAttribute('open'), null, 'clicking Add Application did not open its form');
      const form = panel.locator('form');
      await form.getByLabel('Name', { exact: true }).fill(APP_NAME);
      await form.getByLabel('Description', { exact: true }).fill(APP_DESCRIPTION);
      const boxes = form.locator('input[type=checkbox][name=scope]');
      const offered = await boxes.evaluateAll((els) => els.map((e) => e.value));
      for (const scope of APP_SCOPES) assert.ok(offered.includes(scope), `no ${scope} checkbox among ${offered}`);
      for (const scope of offered) await form.locator(`input[name=scope][value="${scope}"]`).setChecked(APP_SCOPES.includes(scope));
      await submit(page, form.getByRole('button', { name: 'Add Application', exact: true }), { post: '/console/applications', status: 200 });

      assert.equal(await heading(page), `Application ${APP_NAME} added`);
      const id = page.locator('#client-id');
      const secret = page.locator('#client-secret');
      for (const field of [id, secret]) {
        assert.notEqual(await field.getAttribute('readonly'), null, 'a shown secret is not read-only');
      }
      app.clientId = await id.inputValue();
      app.clientSecret = await secret.inputValue();
      assert.match(app.clientId, /\S{8,}/, 'no Client Id shown');
      assert.match(app.clientSecret, /\S{16,}/, 'no Client Secret shown');
      assert.equal(await page.getByLabel('Client Id', { exact: true }).inputValue(), app.clientId);
      assert.equal(await page.getByLabel('Client Secret', { exact: true }).inputValue(), app.clientSecret);
      assert.match(await page.locator('main').textContent(), /shown only once/);
      for (const which of ['client-id', 'client-secret']) {
        assert.equal((await page.locator(`button[data-copy="${which}"]`).textContent()).trim(), 'Copy');
      }
      await screenshot(server, page, 'secret');

      // Copy puts the secret on the clipboard
      const copy = page.locator('button[data-copy="client-secret"]');
      await copy.click();
      await page.waitForFunction((b) => b.textContent === 'Copied', await copy.elementHandle());
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), app.clientSecret);

      // the secret is never shown again: not on the settings page, not on the application's page
      await follow(page, page.getByRole('link', { name: 'Done', exact: true }), '/console/settings');
      const row = page.locator('tbody tr', { hasText: app.clientId });
      assert.equal(await row.count(), 1, 'the new application is not listed');
      assert.match(await row.textContent(), new RegExp(`${APP_NAME}[\\s\\S]*${APP_DESCRIPTION}[\\s\\S]*confidential`));
      assert.ok(!(await page.content()).includes(app.clientSecret), 'the settings page shows the client secret');
      await follow(page, row.getByRole('link', { name: APP_NAME, exact: true }), `/console/applications/${app.clientId}`);
      assert.equal(await heading(page), APP_NAME);
      const facts = await page.locator('dl.facts').textContent();
      for (const scope of APP_SCOPES) assert.ok(facts.includes(scope), `the application's page does not list ${scope}`);
      assert.ok(!(await page.content()).includes(app.clientSecret), "the application's page shows the client secret");
    });

    step("c. Add Account Access shows a refresh token that the application trades for an access token", async () => {
      const { page } = admin;
      await open(page, '/console/settings');
      const panel = page.locator('details#add-account-access');
      await panel.locator('summary', { hasText: 'Add Account Access' }).click();
      const form = panel.locator('form');
      await form.getByLabel('Application', { exact: true }).selectOption({ label: APP_NAME });
      await form.getByLabel('Account', { exact: true }).selectOption('admin');
      await submit(page, form.getByRole('button', { name: 'Add', exact: true }), { post: '/console/access', status: 200 });

      assert.equal(await heading(page), `Account access added: ${APP_NAME} for admin`);
      const field = page.locator('#refresh-token');
      assert.notEqual(await field.getAttribute('readonly'), null, 'the refresh token is not read-only');
      access.refreshToken = await field.inputValue();
      assert.match(access.refreshToken, /\S{16,}/, 'no refresh token shown');
      assert.equal((await page.locator('button[data-copy="refresh-token"]').textContent()).trim(), 'Copy');

      const token = await refresh(server, app, access.refreshToken);
      assert.equal(token.status, 200, `POST /oauth/token (refresh_token): ${token.text}`);
      assert.equal(typeof token.json?.access_token, 'string', token.text);
      assert.match(token.json.token_type ?? '', /^bearer$/i, token.text);
      access.accessToken = token.json.access_token;
      const lists = await restDatabases(server, access.accessToken);
      assert.equal(lists.status, 200, `GET /rest/databases with the access token: ${lists.text}`);

      // the settings page lists the access, made by an admin, without its token
      await follow(page, page.getByRole('link', { name: 'Done', exact: true }), '/console/settings');
      const row = page.getByRole('link', { name: `Delete account access of ${APP_NAME} for admin` }).locator('xpath=ancestor::tr');
      assert.equal(await row.count(), 1, 'the new account access is not listed');
      const cells = (await row.locator('td').allTextContents()).map((t) => t.trim());
      assert.deepEqual([cells[0], cells[1], cells[2], cells[5]], [APP_NAME, 'admin', 'admin', 'admin'], `the access row: ${cells}`);
      assert.ok(!(await page.content()).includes(access.refreshToken), 'the settings page shows the refresh token');
      await screenshot(server, page, 'settings');
    });

    step('d. deleting the account access (after a confirmation page) refuses its tokens at once', async () => {
      const { page } = admin;
      await open(page, '/console/settings');
      const link = page.getByRole('link', { name: `Delete account access of ${APP_NAME} for admin` });
      assert.equal((await link.textContent()).trim(), 'Delete');
      await follow(page, link, '/console/access/delete');
      assert.equal(await heading(page), `Delete account access of ${APP_NAME} for admin?`);
      assert.match(await page.locator('ul.consequences').textContent(), /refused/);

      // Cancel changes nothing
      await follow(page, page.getByRole('link', { name: 'Cancel', exact: true }), '/console/settings');
      assert.equal((await restDatabases(server, access.accessToken)).status, 200, 'Cancel revoked the access');

      await follow(page, page.getByRole('link', { name: `Delete account access of ${APP_NAME} for admin` }), '/console/access/delete');
      await submit(page, page.locator('main form').getByRole('button', { name: 'Delete', exact: true }), {
        post: '/console/access/delete',
        to: '/console/settings',
      });
      assert.equal(await heading(page), 'Organization Settings');
      await assertFlash(page, /was deleted/);
      assert.match(await page.locator('main').textContent(), /No account access yet/);

      const lists = await restDatabases(server, access.accessToken);
      assert.equal(lists.status, 401, `GET /rest/databases with the deleted access's token: ${lists.status} ${lists.text}`);
      const again = await refresh(server, app, access.refreshToken);
      assert.equal(again.status, 400, `POST /oauth/token with the deleted access's refresh token: ${again.status} ${again.text}`);
      assert.equal(again.json?.error, 'invalid_grant', again.text);
    });

    step('e. API Users: two secret keys open the API; deleting key 1 makes key 2 key 1 and counts down', async () => {
      const { page } = admin;
      await open(page, '/console/settings');
      await follow(page, consoleNav(page).getByRole('link', { name: 'API Users', exact: true }), '/console/api-users');
      assert.equal(await heading(page), 'API Users');
      assert.equal(await consoleNav(page).locator('[aria-current=page]').textContent(), 'API Users');

      const panel = page.locator('details#add-api-user');
      await panel.locator('summary', { hasText: 'Add API user' }).click();
      const form = panel.locator('form');
      await form.getByLabel('Username', { exact: true }).fill(API_USER);
      await form.getByLabel('E-mail', { exact: true }).fill(`${API_USER}@example.com`);
      await form.locator('input[name=grant][value="lists:read"]').check();
      apiUserPath = `/console/api-users/${API_USER}`;
      await submit(page, form.getByRole('button', { name: 'Add API user', exact: true }), { post: '/console/api-users', to: apiUserPath });

      assert.equal(await heading(page), API_USER);
      await assertFlash(page, new RegExp(`API user ${API_USER} added with Key ID`));
      const facts = page.locator('dl.facts');
      assert.match(await facts.textContent(), /Key ID/);
      const keyId = (await page.locator('#key-id').textContent()).trim();
      assert.match(keyId, /\S{8,}/, 'no Key ID shown');
      assert.match(await page.locator('main').textContent(), /No secret keys/);

      for (const slot of [1, 2]) {
        await submit(page, page.getByRole('button', { name: 'Generate key', exact: true }), {
          post: `${apiUserPath}/keys`,
          status: 200,
        });
        assert.equal(await heading(page), `API secret key ${slot} generated for ${API_USER}`);
        assert.match(await page.locator('main').textContent(), new RegExp(`Key ID ${keyId}`));
        const secret = await page.locator('#secret-key').inputValue();
        const bearer = await page.locator('#bearer').inputValue();
        assert.match(secret, /\S{16,}/, `no secret key ${slot} shown`);
        assert.match(bearer, /\S{16,}/, `no bearer value ${slot} shown`);
        keys.push({ secret, bearer });
        await follow(page, page.getByRole('link', { name: 'Done', exact: true }), apiUserPath);
      }
      assert.notEqual(keys[0].bearer, keys[1].bearer);

      // both slots are in use: no third key
      const slots = (await page.locator('main tbody tr td:first-child').allTextContents()).map((t) => t.trim());
      assert.deepEqual(slots, ['API secret key 1', 'API secret key 2']);
      assert.equal(await page.getByRole('button', { name: 'Generate key', exact: true }).count(), 0, 'Generate key offered with both slots in use');
      assert.match(await page.locator('main').textContent(), /Both slots are in use/);
      assert.ok(!(await page.content()).includes(keys[0].secret), "the API user's page shows a secret key");
      await screenshot(server, page, 'api-user');

      for (const [i, key] of keys.entries()) {
        const lists = await restDatabases(server, key.bearer);
        assert.equal(lists.status, 200, `GET /rest/databases with key ${i + 1}'s bearer value: ${lists.text}`);
      }

      await follow(page, page.getByRole('link', { name: 'Delete API secret key 1', exact: true }), `${apiUserPath}/keys/1/delete`);
      assert.equal(await heading(page), `Delete API secret key 1 of ${API_USER}?`);
      const consequences = await page.locator('ul.consequences').textContent();
      assert.match(consequences, /keeps working for/);
      assert.match(consequences, /becomes API secret key 1/);
      await submit(page, page.locator('main form').getByRole('button', { name: 'Delete', exact: true }), {
        post: `${apiUserPath}/keys/1/delete`,
        to: apiUserPath,
      });
      await assertFlash(page, /API secret key 2 is now API secret key 1/);
      const left = (await page.locator('main tbody tr td:first-child').allTextContents()).map((t) => t.trim());
      assert.deepEqual(left, ['API secret key 1'], 'the slots after deleting key 1');
      const countdown = page.locator('[data-until]');
      assert.equal(await countdown.count(), 1, 'no countdown for the deleted key');
      assert.ok(Number(await countdown.getAttribute('data-until')) > Date.now(), 'the deleted key already stopped');
      // the page's script turns it into a running countdown
      await page.waitForFunction(() => /stops in \d+:\d\d/.test(document.querySelector('[data-until]')?.textContent ?? ''));
      await page.getByRole('button', { name: 'Generate key', exact: true }).waitFor();

      const kept = await restDatabases(server, keys[1].bearer);
      assert.equal(kept.status, 200, `GET /rest/databases with key 2's bearer value after key 1 was deleted: ${kept.text}`);
      const grace = await restDatabases(server, keys[0].bearer);
      assert.equal(grace.status, 200, `GET /rest/databases with the deleted key 1 inside its grace period: ${grace.text}`);
    });

    step('f. the audit log lists what the walk did', async () => {
      const { page } = admin;
      await follow(page, consoleNav(page).getByRole('link', { name: 'Audit log', exact: true }), '/console/audit');
      assert.equal(await heading(page), 'Audit log');
      const actions = (await page.locator('table.audit tbody tr td:nth-child(3)').allTextContents()).map((t) => t.trim());
      for (const action of ['application.created', 'account_access.created', 'account_access.deleted', 'api_key.generated', 'api_key.deleted']) {
        assert.ok(actions.includes(action), `the audit log has no ${action} row; it has ${[...new Set(actions)].join(', ')}`);
      }
      const created = page.locator('table.audit tbody tr', { hasText: 'application.created' }).first();
      assert.equal((await created.locator('td:nth-child(2)').textContent()).trim(), 'admin', 'application.created is not by admin');
      await screenshot(server, page, 'audit');

      // the Kind filter keeps only that kind
      await page.getByLabel('Kind', { exact: true }).selectOption({ label: 'API keys' });
      await Promise.all([navigated(page), page.getByRole('button', { name: 'Filter', exact: true }).click()]);
      await page.waitForLoadState('load');
      const query = new URL(page.url()).searchParams;
      assert.equal(pathOf(page), '/console/audit');
      assert.equal(query.get('kind'), 'api_key.', `the filter's query: ${query}`);
      const filtered = (await page.locator('table.audit tbody tr td:nth-child(3)').allTextContents()).map((t) => t.trim());
      assert.ok(filtered.length > 0 && filtered.every((a) => a.startsWith('api_key.')), `filtered by API keys: ${filtered}`);
    });

    step('g. a user-role account lands on My account, without the admin pages', async () => {
      const created = server.cli(['user', 'add', '--org', 'default', '--username', ALICE.username, '--email', ALICE.email,
        '--kind', 'ui', '--role', 'user', '--grant', 'lists:read', '--password-stdin'], `${ALICE.password}\n`);
      assert.ok(created, 'grantry user add printed nothing');

      const alice = await newPage(browser, server, problems);
      try {
        const { page } = alice;
        await open(page, '/');
        assert.equal(pathOf(page), '/console/sign-in');
        // /console forwards a user-role account to My account
        await signIn(page, ALICE, { location: '/console', to: '/console/account' });
        assert.equal(await heading(page), 'My account');
        const facts = await page.locator('dl.facts').textContent();
        assert.match(facts, /alice@example\.com/);
        assert.deepEqual(await navLinks(page), ['My account'], 'the navigation of a user-role account');

        for (const path of ['/console/settings', '/console/api-users', '/console/audit']) {
          const resp = await open(page, path);
          assert.equal(resp.status(), 403, `GET ${path} as a user-role account answered ${resp.status()}`);
          assert.equal(pathOf(page), path);
          assert.equal(await heading(page), 'Only org admins can open this page');
          assert.match(await page.getByRole('alert').textContent(), /My account only/);
          assert.equal(await page.getByRole('link', { name: 'Back to the console' }).count(), 1);
        }

        await open(page, '/console/account');
        await submit(page, page.getByRole('button', { name: 'Sign out', exact: true }), { post: '/console/sign-out', to: '/console/sign-in' });
        assert.equal(await heading(page), 'Sign in to grantry');
      } catch (e) {
        await keepEvidence(alice.page, join(server.workdir, 'failure-alice'));
        throw e;
      } finally {
        await alice.context.close();
      }
    });

    step('h. Sign out ends the session: the admin pages lead to the sign-in page', async () => {
      const { page, context } = admin;
      await open(page, '/console/settings');
      assert.equal(await heading(page), 'Organization Settings');
      const session = (await context.cookies()).find((c) => c.name === 'grantry_session');
      assert.ok(session, 'no session cookie before signing out');

      await submit(page, page.getByRole('button', { name: 'Sign out', exact: true }), { post: '/console/sign-out', to: '/console/sign-in' });
      assert.equal(await heading(page), 'Sign in to grantry');

      const resp = await open(page, '/console/settings');
      assert.equal(pathOf(page), '/console/sign-in', '/console/settings after signing out does not lead to the sign-in page');
      assert.equal(resp.request().redirectedFrom()?.url(), server.url('/console/settings'));

      // the session is over on the server too, not only forgotten by the browser
      const replay = await call(server.url('/console/settings'), { headers: { cookie: `grantry_session=${session.value}` } });
      assert.equal(replay.status, 303, `GET /console/settings with the signed-out session: ${replay.status}`);
      assert.equal(new URL(replay.headers.get('location'), server.base).pathname, '/console/sign-in');

      // and the browser was told to forget it
      const left = (await context.cookies()).filter((c) => c.name === 'grantry_session');
      assert.deepEqual(left.map((c) => c.value), [], 'POST /console/sign-out left the grantry_session cookie in the browser (no Set-Cookie removing it)');

      // and the new password is the admin's password now
      await signIn(page, { username: 'admin', password: newAdminPassword }, { location: '/console', to: '/console/settings' });
      assert.equal(await heading(page), 'Organization Settings');
    });
  });
}
