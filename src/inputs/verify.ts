// The verify step's inputs (verify/action.yml), read and checked once into a readonly config.
// Errors name the input; `container` and `path` are names, never values.
import { InputError } from '../core/errors.ts';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import { DEFAULT_SECRETS_MOUNT, getBoolean, getInput, requireInput, type Env } from './common.ts';
import { getSecretsDir, type SecretsDir } from './secrets-dir.ts';

export interface VerifyConfig {
  /** The name or id of a running container (checked against docker's options in verify/container.ts). */
  readonly container: string;
  /** Where the container mounts the secrets directory. */
  readonly mountPath: string;
  /** The host directory whose files the container should have. */
  readonly secretsDir: SecretsDir;
  readonly failOnMismatch: boolean;
}

export function parseVerifyInputs(env: Env): VerifyConfig {
  // The boolean first: a typo must fail the step, not turn the failure off.
  const failOnMismatch = getBoolean(env, 'fail-on-mismatch', true);
  const container = requireInput(env, 'container', '(the name or id of a running container)');
  const mountPath = getInput(env, 'path') || DEFAULT_SECRETS_MOUNT;
  const secretsDir = getSecretsDir(env);
  if (secretsDir === undefined)
    throw new InputError('secrets-dir', `not given and ${PRIVATE_DIR_ENV} is not set; run Pipeline Secrets in an earlier step`);
  return { container, mountPath, secretsDir, failOnMismatch };
}
