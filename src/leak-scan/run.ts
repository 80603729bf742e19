// The leak-scan sub-action (scan/action.yml): finds the exact values this job was given, in any
// encoding, in files, archives and local docker images; lints Dockerfiles; reports annotations,
// SARIF, a JSON report and a job summary; fails the job on a leak. Findings name the secret and the
// encoding, never the value.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import { errorText } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import { getBoolean, getInput, type Env } from '../inputs/main.ts';
import { lintDockerfile, type LintFinding } from './dockerfile-lint.ts';
import { MaskRegistry } from '../core/mask.ts';
import type { Runner } from '../core/runner.ts';
import { buildPatterns, type Pattern } from '../scan/patterns.ts';
import { scan, type Finding, type ScanEvent } from '../scan/scanner.ts';
import { sarifReport } from './report.ts';
import { cell, failureSummary } from '../core/summary-text.ts';

export interface ScanDeps {
  readonly env: Env;
  readonly runner: Runner;
  readonly exec: Exec;
  /** Streams `docker save` output; separate so tests and the real CLI can differ. */
  readonly dockerSave: (image: string) => AsyncIterable<Buffer>;
}

export interface ScanValue {
  readonly name: string;
  readonly value: string;
}

function list(raw: string): string[] {
  return raw
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('#'));
}

/** Values to look for: the files of the secrets directory, and named env vars. */
export async function collectValues(env: Env): Promise<{ values: ScanValue[]; sources: string[] }> {
  const values: ScanValue[] = [];
  const sources: string[] = [];
  const dir = getInput(env, 'secrets-dir') || env[PRIVATE_DIR_ENV] || '';
  if (dir !== '') {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (error) {
      throw new Error(`input 'secrets-dir': cannot read ${dir} (${(error as NodeJS.ErrnoException).code ?? errorText(error)})`, {
        cause: error,
      });
    }
    for (const name of names.sort()) {
      const file = path.join(dir, name);
      if (!(await fs.lstat(file)).isFile() || name.startsWith('.')) continue;
      values.push({ name, value: await fs.readFile(file, 'utf8') });
    }
    sources.push(`${names.length} file(s) of ${dir}`);
  }
  const envNames = list(getInput(env, 'secret-env-names'));
  for (const name of envNames) {
    const value = env[name];
    if (value === undefined || value === '')
      throw new Error(`input 'secret-env-names': environment variable '${name}' is not set or empty (pass it with env:)`);
    values.push({ name, value });
  }
  if (envNames.length > 0) sources.push(`${envNames.length} env var(s)`);
  return { values, sources };
}

async function findDockerfiles(workspace: string): Promise<string[]> {
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

export interface ScanOutcome {
  readonly findings: Finding[];
  /** Inputs not scanned, or not completely: each fails the step. */
  readonly problems: Array<{ kind: 'error' | 'limit'; path: string; message: string }>;
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

const NOTHING_TO_SCAN =
  "nothing to scan: give 'paths' (files, directories or globs, relative to GITHUB_WORKSPACE) or 'images' (local docker image references)";

export async function runScan(deps: ScanDeps): Promise<void> {
  const { env, runner } = deps;
  const masks = new MaskRegistry(runner);
  const workspace = env.GITHUB_WORKSPACE ?? process.cwd();
  const temp = env.RUNNER_TEMP ?? workspace;
  const stamp = `${Date.now()}-${process.pid}`;
  const sarifFile = path.join(temp, `pipeline-secrets-scan-${stamp}.sarif`);
  try {
    // The booleans are checked before anything is scanned: a typo must not turn the failure off.
    const failOnLeak = getBoolean(env, 'fail-on-leak', true);
    const failOnLint = getBoolean(env, 'fail-on-lint', false);
    const { values, sources } = await collectValues(env);
    // Masked in this step too: a finding message could otherwise be made to echo a value.
    for (const v of values) masks.add(v.value);
    const paths = list(getInput(env, 'paths'));
    const images = list(getInput(env, 'images'));
    const dockerfilesInput = getInput(env, 'dockerfiles');
    const dockerfiles =
      dockerfilesInput === '' ? await findDockerfiles(workspace) : list(dockerfilesInput).map((f) => path.resolve(workspace, f));
    if (values.length === 0 && (paths.length > 0 || images.length > 0)) {
      throw new Error(
        `no values to look for: run Pipeline Secrets in an earlier step (${PRIVATE_DIR_ENV}) or name env vars in 'secret-env-names'`,
      );
    }
    if (paths.length === 0 && images.length === 0 && dockerfiles.length === 0) {
      throw new Error(NOTHING_TO_SCAN);
    }

    const patterns: Pattern[] = buildPatterns(values);
    const lengths = new Map(patterns.map((p) => [`${p.name}\0${p.encoding}`, p.bytes.length]));
    const outcome = await scanInputs(deps, workspace, paths, images, patterns);
    const lint = (
      await Promise.all(
        dockerfiles.map(async (file) => {
          const text = await fs.readFile(file, 'utf8').catch(() => undefined);
          if (text === undefined) {
            outcome.problems.push({ kind: 'error', path: file, message: 'cannot read the Dockerfile' });
            return [];
          }
          return lintDockerfile(
            path.relative(workspace, file) || file,
            text,
            values.map((v) => v.name),
          );
        }),
      )
    ).flat();
    const result: ScanOutcome = { ...outcome, lint, leakScan: paths.length > 0 || images.length > 0 };

    for (const f of result.findings) {
      runner.annotate('error', masks.scrub(findingText(f)), { title: 'Secret leaked', ...where(workspace, f.path, f.line) });
    }
    for (const p of result.problems)
      runner.annotate(p.kind === 'limit' ? 'warning' : 'error', masks.scrub(`${p.path}: ${p.message}`), {
        title: p.kind === 'limit' ? 'Scan bound reached' : 'Scan error',
      });
    for (const n of result.notices) runner.annotate('warning', masks.scrub(`${n.path}: ${n.message}`), { title: 'Symlink' });
    for (const l of result.lint) runner.annotate('warning', l.message, { file: l.file, line: l.line, title: `Dockerfile: ${l.rule}` });

    const reportFile = path.join(temp, `pipeline-secrets-scan-${stamp}.json`);
    await fs.writeFile(sarifFile, JSON.stringify(sarifReport(result, workspace, lengths), null, 2));
    await fs.writeFile(reportFile, JSON.stringify({ values: values.map((v) => v.name), sources, ...result }, null, 2));
    runner.setOutput('leaks', String(result.findings.length));
    runner.setOutput('sarif-file', sarifFile);
    runner.setOutput('report', reportFile);
    runner.info(
      `Scanned ${result.files} input(s), ${(result.bytes / 1e6).toFixed(1)} MB in ${(result.elapsedMs / 1000).toFixed(1)} s (${rate(result.bytes, result.elapsedMs)}) for ${values.length} value(s) in ${patterns.length} encoded form(s): ${result.findings.length} leak(s), ${result.problems.length} problem(s), ${result.lint.length} Dockerfile warning(s)`,
    );
    await runner.appendSummary(scanSummary(result, workspace, values.length, patterns.length));

    const reasons: string[] = [];
    if (failOnLeak && result.findings.length > 0)
      reasons.push(`${result.findings.length} leak(s) of ${[...new Set(result.findings.map((f) => f.name))].join(', ')}`);
    // A scan that scanned nothing, or not everything, never passes as clean: say what to fix.
    const notScanned = result.problems.map((p) => `${p.path}: ${p.message}`);
    const shown = `${notScanned.slice(0, 3).join('; ')}${notScanned.length > 3 ? `; ${notScanned.length - 3} more` : ''}`;
    if (result.leakScan && result.files === 0)
      reasons.push(
        `nothing was scanned${shown !== '' ? ` (${shown})` : ' (no file under the given paths)'}: give 'paths' that name existing files, directories or matching globs (relative to GITHUB_WORKSPACE), or 'images'`,
      );
    else if (result.problems.length > 0)
      reasons.push(`${result.problems.length} input(s) not scanned or not completely (${shown}): fix them or leave them out of 'paths'`);
    if (failOnLint && result.lint.length > 0) reasons.push(`${result.lint.length} Dockerfile warning(s)`);
    if (reasons.length > 0) runner.setFailed(masks.scrub(`leak scan: ${reasons.join('; ')} (see the annotations and ${reportFile})`));
  } catch (error) {
    const message = masks.scrub(errorText(error));
    // The SARIF file still, empty but for the failure, so an upload-sarif step after this one works.
    try {
      await fs.writeFile(
        sarifFile,
        JSON.stringify(sarifReport({ findings: [], lint: [], problems: [], failure: message }, workspace, new Map()), null, 2),
      );
      runner.setOutput('sarif-file', sarifFile);
    } catch {
      // RUNNER_TEMP not writable: the failure below says what matters.
    }
    runner.setFailed(message);
    await runner.appendSummary(failureSummary('Pipeline Secrets leak scan', message)).catch(() => {});
  }
}

function rate(bytes: number, ms: number): string {
  return ms > 0 ? `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s` : 'n/a';
}

async function scanInputs(
  deps: ScanDeps,
  workspace: string,
  paths: string[],
  images: string[],
  patterns: Pattern[],
): Promise<Omit<ScanOutcome, 'lint' | 'leakScan'>> {
  const findings: Finding[] = [];
  const problems: ScanOutcome['problems'] = [];
  const notices: Array<{ path: string; message: string }> = [];
  const streams: Array<{ path: string; open: () => AsyncIterable<Buffer> }> = [];
  for (const image of images) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(image)) {
      problems.push({ kind: 'error', path: `image:${image}`, message: "input 'images': not an image reference" });
      continue;
    }
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
  // scan/scanner.ts) and reported (a link that cannot be followed is not scanned, and fails the step).
  const opts = { cwd: workspace, streams, onProgress: progress, progressIntervalMs: 5000, followSymlinks: true };
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

export function findingText(f: Finding): string {
  return `secret '${f.name}' found as ${f.encoding} in ${f.path}${f.line !== undefined ? ` line ${f.line}` : ''} at byte ${f.offset}`;
}

/** Annotation location: a workspace-relative file when the finding is in a plain workspace file. */
function where(workspace: string, p: string, line: number | undefined): { file?: string; line?: number } {
  if (p.includes('!') || p.startsWith('image:')) return {};
  const relative = path.relative(workspace, path.resolve(workspace, p));
  if (relative.startsWith('..')) return {};
  return line !== undefined ? { file: relative, line } : { file: relative };
}

/** "No leak found" only when something was scanned and nothing was left out. */
function verdict(result: ScanOutcome): string {
  if (!result.leakScan) return "**Not scanned for leaks**: neither 'paths' nor 'images' was given (Dockerfile lint only).";
  if (result.findings.length > 0) return `**${result.findings.length} leak(s) found:**`;
  if (result.files === 0) return '**Nothing was scanned**: no file or image could be scanned (see below).';
  if (result.problems.length > 0)
    return `**Incomplete**: ${result.problems.length} input(s) not scanned, or not completely (see below); nothing found in the rest.`;
  return '**No leak found.**';
}

export function scanSummary(result: ScanOutcome, workspace: string, values: number, patterns: number): string {
  const lines = [
    '### Pipeline Secrets leak scan',
    '',
    `${result.files} input(s), ${(result.bytes / 1e6).toFixed(1)} MB scanned in ${(result.elapsedMs / 1000).toFixed(1)} s for ${values} value(s) in ${patterns} encoded form(s)${result.followed > 0 ? `, ${result.followed} symlink(s) followed` : ''}.`,
    '',
    verdict(result),
    '',
  ];
  if (result.findings.length > 0) {
    lines.push('| secret | encoding | where | line | byte offset |', '| --- | --- | --- | ---: | ---: |');
    for (const f of result.findings)
      lines.push(
        `| ${cell(f.name)} | ${cell(f.encoding)} | ${cell(path.relative(workspace, f.path).startsWith('..') ? f.path : path.relative(workspace, f.path) || f.path)} | ${f.line ?? ''} | ${f.offset} |`,
      );
    lines.push('');
  }
  if (result.problems.length > 0) {
    lines.push('Not scanned, or not completely:', '', ...result.problems.map((p) => `- ${cell(p.path)}: ${cell(p.message)}`), '');
  }
  if (result.notices.length > 0) {
    lines.push('Symlinks:', '', ...result.notices.map((n) => `- ${cell(n.path)}: ${cell(n.message)}`), '');
  }
  if (result.lint.length > 0) {
    lines.push('Dockerfile warnings:', '', ...result.lint.map((l) => `- ${cell(l.file)}:${l.line} (${l.rule}): ${cell(l.message)}`), '');
  }
  return lines.join('\n');
}
