import { promises as fs, mkdtempSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chooseBase, createPrivateDir, writeExclusive, writeSecretFiles } from '../../../src/core/private-dir.ts';
import { DeliveryError } from '../../../src/core/errors.ts';
import type { Secret } from '../../../src/vault/fetch.ts';

const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-deliver-'));
  made.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});
const secret = (name: string, value: string): Secret => ({
  name,
  envName: name.toUpperCase(),
  value,
  source: { kind: 'env', line: 1, envVar: 'X' },
});

describe('writeExclusive', () => {
  it('creates a 0600 file even under a permissive umask', async () => {
    const file = path.join(tmp(), 'a');
    const old = process.umask(0);
    try {
      await writeExclusive(file, 'value-1');
    } finally {
      process.umask(old);
    }
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(file, 'utf8')).toBe('value-1');
  });

  it.each([
    ['an existing file', async (p: string) => fs.writeFile(p, 'planted')],
    [
      'a symlink to a file',
      async (p: string) =>
        fs.symlink(path.join(path.dirname(p), 'elsewhere'), p).then(() => fs.writeFile(path.join(path.dirname(p), 'elsewhere'), 'x')),
    ],
    ['a dangling symlink', async (p: string) => fs.symlink('/nonexistent/target', p)],
  ])('refuses %s and leaves it untouched', async (_name, plant) => {
    const dir = tmp();
    const file = path.join(dir, 'secret');
    await plant(file);
    const before = await fs.lstat(file);
    await expect(writeExclusive(file, 'value-2')).rejects.toThrow(DeliveryError);
    await expect(writeExclusive(file, 'value-2')).rejects.toThrow(/already exists \(file or symlink\); refusing to overwrite or follow it/);
    const after = await fs.lstat(file);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    for (const entry of await fs.readdir(dir)) {
      const stat = await fs.lstat(path.join(dir, entry));
      if (stat.isFile()) expect(await fs.readFile(path.join(dir, entry), 'utf8')).not.toContain('value-2');
    }
  });
});

describe('private directory', () => {
  it('falls back to RUNNER_TEMP when the tmpfs candidate is not tmpfs', async () => {
    const runnerTemp = tmp();
    const notTmpfs = tmp();
    expect(await chooseBase({ RUNNER_TEMP: runnerTemp }, notTmpfs)).toEqual({ base: runnerTemp, onTmpfs: false });
    const dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, undefined, notTmpfs);
    expect(dir.root.startsWith(runnerTemp)).toBe(true);
    expect(statSync(dir.root).mode & 0o777).toBe(0o700);
    expect(statSync(dir.secretsDir).mode & 0o777).toBe(0o700);
  });

  it('uses /dev/shm when it is tmpfs', async () => {
    const choice = await chooseBase({ RUNNER_TEMP: tmp() });
    expect(choice).toEqual({ base: '/dev/shm', onTmpfs: true });
  });

  it('leaves no directory behind when secrets-dir is refused', async () => {
    const runnerTemp = tmp();
    const existing = tmp();
    await expect(createPrivateDir({ RUNNER_TEMP: runnerTemp }, existing, tmp())).rejects.toThrow(/secrets-dir.*already exists/);
    expect(await fs.readdir(runnerTemp)).toEqual([]);
  });

  it('writes files and an env-file without multi-line values', async () => {
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, undefined, tmp());
    const planned: string[] = [];
    const out = await writeSecretFiles(dir, [secret('a', 'one-value'), secret('b', 'two\nlines')], (files) => planned.push(...files));
    expect(planned).toEqual(out.files);
    expect(out.envFileSkipped).toEqual(['B']);
    expect(await fs.readFile(out.envFile, 'utf8')).toBe('A=one-value\n');
    expect(statSync(out.envFile).mode & 0o777).toBe(0o600);
  });
});
