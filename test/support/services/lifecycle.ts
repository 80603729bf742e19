// The process lifecycle shared by the test daemons (docker.ts: dockerd, containerd, docker-registry;
// proxy.ts: tinyproxy). Each instance lives in its own temp dir, which records its owning test
// process (owner.pid) and its daemons' pids. Daemons run in their own process groups under
// `setpriv --pdeathsig KILL`, so they die with the test process even when that is killed; an exit
// hook cleans up synchronously what was not stopped; a later start sweeps the dirs of owners that
// are gone. What "clean up" means (which processes, mounts, files) stays with each service.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Running and not a zombie (our own children stay zombies until the event loop reaps them). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.substring(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** `sig` to `pid`, or to its whole process group; a process already gone is fine. */
export function signal(pid: number, sig: NodeJS.Signals, group: boolean): void {
  try {
    process.kill(group ? -pid : pid, sig);
  } catch {
    // gone already
  }
}

// ---- daemons --------------------------------------------------------------------------------

export interface Daemon {
  readonly pid: number;
  readonly exited: Promise<void>;
  hasExited(): boolean;
}

export interface DaemonOptions {
  /** Where stdout and stderr go (appended). */
  log: string;
  /** The daemon's whole environment. */
  env: Record<string, string>;
  /** A file to write the pid to, for a later sweep. */
  pidFile?: string;
}

const SETPRIV = '/usr/bin/setpriv';

/** Starts a daemon in its own session/process group, output to `log`, killed if this process dies. */
export function spawnDaemon(file: string, args: string[], opts: DaemonOptions): Daemon {
  const fd = openSync(opts.log, 'a');
  let child: ChildProcess;
  try {
    const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', file, ...args]] : [file, args];
    child = spawn(cmd, argv, { detached: true, stdio: ['ignore', fd, fd], env: opts.env });
  } finally {
    closeSync(fd);
  }
  const { pid } = child;
  if (pid === undefined) throw new Error(`could not start ${file}`);
  if (opts.pidFile !== undefined) {
    try {
      writeFileSync(opts.pidFile, String(pid));
    } catch (e) {
      // the caller never gets to know this daemon, so it cannot stop it
      signal(pid, 'SIGKILL', true);
      throw e;
    }
  }
  let done = false;
  const exited = new Promise<void>((resolve) => {
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
  return { pid, exited, hasExited: () => done || !isRunning(pid) };
}

async function waitExit(d: Daemon, ms: number): Promise<boolean> {
  if (d.hasExited()) return true;
  let timer: NodeJS.Timeout | undefined;
  const ok = await Promise.race([d.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return ok || d.hasExited();
}

/** SIGTERM to the daemon's process group, SIGKILL after `graceMs` (at once when 0), then waits for the end. */
export async function terminate(d: Daemon, graceMs: number): Promise<void> {
  if (d.hasExited()) return;
  signal(d.pid, graceMs > 0 ? 'SIGTERM' : 'SIGKILL', true);
  if (await waitExit(d, graceMs)) return;
  signal(d.pid, 'SIGKILL', true);
  await waitExit(d, 5000);
}

/** A free TCP port on 127.0.0.1 (free now: a daemon that fails to bind it may retry with another). */
export function freePort(): Promise<number> {
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

/**
 * SIGKILL to `pid`'s process group, only if it is still the daemon started for `dir` (its command
 * line names the dir, so a recycled pid is left alone), a short wait, then `dir` removed.
 */
export function killDaemonAndRemoveDirSync(dir: string, pid: number | undefined): void {
  if (pid !== undefined && isRunning(pid)) {
    let ours = false;
    try {
      ours = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
    } catch {
      // ended meanwhile
    }
    if (ours) {
      signal(pid, 'SIGKILL', true);
      const until = Date.now() + 2000;
      while (isRunning(pid) && Date.now() < until) sleepSync(10);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

// ---- exit hook ------------------------------------------------------------------------------

const exitCleanups = new Set<() => void>();
let exitHookInstalled = false;
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
const signalHandlers = new Map<NodeJS.Signals, () => void>();

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

/**
 * Runs `cleanup` (synchronously) when this process exits or is told to by SIGTERM/SIGINT/SIGHUP
 * (vitest ends its fork workers with SIGTERM, which skips 'exit' handlers); SIGKILL is covered by
 * the daemons' pdeathsig and the next start's sweep. Returns the function that unregisters it.
 */
export function onExit(cleanup: () => void): () => void {
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

/**
 * The stop of a service's one daemon and its instance dir: `own(d)` names the daemon once it is
 * spawned; `stop()` terminates it (SIGTERM, SIGKILL after `graceMs`) and removes the dir, once
 * however often it is called, and the same happens synchronously if this process exits first.
 */
export function daemonStopper(dir: string, graceMs: number): { own: (d: Daemon) => void; stop: () => Promise<void> } {
  let daemon: Daemon | undefined;
  const unregister = onExit(() => killDaemonAndRemoveDirSync(dir, daemon?.pid));
  let stopping: Promise<void> | undefined;
  return {
    own: (d) => void (daemon = d),
    stop: () =>
      (stopping ??= (async () => {
        if (daemon) await terminate(daemon, graceMs);
        killDaemonAndRemoveDirSync(dir, daemon?.pid);
        unregister();
      })()),
  };
}

/**
 * Removes the instance dirs under the temp dir that `prefix` names whose owning process died, killing
 * the daemon whose pid is in `pidFile` first (a test run that was killed leaves them).
 */
export function sweepStaleDaemons(prefix: string, pidFile: string): void {
  sweepDeadOwners({
    bases: [tmpdir()],
    prefixes: [prefix],
    pidFiles: [pidFile],
    cleanup: (dir, pids) => killDaemonAndRemoveDirSync(dir, pids[0]),
  });
}

/** A file's text, or '' when it cannot be read (a log a daemon has not written yet). */
export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The last `lines` lines of a log, for a failure message. */
export const tail = (text: string, lines = 20): string => text.trimEnd().split('\n').slice(-lines).join('\n');

// ---- instance dirs --------------------------------------------------------------------------

const OWNER_FILE = 'owner.pid';

/** A new instance dir `base/prefixXXXXXX` that names this process as its owner. */
export function makeInstanceDir(base: string, prefix: string): string {
  const dir = mkdtempSync(join(base, prefix));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

export interface SweepOptions {
  /** Where the instance dirs are. */
  bases: Iterable<string>;
  /** Names of instance dirs start with one of these. */
  prefixes: readonly string[];
  /** Pid files in an instance dir, each naming one of its daemons. */
  pidFiles: readonly string[];
  /**
   * Synchronous cleanup of a dead owner's instance: `pids` are those of the pid files that are still
   * the daemons started for `dir` (their command line names it), not some later process that got the pid.
   */
  cleanup(dir: string, pids: number[]): void;
}

/** Cleans up instance dirs (and what they left running) whose owning process is gone. */
export function sweepDeadOwners(opts: SweepOptions): void {
  for (const base of opts.bases) {
    let names: string[];
    try {
      names = readdirSync(base);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!opts.prefixes.some((p) => name.startsWith(p))) continue;
      const dir = join(base, name);
      let owner: number;
      try {
        owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
      } catch {
        continue; // being created, or not ours
      }
      if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || isRunning(owner)) continue;
      const pids: number[] = [];
      for (const f of opts.pidFiles) {
        try {
          const pid = Number(readFileSync(join(dir, f), 'utf8'));
          // only if it is still the daemon that was started for this dir
          if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) pids.push(pid);
        } catch {
          // no such file or process
        }
      }
      opts.cleanup(dir, pids);
    }
  }
}
