// A real forward HTTP proxy for tests: Debian's tinyproxy (1.11), on 127.0.0.1 only, with CONNECT
// to any port, so an HTTPS client can tunnel to a loopback server on a random port.
//
// Facts that shaped this (tinyproxy 1.11.1, tinyproxy.conf(5)):
// - ConnectPort: "If no `ConnectPort` line is found, then all ports are allowed." The packaged
//   /etc/tinyproxy/tinyproxy.conf only carries `ConnectPort 443`/`563` commented out; this config is
//   our own and has no ConnectPort line at all. (A config with `ConnectPort 443` would refuse
//   CONNECT to a random loopback port with 403.)
// - With `Allow`/`Deny` lines the default is deny, so `Allow 127.0.0.1` admits loopback clients only.
// - `-d` keeps it in the foreground; no PidFile line means no pidfile is written. Run as root
//   without a `User` line it stays root and logs a warning: it only ever listens on 127.0.0.1.
// - LogLevel Connect logs, per client request, "Request (file descriptor N): <request line>": for
//   CONNECT that is "CONNECT host:port HTTP/1.1", for plain HTTP the absolute URL. What is sent
//   inside a CONNECT tunnel never reaches the log (nor tinyproxy's parser).
// - Until it opens LogFile it writes its first lines to stderr, which goes to stderr.log here.
//
// Each proxy lives in its own temp dir (config, logs, owner.pid). It runs in its own process group
// under `setpriv --pdeathsig KILL`, so it dies with the test process even when that is killed;
// stop() ends it and removes the dir; an exit hook (exit, SIGTERM/SIGINT/SIGHUP) does the same for
// proxies not stopped; a later start sweeps dirs whose owning test process is gone.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePackages } from './install.ts';

export interface Proxy {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** The proxy's temp dir (config and logs); tinyproxy's command line names it. */
  dir: string;
  /** CONNECT targets the proxy was asked for, in order, parsed from its log. */
  connects(): Array<{ host: string; port: number }>;
  /** Every request line the proxy logged (CONNECT host:port ..., GET http://... ...), in order. */
  requests(): string[];
  /** The proxy's whole log so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const TINYPROXY = '/usr/bin/tinyproxy';
const SETPRIV = '/usr/bin/setpriv';
const PREFIX = 'ps-proxy-';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Running and not a zombie. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.substring(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // gone already
  }
}

/** SIGKILL to the proxy's process group (only if it is still the tinyproxy of `dir`), wait, remove dir. */
function killAndRemoveSync(dir: string, pid: number | undefined): void {
  if (pid !== undefined && isRunning(pid)) {
    let ours = false;
    try {
      ours = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
    } catch {
      // ended meanwhile
    }
    if (ours) {
      killGroup(pid, 'SIGKILL');
      const until = Date.now() + 2000;
      while (isRunning(pid) && Date.now() < until) sleepSync(10);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

// ---- exit hook ------------------------------------------------------------------------------

const exitCleanups = new Set<() => void>();
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
const signalHandlers = new Map<NodeJS.Signals, () => void>();
let exitHookInstalled = false;

function runExitCleanups(): void {
  for (const fn of [...exitCleanups]) {
    try {
      fn();
    } catch {
      // best effort: the next start sweeps what is left
    }
  }
  exitCleanups.clear();
}

function setSignalHandlers(on: boolean): void {
  if (on && signalHandlers.size === 0) {
    for (const sig of SIGNALS) {
      const handler = (): void => {
        runExitCleanups();
        setSignalHandlers(false);
        // die of the signal as if nobody had listened, unless someone else handles it
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      };
      signalHandlers.set(sig, handler);
      process.on(sig, handler);
    }
  } else if (!on) {
    for (const [sig, handler] of signalHandlers) process.off(sig, handler);
    signalHandlers.clear();
  }
}

/** Runs `cleanup` synchronously at exit or on SIGTERM/SIGINT/SIGHUP; returns its unregister function. */
function onExit(cleanup: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', runExitCleanups);
  }
  exitCleanups.add(cleanup);
  setSignalHandlers(true);
  return () => {
    exitCleanups.delete(cleanup);
    if (exitCleanups.size === 0) setSignalHandlers(false);
  };
}

/** Removes proxy dirs (and their tinyproxy) whose owning test process is gone. */
function sweepStale(): void {
  const base = tmpdir();
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(base, name);
    let owner: number;
    let pid: number | undefined;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue; // being created, or not ours
    }
    if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || isRunning(owner)) continue;
    try {
      pid = Number(readFileSync(join(dir, 'tinyproxy.pid'), 'utf8'));
    } catch {
      pid = undefined;
    }
    killAndRemoveSync(dir, pid !== undefined && pid > 0 ? pid : undefined);
  }
}

// ---- the proxy ------------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

const REQUEST_LINE = /\]: Request \(file descriptor \d+\): (.*)$/;

/** "host:port", "[v6]:port"; tinyproxy logs the CONNECT target as the client sent it. */
function parseTarget(target: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:/]+):(\d+)/.exec(target);
  return m ? { host: m[1] ?? '', port: Number(m[2]) } : undefined;
}

export async function startProxy(): Promise<Proxy> {
  await ensurePackages(['tinyproxy-bin']);
  sweepStale();
  const dir = mkdtempSync(join(tmpdir(), PREFIX));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const logFile = join(dir, 'tinyproxy.log');
  const stderrFile = join(dir, 'stderr.log');
  let pid: number | undefined;
  let exited: Promise<void> = Promise.resolve();
  let hasExited = (): boolean => true;
  const unregister = onExit(() => killAndRemoveSync(dir, pid));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (pid !== undefined && !hasExited()) {
        killGroup(pid, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const ended = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2000))),
        ]);
        clearTimeout(timer);
        if (!ended) killGroup(pid, 'SIGKILL');
      }
      killAndRemoveSync(dir, pid);
      unregister();
    })());

  try {
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const conf = join(dir, 'tinyproxy.conf');
      writeFileSync(
        conf,
        [
          `Port ${port}`,
          'Listen 127.0.0.1',
          'Timeout 60',
          'MaxClients 100',
          'Allow 127.0.0.1',
          `LogFile ${JSON.stringify(logFile)}`,
          'LogLevel Connect',
          'DisableViaHeader Yes',
          // no ConnectPort line: CONNECT to every port (tinyproxy.conf(5))
          '',
        ].join('\n'),
      );
      const fd = openSync(stderrFile, 'a');
      let child: ChildProcess;
      try {
        const args = ['-d', '-c', conf];
        const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', TINYPROXY, ...args]] : [TINYPROXY, args];
        child = spawn(cmd, argv, { detached: true, stdio: ['ignore', fd, fd], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      } finally {
        closeSync(fd);
      }
      const childPid = child.pid;
      if (childPid === undefined) throw new Error('could not start tinyproxy');
      pid = childPid;
      writeFileSync(join(dir, 'tinyproxy.pid'), String(childPid));
      let done = false;
      exited = new Promise<void>((resolve) => {
        child.once('exit', () => {
          done = true;
          resolve();
        });
        child.once('error', () => {
          done = true;
          resolve();
        });
      });
      child.unref();
      hasExited = () => done || !isRunning(childPid);

      const deadline = Date.now() + 10_000;
      let up = false;
      while (!(up = await accepts(port)) && !hasExited() && Date.now() < deadline) await sleep(20);
      if (up && !hasExited()) break;
      const tail = `${readText(stderrFile)}${readText(logFile)}`.trimEnd().split('\n').slice(-15).join('\n');
      killGroup(childPid, 'SIGKILL');
      await exited;
      if (attempt < 3 && /Address already in use|Could not create listening sockets/i.test(tail)) continue;
      throw new Error(`tinyproxy on 127.0.0.1:${port} did not come up:\n${tail}`);
    }

    const requests = (): string[] =>
      readText(logFile)
        .split('\n')
        .map((l) => REQUEST_LINE.exec(l)?.[1])
        .filter((l): l is string => l !== undefined);
    const connects = (): Array<{ host: string; port: number }> =>
      requests()
        .map((l) => /^CONNECT (\S+)/.exec(l)?.[1])
        .map((t) => (t === undefined ? undefined : parseTarget(t)))
        .filter((t): t is { host: string; port: number } => t !== undefined);
    return { url: `http://127.0.0.1:${port}`, dir, connects, requests, log: () => readText(logFile), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
