// collectValues: the secrets directory's regular files (no dot names, no links, no directories)
// and the named env vars, each masked as it is read; what cannot be read is an InputError.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { collectValues } from '../../../src/leak-scan/values.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { tempDir } from '../../support/temp.ts';

function secretsDir(): string {
  const dir = tempDir('ps-values-');
  writeFileSync(path.join(dir, 'B_TOKEN'), 'b-value-123456');
  writeFileSync(path.join(dir, 'A_PASSWORD'), 'a-value-123456');
  writeFileSync(path.join(dir, '.ledger'), 'not a secret');
  mkdirSync(path.join(dir, 'sub'));
  symlinkSync('/etc/hostname', path.join(dir, 'LINK'));
  return dir;
}

describe('collectValues', () => {
  it('reads the regular files of the directory, sorted, and the named env vars; each value is masked', async () => {
    const runner = fakeRunner();
    const dir = secretsDir();
    const got = await collectValues(
      { secretsDir: { path: dir, from: 'secrets-dir' }, secretEnvNames: ['NPM_TOKEN'] },
      { NPM_TOKEN: 'npm-value-123456' },
      new MaskRegistry(runner),
    );
    expect(got.values).toEqual([
      { name: 'A_PASSWORD', value: 'a-value-123456' },
      { name: 'B_TOKEN', value: 'b-value-123456' },
      { name: 'NPM_TOKEN', value: 'npm-value-123456' },
    ]);
    expect(got.sources).toEqual([`5 file(s) of ${dir}`, '1 env var(s)']);
    expect(runner.masked).toEqual(expect.arrayContaining(['a-value-123456', 'b-value-123456', 'npm-value-123456']));
  });

  it('no directory and no names: nothing to look for', async () => {
    expect(await collectValues({ secretsDir: undefined, secretEnvNames: [] }, {}, new MaskRegistry(fakeRunner()))).toEqual({
      values: [],
      sources: [],
    });
  });

  it.each([
    [
      { secretsDir: { path: '/nonexistent/ps', from: 'secrets-dir' as const }, secretEnvNames: [] },
      "input 'secrets-dir': cannot read /nonexistent/ps (ENOENT)",
    ],
    [
      { secretsDir: { path: '/etc/hostname', from: 'PIPELINE_SECRETS_DIR' as const }, secretEnvNames: [] },
      "input 'secrets-dir': not given, and /etc/hostname (from PIPELINE_SECRETS_DIR, set by an earlier Pipeline Secrets step) cannot be read (ENOTDIR)",
    ],
    [
      { secretsDir: undefined, secretEnvNames: ['UNSET'] },
      "input 'secret-env-names': environment variable 'UNSET' is not set or empty (pass it with env:)",
    ],
  ])('%j: %s', async (config, message) => {
    const error = await collectValues(config, { EMPTY: '' }, new MaskRegistry(fakeRunner())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(message);
  });
});
