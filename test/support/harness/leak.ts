// The project's invariant (shared/DESIGN.md "Where a secret value may be, and where never"), checked
// after every end-to-end test. A value may appear in a step's stdout only inside `::add-mask::`; never
// in stderr, GITHUB_STATE, the step summary, an annotation, any file of the job's dirs (raw or base64)
// outside the given private dirs, or any argv of a step process or its descendants.
// GITHUB_ENV and GITHUB_OUTPUT files are exempt: DESIGN.md allows values there when the user asks for
// them, so tests assert `job.env` / `outputs` themselves.
// Errors name where, never what: a secret is shown as its index, length and a short sha256.

import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { splitLines } from './commands.ts';
import { FILE_COMMANDS_DIR } from './file-commands.ts';
import type { Job, StepResult } from './job.ts';
import { getStepMeta } from './step-meta.ts';

const MIN_LINE = 4; // lines of a multi-line secret shorter than this are not searched on their own
const MIN_BASE64_CORE = 8;

/** The value and each trimmed line of it with at least MIN_LINE chars. */
export function secretNeedles(secret: string): string[] {
  const needles = new Set<string>([secret]);
  for (const line of secret.split(/\r\n|\r|\n/)) {
    const trimmed = line.trim();
    if (trimmed.length >= MIN_LINE) needles.add(trimmed);
  }
  return [...needles].filter((n) => n !== '');
}

/**
 * Base64 forms that betray a needle wherever it sits in a longer base64 text (e.g. the password in
 * base64("user:password") of a docker config.json): for each of the 3 byte alignments, the base64 of
 * the whole 3-byte groups (the chars that do not depend on neighbours), plus the padded encoding of
 * the whole value; standard and url alphabets.
 */
export function base64Needles(needle: string): string[] {
  const bytes = Buffer.from(needle, 'utf8');
  const forms = new Set<string>([bytes.toString('base64')]);
  for (let shift = 0; shift <= 2; shift++) {
    const rest = bytes.subarray(shift);
    const whole = rest.subarray(0, rest.length - (rest.length % 3));
    const core = whole.toString('base64');
    if (core.length >= MIN_BASE64_CORE) forms.add(core);
  }
  for (const form of [...forms]) forms.add(form.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, ''));
  return [...forms];
}

function describe(secret: string, index: number): string {
  const hash = createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 12);
  return `secret #${index} (length ${secret.length}, sha256 ${hash})`;
}

function isEnvOrOutputFile(file: string): boolean {
  return path.basename(path.dirname(file)) === FILE_COMMANDS_DIR && /^(set_env|set_output)_/.test(path.basename(file));
}

function walkFiles(dir: string, skip: readonly string[], out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const full = path.join(dir, name);
    if (skip.some((p) => full === p || full.startsWith(p + path.sep))) continue;
    let stat;
    try {
      stat = lstatSync(full);
    } catch {
      continue;
    }
    if (stat.isDirectory()) walkFiles(full, skip, out);
    else if (stat.isFile() && !isEnvOrOutputFile(full)) out.push(full); // symlinks, sockets, fifos: not read
  }
}

export function assertNoLeak(job: Job, steps: StepResult[], secrets: string[], opts: { privateDirs?: string[] } = {}): void {
  const findings: string[] = [];
  const skip = (opts.privateDirs ?? []).map((p) => path.resolve(p));
  const files: string[] = [];
  for (const root of new Set([job.runnerTemp, job.workspace, job.home])) walkFiles(root, skip, files);
  const contents = files.map((file) => {
    try {
      return { file, bytes: readFileSync(file) };
    } catch (error) {
      findings.push(`could not read ${file} to check it: ${(error as Error).message}`);
      return { file, bytes: Buffer.alloc(0) };
    }
  });

  secrets.forEach((secret, si) => {
    if (secret === '') return;
    const label = describe(secret, si);
    const needles = secretNeedles(secret);
    const has = (text: string): boolean => needles.some((n) => text.includes(n));

    steps.forEach((step, i) => {
      const meta = getStepMeta(step);
      const where = `steps[${i}] ${meta?.name ?? '(unknown step)'}`;
      splitLines(step.stdout).forEach((line, n) => {
        if (meta?.addMaskLines.has(n)) return;
        if (has(line)) findings.push(`${label} in ${where} stdout line ${n + 1}, outside ::add-mask::`);
      });
      if (has(step.stderr)) findings.push(`${label} in ${where} stderr`);
      const stateText = meta
        ? meta.raw.state
        : Object.entries(step.state)
            .map(([k, v]) => `${k}=${v}`)
            .join('\n');
      if (has(stateText) || Object.values(step.state).some(has)) {
        findings.push(`${label} in ${where} GITHUB_STATE (${step.files.state})`);
      }
      if (has(step.summary)) findings.push(`${label} in ${where} step summary (GITHUB_STEP_SUMMARY)`);
      step.annotations.forEach((a, n) => {
        if (has(a.message)) findings.push(`${label} in ${where} annotation #${n} (${a.level})`);
      });
      for (const argv of meta?.argv ?? []) {
        const at = argv.findIndex(has);
        if (at >= 0) findings.push(`${label} in ${where} argv[${at}] of process '${path.basename(argv[0] ?? '?')}'`);
      }
    });

    const raw = needles.map((n) => Buffer.from(n, 'utf8'));
    const encoded = needles.flatMap(base64Needles).map((n) => Buffer.from(n, 'utf8'));
    for (const { file, bytes } of contents) {
      if (raw.some((n) => bytes.includes(n))) findings.push(`${label} in file ${file}`);
      else if (encoded.some((n) => bytes.includes(n))) findings.push(`${label} in file ${file} (base64)`);
    }
  });

  if (findings.length > 0) {
    throw new Error(`assertNoLeak: ${findings.length} leak(s):\n  - ${findings.join('\n  - ')}`);
  }
}
