// The leak-scan step's inputs (scan/action.yml), read and checked once into a readonly config,
// including the check between them (something to look for when there is something to scan).
// Errors name the input; secret-env-names holds names, and an entry that is not one is not echoed.
import { InputError } from '../core/errors.ts';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import { getBoolean, getInput, getList, isEnvVarName, type Env } from './common.ts';
import { getSecretsDir, type SecretsDir } from './secrets-dir.ts';

export interface ScanConfig {
  /** Files, directories and globs, relative to the workspace. */
  readonly paths: readonly string[];
  /** Local docker image references. */
  readonly images: readonly string[];
  /** Dockerfiles to lint, relative to the workspace; undefined: every Dockerfile found in the workspace. */
  readonly dockerfiles: readonly string[] | undefined;
  /** Where the values to look for are (one file each), when an earlier step delivered them. */
  readonly secretsDir: SecretsDir | undefined;
  /** Environment variables holding more values to look for. */
  readonly secretEnvNames: readonly string[];
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
  if (secretsDir === undefined && secretEnvNames.length === 0 && (paths.length > 0 || images.length > 0))
    throw new InputError(
      'secrets-dir',
      `not given and ${PRIVATE_DIR_ENV} is not set, so there are no values to look for: run Pipeline Secrets in an earlier step, or name env vars in 'secret-env-names'`,
    );
  return { paths, images, dockerfiles, secretsDir, secretEnvNames, failOnLeak, failOnLint };
}
