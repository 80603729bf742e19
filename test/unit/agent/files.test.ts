// The delivered files as the renewal agent keeps them: only files main delivered, only when the
// value changed, the env-file after them, on-change once with names (never values); and the
// private root removed only while it carries the marker the agent was started for.
import { promises as fs, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeRootIfOurs, SecretFiles } from '../../../src/agent/files.ts';
import { StatusBook } from '../../../src/agent/status.ts';
import { readSideValues } from '../../../src/core/job-values.ts';
import type { ReadResult } from '../../../src/vault/kv.ts';
import { config, fakeExec, kvSource, line, T0, tempRoot, type TempRoot } from './fakes.ts';

const dirs: TempRoot[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await dir.remove();
});
async function root(values: Record<string, string>): Promise<TempRoot> {
  const dir = await tempRoot(values);
  dirs.push(dir);
  return dir;
}

const result = (data: Record<string, unknown>): ReadResult => ({
  readPath: 'secret/data/app',
  kvVersion: 2,
  data,
  version: 2,
  leaseId: undefined,
  leaseDuration: undefined,
  renewable: false,
});

async function setup(onChange: string | undefined) {
  const dir = await root({ USER: 'app', PASSWORD: 'pw-1' });
  const lines: [ReturnType<typeof line>, ...Array<ReturnType<typeof line>>] = [
    line('secret/app', 'user', 'USER'),
    line('secret/app', 'password', 'PASSWORD'),
  ];
  const cfg = config(dir, [kvSource(lines, 'secret/data/app', 1)], { onChange });
  const status = new StatusBook(cfg, T0, () => 0);
  const exec = fakeExec(dir);
  const logged: string[] = [];
  const files = new SecretFiles(cfg, { exec, now: () => T0, log: async (m) => void logged.push(m), status });
  await files.load();
  return { dir, lines, files, exec, status, logged };
}

describe('SecretFiles with decoded lines (?encoding=)', () => {
  const V1 = Buffer.from([0x30, 0x82, 0xff, 0x00, 0x01]);
  const V2 = Buffer.from([0x30, 0x82, 0xfe, 0x00, 0x02, 0x03]);

  it('decodes a rotated value the way main did: the file gets the new bytes exactly, the env-file leaves them out', async () => {
    const dir = await root({ USER: 'app' });
    await fs.writeFile(path.join(dir.secretsDir, 'KEYSTORE'), V1, { mode: 0o600 });
    const lines: [ReturnType<typeof line>, ...Array<ReturnType<typeof line>>] = [
      line('secret/app', 'user', 'USER'),
      line('secret/app', 'p12', 'KEYSTORE', undefined, 'base64'),
    ];
    const cfg = config(dir, [kvSource(lines, 'secret/data/app', 1)], { onChange: undefined });
    const logged: string[] = [];
    const files = new SecretFiles(cfg, {
      exec: fakeExec(dir),
      now: () => T0,
      log: async (m) => void logged.push(m),
      status: new StatusBook(cfg, T0, () => 0),
    });
    await files.load();
    expect(files.bytes('KEYSTORE')).toBe(V1.length);
    // The same value again, base64 as stored: nothing changed (compared as bytes, not as lossy text).
    await files.apply(lines, result({ user: 'app', p12: V1.toString('base64') }), 'same');
    expect(logged.at(-1)).toBe('same: no delivered value changed');
    await files.apply(lines, result({ user: 'app', p12: V2.toString('base64') }), 'rotated');
    expect((await fs.readFile(path.join(dir.secretsDir, 'KEYSTORE'))).equals(V2)).toBe(true);
    expect(logged.at(-1)).toBe(`rotated: rewrote KEYSTORE (${V2.length} bytes)`);
    await files.flush();
    expect(await fs.readFile(dir.envFile, 'utf8')).toBe('USER=app\n');
    // A rotated value that does not decode fails the apply and leaves the file as it was.
    await expect(files.apply(lines, result({ user: 'app', p12: 'not base64!' }), 'bad')).rejects.toThrow(/is not valid base64/);
    expect((await fs.readFile(path.join(dir.secretsDir, 'KEYSTORE'))).equals(V2)).toBe(true);
  });
});

describe('SecretFiles', () => {
  it('rewrites only the changed file; flush then writes the env-file and runs on-change once for it', async () => {
    const { dir, lines, files, exec } = await setup('reload');
    expect(files.bytes('PASSWORD')).toBe(4);
    await files.apply(lines, result({ user: 'app', password: 'pw-second' }), 'secret/data/app changed');
    // Until the round ends, only the secret file is new.
    expect(await dir.snapshot()).toEqual({ USER: 'app', PASSWORD: 'pw-second', 'secrets.env': 'USER=app\nPASSWORD=pw-1\n' });
    expect(exec.calls).toEqual([]);
    await files.flush();
    expect(await dir.snapshot()).toEqual({ USER: 'app', PASSWORD: 'pw-second', 'secrets.env': 'USER=app\nPASSWORD=pw-second\n' });
    expect(files.bytes('PASSWORD')).toBe(9);
    expect(exec.calls.map((c) => c.env.PIPELINE_SECRETS_CHANGED)).toEqual(['PASSWORD']);
    expect(exec.calls[0]?.files.PASSWORD).toBe('pw-second');
  });

  it('keeps each superseded value in the side-values file, before the rewrite, for the leak scan', async () => {
    const { dir, lines, files } = await setup(undefined);
    await files.apply(lines, result({ user: 'app', password: 'pw-second' }), 'secret/data/app changed');
    await files.apply(lines, result({ user: 'app', password: 'pw-third' }), 'secret/data/app changed');
    expect((await readSideValues(dir.root)).values).toEqual([
      { name: 'PASSWORD (superseded)', source: 'superseded', value: 'pw-1' },
      { name: 'PASSWORD (superseded)', source: 'superseded', value: 'pw-second' },
    ]);
    // Next to the secrets directory, never in it: a container mounting it does not see them.
    expect(Object.keys(await dir.snapshot()).sort()).toEqual(['PASSWORD', 'USER', 'secrets.env']);
  });

  it('a superseded value that cannot be kept is logged and counted; the rotation goes on', async () => {
    const { dir, lines, files, logged, status } = await setup(undefined);
    // A directory where the side-values file would go: nothing can be appended to it.
    await fs.mkdir(path.join(dir.root, 'side-values'));
    await files.apply(lines, result({ user: 'app', password: 'pw-second' }), 'secret/data/app changed');
    expect((await dir.snapshot()).PASSWORD).toBe('pw-second');
    expect(logged.some((m) => m.startsWith('the old value of PASSWORD is not kept for the leak scan: '))).toBe(true);
    expect(logged.join('\n')).not.toContain('pw-1');
    await status.save(T0);
    expect((await dir.status()).failures.map((f) => f.what)).toEqual(['keep superseded value']);
  });

  it('with nothing changed writes nothing and runs nothing', async () => {
    const { dir, lines, files, exec } = await setup('reload');
    const before = (await fs.stat(path.join(dir.secretsDir, 'PASSWORD'))).ino;
    await files.apply(lines, result({ user: 'app', password: 'pw-1' }), 'secret/data/app changed');
    await files.flush();
    expect((await fs.stat(path.join(dir.secretsDir, 'PASSWORD'))).ino).toBe(before);
    expect(exec.calls).toEqual([]);
  });

  it('creates no file for a secret main did not deliver', async () => {
    const { dir, files } = await setup(undefined);
    await files.apply([line('secret/app', 'extra', 'EXTRA')], result({ extra: 'new-value' }), 'secret/data/app changed');
    expect(Object.keys(await dir.snapshot()).sort()).toEqual(['PASSWORD', 'USER', 'secrets.env']);
  });

  it('a key gone from the secret fails the apply and leaves the files as they were', async () => {
    const { dir, lines, files } = await setup(undefined);
    await expect(files.apply(lines, result({ user: 'app' }), 'secret/data/app changed')).rejects.toThrow(/key 'password' not found/);
    expect((await dir.snapshot()).PASSWORD).toBe('pw-1');
  });
});

describe('removeRootIfOurs', () => {
  it('removes the root that carries the marker', async () => {
    const dir = await root({ A: 'a' });
    await removeRootIfOurs(dir.root, dir.marker);
    await expect(fs.access(dir.root)).rejects.toThrow();
  });

  it.each([
    ['no marker hash was given', async (dir: TempRoot) => ({ root: dir.root, hash: undefined })],
    ['the marker is another', async (dir: TempRoot) => ({ root: dir.root, hash: '0'.repeat(64) })],
    [
      'the root is a symlink to it',
      async (dir: TempRoot) => {
        const link = `${dir.root}-link`;
        symlinkSync(dir.root, link);
        dirs.push({ ...dir, remove: () => fs.rm(link, { force: true }) });
        return { root: link, hash: dir.marker };
      },
    ],
  ])('leaves it alone when %s', async (_what, target) => {
    const dir = await root({ A: 'a' });
    const { root: where, hash } = await target(dir);
    await removeRootIfOurs(where, hash);
    expect(await fs.readFile(path.join(dir.secretsDir, 'A'), 'utf8')).toBe('a');
  });
});
