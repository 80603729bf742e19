// What the renewal agent leaves for post: agent-status.json (counted failures, the latest entries
// kept, each secret's current version and size, 0600), agent-leases.json, and the atomic write.
import { promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_STATUS, saveLeases, STATUS_KEEP, StatusBook, writeAtomic, type AgentStatus } from '../../../src/agent/status.ts';
import { config, kvSource, line, T0, tempRoot, type TempRoot } from './fakes.ts';

const dirs: TempRoot[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await dir.remove();
});
async function root(): Promise<TempRoot> {
  const dir = await tempRoot({ A: 'value-a' });
  dirs.push(dir);
  return dir;
}
const read = async (dir: TempRoot): Promise<AgentStatus> =>
  JSON.parse(await fs.readFile(path.join(dir.root, AGENT_STATUS), 'utf8')) as AgentStatus;

describe('StatusBook', () => {
  it('counts failures per task and reason, keeps the latest, and writes the file 0600', async () => {
    const dir = await root();
    const book = new StatusBook(config(dir, []), T0, () => 0);
    book.failed('token renewal', new Error('403 permission denied'), T0 + 1);
    book.failed('token renewal', new Error('403 permission denied'), T0 + 2);
    book.failed('token renewal', new Error('503 sealed'), T0 + 3);
    for (let i = 0; i < STATUS_KEEP + 5; i++) book.kvChanged('secret/data/app', i, i + 1, T0 + 10 + i);
    book.renewed('token');
    book.renewed('leases');
    book.renewed('leases');
    book.replacedOne();
    book.onChangeRan(['A'], 3, 120, T0 + 50);
    expect(book.dirty).toBe(true);
    await book.save(T0 + 100);
    expect(book.dirty).toBe(false);
    const status = await read(dir);
    expect(status).toMatchObject({
      format: 1,
      pid: process.pid,
      started: new Date(T0).toISOString(),
      updated: new Date(T0 + 100).toISOString(),
      state: 'running',
      renewals: { token: 1, leases: 2 },
      replaced: 1,
      kvChangesTotal: STATUS_KEEP + 5,
      onChange: [{ names: ['A'], exitCode: 3, ms: 120, at: new Date(T0 + 50).toISOString() }],
      onChangeTotal: 1,
    });
    expect(status.failures).toEqual([
      { what: 'token renewal', reason: '403 permission denied', count: 2, last: new Date(T0 + 2).toISOString() },
      { what: 'token renewal', reason: '503 sealed', count: 1, last: new Date(T0 + 3).toISOString() },
    ]);
    expect(status.kvChanges).toHaveLength(STATUS_KEEP);
    expect(status.kvChanges[0]).toMatchObject({ from: 5, to: 6 });
    expect('reason' in status).toBe(false);
    expect((statSync(path.join(dir.root, AGENT_STATUS)).mode & 0o777).toString(8)).toBe('600');
  });

  it('keeps the latest failures: a repeated one moves to the end', async () => {
    const dir = await root();
    const book = new StatusBook(config(dir, []), T0, () => 0);
    for (let i = 0; i <= STATUS_KEEP; i++) book.failed(`task ${i}`, 'down', T0 + i);
    book.failed('task 1', 'down', T0 + 100);
    await book.save(T0 + 100);
    const whats = (await read(dir)).failures.map((f) => f.what);
    expect(whats).toHaveLength(STATUS_KEEP);
    expect(whats[0]).toBe('task 2');
    expect(whats.at(-1)).toBe('task 1');
  });

  it('lists each secret with the version of its source now and its current size', async () => {
    const dir = await root();
    const source = kvSource([line('secret/app', 'a', 'A')], 'secret/data/app', 1);
    const cfg = config(dir, [source]);
    const book = new StatusBook(
      { ...cfg, secrets: [...cfg.secrets, { name: 'FROM_ENV', envName: 'FROM_ENV', key: undefined }] },
      T0,
      (n) => (n === 'A' ? 7 : 3),
    );
    source.version = 4;
    await book.save(T0);
    expect((await read(dir)).secrets).toEqual([
      { name: 'A', path: 'secret/data/app', version: 4, bytes: 7 },
      { name: 'FROM_ENV', path: null, version: null, bytes: 3 },
    ]);
  });

  it('says how it ended, and stays dirty when it cannot write (to try again)', async () => {
    const dir = await root();
    const book = new StatusBook(config(dir, []), T0, () => 0);
    book.end('failed', 'the private directory is not writable');
    await fs.rm(dir.root, { recursive: true });
    await book.save(T0);
    expect(book.dirty).toBe(true);
    await fs.mkdir(dir.root);
    await book.save(T0);
    expect(book.dirty).toBe(false);
    expect(await read(dir)).toMatchObject({ state: 'failed', reason: 'the private directory is not writable' });
  });
});

describe('saveLeases', () => {
  it('lists each lease once, and those revoked', async () => {
    const dir = await root();
    await saveLeases(dir.root, ['a', 'b', 'a'], ['c']);
    expect(await dir.leasesFile()).toEqual({ leases: ['a', 'b'], revoked: ['c'] });
  });
});

describe('writeAtomic', () => {
  it('replaces the file whole with a new 0600 one and leaves no temp file', async () => {
    const dir = await root();
    const file = path.join(dir.secretsDir, 'A');
    await fs.chmod(file, 0o644);
    const before = statSync(file).ino;
    await writeAtomic(file, 'value-a-2');
    expect(await fs.readFile(file, 'utf8')).toBe('value-a-2');
    expect(statSync(file).ino).not.toBe(before);
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    expect(await fs.readdir(dir.secretsDir)).toEqual(['A']);
  });

  it('fails without touching the target when the directory is gone', async () => {
    const dir = await root();
    await expect(writeAtomic(path.join(dir.root, 'missing', 'A'), 'x')).rejects.toThrow(/ENOENT/);
  });
});
