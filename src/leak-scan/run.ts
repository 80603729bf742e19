// The leak-scan sub-action (scan/action.yml): finds the exact values this job was given, in any
// encoding, in files, archives and local docker images; lints Dockerfiles; reports annotations,
// SARIF, a JSON report and a job summary; fails the job on a leak. Findings name the secret and the
// encoding, never the value. Values come from values.ts, the scanning from scan-targets.ts, the
// words from summary.ts and the SARIF from report.ts.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import type { MaskRegistry } from '../core/mask.ts';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import { runStep } from '../core/run-step.ts';
import type { Env } from '../inputs/common.ts';
import { parseScanInputs } from '../inputs/scan.ts';
import { buildPatterns } from '../scan/patterns.ts';
import { lintDockerfile, type LintFinding } from './dockerfile-lint.ts';
import { sarifReport } from './report.ts';
import { findDockerfiles, rate, scanTargets, type ScanOutcome, type ScanProblem, type TargetDeps } from './scan-targets.ts';
import { findingText, scanSummary } from './summary.ts';
import { collectValues, type ValueDeps } from './values.ts';

export interface ScanDeps extends TargetDeps, ValueDeps {
  readonly env: Env;
}

interface ReportFiles {
  readonly workspace: string;
  readonly sarif: string;
  readonly json: string;
}

export async function runScan(deps: ScanDeps): Promise<void> {
  const workspace = deps.env.GITHUB_WORKSPACE ?? process.cwd();
  const temp = deps.env.RUNNER_TEMP ?? workspace;
  const stamp = `${Date.now()}-${process.pid}`;
  const files = {
    workspace,
    sarif: path.join(temp, `pipeline-secrets-scan-${stamp}.sarif`),
    json: path.join(temp, `pipeline-secrets-scan-${stamp}.json`),
  };
  const failure = await runStep(deps.runner, { fail: 'Pipeline Secrets leak scan' }, (masks) => scanStep(deps, masks, files));
  if (failure === undefined) return;
  // The SARIF file still, empty but for the (scrubbed) failure, so an upload-sarif step after this one works.
  try {
    const report = sarifReport({ findings: [], lint: [], problems: [], failure }, workspace, new Map());
    await fs.writeFile(files.sarif, JSON.stringify(report, null, 2));
    deps.runner.setOutput('sarif-file', files.sarif);
  } catch {
    // RUNNER_TEMP not writable: the failure already reported says what matters.
  }
}

async function scanStep(deps: ScanDeps, masks: MaskRegistry, files: ReportFiles): Promise<void> {
  const { env, runner } = deps;
  const { workspace } = files;
  const config = parseScanInputs(env);
  const { values, sources } = await collectValues(config, env, masks, deps);
  const { paths, images } = config;
  const dockerfiles = config.dockerfiles?.map((f) => path.resolve(workspace, f)) ?? (await findDockerfiles(workspace));
  const dir = config.secretsDir;
  // Only a directory with no secret file in it is left here: the parser checked there is a source.
  if (values.length === 0 && dir !== undefined && (paths.length > 0 || images.length > 0))
    throw new InputError(
      'secrets-dir',
      `${dir.path}${dir.from === PRIVATE_DIR_ENV ? ` (from ${PRIVATE_DIR_ENV})` : ''} holds no secret file, so there are no values to look for: run Pipeline Secrets in an earlier step, or name env vars in 'secret-env-names'`,
    );
  if (paths.length === 0 && images.length === 0 && dockerfiles.length === 0)
    throw new InputError(
      'paths',
      "nothing to scan (no 'paths', no 'images', no Dockerfile in the workspace): give 'paths' (files, directories or globs, relative to GITHUB_WORKSPACE) or 'images' (local docker image references)",
    );

  const patterns = buildPatterns(values);
  const lengths = new Map(patterns.map((p) => [`${p.name}\0${p.encoding}`, p.bytes.length]));
  const scanned = await scanTargets(deps, workspace, paths, images, patterns);
  const lint = await lintAll(
    dockerfiles,
    workspace,
    values.map((v) => v.name),
    scanned.problems,
  );
  const result: ScanOutcome = { ...scanned, lint, leakScan: paths.length > 0 || images.length > 0 };

  for (const f of result.findings)
    runner.annotate('error', masks.scrub(findingText(f)), { title: 'Secret leaked', ...where(workspace, f.path, f.line) });
  for (const p of result.problems)
    runner.annotate(p.kind === 'limit' ? 'warning' : 'error', masks.scrub(`${p.path}: ${p.message}`), {
      title: p.kind === 'limit' ? 'Scan bound reached' : 'Scan error',
    });
  for (const n of result.notices) runner.annotate('warning', masks.scrub(`${n.path}: ${n.message}`), { title: 'Symlink' });
  for (const l of result.lint) runner.annotate('warning', l.message, { file: l.file, line: l.line, title: `Dockerfile: ${l.rule}` });

  await fs.writeFile(files.sarif, JSON.stringify(sarifReport(result, workspace, lengths), null, 2));
  await fs.writeFile(files.json, JSON.stringify({ values: values.map((v) => v.name), sources, ...result }, null, 2));
  runner.setOutput('leaks', String(result.findings.length));
  runner.setOutput('sarif-file', files.sarif);
  runner.setOutput('report', files.json);
  runner.info(
    `Scanned ${result.files} input(s), ${(result.bytes / 1e6).toFixed(1)} MB in ${(result.elapsedMs / 1000).toFixed(1)} s (${rate(result.bytes, result.elapsedMs)}) for ${values.length} value(s) in ${patterns.length} encoded form(s): ${result.findings.length} leak(s), ${result.problems.length} problem(s), ${result.lint.length} Dockerfile warning(s)`,
  );
  await runner.appendSummary(scanSummary(result, workspace, values.length, patterns.length, sources));

  // The verdict: the scan ran and is reported, so a failure here is not an error (no failure
  // summary section, and the SARIF written above stays).
  const reasons = failureReasons(result, config);
  if (reasons.length > 0) runner.setFailed(masks.scrub(`leak scan: ${reasons.join('; ')} (see the annotations and ${files.json})`));
}

/** Lints each Dockerfile; one that cannot be read is a problem (it was not checked). */
async function lintAll(
  dockerfiles: readonly string[],
  workspace: string,
  names: string[],
  problems: ScanProblem[],
): Promise<LintFinding[]> {
  const lint = await Promise.all(
    dockerfiles.map(async (file) => {
      const text = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (text === undefined) {
        problems.push({ kind: 'error', path: file, message: 'cannot read the Dockerfile' });
        return [];
      }
      return lintDockerfile(path.relative(workspace, file) || file, text, names);
    }),
  );
  return lint.flat();
}

function failureReasons(result: ScanOutcome, config: { readonly failOnLeak: boolean; readonly failOnLint: boolean }): string[] {
  const reasons: string[] = [];
  if (config.failOnLeak && result.findings.length > 0)
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
  if (config.failOnLint && result.lint.length > 0) reasons.push(`${result.lint.length} Dockerfile warning(s)`);
  return reasons;
}

/** Annotation location: a workspace-relative file when the finding is in a plain workspace file. */
function where(workspace: string, p: string, line: number | undefined): { file?: string; line?: number } {
  if (p.includes('!') || p.startsWith('image:')) return {};
  const relative = path.relative(workspace, path.resolve(workspace, p));
  if (relative.startsWith('..')) return {};
  return line !== undefined ? { file: relative, line } : { file: relative };
}
