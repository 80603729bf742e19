// Main's delivery: the private directory (made before any credential arrives), the 0600 secret
// files and env-file (each path in the ledger before it is written), and, once every other step
// has succeeded, the paths and the values asked for handed to later steps as env vars and outputs.
import { isBinary } from '../core/decode.ts';
import { DeliveryError } from '../core/errors.ts';
import { ROOTS_ENV, withRoot } from '../core/job-values.ts';
import type { LedgerWriter } from '../core/ledger.ts';
import { createPrivateDir, PRIVATE_DIR_ENV, writeSecretFiles, type Delivered, type PrivateDir } from '../core/private-dir.ts';
import type { Runner } from '../core/runner.ts';
import type { Env } from '../inputs/common.ts';
import type { Config } from '../inputs/main.ts';
import type { Secret } from '../vault/fetch.ts';
import { rootLife } from './stale-roots.ts';

/** Creates the private directory and records it, so a token has a safe place to wait. */
export async function createRoot(
  deps: { readonly env: Env; readonly shm?: string | undefined; readonly now: () => number },
  config: Config,
  ledger: LedgerWriter,
): Promise<PrivateDir> {
  const dir = await createPrivateDir(deps.env, config.secretsDir, deps.shm, rootLife(config, deps.now()));
  ledger.update((l) => {
    l.root = dir.root;
    l.secretsDir = dir.secretsDir;
    l.userSecretsDir = dir.userSecretsDir;
    l.marker = dir.marker;
  });
  return dir;
}

/** Writes one 0600 file per secret and the env-file; every path is recorded before the first is written. */
export async function writeFiles(
  runner: Runner,
  ledger: LedgerWriter,
  dir: PrivateDir,
  secrets: readonly Secret[],
  config: Pick<Config, 'fileAccess'>,
): Promise<Delivered> {
  const delivered = await writeSecretFiles(dir, secrets, (files) => ledger.update((l) => l.files.push(...files)), config.fileAccess);
  // A PEM file (a `pki` entry's) has several lines by nature: its file is the way to use it.
  const pem = new Set(secrets.filter((s) => s.pem).map((s) => s.envName));
  for (const name of delivered.envFileSkipped.filter((n) => !pem.has(n))) {
    const binary = secrets.some((s) => s.envName === name && isBinary(s));
    runner.warning(
      binary
        ? `secret '${name}' decodes to bytes that are not UTF-8 text and is left out of the env-file (no env var can hold them); use its file`
        : `secret '${name}' has more than one line and is left out of the env-file (docker --env-file cannot hold it); use its file`,
    );
  }
  return delivered;
}

/** Where a secret came from, for a message: its `secrets` line. */
function lineOf(secret: Secret): string {
  return secret.source.kind === 'vault' ? `secrets line ${secret.source.line}` : `env-secrets line ${secret.source.line}`;
}

/**
 * A decoded value that is not UTF-8 text (or holds a NUL) can only be a file: an env var cannot hold
 * a NUL, and a lossy conversion would hand a later step a corrupt keystore. Asked for as env or output,
 * it fails the step before anything is delivered (all or nothing), naming its line.
 */
export function checkTextExports(config: Pick<Config, 'exportEnv' | 'exportOutputs'>, secrets: readonly Secret[]): void {
  const what = config.exportEnv ? 'export-env' : config.exportOutputs ? 'export-outputs' : undefined;
  if (what === undefined) return;
  const binary = secrets.find(isBinary);
  if (binary === undefined) return;
  throw new DeliveryError(
    `${lineOf(binary)}: secret '${binary.name}' decodes from ${binary.decoded?.encoding ?? ''} to bytes that are not UTF-8 text, which ${what === 'export-env' ? 'no environment variable' : 'no step output'} can hold (${what}: true exports every secret); it can only be the file $PIPELINE_SECRETS_DIR/${binary.name}: fetch it in a step without ${what}`,
  );
}

export interface Handover {
  readonly dir: PrivateDir;
  readonly envFile: string;
  readonly secrets: readonly Secret[];
  /** PIPELINE_SECRETS_ROOTS as this step got it: the roots of the job's earlier steps. */
  readonly rootsList?: string | undefined;
  /** The Vault token, set only when `export-token` asks for it. */
  readonly vaultToken: string | undefined;
}

/**
 * Called once everything else has succeeded: only now do paths, and values when asked for, reach
 * later steps (every value was masked when it arrived).
 */
export function handOver(runner: Runner, config: Pick<Config, 'exportEnv' | 'exportOutputs'>, what: Handover): void {
  if (what.vaultToken !== undefined) {
    runner.setOutput('vault-token', what.vaultToken);
    // vault-action's name for it (outputToken), so a migrated workflow's later steps read it unchanged.
    runner.setOutput('vault_token', what.vaultToken);
  }
  runner.setOutput('secrets-dir', what.dir.secretsDir);
  runner.setOutput('env-file', what.envFile);
  runner.exportVariable(PRIVATE_DIR_ENV, what.dir.secretsDir);
  // Every root of the job, for the leak scan (job-values.ts): a path list, never a value.
  runner.exportVariable(ROOTS_ENV, withRoot(what.rootsList, what.dir.root));
  // checkTextExports refused a value that is not text before anything was written: this is its backstop.
  checkTextExports(config, what.secrets);
  if (config.exportEnv) for (const s of what.secrets) runner.exportVariable(s.envName, s.value);
  if (config.exportOutputs) for (const s of what.secrets) runner.setOutput(s.outputName ?? s.name, s.value);
}
