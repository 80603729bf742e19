// A real HTTP server behind basic auth for tests (Debian's nginx, auth_basic), so a rendered
// `.netrc` is proven by real clients: `curl --netrc-file` and `git clone` over HTTP (the "dumb"
// protocol: plain files, which nginx serves as they are). One throwaway server per instance, on
// 127.0.0.1 only, every file in its temp dir.
//
// Facts that shaped this (nginx 1.22, Debian bookworm):
// - A per-instance config (`-p DIR -c DIR/nginx.conf -e DIR/error.log`): the package's own
//   /etc/nginx and its system service are never used; `-e` keeps nginx from opening
//   /var/log/nginx/error.log before it has read the config. `daemon off` keeps the master in the
//   foreground, so the lifecycle owns its pid; SIGTERM ends it and its worker (which dies with it).
// - auth_basic runs in the access phase, so every location serves files (a `return` would answer
//   before the check). Users are {SSHA} entries, a scheme nginx's auth_basic_user_file reads.
// - As root the worker runs as `nobody`, so the instance dir and what it serves are world-readable
//   (0755/0644): test files only; the password file holds salted hashes.
// - Every request is in access.log with the user nginx saw, so a test can tell who authenticated.
//
// The lifecycle is that of lifecycle.ts: own process group under pdeathsig, exit hook, sweep of dirs
// of dead owners.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePackages } from './install.ts';
import { daemonStopper, freePort, makeInstanceDir, readText, sleep, spawnDaemon, sweepStaleDaemons, tail, terminate } from './lifecycle.ts';

/** One line of access.log. */
export interface HttpAccess {
  readonly method: string;
  readonly path: string;
  /** The user of the request's Basic credentials ('-' when there were none). */
  readonly user: string;
  readonly status: number;
}

export interface BasicAuthServer {
  /** 'http://127.0.0.1:PORT' */
  readonly url: string;
  readonly port: number;
  /** The instance's temp dir; nginx's command line names it. */
  readonly dir: string;
  /** A user whose Basic credentials are accepted from now on. */
  addUser(name: string, password: string): void;
  /** Serves `text` at `path` (e.g. '/index.txt'), behind the same auth. */
  addFile(path: string, text: string): void;
  /** Serves a bare git repository at /NAME.git holding one commit of `files`, for `git clone` over HTTP. */
  addGitRepo(name: string, files: Record<string, string>): Promise<void>;
  /** GET `path` with optional Basic credentials: the status code. */
  status(path: string, auth?: { user: string; password: string }): Promise<number>;
  /** Every request so far, from access.log. */
  access(): HttpAccess[];
  log(): string;
  stop(): Promise<void>;
}

const NGINX = '/usr/sbin/nginx';
const GIT = '/usr/bin/git';
const PREFIX = 'ps-nginx-';
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

function checkName(what: string, value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) throw new Error(`${what} ${JSON.stringify(value)}: use letters, digits, . _ -`);
  return value;
}

/** {SSHA} of `password`: sha1(password + salt) + salt, base64. */
function ssha(password: string): string {
  const salt = randomBytes(8);
  return `{SSHA}${Buffer.concat([createHash('sha1').update(password, 'utf8').update(salt).digest(), salt]).toString('base64')}`;
}

function git(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(GIT, args, {
      cwd,
      // no user or system config: the same repository on every machine
      env: { ...ENV, HOME: cwd, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`git ${args.join(' ')} failed (exit ${String(code)}): ${out}`)),
    );
  });
}

function get(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, timeout: 10_000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once('error', reject);
  });
}

function config(dir: string, port: number): string {
  const at = (f: string): string => JSON.stringify(join(dir, f));
  return [
    `pid ${at('nginx.pid')};`,
    `error_log ${at('error.log')} warn;`,
    'worker_processes 1;',
    'events { worker_connections 64; }',
    'http {',
    // $remote_user is what the Basic credentials named, whether or not they were accepted
    "  log_format ps '$request_method $uri $remote_user $status';",
    `  access_log ${at('access.log')} ps;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${at(`tmp/${t}`)};`),
    '  default_type application/octet-stream;',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    root ${at('www')};`,
    '    location / {',
    '      auth_basic "pipeline-secrets test";',
    `      auth_basic_user_file ${at('htpasswd')};`,
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function startBasicAuthServer(): Promise<BasicAuthServer> {
  await ensurePackages(['nginx', 'git']);
  sweepStaleDaemons(PREFIX, 'master.pid');
  const dir = makeInstanceDir(tmpdir(), PREFIX);
  const www = join(dir, 'www');
  const htpasswd = join(dir, 'htpasswd');
  const errorLog = join(dir, 'error.log');
  const accessLog = join(dir, 'access.log');
  const { own, stop } = daemonStopper(dir, 2000);

  try {
    // the worker (nobody, as root) reads the password file and what it serves
    chmodSync(dir, 0o755);
    mkdirSync(www, { mode: 0o755 });
    mkdirSync(join(dir, 'tmp'), { mode: 0o755 });
    writeFileSync(htpasswd, '', { mode: 0o644 });
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, config(dir, port), { mode: 0o644 });
      const d = spawnDaemon(NGINX, ['-p', dir, '-c', conf, '-e', errorLog, '-g', 'daemon off;'], {
        log: join(dir, 'nginx.out'),
        env: ENV,
        pidFile: join(dir, 'master.pid'),
      });
      own(d);
      const deadline = Date.now() + 15_000;
      let up = false;
      while (!d.hasExited() && Date.now() < deadline) {
        // 401: the server answers, and the check is on
        up = await get(`http://127.0.0.1:${port}/`, {}).then(
          (s) => s === 401,
          () => false,
        );
        if (up) break;
        await sleep(20);
      }
      if (up && !d.hasExited()) break;
      const why = tail(`${readText(errorLog)}\n${readText(join(dir, 'nginx.out'))}`);
      await terminate(d, 0);
      if (attempt < 3 && /Address already in use/.test(why)) continue;
      throw new Error(`nginx on 127.0.0.1:${port} did not come up:\n${why}`);
    }
    const url = `http://127.0.0.1:${port}`;

    const addFile = (path: string, text: string): void => {
      if (!/^(\/[A-Za-z0-9][A-Za-z0-9._-]*)+$/.test(path)) throw new Error(`path ${JSON.stringify(path)}: /name[/name...] only`);
      const parts = path.split('/').slice(1);
      let at = www;
      for (const part of parts.slice(0, -1)) mkdirSync((at = join(at, part)), { recursive: true, mode: 0o755 });
      writeFileSync(join(www, ...parts), text, { mode: 0o644 });
    };
    const addGitRepo = async (name: string, files: Record<string, string>): Promise<void> => {
      const bare = join(www, `${checkName('repository', name)}.git`);
      const work = join(dir, `src-${name}`);
      mkdirSync(work);
      for (const [file, text] of Object.entries(files)) writeFileSync(join(work, checkName('file', file)), text);
      await git(['init', '-q', '-b', 'main', work], dir);
      await git(['add', '.'], work);
      await git(['-c', 'user.name=ci', '-c', 'user.email=ci@example.org', 'commit', '-q', '-m', 'initial'], work);
      await git(['clone', '-q', '--bare', work, bare], dir);
      // the dumb HTTP protocol reads info/refs and objects/info/packs: made by update-server-info
      await git(['update-server-info'], bare);
      for (const e of readdirSync(bare, { withFileTypes: true, recursive: true }))
        chmodSync(join(e.parentPath, e.name), e.isDirectory() ? 0o755 : 0o644);
      chmodSync(bare, 0o755);
    };
    const status = (path: string, auth?: { user: string; password: string }): Promise<number> =>
      get(`${url}${path}`, auth ? { Authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` } : {});
    const access = (): HttpAccess[] =>
      readText(accessLog)
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [method = '', path = '', user = '', code = '0'] = l.split(' ');
          return { method, path, user, status: Number(code) };
        });

    return {
      url,
      port,
      dir,
      addUser: (name, password) => appendFileSync(htpasswd, `${checkName('user', name)}:${ssha(password)}\n`),
      addFile,
      addGitRepo,
      status,
      access,
      log: () => readText(errorLog),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
