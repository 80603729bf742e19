// What the leak scan scans, and what it found: the given paths (files, directories, globs,
// archives, symlinks followed within bounds) and local docker images (`docker save` streamed, the
// history and the config as text), run through the scanner into one ScanOutcome, which the SARIF
// report, the JSON report and the job summary are written from.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Exec } from '../core/exec.ts';
import type { Runner } from '../core/runner.ts';
import type { Pattern } from '../scan/patterns.ts';
import { scan, type Finding, type ScanEvent } from '../scan/scanner.ts';
import type { LintFinding } from './dockerfile-lint.ts';

/** An input not scanned, or not completely (`limit`: a bound of the scanner was reached). */
export interface ScanProblem {
  readonly kind: 'error' | 'limit';
  readonly path: string;
  readonly message: string;
}

export interface ScanOutcome {
  readonly findings: Finding[];
  /** Inputs not scanned, or not completely: each fails the step. */
  readonly problems: ScanProblem[];
  /** Reported, not failing: nothing went unscanned (a symlink loop not walked twice, a dangling link). */
  readonly notices: Array<{ path: string; message: string }>;
  readonly lint: LintFinding[];
  readonly files: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  /** Symlinks followed. */
  readonly followed: number;
  /** False when neither 'paths' nor 'images' was given (Dockerfile lint only): no leak scan ran. */
  readonly leakScan: boolean;
}

export interface TargetDeps {
  readonly runner: Runner;
  readonly exec: Exec;
  /** Streams `docker save` output; separate so tests and the real CLI can differ. */
  readonly dockerSave: (image: string) => AsyncIterable<Buffer>;
  /** Threads scanning files (default: every core this process may run on; 1: all in this thread). */
  readonly threads?: number;
}

/** Worker threads at most, whatever the cores: memory grows with them (bench/scan-cores.ts). */
export const MAX_THREADS = 8;

export function rate(bytes: number, ms: number): string {
  return ms > 0 ? `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s` : 'n/a';
}

/** Every Dockerfile (and Containerfile) of the workspace, but in dependency and build output folders. */
export async function findDockerfiles(workspace: string): Promise<string[]> {
  const out: string[] = [];
  const skip = new Set(['node_modules', '.git', 'dist', 'vendor']);
  async function walk(dir: string, depth: number): Promise<void> {
    if (depth > 8) return;
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (entry.isDirectory() && !skip.has(entry.name)) await walk(path.join(dir, entry.name), depth + 1);
      else if (entry.isFile() && /^(Dockerfile|Containerfile)(\..+)?$|\.[Dd]ockerfile$/.test(entry.name))
        out.push(path.join(dir, entry.name));
    }
  }
  await walk(workspace, 0);
  return out.sort();
}

/** Scans `paths` and `images` (references checked by the input parser) for the patterns. */
export async function scanTargets(
  deps: TargetDeps,
  workspace: string,
  paths: readonly string[],
  images: readonly string[],
  patterns: Pattern[],
): Promise<Omit<ScanOutcome, 'lint' | 'leakScan'>> {
  const findings: Finding[] = [];
  const problems: ScanProblem[] = [];
  const notices: Array<{ path: string; message: string }> = [];
  const streams: Array<{ path: string; open: () => AsyncIterable<Buffer> }> = [];
  for (const image of images) {
    // The image's layers and config (Env, Labels, Cmd, history) through `docker save`, read as it is
    // written, plus `docker history --no-trunc` and `docker image inspect` as text.
    streams.push({ path: `image:${image}`, open: () => deps.dockerSave(image) });
    for (const [part, args] of [
      ['history', ['history', '--no-trunc', '--format', '{{.CreatedBy}}', '--', image]],
      ['config', ['image', 'inspect', '--format', '{{json .Config}}', '--', image]],
    ] as const) {
      streams.push({
        path: `image:${image}!${part}`,
        open: () =>
          (async function* () {
            const result = await deps.exec('docker', [...args]);
            if (result.exitCode !== 0)
              throw new Error(
                `docker ${args[0]} ${image} failed: ${result.stderr.replace(/\s+/g, ' ').trim() || `exit ${result.exitCode}`}`,
              );
            yield Buffer.from(result.stdout);
          })(),
      });
    }
  }
  let done: Extract<ScanEvent, { kind: 'done' }> | undefined;
  const progress = (p: { files: number; bytes: number; elapsedMs: number }): void =>
    deps.runner.info(`scanning: ${p.files} input(s), ${(p.bytes / 1e6).toFixed(0)} MB, ${rate(p.bytes, p.elapsedMs)}`);
  // Symlinks are followed here: an artifact directory holding a link still uploads what it points to.
  // Bounded (each real file and directory once, a loop reported, limits on links and bytes: see
  // scan/walk.ts) and reported (a link that cannot be followed is not scanned, and fails the step).
  // Every core the process may use (availableParallelism follows the CPU affinity, so a runner
  // pinned to fewer cores gets fewer threads): the step runs alone in its job. At most MAX_THREADS:
  // each worker costs about 30 MiB of memory (its own heap and read buffers).
  const threads = Math.min(deps.threads ?? os.availableParallelism(), MAX_THREADS);
  const workers = threads > 1 ? threads : 0;
  const opts = { cwd: workspace, streams, onProgress: progress, progressIntervalMs: 5000, followSymlinks: true, workers };
  for await (const event of scan(paths, patterns, opts)) {
    if (event.kind === 'finding') findings.push(event);
    else if (event.kind === 'done') done = event;
    else if (event.kind === 'notice') notices.push({ path: event.path, message: event.message });
    else problems.push(event);
  }
  for (const glob of done?.unmatched ?? [])
    problems.push({ kind: 'error', path: glob, message: 'matched no file: not scanned (check the glob, relative to GITHUB_WORKSPACE)' });
  return {
    findings,
    problems,
    notices,
    files: done?.files ?? 0,
    bytes: done?.bytes ?? 0,
    elapsedMs: done?.elapsedMs ?? 0,
    followed: done?.followed ?? 0,
  };
}
