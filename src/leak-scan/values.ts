// The values the leak scan looks for: each file of the secrets directory an earlier Pipeline
// Secrets step delivered, and the env vars named in `secret-env-names`. They are read here and
// nowhere else in the step, and each is masked the moment it is read: an error while the rest are
// collected is scrubbed of it too.
import { isUtf8 } from 'node:buffer';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import type { MaskRegistry } from '../core/mask.ts';
import type { Env } from '../inputs/common.ts';
import { unreadableSecretsDir } from '../inputs/secrets-dir.ts';
import type { ScanConfig } from '../inputs/scan.ts';

export interface ScanValue {
  readonly name: string;
  /** Text, or the bytes of a file that is not text (a decoded keystore: scan/patterns.ts searches them as bytes). */
  readonly value: string | Buffer;
}

export interface CollectedValues {
  readonly values: ScanValue[];
  /** Where they came from, for the report: counts and the directory, never a value. */
  readonly sources: string[];
}

export async function collectValues(
  config: Pick<ScanConfig, 'secretsDir' | 'secretEnvNames'>,
  env: Env,
  masks: MaskRegistry,
): Promise<CollectedValues> {
  const values: ScanValue[] = [];
  const sources: string[] = [];
  const add = (name: string, value: string | Buffer): void => {
    // Masked in this step too: a finding message or an error could otherwise be made to echo it
    // (bytes that are not text by their base64, the form a log could show them in).
    masks.add(typeof value === 'string' ? value : value.toString('base64'));
    values.push({ name, value });
  };
  const dir = config.secretsDir;
  if (dir !== undefined) {
    let names: string[];
    try {
      names = await fs.readdir(dir.path);
    } catch (error) {
      throw unreadableSecretsDir(dir, error);
    }
    for (const name of names.sort()) {
      // Dot names are ours (the directory's own bookkeeping), never a secret; links are not followed.
      if (name.startsWith('.')) continue;
      const file = path.join(dir.path, name);
      try {
        if (!(await fs.lstat(file)).isFile()) continue;
        const bytes = await fs.readFile(file);
        add(name, isUtf8(bytes) ? bytes.toString('utf8') : bytes);
      } catch (error) {
        // A file this step's user may not read (another user's directory) is the user's to fix: an InputError.
        throw unreadableSecretsDir(dir, error, file);
      }
    }
    sources.push(`${names.length} file(s) of ${dir.path}`);
  }
  for (const name of config.secretEnvNames) {
    const value = env[name];
    if (value === undefined || value === '')
      throw new InputError('secret-env-names', `environment variable '${name}' is not set or empty (pass it with env:)`);
    add(name, value);
  }
  if (config.secretEnvNames.length > 0) sources.push(`${config.secretEnvNames.length} env var(s)`);
  return { values, sources };
}
