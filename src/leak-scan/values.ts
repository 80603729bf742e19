// The values the leak scan looks for, and where they came from:
// - every Pipeline Secrets step of the job: the private roots in PIPELINE_SECRETS_ROOTS, each read
//   only once it is proven ours (core/job-values.ts proveRoot: the list is outside input), with the
//   files of its secrets directory and its side-values file (registry passwords given as inputs,
//   the Vault token, every value the renewal agent superseded), less the files its public-files
//   file names (a `pki` entry's certificate, CA and chain: public, and a CA in an image is normal);
//   `secrets-dir` narrows it to the
//   step whose secrets directory it names; PIPELINE_SECRETS_DIR alone (no list) still works;
// - the env vars named in `secret-env-names`;
// - the Vault `secrets` lines this step fetches itself (vault-values.ts), in a job without main.
// They are read here and nowhere else in the step, and each is masked the moment it is read: an
// error while the rest are collected is scrubbed of it too. The sources name steps, env names and
// Vault lines with counts, never a value.
import { isUtf8 } from 'node:buffer';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import {
  isPublicFile,
  proveRoot,
  readPublicFiles,
  readSideValues,
  ROOTS_ENV,
  type ProvenRoot,
  type PublicFiles,
  type SideSource,
} from '../core/job-values.ts';
import type { MaskRegistry } from '../core/mask.ts';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import type { Runner } from '../core/runner.ts';
import type { Env } from '../inputs/common.ts';
import { unreadableSecretsDir, type SecretsDir } from '../inputs/secrets-dir.ts';
import type { ScanConfig } from '../inputs/scan.ts';
import type { VaultClientFactory } from '../vault/client.ts';
import type { VaultValuesDeps } from './vault-values.ts';

export interface ScanValue {
  readonly name: string;
  /** Text, or the bytes of a file that is not text (a decoded keystore: scan/patterns.ts searches them as bytes). */
  readonly value: string | Buffer;
}

/** One Pipeline Secrets step whose values were read: its private root (when known) and what it held. */
export interface StepSource {
  readonly root: string | undefined;
  readonly secretsDir: string;
  readonly files: number;
  /** Files main wrote as public (a certificate, its CA and chain): not looked for. */
  readonly publicFiles: number;
  readonly side: Readonly<Record<SideSource, number>>;
}

/** Where the values came from, for the summary and the report: names and counts, never a value. */
export interface ValueSources {
  readonly steps: StepSource[];
  readonly envNames: string[];
  readonly vaultLines: Array<{ readonly line: number; readonly path: string; readonly values: number }>;
}

export interface CollectedValues {
  readonly values: ScanValue[];
  readonly sources: ValueSources;
}

export interface ValueDeps {
  readonly runner: Runner;
  /** The Vault client, loaded only when this step fetches from Vault (a separate bundle, as in main). */
  readonly loadVaultClient?: () => Promise<VaultClientFactory>;
  /** The runner's cancellation: a token this step logged in for is revoked then too. */
  readonly onCancel?: VaultValuesDeps['onCancel'];
}

type Config = Pick<ScanConfig, 'secretsDir' | 'secretEnvNames'> & Partial<Pick<ScanConfig, 'roots' | 'vault'>>;

export async function collectValues(config: Config, env: Env, masks: MaskRegistry, deps?: ValueDeps): Promise<CollectedValues> {
  const values: ScanValue[] = [];
  const sources: ValueSources = { steps: [], envNames: [], vaultLines: [] };
  const add = (name: string, value: string | Buffer): void => {
    // Masked in this step too: a finding message or an error could otherwise be made to echo it
    // (bytes that are not text by their base64, the form a log could show them in).
    masks.add(typeof value === 'string' ? value : value.toString('base64'));
    // One pattern per value: the same value from two steps is one thing to look for.
    if (value.length > 0 && !values.some((v) => sameValue(v.value, value))) values.push({ name, value });
  };
  const gone = (root: string): void =>
    deps?.runner.warning(
      `${root} (from ${ROOTS_ENV}) no longer exists (removed by its post, or by a step): that step's values are not looked for`,
    );
  for (const step of await stepsToRead(config, env, gone)) {
    const unreadable = (what: string) => (error: unknown) => {
      throw new InputError(
        'secrets-dir',
        `the ${what} file of ${step.root?.root} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); nothing in it was looked for`,
        { cause: error },
      );
    };
    // Without a proven root nothing is public: every file is looked for.
    const publicFiles = step.root ? await readPublicFiles(step.root.root).catch(unreadable('public-files')) : new Map();
    const { files, skipped } = await readSecretFiles(step.dir, publicFiles, add);
    const side: Record<SideSource, number> = { 'registry-password': 0, 'vault-token': 0, superseded: 0 };
    if (step.root !== undefined) {
      const read = await readSideValues(step.root.root).catch(unreadable('side-values'));
      for (const v of read.values) {
        add(v.name, v.value);
        side[v.source]++;
      }
    }
    sources.steps.push({ root: step.root?.root, secretsDir: step.dir.path, files, publicFiles: skipped, side });
  }
  for (const name of config.secretEnvNames) {
    const value = env[name];
    if (value === undefined || value === '')
      throw new InputError('secret-env-names', `environment variable '${name}' is not set or empty (pass it with env:)`);
    add(name, value);
    sources.envNames.push(name);
  }
  if (config.vault) {
    if (!deps) throw new Error('collectValues needs the runner to fetch from Vault');
    // Loaded only by a scan that fetches from Vault: most scans never do, and the cold start is every scan's.
    const { fetchScanValues } = await import('./vault-values.ts');
    const loadVaultClient = deps.loadVaultClient ?? (await import('../vault/client.ts')).loadVaultClient;
    const fetched = await fetchScanValues({ runner: deps.runner, masks, loadVaultClient, onCancel: deps.onCancel }, config.vault);
    for (const v of fetched) add(v.name, v.value);
    for (const line of config.vault.secrets)
      sources.vaultLines.push({ line: line.line, path: line.path, values: fetched.filter((v) => v.line === line.line).length });
  }
  const from = sourcesText(sources);
  if (deps && from.length > 0) deps.runner.info(`Looking for ${values.length} value(s) from: ${from.join('; ')}`);
  return { values, sources };
}

/**
 * The steps whose values are read: the proven roots of PIPELINE_SECRETS_ROOTS (all of them, or the
 * one whose secrets directory `secrets-dir` names), and a secrets directory no listed root holds
 * (a `secrets-dir` of another kind, or PIPELINE_SECRETS_DIR from a main without the list) by its files.
 */
async function stepsToRead(
  config: Config,
  env: Env,
  gone: (root: string) => void,
): Promise<Array<{ dir: SecretsDir; root: ProvenRoot | undefined }>> {
  const bases = ['/dev/shm', env.RUNNER_TEMP ?? ''];
  const narrowed = config.secretsDir?.from === 'secrets-dir' ? path.resolve(config.secretsDir.path) : undefined;
  const roots: ProvenRoot[] = [];
  for (const root of config.roots ?? []) {
    // A root that is gone holds nothing to read and is no one's forgery: said, not fatal (a root
    // that exists but is not provably ours still stops the step below).
    const exists = await fs.lstat(root).then(
      () => true,
      (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
    );
    if (!exists) {
      gone(root);
      continue;
    }
    const proven = await proveRoot(root, bases);
    if (typeof proven !== 'string') roots.push(proven);
    // With `secrets-dir` the other steps are not read, so an entry that is not ours changes nothing.
    else if (narrowed === undefined)
      throw new InputError(
        'secrets-dir',
        `not given, and ${root} (from ${ROOTS_ENV}, set by earlier Pipeline Secrets steps) is refused: ${proven}; nothing in it was read. Name the secrets directory of the step to check in 'secrets-dir'`,
      );
  }
  const steps: Array<{ dir: SecretsDir; root: ProvenRoot | undefined }> = roots
    .filter((r) => narrowed === undefined || r.secretsDir === narrowed)
    .map((root) => ({ dir: { path: root.secretsDir, from: config.secretsDir?.from ?? PRIVATE_DIR_ENV }, root }));
  const dir = config.secretsDir;
  if (dir !== undefined && !steps.some((s) => s.dir.path === path.resolve(dir.path))) {
    // Not listed (a step's own `env:` may have dropped the list): the directory main makes in its
    // root still leads to that root, once the root is proven ours and names this directory.
    const parent = await proveRoot(path.dirname(path.resolve(dir.path)), bases);
    const root = typeof parent !== 'string' && parent.secretsDir === path.resolve(dir.path) ? parent : undefined;
    steps.push({ dir, root });
  }
  return steps;
}

/** Adds each regular file of the secrets directory but the public ones; returns how many of each there were. */
async function readSecretFiles(
  dir: SecretsDir,
  publicFiles: PublicFiles,
  add: (name: string, value: string | Buffer) => void,
): Promise<{ files: number; skipped: number }> {
  let names: string[];
  try {
    names = await fs.readdir(dir.path);
  } catch (error) {
    throw unreadableSecretsDir(dir, error);
  }
  let files = 0;
  let skipped = 0;
  for (const name of names.sort()) {
    // Dot names are ours (the directory's own bookkeeping), never a secret; links are not followed.
    if (name.startsWith('.')) continue;
    const file = path.join(dir.path, name);
    try {
      if (!(await fs.lstat(file)).isFile()) continue;
      // As bytes: a decoded keystore is not text, and is searched as bytes (scan/patterns.ts).
      const bytes = await fs.readFile(file);
      if (isPublicFile(publicFiles, name, bytes)) {
        skipped++;
        continue;
      }
      add(name, isUtf8(bytes) ? bytes.toString('utf8') : bytes);
      files++;
    } catch (error) {
      // A file this step's user may not read (another user's directory) is the user's to fix: an InputError.
      throw unreadableSecretsDir(dir, error, file);
    }
  }
  return { files, skipped };
}

function sameValue(a: string | Buffer, b: string | Buffer): boolean {
  return typeof a === 'string' || typeof b === 'string' ? a === b : a.equals(b);
}

/** The sources in words, for the log and the summary: steps, env names and Vault lines, each with a count. */
export function sourcesText(sources: ValueSources): string[] {
  const out: string[] = [];
  for (const step of sources.steps) {
    const side = [
      [step.side['registry-password'], 'registry password(s) given as inputs'],
      [step.side['vault-token'], 'Vault token(s)'],
      [step.side.superseded, 'value(s) the renewal agent superseded'],
    ]
      .filter(([n]) => (n as number) > 0)
      .map(([n, what]) => `${n} ${what}`);
    out.push(
      `Pipeline Secrets step ${step.root ?? step.secretsDir}: ${step.files} secret file(s)${side.length > 0 ? `, ${side.join(', ')}` : ''}${step.publicFiles > 0 ? ` (${step.publicFiles} public certificate file(s) not looked for)` : ''}`,
    );
  }
  if (sources.envNames.length > 0) out.push(`${sources.envNames.length} env var(s): ${sources.envNames.join(', ')}`);
  for (const line of sources.vaultLines) out.push(`Vault secrets line ${line.line} (${line.path}): ${line.values} value(s)`);
  return out;
}
