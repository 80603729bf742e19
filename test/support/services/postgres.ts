// A real PostgreSQL server for tests (Debian's postgresql package), so OpenBao's database secrets
// engine (postgresql-database-plugin) can create and drop real login roles, and a test can ask the
// server itself which roles are left. One throwaway cluster per instance, on 127.0.0.1 only.
//
// Facts that shaped this (PostgreSQL 15, Debian bookworm):
// - The binaries live in /usr/lib/postgresql/<major>/bin (no pg_wrapper, no system cluster used);
//   the highest major present is taken.
// - postgres refuses to run as root: as root, initdb and postgres run as the package's `postgres`
//   system user through `setpriv --reuid --regid --clear-groups --pdeathsig KILL`. A change of uid
//   clears the parent-death signal (prctl(2)), so the inner setpriv sets it again after the switch:
//   the server still dies with the test process. Not root: it runs as the current user.
// - initdb --no-sync with scram-sha-256 for every connection (pg_hba.conf): the admin is the
//   bootstrap superuser with a random password; a wrong password fails over TCP.
// - The server listens on 127.0.0.1:PORT and a Unix socket in the instance dir (-k), with fsync,
//   full_page_writes and synchronous_commit off and small buffers: it is up in well under a second.
// - Postmaster children call setsid() and die on postmaster death (their own PR_SET_PDEATHSIG), so
//   stop() signals the postmaster alone: SIGQUIT, immediate shutdown, which ends every backend and
//   removes the server's SysV shared-memory segment. Dynamic shared memory is `mmap`, i.e. files in
//   the data dir, so a SIGKILLed server leaves nothing in /dev/shm; what it does leave (a 56-byte
//   SysV segment, named in postmaster.pid) the exit hook and the sweep remove.
//
// Each instance lives in its own temp dir (data dir, socket, log, owner.pid); the lifecycle is that
// of lifecycle.ts: own process group, exit hook, sweep of dirs whose owning test process is gone.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensurePackages } from './install.ts';
import {
  type Daemon,
  freePort,
  isRunning,
  makeInstanceDir,
  onExit,
  readText,
  signal,
  sleep,
  sleepSync,
  spawnDaemon,
  sweepDeadOwners,
  tail,
  terminate,
} from './lifecycle.ts';

export interface Postgres {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** A superuser that logs in with a password over TCP (the bootstrap superuser). */
  readonly adminUser: string;
  readonly adminPassword: string;
  /** `postgresql://admin:pw@127.0.0.1:PORT/postgres?sslmode=disable` */
  readonly url: string;
  /** The instance's temp dir (data dir, socket, log); the server's command line names it. */
  readonly dir: string;
  /** Runs `sql` (one or more statements) as the admin in database `postgres`: every result row, in order. */
  query(sql: string): Promise<string[][]>;
  /** Runs `sql` as `user` with `password` over TCP; rejects when the login (or the SQL) fails. */
  queryAs(user: string, password: string, sql: string, database?: string): Promise<string[][]>;
  /** Roles other than the built-in pg_* ones and the admin, sorted: what something else created. */
  roles(): Promise<string[]>;
  /** The server's log so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const PREFIX = 'ps-pg-';
const SETPRIV = '/usr/bin/setpriv';
const PG_ROOT = '/usr/lib/postgresql';
const ADMIN = 'admin';
// fields and records of psql's unaligned output: characters no role name or test value contains
const FS = '\x1f';
const RS = '\x1e';

/** /usr/lib/postgresql/<major>/bin with initdb, postgres, psql and pg_isready; the highest major. */
function binDir(): string {
  let majors: string[] = [];
  try {
    majors = readdirSync(PG_ROOT).filter((m) => /^\d+$/.test(m));
  } catch {
    // no PostgreSQL at all
  }
  majors.sort((a, b) => Number(b) - Number(a));
  for (const m of majors) {
    const bin = join(PG_ROOT, m, 'bin');
    if (['initdb', 'postgres', 'psql', 'pg_isready'].every((f) => existsSync(join(bin, f)))) return bin;
  }
  throw new Error(
    `no PostgreSQL server in ${PG_ROOT}/<major>/bin (initdb, postgres, psql, pg_isready): install the Debian package postgresql (apt-get install -y --no-install-recommends postgresql)`,
  );
}

interface RunAs {
  /** Command prefix that runs a program as the server's user, keeping the parent-death signal. */
  prefix: string[];
  uid: number;
  gid: number;
}

/** As root: the `postgres` system user (from /etc/passwd); otherwise the current user. */
function serverUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error(
      'there is no `postgres` system user to run the server as (root may not): reinstall the Debian package postgresql-common',
    );
  }
  return {
    prefix: [SETPRIV, `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--pdeathsig', 'KILL', '--'],
    uid: Number(uid),
    gid: Number(gid),
  };
}

const BASE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', LANG: 'C' };

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Removes the SysV segment a killed server left (postmaster.pid line 7: "key shmid"), only when
 * nothing is attached to it any more; a cleanly stopped server removed it and its postmaster.pid.
 */
function removeLeftoverShm(dataDir: string): void {
  const [key, id] = (readText(join(dataDir, 'postmaster.pid')).split('\n')[6] ?? '').trim().split(/\s+/);
  if (key === undefined || id === undefined || !/^\d+$/.test(id)) return;
  const row = readText('/proc/sysvipc/shm')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((r) => r[0] === key && r[1] === id);
  if (row?.[6] === '0') spawnSync('/usr/bin/ipcrm', ['-m', id], { stdio: 'ignore' });
}

/** Ends the server of `dir` (only if `pid` is still it): SIGQUIT, then SIGKILL; cleans up; removes dir. */
function killAndRemoveSync(dir: string, pid: number | undefined): void {
  if (pid !== undefined && isRunning(pid)) {
    let ours = false;
    try {
      ours = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
    } catch {
      // ended meanwhile
    }
    if (ours) {
      signal(pid, 'SIGQUIT', false);
      let until = Date.now() + 3000;
      while (isRunning(pid) && Date.now() < until) sleepSync(10);
      signal(pid, 'SIGKILL', true);
      until = Date.now() + 2000;
      while (isRunning(pid) && Date.now() < until) sleepSync(10);
    }
  }
  removeLeftoverShm(join(dir, 'data'));
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Where instance dirs go: tmpdir(), unless the server's user could not get there (a TMPDIR under a
 * 0700 home) or the socket path (dir/.s.PGSQL.PORT, at most 107 bytes) would be too long: /tmp.
 */
function baseDir(as: RunAs | undefined): string {
  const base = tmpdir();
  if (base.length > 70) return '/tmp';
  if (as) {
    for (let p = base; ; p = dirname(p)) {
      if ((statSync(p).mode & 0o001) === 0) return '/tmp';
      if (p === dirname(p)) break;
    }
  }
  return base;
}

/** Removes instance dirs (and their servers) whose owning test process is gone. */
function sweepStale(): void {
  sweepDeadOwners({
    bases: new Set([tmpdir(), '/tmp']),
    prefixes: [PREFIX],
    pidFiles: ['postgres.pid'],
    cleanup: (dir, pids) => killAndRemoveSync(dir, pids[0]),
  });
}

/** [file, args] that run `file args` as the server's user (`as`), or as this user. */
function asServer(as: RunAs | undefined, file: string, args: string[]): [string, string[]] {
  if (!as) return [file, args];
  const [cmd = SETPRIV, ...rest] = as.prefix;
  return [cmd, [...rest, file, ...args]];
}

/**
 * psql -At -F FS -R RS output: records end at RS, and each statement's result at a newline (so a
 * value with a newline in it would split its row: tests do not select such values).
 */
function parseRows(out: string): string[][] {
  return out
    .split(RS)
    .flatMap((r) => r.split('\n'))
    .filter((r) => r !== '')
    .map((r) => r.split(FS));
}

export async function startPostgres(): Promise<Postgres> {
  await ensurePackages(['postgresql']);
  const bin = binDir();
  const as = serverUser();
  sweepStale();
  const dir = makeInstanceDir(baseDir(as), PREFIX);
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  let daemon: Daemon | undefined;
  const unregister = onExit(() => killAndRemoveSync(dir, daemon?.pid));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const d = daemon;
      if (d && !d.hasExited()) {
        signal(d.pid, 'SIGQUIT', false); // immediate shutdown: the data is thrown away anyway
        await Promise.race([d.exited, sleep(5000)]);
        await terminate(d, 0);
      }
      killAndRemoveSync(dir, d?.pid);
      unregister();
    })());

  try {
    const adminPassword = randomBytes(18).toString('hex');
    const pwFile = join(dir, 'admin.pw');
    writeFileSync(pwFile, adminPassword, { mode: 0o600 });
    if (as) {
      chownSync(dir, as.uid, as.gid);
      chownSync(pwFile, as.uid, as.gid);
    }
    const init = await run(
      ...asServer(as, join(bin, 'initdb'), [
        ...['-D', dataDir, '-U', ADMIN, `--pwfile=${pwFile}`, '--auth=scram-sha-256'],
        ...['--no-sync', '--no-instructions', '--locale=C', '--encoding=UTF8'],
      ]),
      BASE_ENV,
    );
    rmSync(pwFile, { force: true });
    if (init.code !== 0) throw new Error(`initdb failed (exit ${String(init.code)}):\n${tail(init.stdout + init.stderr)}`);

    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const serverArgs = [
        ...['-D', dataDir, '-k', dir, '-p', String(port)],
        ...['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=off'],
        ...['-c', 'shared_buffers=16MB', '-c', 'max_connections=50', '-c', 'dynamic_shared_memory_type=mmap'],
        ...['-c', 'wal_level=minimal', '-c', 'max_wal_senders=0', '-c', 'autovacuum=off', '-c', 'huge_pages=off'],
        // no log_statement: CREATE ROLE ... PASSWORD would put live credentials in the log
      ];
      const d = spawnDaemon(...asServer(as, join(bin, 'postgres'), serverArgs), {
        log: logFile,
        env: BASE_ENV,
        pidFile: join(dir, 'postgres.pid'),
      });
      daemon = d;

      const deadline = Date.now() + 15_000;
      let up = false;
      while (!d.hasExited() && Date.now() < deadline) {
        const ready = await run(
          join(bin, 'pg_isready'),
          ['-q', '-h', '127.0.0.1', '-p', String(port), '-d', 'postgres', '-t', '2'],
          BASE_ENV,
        );
        if ((up = ready.code === 0)) break;
        await sleep(20);
      }
      if (up && !d.hasExited()) break;
      const why = tail(readText(logFile));
      await terminate(d, 0);
      if (attempt < 3 && /could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(why)) continue;
      throw new Error(`PostgreSQL (${bin}/postgres) on 127.0.0.1:${port} did not come up:\n${why}`);
    }

    const queryAs = async (user: string, password: string, sql: string, database = 'postgres'): Promise<string[][]> => {
      const res = await run(
        join(bin, 'psql'),
        [
          ...['-X', '-q', '-A', '-t', '-F', FS, '-R', RS, '-v', 'ON_ERROR_STOP=1'],
          ...['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database, '-c', sql],
        ],
        // nothing from the caller's PG* environment (PGHOST, PGSSLMODE, ...) reaches psql
        { ...BASE_ENV, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' },
      );
      if (res.code !== 0) throw new Error(`psql as ${user} on 127.0.0.1:${port} failed (exit ${String(res.code)}): ${res.stderr.trim()}`);
      return parseRows(res.stdout);
    };
    const query = (sql: string): Promise<string[][]> => queryAs(ADMIN, adminPassword, sql);
    const roles = async (): Promise<string[]> =>
      (await query(`SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> '${ADMIN}' ORDER BY 1`)).map((r) => r[0] ?? '');
    // the admin logs in with its password over TCP, as OpenBao's plugin will
    await query('SELECT 1');
    return {
      host: '127.0.0.1',
      port,
      adminUser: ADMIN,
      adminPassword,
      url: `postgresql://${ADMIN}:${adminPassword}@127.0.0.1:${port}/postgres?sslmode=disable`,
      dir,
      query,
      queryAs,
      roles,
      log: () => readText(logFile),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
