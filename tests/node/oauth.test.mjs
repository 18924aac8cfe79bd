// grantry's standard OAuth 2.0 surface (docs/architecture.md, OAuth 2.0 surface) driven by openid-client v6, a real
// third-party client: RFC 8414 discovery, the authorization-code flow with PKCE (S256),
// refresh, introspection (RFC 7662) and revocation (RFC 7009).
//
// The test starts the real binary itself (GRANTRY_BIN, default <repo>/target/debug/grantry) on a
// fresh data folder and a free port, registers clients through the CLI (--json), and plays the
// user's browser with fetch (manual redirects and cookies) against the login and consent pages.
// It runs on SQLite and once more on a database it creates with psql (and drops afterwards) on the
// PostgreSQL server named by GRANTRY_TEST_DATABASE_URL. Without that server it refuses to start,
// saying how to fix it, unless GRANTRY_TEST_SKIP_POSTGRES=1 asks for the SQLite half only
// (GRANTRY_TEST_REQUIRE_POSTGRES=1, set by ./scripts/test and CI, forbids skipping).
//
// Run: ./scripts/test node, or npm test (in tests/node) with Node.js 20 or newer

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as client from 'openid-client';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..', '..');
const GRANTRY_BIN = (() => {
  const bin = process.env.GRANTRY_BIN || join(HERE, '..', '..', 'target', 'debug', 'grantry');
  return isAbsolute(bin) ? bin : resolve(REPO_ROOT, bin);
})();
const PG_SERVER_URL = (process.env.GRANTRY_TEST_DATABASE_URL || '').trim();
const REQUIRE_POSTGRES = (process.env.GRANTRY_TEST_REQUIRE_POSTGRES || '').trim() === '1';
const SKIP_POSTGRES = (process.env.GRANTRY_TEST_SKIP_POSTGRES || '').trim() === '1';

// never contacted: the test reads the redirect from the Location header instead of following it
const REDIRECT_URI = 'http://127.0.0.1:9/oauth/callback';
const SCOPES = ['lists:read', 'lists:write'];
const SCOPE = SCOPES.join(' ');
const STARTUP_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 10_000;

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
  if (!PG_SERVER_URL) return 'GRANTRY_TEST_DATABASE_URL is not set';
  const out = spawnSync('psql', [PG_SERVER_URL, '-X', '-q', '-t', '-c', 'SELECT 1'], { encoding: 'utf8', timeout: 30_000 });
  if (out.error?.code === 'ENOENT') return 'psql is not on PATH (the suite creates its databases with it)';
  if (out.error) return `PostgreSQL at ${redacted(PG_SERVER_URL)} did not answer: ${out.error.message}`;
  if (out.status !== 0) return `PostgreSQL is not reachable at ${redacted(PG_SERVER_URL)}: ${out.stderr.trim()}`;
  return null;
}

/** The backends to run on: both, or SQLite alone when told to skip PostgreSQL. Refuses to start
 * (throws, which fails the file before any test) when PostgreSQL is wanted but not there. */
function backends() {
  if (SKIP_POSTGRES && REQUIRE_POSTGRES) {
    throw new Error('GRANTRY_TEST_SKIP_POSTGRES=1 contradicts GRANTRY_TEST_REQUIRE_POSTGRES=1 (set by ./scripts/test and CI); unset one of them');
  }
  if (SKIP_POSTGRES) {
    console.log('GRANTRY_TEST_SKIP_POSTGRES=1: the PostgreSQL half of the Node suite is skipped; every test runs on SQLite only');
    return ['sqlite'];
  }
  const problem = postgresProblem();
  if (problem) {
    throw new Error(`${problem}. Every test of the Node suite runs on SQLite and on PostgreSQL: start PostgreSQL and set ` +
      'GRANTRY_TEST_DATABASE_URL to a server on which the tests may create databases ' +
      '(e.g. postgres://postgres@127.0.0.1:5432/postgres), or run ./scripts/test node, which does both; ' +
      'GRANTRY_TEST_SKIP_POSTGRES=1 runs the SQLite half only.');
  }
  return ['sqlite', 'postgres'];
}

const BACKENDS = backends();

class Grantry {
  constructor(backend) {
    this.backend = backend;
    this.workdir = mkdtempSync(join(tmpdir(), `grantry-node-${backend}-`));
    this.dataDir = join(this.workdir, 'data');
    this.stdoutPath = join(this.workdir, 'server.stdout.log');
    this.stderrPath = join(this.workdir, 'server.stderr.log');
    this.dbname = null;
    this.databaseUrl = null;
    this.proc = null;
    this.exited = null;
    this.base = '';
  }

  globalArgs() {
    return ['--data', this.dataDir, ...(this.databaseUrl ? ['--database', this.databaseUrl] : [])];
  }

  async start() {
    if (this.backend === 'postgres') {
      this.dbname = `grantry_node_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
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
      if (await this.waitHealthy()) return;
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

// ---- the integrator's setup (CLI) ------------------------------------------------------------------

function registerClient(server, { isPublic = false } = {}) {
  const args = ['app', 'add', '--org', 'default', '--name', `openid-client-${randomUUID().slice(0, 6)}`,
    '--description', 'openid-client black-box client', '--redirect-uri', REDIRECT_URI];
  if (isPublic) args.push('--public');
  for (const scope of SCOPES) args.push('--scope', scope);
  const app = server.cli(args);
  assert.ok(app.client_id, JSON.stringify(app));
  assert.equal('client_secret' in app, !isPublic, JSON.stringify(app));
  return app;
}

function addUser(server) {
  const username = `ann-${randomUUID().slice(0, 6)}`;
  const password = randomBytes(18).toString('base64url');
  const args = ['user', 'add', '--org', 'default', '--username', username, '--email', `${username}@example.com`,
    '--kind', 'ui', '--password-stdin'];
  for (const grant of SCOPES) args.push('--grant', grant);
  server.cli(args, `${password}\n`);
  return { username, password };
}

// ---- a browser: cookies, forms, manual redirects ---------------------------------------------------

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower];
  });
}

function attributes(tag) {
  const attrs = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/** Every <form> in the page: action, method, named inputs and submit buttons. */
function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attributes(m[1]);
    const form = { action: a.action ?? '', method: (a.method ?? 'get').toLowerCase(), fields: {}, buttons: [] };
    for (const t of m[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
      const ta = attributes(t[2]);
      const type = (ta.type ?? (t[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
      if (type === 'submit') form.buttons.push([ta.name ?? '', ta.value ?? '']);
      else if (ta.name) form.fields[ta.name] = ta.value ?? '';
    }
    forms.push(form);
  }
  return forms;
}

class Browser {
  constructor() {
    this.cookies = new Map();
  }

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const resp = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    for (const line of resp.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return resp;
  }

  async onlyForm(url, action) {
    const resp = await this.request(url);
    const html = await resp.text();
    assert.equal(resp.status, 200, html.slice(0, 2000));
    assert.match(resp.headers.get('content-type') ?? '', /^text\/html/);
    const forms = parseForms(html);
    assert.equal(forms.length, 1, html);
    const [form] = forms;
    assert.equal(form.method, 'post');
    assert.equal(new URL(form.action, url).pathname, action);
    return { form, target: new URL(form.action, url).href };
  }

  async post(url, fields) {
    return this.request(url, { method: 'POST', body: new URLSearchParams(fields) });
  }

  /** Opens the authorization URL, signs in, answers the consent page, and returns the
   * redirect back to the application (the Location header) without following it. */
  async authorize(authorizationUrl, { username, password }, decision = 'allow') {
    const authUrl = new URL(authorizationUrl);

    // 1. not signed in: the login page
    const login = await this.onlyForm(authUrl.href, '/oauth/authorize/login');
    for (const name of ['username', 'password', 'query']) assert.ok(name in login.form.fields, JSON.stringify(login.form));
    assert.equal(login.form.fields.query, authUrl.search.slice(1));

    // 2. sign in: 303 back to the authorization URL with a session cookie
    const signedIn = await this.post(login.target, { ...login.form.fields, username, password });
    assert.equal(signedIn.status, 303, await signedIn.text());
    assert.ok(this.cookies.has('grantry_session'), 'no grantry_session cookie after signing in');
    const back = new URL(signedIn.headers.get('location'), login.target);
    assert.equal(back.pathname, '/oauth/authorize');
    assert.equal(back.search, authUrl.search);

    // 3. the consent page
    const consent = await this.onlyForm(back.href, '/oauth/authorize');
    assert.ok(consent.form.fields.query && consent.form.fields.csrf, JSON.stringify(consent.form));
    assert.deepEqual(consent.form.buttons.toSorted(), [['decision', 'allow'], ['decision', 'deny']]);

    // 4. press the button
    const answer = await this.post(consent.target, { ...consent.form.fields, decision });
    assert.equal(answer.status, 303, await answer.text());
    const location = answer.headers.get('location');
    assert.ok(location.startsWith(`${REDIRECT_URI}?`), location);
    return new URL(location);
  }
}

// ---- openid-client ---------------------------------------------------------------------------------

async function discover(server, app, auth) {
  return client.discovery(new URL(server.base), app.client_id, app.client_secret, auth, {
    execute: [client.allowInsecureRequests], // plain http on loopback
    algorithm: 'oauth2', // RFC 8414 metadata, not OpenID Connect discovery
  });
}

async function authorize(server, config, user, decision = 'allow') {
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
  });
  assert.equal(url.href.split('?')[0], server.url('/oauth/authorize'));
  const location = await new Browser().authorize(url, user, decision);
  return { location, state, codeVerifier };
}

async function restDatabases(server, accessToken) {
  const resp = await fetch(server.url('/rest/databases'), {
    headers: { authorization: `Bearer ${accessToken}` },
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  await resp.arrayBuffer();
  return resp.status;
}

function assertScope(scope) {
  assert.deepEqual(scope.split(' ').sort(), [...SCOPES].sort());
}

// ---- tests -----------------------------------------------------------------------------------------

for (const backend of BACKENDS) {
  describe(`openid-client against grantry on ${backend}`, () => {
    const server = new Grantry(backend);

    before(async () => {
      await server.start();
    });

    after(async () => {
      await server.stop();
      server.cleanup();
    });

    // attach the server's logs to a failing test's error
    const check = (name, fn) =>
      it(name, async () => {
        try {
          await fn();
        } catch (err) {
          err.message += `\n${server.logs()}`;
          throw err;
        } finally {
          assert.equal(server.exited, null, `grantry exited during the test: ${JSON.stringify(server.exited)}`);
        }
      });

    check('discovers the RFC 8414 metadata', async () => {
      const app = registerClient(server);
      const config = await discover(server, app, client.ClientSecretBasic(app.client_secret));
      const meta = config.serverMetadata();
      assert.equal(meta.issuer, server.base);
      assert.equal(meta.authorization_endpoint, server.url('/oauth/authorize'));
      assert.equal(meta.token_endpoint, server.url('/oauth/token'));
      assert.equal(meta.introspection_endpoint, server.url('/oauth/introspect'));
      assert.equal(meta.revocation_endpoint, server.url('/oauth/revoke'));
      assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
      assert.ok(meta.supportsPKCE('S256'));
      assert.ok(!meta.supportsPKCE('plain'));
      for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) {
        assert.ok(meta.grant_types_supported.includes(g), g);
      }
      for (const m of ['client_secret_basic', 'client_secret_post', 'none']) {
        assert.ok(meta.token_endpoint_auth_methods_supported.includes(m), m);
      }
      for (const s of SCOPES) assert.ok(meta.scopes_supported.includes(s), s);
      assert.equal(config.clientMetadata().client_id, app.client_id);
    });

    for (const [method, auth] of [
      ['client_secret_basic', (secret) => client.ClientSecretBasic(secret)],
      ['client_secret_post', (secret) => client.ClientSecretPost(secret)],
    ]) {
      check(`confidential client (${method}): PKCE code flow, refresh, introspection, revocation`, async () => {
        const app = registerClient(server);
        const user = addUser(server);
        const config = await discover(server, app, auth(app.client_secret));

        const { location, state, codeVerifier } = await authorize(server, config, user);
        assert.equal(location.searchParams.get('state'), state);

        const tokens = await client.authorizationCodeGrant(config, location, {
          pkceCodeVerifier: codeVerifier,
          expectedState: state,
        });
        assert.equal(tokens.token_type, 'bearer');
        assert.ok(tokens.access_token && tokens.refresh_token);
        assert.ok(tokens.expiresIn() > 0 && tokens.expiresIn() <= 14400, String(tokens.expiresIn()));
        assertScope(tokens.scope);

        const api = await client.fetchProtectedResource(config, tokens.access_token,
          new URL(server.url('/rest/databases')), 'GET');
        assert.equal(api.status, 200, await api.text());

        const info = await client.tokenIntrospection(config, tokens.access_token, { token_type_hint: 'access_token' });
        assert.equal(info.active, true, JSON.stringify(info));
        assert.equal(info.client_id, app.client_id);
        assertScope(info.scope);
        assert.equal(info.username, user.username);
        assert.equal(info.token_type.toLowerCase(), 'bearer');
        assert.equal(info.iss, server.base);
        assert.ok(info.exp > info.iat, JSON.stringify(info));

        const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
        assert.ok(refreshed.access_token);
        assertScope(refreshed.scope);
        const refreshToken = refreshed.refresh_token ?? tokens.refresh_token;
        assert.equal(await restDatabases(server, refreshed.access_token), 200);
        assert.equal((await client.tokenIntrospection(config, refreshToken, { token_type_hint: 'refresh_token' })).active, true);

        // revoke the access token: it stops at once
        await client.tokenRevocation(config, refreshed.access_token, { token_type_hint: 'access_token' });
        assert.equal((await client.tokenIntrospection(config, refreshed.access_token)).active, false);
        assert.equal(await restDatabases(server, refreshed.access_token), 401);

        // an unknown token revokes fine (RFC 7009 §2.2)
        await client.tokenRevocation(config, 'no-such-token');

        // revoke the refresh token: no more refreshing
        await client.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
        assert.equal((await client.tokenIntrospection(config, refreshToken)).active, false);
        await assert.rejects(client.refreshTokenGrant(config, refreshToken), (err) => {
          assert.ok(err instanceof client.ResponseBodyError, String(err));
          assert.equal(err.error, 'invalid_grant');
          return true;
        });
      });
    }

    check('public client (none): PKCE code flow, refresh, revocation', async () => {
      const app = registerClient(server, { isPublic: true });
      const user = addUser(server);
      const config = await discover(server, app, client.None());
      assert.equal(config.clientMetadata().client_secret, undefined);

      const { location, state, codeVerifier } = await authorize(server, config, user);
      const tokens = await client.authorizationCodeGrant(config, location, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
      });
      assert.ok(tokens.access_token && tokens.refresh_token);
      assertScope(tokens.scope);
      assert.equal(await restDatabases(server, tokens.access_token), 200);

      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      const refreshToken = refreshed.refresh_token ?? tokens.refresh_token;
      assert.equal(await restDatabases(server, refreshed.access_token), 200);

      await client.tokenRevocation(config, refreshed.access_token);
      assert.equal(await restDatabases(server, refreshed.access_token), 401);
      await client.tokenRevocation(config, refreshToken);
      await assert.rejects(client.refreshTokenGrant(config, refreshToken), { error: 'invalid_grant' });
    });

    check('public client: a wrong code_verifier is refused', async () => {
      const app = registerClient(server, { isPublic: true });
      const config = await discover(server, app, client.None());
      const { location, state } = await authorize(server, config, addUser(server));
      await assert.rejects(
        client.authorizationCodeGrant(config, location, {
          pkceCodeVerifier: client.randomPKCECodeVerifier(),
          expectedState: state,
        }),
        { error: 'invalid_grant' },
      );
    });

    check('deny: access_denied with the state, seen by openid-client as an authorization error', async () => {
      const app = registerClient(server);
      const config = await discover(server, app, client.ClientSecretBasic(app.client_secret));
      const { location, state, codeVerifier } = await authorize(server, config, addUser(server), 'deny');
      assert.equal(location.searchParams.get('error'), 'access_denied');
      assert.equal(location.searchParams.get('state'), state);
      assert.equal(location.searchParams.get('code'), null);
      await assert.rejects(
        client.authorizationCodeGrant(config, location, { pkceCodeVerifier: codeVerifier, expectedState: state }),
        (err) => {
          assert.ok(err instanceof client.AuthorizationResponseError, String(err));
          assert.equal(err.error, 'access_denied');
          return true;
        },
      );
    });

    check('an API user: one configuration for client_credentials, introspection and revocation', async () => {
      const username = `bot-${randomUUID().slice(0, 6)}`;
      server.cli(['user', 'add', '--org', 'default', '--username', username, '--email', `${username}@example.com`,
        '--kind', 'api', '--grant', 'lists:read']);
      const key = server.cli(['key', 'generate', '--org', 'default', '--username', username]);
      const config = await discover(server, { client_id: key.key_id, client_secret: key.secret },
        client.ClientSecretBasic(key.secret));
      const tokens = await client.clientCredentialsGrant(config);
      assert.equal(tokens.token_type, 'bearer');
      assert.equal(await restDatabases(server, tokens.access_token), 200);
      const info = await client.tokenIntrospection(config, tokens.access_token);
      assert.equal(info.active, true);
      assert.equal(info.client_id, key.key_id);
      assert.equal(info.username, username);
      await client.tokenRevocation(config, tokens.access_token);
      assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false);
      assert.equal(await restDatabases(server, tokens.access_token), 401);
    });

    check('a reused code is refused and revokes the tokens of its first redemption', async () => {
      const app = registerClient(server);
      const config = await discover(server, app, client.ClientSecretBasic(app.client_secret));
      const { location, state, codeVerifier } = await authorize(server, config, addUser(server));
      const checks = { pkceCodeVerifier: codeVerifier, expectedState: state };

      const first = await client.authorizationCodeGrant(config, location, checks);
      assert.equal(await restDatabases(server, first.access_token), 200);

      await assert.rejects(client.authorizationCodeGrant(config, location, checks), (err) => {
        assert.ok(err instanceof client.ResponseBodyError, String(err));
        assert.equal(err.error, 'invalid_grant');
        return true;
      });

      assert.equal((await client.tokenIntrospection(config, first.access_token)).active, false);
      assert.equal((await client.tokenIntrospection(config, first.refresh_token)).active, false);
      assert.equal(await restDatabases(server, first.access_token), 401);
      await assert.rejects(client.refreshTokenGrant(config, first.refresh_token), { error: 'invalid_grant' });
    });
  });
}
