// The secrets directory a later step (verify, the leak scan) reads: `secrets-dir`, else the
// PIPELINE_SECRETS_DIR an earlier Pipeline Secrets step exported, and the one message for a
// directory that cannot be read, saying where its path came from.
import { InputError } from '../core/errors.ts';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import { getInput, type Env } from './common.ts';

/** The host secrets directory of an earlier Pipeline Secrets step, and where it was named. */
export interface SecretsDir {
  readonly path: string;
  readonly from: 'secrets-dir' | typeof PRIVATE_DIR_ENV;
}

/** `secrets-dir`, else PIPELINE_SECRETS_DIR as main exports it for later steps; undefined when neither is set. */
export function getSecretsDir(env: Env): SecretsDir | undefined {
  const input = getInput(env, 'secrets-dir');
  if (input !== '') return { path: input, from: 'secrets-dir' };
  const exported = (env[PRIVATE_DIR_ENV] ?? '').trim();
  return exported === '' ? undefined : { path: exported, from: PRIVATE_DIR_ENV };
}

/** The error for a secrets directory (or a file in it) that cannot be read, saying where its path came from. */
export function unreadableSecretsDir(dir: SecretsDir, error: unknown, file = dir.path): InputError {
  const reason = (error as NodeJS.ErrnoException | undefined)?.code ?? 'unreadable';
  return new InputError(
    'secrets-dir',
    dir.from === 'secrets-dir'
      ? `cannot read ${file} (${reason})`
      : `not given, and ${file} (from ${PRIVATE_DIR_ENV}, set by an earlier Pipeline Secrets step) cannot be read (${reason})`,
    { cause: error },
  );
}
