// A real private npm registry for tests (Verdaccio 6.8, installed by verdaccio-install.ts), so a
// rendered `.npmrc` is proven by a real `npm install` that only works when npm authenticates. One
// throwaway registry per instance, on 127.0.0.1 only, storage in its temp dir, no uplink (nothing
// is proxied to the public registry).
//
// Facts that shaped this (Verdaccio 6.8):
// - Every package needs `$authenticated` to be read, published or unpublished; an anonymous
//   request is answered 401, which npm reports as "Unable to authenticate".
// - Users live in an htpasswd file (verdaccio-htpasswd) that the test writes ({SHA} entries), with
//   registration closed (`max_users: -1`): nobody can make an account through the registry.
// - A token is what `npm login`'s legacy flow gets: `PUT /-/user/org.couchdb.user:NAME` with the
//   user's Basic credentials answers `{ token }` (an AES "legacy" token, new on every login, valid
//   until the registry's secret changes). Two logins give two different valid tokens.
// - The JSON log at level `http` has a line per request with the user the registry saw (or null):
//   requests() reads it, so a test can tell which token an `npm install` used. Some requests are
//   logged twice, first before the answer (user null, nothing sent), and a refused one may appear
//   twice; requests() drops the early lines. Verdaccio writes the Authorization header as "<Classified>".
// - It runs under the pinned Node (process.execPath), in its own process group under pdeathsig;
//   SIGTERM ends it. The lifecycle is lifecycle.ts's: exit hook, sweep of dirs of dead owners.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { daemonStopper, freePort, makeInstanceDir, readText, sleep, spawnDaemon, sweepStaleDaemons, tail, terminate } from './lifecycle.ts';
import { registryTools, type RegistryTools } from './verdaccio-install.ts';

/** One request as the registry logged it. */
export interface RegistryRequest {
  readonly method: string;
  readonly url: string;
  /** The user the registry authenticated, null for an anonymous request. */
  readonly user: string | null;
  readonly status: number;
}

export interface NpmRun {
  readonly code: number | null;
  /** stdout and stderr together. */
  readonly out: string;
}

export interface Verdaccio {
  /** 'http://127.0.0.1:PORT/' (npm's --registry). */
  readonly url: string;
  /** '127.0.0.1:PORT', for `//127.0.0.1:PORT/:_authToken=` lines. */
  readonly host: string;
  readonly port: number;
  /** The instance's temp dir (config, storage, htpasswd, log); the daemon's command line names it. */
  readonly dir: string;
  readonly tools: RegistryTools;
  /** A user who can log in with `password` (an htpasswd entry; the registry itself lets nobody sign up). */
  addUser(name: string, password: string): void;
  /** A new npm token for `name` (npm login's legacy flow); rejects when the registry refuses the password. */
  login(name: string, password: string): Promise<string>;
  /** Publishes a one-file package `name@version` with the real npm, as the owner of `token`. */
  publish(token: string, name: string, version: string): Promise<void>;
  /** Runs the pinned npm with `args` in `cwd`, reading `userconfig` (default: none), its cache in a temp dir. */
  npm(args: readonly string[], opts: { cwd: string; userconfig?: string }): Promise<NpmRun>;
  /** GET `path` with an optional bearer token: the status code. */
  status(path: string, token?: string): Promise<number>;
  /** Every request logged so far, in order. */
  requests(): RegistryRequest[];
  /** The registry's log so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const PREFIX = 'ps-verdaccio-';
const ENV_PATH = '/usr/bin:/bin';

/** Names the tests use: plain, so an htpasswd line or a URL needs no escaping. */
function checkName(what: string, value: string): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(value)) throw new Error(`${what} ${JSON.stringify(value)}: use a-z, 0-9, . _ -`);
  return value;
}

function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, timeout: 15_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url} timed out`)));
    req.once('error', reject);
    req.end(opts.body);
  });
}

function config(dir: string, port: number): string {
  return [
    `storage: ${JSON.stringify(join(dir, 'storage'))}`,
    'auth:',
    '  htpasswd:',
    `    file: ${JSON.stringify(join(dir, 'htpasswd'))}`,
    '    max_users: -1',
    'uplinks: {}',
    'packages:',
    "  '**':",
    '    access: $authenticated',
    '    publish: $authenticated',
    '    unpublish: $authenticated',
    `listen: 127.0.0.1:${port}`,
    'web:',
    '  enable: false',
    'log: { type: stdout, format: json, level: http }',
    '',
  ].join('\n');
}

export async function startVerdaccio(): Promise<Verdaccio> {
  const tools = registryTools();
  sweepStaleDaemons(PREFIX, 'verdaccio.pid');
  const dir = makeInstanceDir(tmpdir(), PREFIX);
  const logFile = join(dir, 'verdaccio.log');
  const conf = join(dir, 'config.yaml');
  const htpasswd = join(dir, 'htpasswd');
  const { own, stop } = daemonStopper(dir, 3000);

  try {
    mkdirSync(join(dir, 'storage'), { mode: 0o700 });
    writeFileSync(htpasswd, '', { mode: 0o600 });
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      writeFileSync(conf, config(dir, port), { mode: 0o600 });
      const d = spawnDaemon(process.execPath, [tools.verdaccio, '--config', conf], {
        log: logFile,
        env: { PATH: `${dirname(process.execPath)}:${ENV_PATH}`, HOME: dir, NODE_ENV: 'production' },
        pidFile: join(dir, 'verdaccio.pid'),
      });
      own(d);
      const deadline = Date.now() + 30_000;
      let up = false;
      while (!d.hasExited() && Date.now() < deadline) {
        up = await request(`http://127.0.0.1:${port}/-/ping`, {}).then(
          (r) => r.status === 200,
          () => false,
        );
        if (up) break;
        await sleep(50);
      }
      if (up && !d.hasExited()) break;
      const why = tail(readText(logFile));
      await terminate(d, 0);
      if (attempt < 3 && /EADDRINUSE/.test(why)) continue;
      throw new Error(`verdaccio on 127.0.0.1:${port} did not come up:\n${why}`);
    }
    const host = `127.0.0.1:${port}`;
    const url = `http://${host}/`;

    const addUser = (name: string, password: string): void => {
      const digest = createHash('sha1').update(password, 'utf8').digest('base64');
      appendFileSync(htpasswd, `${checkName('user', name)}:{SHA}${digest}\n`);
    };
    const login = async (name: string, password: string): Promise<string> => {
      const res = await request(`${url}-/user/org.couchdb.user:${checkName('user', name)}`, {
        method: 'PUT',
        headers: {
          'Content-Type': 'application/json',
          Authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`,
        },
        body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password, type: 'user', roles: [] }),
      });
      const token = res.status === 201 ? (JSON.parse(res.body) as { token?: unknown }).token : undefined;
      // the answer may be an error the registry wrote; never the password (it is not echoed)
      if (typeof token !== 'string' || token === '') throw new Error(`login of ${name} refused: HTTP ${res.status} ${res.body.trim()}`);
      return token;
    };
    /** A temp dir for one npm run (its cache, HOME and, given a token, a 0600 userconfig), removed after. */
    const withNpmHome = async <T>(fn: (home: string) => Promise<T>): Promise<T> => {
      const home = mkdtempSync(join(tmpdir(), 'ps-npm-'));
      try {
        return await fn(home);
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    };
    const runNpm = (args: readonly string[], cwd: string, userconfig: string, home: string): Promise<NpmRun> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [tools.npmCli, ...args], {
          cwd,
          env: {
            PATH: `${dirname(process.execPath)}:${ENV_PATH}`,
            HOME: home,
            npm_config_userconfig: userconfig,
            npm_config_cache: join(home, 'cache'),
            npm_config_update_notifier: 'false',
            npm_config_audit: 'false',
            npm_config_fund: 'false',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 120_000,
          killSignal: 'SIGKILL',
        });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
        child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, out }));
      });
    const npm = (args: readonly string[], opts: { cwd: string; userconfig?: string }): Promise<NpmRun> =>
      withNpmHome((home) => runNpm(args, opts.cwd, opts.userconfig ?? join(home, 'no-npmrc'), home));
    const publish = (token: string, name: string, version: string): Promise<void> =>
      withNpmHome(async (home) => {
        const pkg = join(home, 'pkg');
        mkdirSync(pkg);
        writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name, version, main: 'index.js', license: 'UNLICENSED' }));
        writeFileSync(join(pkg, 'index.js'), `module.exports = ${JSON.stringify(`${name}@${version}`)};\n`);
        const userconfig = join(home, 'npmrc');
        writeFileSync(userconfig, `//${host}/:_authToken=${token}\n`, { mode: 0o600 });
        const res = await runNpm(['publish', '--registry', url], pkg, userconfig, home);
        if (res.code !== 0) throw new Error(`npm publish ${name}@${version} failed (exit ${String(res.code)}):\n${tail(res.out)}`);
      });
    const status = async (path: string, token?: string): Promise<number> =>
      (await request(`${url}${path.replace(/^\//, '')}`, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } }))
        .status;
    const requests = (): RegistryRequest[] => {
      const out: RegistryRequest[] = [];
      for (const line of readText(logFile).split('\n')) {
        if (!line.startsWith('{')) continue; // Node's own warnings
        try {
          const entry = JSON.parse(line) as {
            request?: { method?: string; url?: string };
            user?: string | null;
            status?: number;
            bytes?: { out?: number };
          };
          if (entry.request?.method === undefined || typeof entry.status !== 'number') continue;
          // the early line of a request logged twice: no user yet, nothing sent
          if (entry.status < 400 && entry.user === null && entry.bytes?.out === 0) continue;
          out.push({ method: entry.request.method, url: entry.request.url ?? '', user: entry.user ?? null, status: entry.status });
        } catch {
          // a line cut short by a write in progress
        }
      }
      return out;
    };

    return {
      url,
      host,
      port,
      dir,
      tools,
      addUser,
      login,
      publish,
      npm,
      status,
      requests,
      log: () => readText(logFile),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
