// collectValues: the secrets directory's regular files (no dot names, no links, no directories),
// every proven private root of the job with its side values, and the named env vars, each masked as
// it is read; what cannot be read, or a root that is not ours, is an InputError.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { appendPublicFiles, appendSideValues } from '../../../src/core/job-values.ts';
import { createPrivateDir } from '../../../src/core/private-dir.ts';
import { collectValues, sourcesText } from '../../../src/leak-scan/values.ts';
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
    expect(got.sources).toEqual({
      steps: [
        { root: undefined, secretsDir: dir, files: 2, publicFiles: 0, side: { 'registry-password': 0, 'vault-token': 0, superseded: 0 } },
      ],
      envNames: ['NPM_TOKEN'],
      vaultLines: [],
    });
    expect(runner.masked).toEqual(expect.arrayContaining(['a-value-123456', 'b-value-123456', 'npm-value-123456']));
  });

  it('no directory and no names: nothing to look for', async () => {
    expect(await collectValues({ secretsDir: undefined, secretEnvNames: [] }, {}, new MaskRegistry(fakeRunner()))).toEqual({
      values: [],
      sources: { steps: [], envNames: [], vaultLines: [] },
    });
  });

  it('every step of PIPELINE_SECRETS_ROOTS: its files and side values, each value once; secrets-dir narrows to one step', async () => {
    const temp = tempDir('ps-values-roots-');
    const env = { RUNNER_TEMP: temp };
    const first = await createPrivateDir(env, undefined, path.join(temp, 'no-shm'));
    const second = await createPrivateDir(env, undefined, path.join(temp, 'no-shm'));
    writeFileSync(path.join(first.secretsDir, 'NPM_TOKEN'), 'npm-first-123456', { mode: 0o600 });
    writeFileSync(path.join(second.secretsDir, 'DB_PASSWORD'), 'db-second-123456', { mode: 0o600 });
    writeFileSync(path.join(second.secretsDir, 'SAME'), 'npm-first-123456', { mode: 0o600 });
    await appendSideValues(first.root, [
      { name: 'registry-password (ghcr.io)', source: 'registry-password', value: 'registry-pw-123456' },
      { name: 'vault-token', source: 'vault-token', value: 'hvs.first-token-1234' },
    ]);
    await appendSideValues(second.root, [{ name: 'DB_PASSWORD (superseded)', source: 'superseded', value: 'db-old-123456' }]);
    const runner = fakeRunner();
    const all = await collectValues(
      { secretsDir: { path: second.secretsDir, from: 'PIPELINE_SECRETS_DIR' }, roots: [first.root, second.root], secretEnvNames: [] },
      env,
      new MaskRegistry(runner),
    );
    expect(all.values.map((v) => v.name)).toEqual([
      'NPM_TOKEN',
      'registry-password (ghcr.io)',
      'vault-token',
      'DB_PASSWORD',
      'DB_PASSWORD (superseded)',
    ]);
    expect(all.sources.steps).toEqual([
      {
        root: first.root,
        secretsDir: first.secretsDir,
        files: 1,
        publicFiles: 0,
        side: { 'registry-password': 1, 'vault-token': 1, superseded: 0 },
      },
      {
        root: second.root,
        secretsDir: second.secretsDir,
        files: 2,
        publicFiles: 0,
        side: { 'registry-password': 0, 'vault-token': 0, superseded: 1 },
      },
    ]);
    expect(runner.masked).toEqual(expect.arrayContaining(['registry-pw-123456', 'hvs.first-token-1234', 'db-old-123456']));
    expect(sourcesText(all.sources)).toEqual([
      `Pipeline Secrets step ${first.root}: 1 secret file(s), 1 registry password(s) given as inputs, 1 Vault token(s)`,
      `Pipeline Secrets step ${second.root}: 2 secret file(s), 1 value(s) the renewal agent superseded`,
    ]);

    // secrets-dir names one step: only its values, and an entry of the list that is not ours is not even looked at.
    const one = await collectValues(
      { secretsDir: { path: first.secretsDir, from: 'secrets-dir' }, roots: ['/etc', first.root, second.root], secretEnvNames: [] },
      env,
      new MaskRegistry(fakeRunner()),
    );
    expect(one.values.map((v) => v.name)).toEqual(['NPM_TOKEN', 'registry-password (ghcr.io)', 'vault-token']);
    expect(one.sources.steps.map((s) => s.root)).toEqual([first.root]);

    // No list at all: the secrets directory still leads to its proven root, side values included.
    const unlisted = await collectValues(
      { secretsDir: { path: first.secretsDir, from: 'PIPELINE_SECRETS_DIR' }, roots: [], secretEnvNames: [] },
      env,
      new MaskRegistry(fakeRunner()),
    );
    expect(unlisted.values.map((v) => v.name)).toEqual(['NPM_TOKEN', 'registry-password (ghcr.io)', 'vault-token']);
  });

  it("a pki entry's certificate, CA and chain, recorded public by main, are not looked for; its key, and a user's secret named like one, are", async () => {
    const temp = tempDir('ps-values-public-');
    const env = { RUNNER_TEMP: temp };
    const dir = await createPrivateDir(env, undefined, path.join(temp, 'no-shm'));
    const files = { 'client.crt': 'cert-public-123456', 'client.ca.pem': 'ca-public-123456', 'client.key': 'key-secret-123456' };
    for (const [name, value] of Object.entries(files)) writeFileSync(path.join(dir.secretsDir, name), value, { mode: 0o600 });
    // A user's KV secret whose name looks like a CA's: main never recorded it, so it stays a secret.
    writeFileSync(path.join(dir.secretsDir, 'kv.ca.pem'), 'kv-secret-123456', { mode: 0o600 });
    await appendPublicFiles(dir.root, [
      { name: 'client.crt', value: files['client.crt'] },
      { name: 'client.ca.pem', value: files['client.ca.pem'] },
    ]);
    const got = await collectValues({ secretsDir: undefined, roots: [dir.root], secretEnvNames: [] }, env, new MaskRegistry(fakeRunner()));
    expect(got.values.map((v) => v.name)).toEqual(['client.key', 'kv.ca.pem']);
    expect(got.sources.steps[0]).toMatchObject({ files: 2, publicFiles: 2 });
    expect(sourcesText(got.sources)[0]).toBe(
      `Pipeline Secrets step ${dir.root}: 2 secret file(s) (2 public certificate file(s) not looked for)`,
    );
  });

  it('an entry of PIPELINE_SECRETS_ROOTS that is not a root of ours is refused, naming it and why; nothing in it is read', async () => {
    const temp = tempDir('ps-values-refused-');
    const fake = path.join(temp, 'pipeline-secrets-planted');
    mkdirSync(path.join(fake, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(fake, 'secrets', 'X'), 'planted-value-1234');
    const runner = fakeRunner();
    const error = await collectValues(
      { secretsDir: undefined, roots: [fake], secretEnvNames: [] },
      { RUNNER_TEMP: temp },
      new MaskRegistry(runner),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      `input 'secrets-dir': not given, and ${fake} (from PIPELINE_SECRETS_ROOTS, set by earlier Pipeline Secrets steps) is refused: it carries no readable marker (ENOENT); nothing in it was read. Name the secrets directory of the step to check in 'secrets-dir'`,
    );
    expect(runner.masked).toEqual([]);
  });

  it('an entry of PIPELINE_SECRETS_ROOTS that no longer exists (its post ran) is a warning, and the other values are still looked for', async () => {
    const temp = tempDir('ps-values-gone-');
    const gone = path.join(temp, 'pipeline-secrets-removed');
    const runner = fakeRunner();
    const collected = await collectValues(
      { secretsDir: undefined, roots: [gone], secretEnvNames: ['GONE_TEST_TOKEN'] },
      { RUNNER_TEMP: temp, GONE_TEST_TOKEN: 'still-looked-for-5678' },
      new MaskRegistry(runner),
      { runner },
    );
    expect(collected.values.map((v) => v.name)).toEqual(['GONE_TEST_TOKEN']);
    expect(runner.warnings).toEqual([
      `${gone} (from PIPELINE_SECRETS_ROOTS) no longer exists (removed by its post, or by a step): that step's values are not looked for`,
    ]);
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
