// How a user's path is read: the mount lookup (one per first segment, a second only for a path on
// another mount under the same segment), the KV v2 path forms, and what a read's answer holds,
// deleted and destroyed versions included.
import { describe, expect, it } from 'vitest';
import { SecretError } from '../../../src/core/errors.ts';
import {
  apiPath,
  deletedVersionText,
  interpret,
  isExplicitDataPath,
  readSecret,
  resolveMounts,
  type MountInfo,
} from '../../../src/vault/kv.ts';
import { fakeVault, vaultError } from './fake-vault.ts';

const V2: MountInfo = { mount: 'secret/', type: 'kv', kvVersion: 2 };
const V1: MountInfo = { mount: 'kv/', type: 'kv', kvVersion: 1 };
const UNKNOWN: MountInfo = { mount: undefined, type: undefined, kvVersion: undefined };
const plan = (path: string, version?: number) => ({ path, version, line: 7 });

describe('KV v2 path forms', () => {
  it.each([
    ['secret/data/app', true],
    ['secret/team/data/creds', false],
    ['secret/app', false],
    ['secret/data', false],
  ])('isExplicitDataPath(%s) = %s', (path, expected) => {
    expect(isExplicitDataPath(path)).toBe(expected);
  });

  it.each([
    ['secret/team/data/creds', V2, 'secret/data/team/data/creds'],
    ['secret/data/team/data/creds', V2, 'secret/data/team/data/creds'],
    ['secret/app', V2, 'secret/data/app'],
    ['team/kv/app', { mount: 'team/kv/', type: 'kv', kvVersion: 2 } as const, 'team/kv/data/app'],
    ['kv/app', V1, 'kv/app'],
    ['database/creds/ci', { mount: 'database/', type: 'database', kvVersion: undefined } as const, 'database/creds/ci'],
    ['secret/app', UNKNOWN, 'secret/app'],
  ])('apiPath(%s) on %j = %s', (path, info, expected) => {
    expect(apiPath(plan(path), info)).toBe(expected);
  });
});

describe('resolveMounts', () => {
  it('looks up each first segment once', async () => {
    const client = fakeVault({ mounts: { 'secret/': { type: 'kv', version: '2' } } });
    const mounts = await resolveMounts(client, ['secret/a', 'secret/b', 'secret/c/d', 'secret/a'], 4);
    expect(client.calls.map((c) => c.path)).toEqual(['sys/internal/ui/mounts/secret/a']);
    expect([...mounts.values()]).toEqual([V2, V2, V2]);
  });

  it('looks up again a path on another mount under the same first segment', async () => {
    const client = fakeVault({ mounts: { 'team/kv/': { type: 'kv', version: '2' }, 'team/db/': { type: 'database' } } });
    const mounts = await resolveMounts(client, ['team/kv/app', 'team/db/creds/ci', 'team/kv/other'], 4);
    expect(client.calls.map((c) => c.path)).toEqual(['sys/internal/ui/mounts/team/kv/app', 'sys/internal/ui/mounts/team/db/creds/ci']);
    expect(mounts.get('team/kv/other')).toEqual({ mount: 'team/kv/', type: 'kv', kvVersion: 2 });
    expect(mounts.get('team/db/creds/ci')).toEqual({ mount: 'team/db/', type: 'database', kvVersion: undefined });
  });

  it('a lookup refused (403, 404: an older Vault, a narrow policy) leaves the path as written, and the others are asked apart', async () => {
    const client = fakeVault({});
    const mounts = await resolveMounts(client, ['secret/a', 'secret/b'], 4);
    expect(client.calls).toHaveLength(2);
    expect([...mounts.values()]).toEqual([UNKNOWN, UNKNOWN]);
  });

  it('any other failure of a lookup fails', async () => {
    const client = fakeVault({
      answers: { 'sys/internal/ui/mounts/secret/a': vaultError('GET', 'sys/internal/ui/mounts/secret/a', 500, { errors: ['boom'] }) },
    });
    await expect(resolveMounts(client, ['secret/a'], 4)).rejects.toThrow('Vault answered 500 boom');
  });

  it.each([
    [{ path: 'secret', type: 'kv', options: { version: '2' } }, V2], // the trailing slash added
    [{ path: 'secret/', type: 'kv', options: { version: 2 } }, V2],
    [
      { path: 'secret/', type: 'generic', options: null },
      { mount: 'secret/', type: 'generic', kvVersion: 1 },
    ],
    [
      { path: 'secret/', type: 'kv', options: { version: '3' } },
      { mount: 'secret/', type: 'kv', kvVersion: 1 },
    ],
    [
      { path: '', type: 'kv', options: {} },
      { mount: undefined, type: 'kv', kvVersion: 1 },
    ],
  ])('reads the answer %j as %j', async (data, expected) => {
    const client = fakeVault({ answers: { 'sys/internal/ui/mounts/secret/app': { data } } });
    expect((await resolveMounts(client, ['secret/app'], 1)).get('secret/app')).toEqual(expected);
  });
});

describe('readSecret', () => {
  it('reads the API path, pinned with ?version=, as a KV read that may be retried', async () => {
    const client = fakeVault({ answers: { 'secret/data/app?version=2': { data: { data: { k: 'v' }, metadata: { version: 2 } } } } });
    const result = await readSecret(client, plan('secret/app', 2), V2);
    expect(result).toMatchObject({ readPath: 'secret/data/app', kvVersion: 2, data: { k: 'v' }, version: 2 });
    expect(client.calls).toEqual([{ op: 'read', path: 'secret/data/app?version=2', token: undefined, retrySafe: true }]);
  });

  it('reads a path on another engine as one whose retry could mint something', async () => {
    const client = fakeVault({ answers: { 'database/creds/ci': { lease_id: 'l', data: { password: 'p' } } } });
    await readSecret(client, plan('database/creds/ci'), { mount: 'database/', type: 'database', kvVersion: undefined });
    expect(client.calls[0]?.retrySafe).toBe(false);
  });
});

describe('interpret', () => {
  it('KV v2: the map is data.data and the version comes from the metadata', () => {
    const response = { data: { data: { a: '1' }, metadata: { version: 5 } } };
    expect(interpret(plan('secret/app'), 'secret/data/app', response, V2)).toEqual({
      readPath: 'secret/data/app',
      kvVersion: 2,
      data: { a: '1' },
      version: 5,
      leaseId: undefined,
      leaseDuration: undefined,
      renewable: false,
    });
  });

  it('KV v1 and other engines: the map is data, with the lease', () => {
    const response = { lease_id: 'database/creds/ci/x', lease_duration: 300, renewable: true, data: { username: 'u' } };
    expect(interpret(plan('database/creds/ci'), 'database/creds/ci', response, UNKNOWN)).toEqual({
      readPath: 'database/creds/ci',
      kvVersion: undefined,
      data: { username: 'u' },
      version: undefined,
      leaseId: 'database/creds/ci/x',
      leaseDuration: 300,
      renewable: true,
    });
  });

  it('an unknown mount whose answer has the KV v2 shape is read as KV v2', () => {
    const result = interpret(plan('secret/data/app'), 'secret/data/app', { data: { data: { a: '1' }, metadata: { version: 1 } } }, UNKNOWN);
    expect([result.kvVersion, result.data]).toEqual([2, { a: '1' }]);
  });

  it('?version= on a KV v1 mount is refused, naming the line', () => {
    expect(() => interpret(plan('kv/app', 2), 'kv/app', { data: {} }, V1)).toThrow(
      new SecretError("secrets line 7: 'kv/app' is on a KV v1 mount, which has no versions; drop '?version='"),
    );
  });

  it.each([
    [
      { version: 3, deletion_time: '2030-01-01T00:00:00Z', destroyed: false },
      'secrets line 7: version 3 of secret/data/app was deleted at 2030-01-01T00:00:00Z; undelete it or pin another with ?version=N',
    ],
    [
      { version: 3, deletion_time: '', destroyed: true },
      'secrets line 7: version 3 of secret/data/app was destroyed; pin another with ?version=N',
    ],
    [{ deletion_time: '', destroyed: false }, "secrets line 7: 'secret/data/app' holds no data (deleted or destroyed version?)"],
  ])('a KV v2 answer with no data and metadata %j', (metadata, message) => {
    expect(() => interpret(plan('secret/app'), 'secret/data/app', { data: { data: null, metadata } }, V2)).toThrow(
      new SecretError(message),
    );
  });
});

describe('deletedVersionText', () => {
  it('names the version when known, and says what to do', () => {
    expect(deletedVersionText('secret/data/a', { version: undefined, deletionTime: undefined, destroyed: false })).toBe(
      'the requested version of secret/data/a was deleted at an unknown time; undelete it or pin another with ?version=N',
    );
    expect(deletedVersionText('secret/data/a', { version: 9, deletionTime: undefined, destroyed: true })).toBe(
      'version 9 of secret/data/a was destroyed; pin another with ?version=N',
    );
  });
});
