// The leak-scan step's inputs (scan/action.yml), read and checked once into a readonly config,
// including the check between them (something to look for when there is something to scan).
// Errors name the input; secret-env-names holds names, and an entry that is not one is not echoed.
// The Vault inputs and `secrets` lines are main's, parsed by main's own parsers (vault.ts,
// secret-spec.ts): a scan in a job that never ran main fetches the same values the same way.
import { InputError } from '../core/errors.ts';
import { ROOTS_ENV, splitRoots } from '../core/job-values.ts';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import { DEFAULT_TIMEOUT_SECONDS, getBoolean, getInput, getInteger, getList, isEnvVarName, type Env } from './common.ts';
import { parseSecretsInput, type VaultSecretLine } from './secret-spec.ts';
import { getSecretsDir, type SecretsDir } from './secrets-dir.ts';
import { parseVault, type VaultConfig } from './vault.ts';

/** The scan's own Vault fetch (`secrets` given): values to look for, masked on arrival, never delivered. */
export interface ScanVault {
  readonly config: VaultConfig;
  readonly secrets: readonly VaultSecretLine[];
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly retries: number;
}

export interface ScanConfig {
  /** Files, directories and globs, relative to the workspace. */
  readonly paths: readonly string[];
  /** Local docker image references. */
  readonly images: readonly string[];
  /** Dockerfiles to lint, relative to the workspace; undefined: every Dockerfile found in the workspace. */
  readonly dockerfiles: readonly string[] | undefined;
  /** Where the values to look for are (one file each), when an earlier step delivered them. */
  readonly secretsDir: SecretsDir | undefined;
  /** The private roots of the job's Pipeline Secrets steps (PIPELINE_SECRETS_ROOTS), not yet proven ours. */
  readonly roots: readonly string[];
  /** Environment variables holding more values to look for. */
  readonly secretEnvNames: readonly string[];
  /** Vault secrets this step fetches itself; undefined when `secrets` is empty. */
  readonly vault: ScanVault | undefined;
  readonly failOnLeak: boolean;
  readonly failOnLint: boolean;
}

// What `docker save` / `docker history` take as a local image: a name, tag and digest. It starts
// with a letter or digit, so it can never be read by docker as an option.
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/;

export function parseScanInputs(env: Env): ScanConfig {
  // The booleans first, before anything is scanned: a typo must not turn a failure off.
  const failOnLeak = getBoolean(env, 'fail-on-leak', true);
  const failOnLint = getBoolean(env, 'fail-on-lint', false);
  const paths = getList(env, 'paths');
  const images = getList(env, 'images');
  for (const image of images) {
    if (!IMAGE.test(image))
      throw new InputError('images', `'${image}' is not a local docker image reference like app:1.0 or ghcr.io/org/app@sha256:...`);
  }
  const dockerfiles = getInput(env, 'dockerfiles') === '' ? undefined : getList(env, 'dockerfiles');
  const secretEnvNames = getList(env, 'secret-env-names');
  secretEnvNames.forEach((name, index) => {
    // Not echoed: a value pasted here in place of a name must not reach the log.
    if (!isEnvVarName(name))
      throw new InputError(
        'secret-env-names',
        `entry ${index + 1} is not an environment variable name (letters, digits and '_', not starting with a digit); give names here and pass the values with env:`,
      );
  });
  const secretsDir = getSecretsDir(env);
  const roots = splitRoots(env[ROOTS_ENV]);
  const vault = parseScanVault(env);
  if (secretsDir === undefined && roots.length === 0 && secretEnvNames.length === 0 && !vault && (paths.length > 0 || images.length > 0))
    throw new InputError(
      'secrets-dir',
      `not given and ${PRIVATE_DIR_ENV} is not set, so there are no values to look for: run Pipeline Secrets in an earlier step, give Vault 'secrets' (and 'url', 'method'...) for this step to fetch, or name env vars in 'secret-env-names'`,
    );
  return { paths, images, dockerfiles, secretsDir, roots, secretEnvNames, vault, failOnLeak, failOnLint };
}

function parseScanVault(env: Env): ScanVault | undefined {
  const secrets = parseSecretsInput(getInput(env, 'secrets'));
  // A write mints a fresh credential (pki/issue, aws/sts): it cannot be in an artifact made before,
  // so fetching one would only create a credential to revoke. Refused, naming the line.
  const write = secrets.find((line) => line.body !== undefined);
  if (write)
    throw new InputError(
      'secrets',
      `line ${write.line}: a 'write' entry issues a new credential, which no artifact made earlier can hold; the scan looks for values that exist already: leave it out here (a step that delivered it lists it in its own private directory)`,
    );
  if (secrets.length === 0) return undefined;
  return {
    config: parseVault(env),
    secrets,
    timeoutMs: getInteger(env, 'timeout', DEFAULT_TIMEOUT_SECONDS, 1, 3600) * 1000,
    concurrency: getInteger(env, 'concurrency', 16, 1, 256),
    retries: getInteger(env, 'retries', 4, 0, 20),
  };
}
