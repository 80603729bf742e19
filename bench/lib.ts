// Bench helpers: whole-process wall times, interleaved runs, medians. Machines are shared and noisy:
// only medians and ratios of runs taken side by side in the same command are reported.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const node = process.execPath;

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
}

/** Runs a command to completion and returns its wall time in ms (spawn to exit). */
export function timed(cmd: string, args: string[], env: Record<string, string>, input?: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', () => {});
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - start) / 1e6, code, stdout }));
    child.stdin.end(input ?? '');
  });
}

/** A minimal runner environment with fresh file-command files, like a `uses:` step gets. */
export function stepEnv(
  inputs: Record<string, string>,
  extra: Record<string, string> = {},
): { env: Record<string, string>; dispose: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-bench-'));
  const files: Record<string, string> = {};
  for (const name of ['GITHUB_ENV', 'GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY', 'GITHUB_PATH']) {
    files[name] = path.join(dir, name.toLowerCase());
    writeFileSync(files[name], '');
  }
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    RUNNER_TEMP: dir,
    GITHUB_ACTIONS: 'true',
    ...files,
    ...extra,
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  return { env, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function fmt(ms: number): string {
  return `${ms.toFixed(1)} ms`;
}

/** The ledger a main step saved in its GITHUB_STATE file, to hand to post as STATE_ledger. */
export function savedLedger(env: Record<string, string>): string {
  return (
    readFileSync(env.GITHUB_STATE as string, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop() ?? ''
  );
}

/** The ::error lines of a step's stdout, for a bench's failure message. */
export function errorLines(stdout: string): string {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('::error'))
    .join('\n');
}

/**
 * Our main step (timed, whole process), then post with main's ledger, as the runner runs them.
 * `afterMain` runs between the two (e.g. to count the requests main made); `dist` is another
 * build's dist directory (default this repository's).
 */
export async function mainThenPost(
  inputs: Record<string, string>,
  opts: { postEnv?: Record<string, string>; afterMain?: () => void; dist?: string } = {},
): Promise<{ main: Timed; post: Timed }> {
  const step = stepEnv(inputs);
  const dist = opts.dist ?? path.join(repo, 'dist');
  try {
    const main = await timed(node, [path.join(dist, 'main.js')], step.env);
    if (main.code !== 0) throw new Error(`main failed:\n${errorLines(main.stdout)}`);
    opts.afterMain?.();
    const post = await timed(node, [path.join(dist, 'post.js')], {
      ...step.env,
      STATE_ledger: savedLedger(step.env),
      ...opts.postEnv,
    });
    return { main, post };
  } finally {
    step.dispose();
  }
}
