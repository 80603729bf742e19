// Running one step process: its own session/process group (so a timeout can kill the whole tree and
// cleanup can reap what it left behind, as the runner reaps orphans at job end), stdout and stderr
// delivered line by line in arrival order, and the argv of the step process and every descendant
// seen in its session (polled from /proc: best effort for processes shorter than the poll interval).

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { LineSplitter } from './commands.ts';

export interface ProcessSpec {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
}

export interface ProcessOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  argv: string[][];
  pid: number | undefined;
}

const ARGV_POLL_MS = 15;
const STDIO_DRAIN_MS = 300;
const KILL_GRACE_MS = 1000;

/** argv of every live process whose session or process group is `leader`. */
function snapshotSession(leader: number, seen: Map<string, string[]>): void {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return; // no procfs: only the step's own argv is recorded
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // fields after "pid (comm)": state ppid pgrp session ...
      const fields = stat.substring(stat.lastIndexOf(')') + 2).split(' ');
      const pgrp = Number(fields[2]);
      const session = Number(fields[3]);
      if (pgrp !== leader && session !== leader) continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.at(-1) === '') argv.pop();
      if (argv.length > 0) seen.set(argv.join('\0'), argv);
    } catch {
      // the process ended meanwhile
    }
  }
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export function runProcess(spec: ProcessSpec): Promise<ProcessOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.file, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true, // setsid(): a new session and process group led by the step process
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const seen = new Map<string, string[]>();
    seen.set([spec.file, ...spec.args].join('\0'), [spec.file, ...spec.args]);
    const chunks: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
    const splitters = {
      stdout: new LineSplitter((line) => spec.onLine('stdout', line)),
      stderr: new LineSplitter((line) => spec.onLine('stderr', line)),
    };
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream].on('data', (chunk: Buffer) => {
        chunks[stream].push(chunk);
        splitters[stream].push(decoders[stream].write(chunk));
      });
    }

    const pid = child.pid;
    let timedOut = false;
    const poll = pid === undefined ? undefined : setInterval(() => snapshotSession(pid, seen), ARGV_POLL_MS);
    if (pid !== undefined) snapshotSession(pid, seen);
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      if (pid === undefined) return;
      timedOut = true;
      killGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
    }, spec.timeoutMs);

    child.once('error', (error) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      if (killTimer) clearTimeout(killTimer);
      if (timedOut && pid !== undefined) killGroup(pid, 'SIGKILL');
      // A background process may still hold the pipes: wait briefly for them, then stop reading
      // (the process itself lives on until Job.cleanup, like the runner's orphans).
      const finish = (): void => {
        for (const stream of ['stdout', 'stderr'] as const) {
          child[stream].removeAllListeners('data');
          child[stream].destroy();
          splitters[stream].push(decoders[stream].end());
          splitters[stream].end();
        }
        resolve({
          exitCode: timedOut ? null : code,
          stdout: Buffer.concat(chunks.stdout).toString('utf8'),
          stderr: Buffer.concat(chunks.stderr).toString('utf8'),
          timedOut,
          argv: [...seen.values()],
          pid,
        });
      };
      let pending = 2;
      const drained = (): void => {
        if (--pending === 0) {
          clearTimeout(drainTimer);
          finish();
        }
      };
      const drainTimer = setTimeout(() => {
        pending = -1;
        finish();
      }, STDIO_DRAIN_MS);
      for (const stream of ['stdout', 'stderr'] as const) {
        if (child[stream].readableEnded) drained();
        else child[stream].once('end', drained);
      }
    });
  });
}
