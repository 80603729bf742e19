// fetchVaultSecrets and select over a fake VaultClient: one read per distinct path, at most
// `concurrency` at once; every lease seen before a failure is thrown; JSON fields and wildcards;
// refusals and missing keys said as what to do, naming the line, path and key, never a value.
import { describe, expect, it } from 'vitest';
import { SecretError, VaultError } from '../../../src/core/errors.ts';
import { parseSecretsInput } from '../../../src/inputs/secret-spec.ts';
import { fetchVaultSecrets, readKey, select } from '../../../src/vault/fetch.ts';
import type { ReadResult } from '../../../src/vault/kv.ts';
import { fakeVault, vaultError, type FakeVaultOptions } from './fake-vault.ts';
import { rejected } from '../../support/errors.ts';

const KV2 = { 'secret/': { type: 'kv', version: '2' } };
const kv2 = (data: Record<string, unknown>, version = 1) => ({
  data: { data, metadata: { version, deletion_time: '', destroyed: false } },
});

async function fetch(secrets: string, options: FakeVaultOptions, concurrency = 4) {
  const client = fakeVault(options);
  const values: string[] = [];
  const debug: string[] = [];
  const run = fetchVaultSecrets(client, parseSecretsInput(secrets), concurrency, {
    onValue: (value) => values.push(value),
    debug: (message) => debug.push(message),
  });
  return { client, values, debug, run };
}

const failure = (promise: Promise<unknown>): Promise<Error> => rejected(promise, Error);

describe('reads', () => {
  it('finds the mount, reads the KV v2 API path, and hands over only the selected values', async () => {
    const { client, values, debug, run } = await fetch('secret/app password | DB_PASSWORD', {
      mounts: KV2,
      answers: { 'secret/data/app': kv2({ password: 'p4ssw0rd-x', flag: 'true' }, 3) },
    });
    const outcome = await run;
    expect(outcome.secrets.map((s) => [s.name, s.envName, s.value])).toEqual([['DB_PASSWORD', 'DB_PASSWORD', 'p4ssw0rd-x']]);
    expect(client.calls.map((c) => c.path)).toEqual(['sys/internal/ui/mounts/secret/app', 'secret/data/app']);
    expect(client.calls[1]?.retrySafe).toBe(true); // a KV read: safe to retry after a reset
    expect(values).toEqual(['p4ssw0rd-x']); // `flag: true` is not selected, so never masked
    expect(debug).toEqual(['read secret/data/app (version 3)']);
    expect(outcome.sources).toEqual([{ key: 'secret/app', readPath: 'secret/data/app', kvVersion: 2, version: 3, lease: undefined }]);
  });

  it('reads each distinct path and version once, whatever the lines that select from it', async () => {
    const { client, run } = await fetch('secret/data/app a\nsecret/data/app b\nsecret/data/app?version=1 a | OLD_A', {
      mounts: KV2,
      answers: { 'secret/data/app': kv2({ a: 'value-a', b: 'value-b' }, 2), 'secret/data/app?version=1': kv2({ a: 'value-a1' }, 1) },
    });
    const outcome = await run;
    expect(outcome.secrets.map((s) => [s.name, s.value])).toEqual([
      ['a', 'value-a'],
      ['b', 'value-b'],
      ['OLD_A', 'value-a1'],
    ]);
    expect(client.calls.filter((c) => !c.path.startsWith('sys/')).map((c) => c.path)).toEqual([
      'secret/data/app',
      'secret/data/app?version=1',
    ]);
  });

  it('keeps at most `concurrency` reads, and as many mount lookups, in flight at once', async () => {
    const mounts: FakeVaultOptions['mounts'] = {};
    const answers: FakeVaultOptions['answers'] = {};
    const delays: Record<string, number> = {};
    const lines: string[] = [];
    for (let i = 0; i < 9; i++) {
      mounts[`kv${i}/`] = { type: 'kv', version: '1' };
      answers[`kv${i}/app`] = { data: { k: `value-${i}` } };
      delays[`kv${i}/app`] = 5;
      delays[`sys/internal/ui/mounts/kv${i}/app`] = 5;
      lines.push(`kv${i}/app k | K${i}`);
    }
    const { client, run } = await fetch(lines.join('\n'), { mounts, answers, delays }, 3);
    expect((await run).secrets).toHaveLength(9);
    expect(client.peak).toEqual({ reads: 3, lookups: 3 });
  });

  it('sends a /data/ path before its mount lookup answers; a retry is safe only if the lookup finds KV', async () => {
    const { client, run } = await fetch('secret/data/app a\ncubbyhole/data/x a', {
      mounts: { ...KV2, 'cubbyhole/': { type: 'cubbyhole' } },
      answers: { 'secret/data/app': kv2({ a: 'value-a' }), 'cubbyhole/data/x': { data: { a: 'value-c' } } },
      delays: { 'sys/internal/ui/mounts/secret/data/app': 20, 'sys/internal/ui/mounts/cubbyhole/data/x': 20 },
    });
    const outcome = await run;
    expect(outcome.secrets.map((s) => s.value)).toEqual(['value-a', 'value-c']);
    const reads = client.calls.filter((c) => !c.path.startsWith('sys/'));
    expect(reads.map((c) => typeof c.retrySafe)).toEqual(['function', 'function']);
    const [kv, cubbyhole] = reads.map((c) => c.retrySafe as () => Promise<boolean>);
    expect([await kv?.(), await cubbyhole?.()]).toEqual([true, false]);
  });

  it('POSTs a write line and takes its secret and lease from the answer', async () => {
    const { client, run } = await fetch('write pki/issue/ci {"common_name": "a.example"} certificate | CERT', {
      answers: { 'pki/issue/ci': { lease_id: 'pki/issue/ci/1', lease_duration: 60, renewable: false, data: { certificate: 'PEM-1' } } },
    });
    const outcome = await run;
    expect(client.calls).toEqual([{ op: 'write', path: 'pki/issue/ci', token: undefined, body: { common_name: 'a.example' } }]);
    expect(outcome.secrets.map((s) => [s.name, s.value, s.source.kind === 'vault' && s.source.leaseId])).toEqual([
      ['CERT', 'PEM-1', 'pki/issue/ci/1'],
    ]);
    expect(outcome.leases).toEqual([{ leaseId: 'pki/issue/ci/1', path: 'pki/issue/ci', duration: 60, renewable: false }]);
  });
});

describe('leases when a read fails', () => {
  it('every lease issued is seen before the failure is thrown, and no read starts after it', async () => {
    const creds = (id: string) => ({
      lease_id: `database/creds/${id}/L`,
      lease_duration: 600,
      renewable: true,
      data: { password: `pw-${id}` },
    });
    const { client, run } = await fetch(
      [
        'database/creds/a password | A',
        'secret/data/gone password | G',
        'database/creds/c password | C',
        'database/creds/d password | D',
      ].join('\n'),
      {
        mounts: { ...KV2, 'database/': { type: 'database' } },
        answers: { 'database/creds/a': creds('a'), 'database/creds/c': creds('c'), 'database/creds/d': creds('d') },
        // Two at a time (delays in turns of the event loop): a answers first and c takes its
        // place; the KV read fails; c, in flight then, answers after the failure; d would have been next.
        delays: { 'database/creds/a': 0, 'secret/data/gone': 15, 'database/creds/c': 40 },
      },
      2,
    );
    const error = await failure(run);
    expect(error).toBeInstanceOf(VaultError);
    expect(client.leasesSeen.sort()).toEqual(['database/creds/a/L', 'database/creds/c/L']);
    expect(client.calls.map((c) => c.path)).not.toContain('database/creds/d');
  });

  it('a lease-carrying read is not retried as a KV read (its retry could mint a second credential)', async () => {
    const { client, run } = await fetch('database/creds/a password | A', {
      mounts: { 'database/': { type: 'database' } },
      answers: { 'database/creds/a': { lease_id: 'database/creds/a/L', data: { password: 'pw-a' } } },
    });
    expect((await run).leases.map((l) => l.leaseId)).toEqual(['database/creds/a/L']);
    expect(client.calls.find((c) => c.path === 'database/creds/a')?.retrySafe).toBe(false);
  });
});

describe('refusals', () => {
  it('a 404 names the line and path and says how to make the entry optional', async () => {
    const error = await failure((await fetch('\nsecret/app password', { mounts: KV2 })).run);
    expect(error.message).toBe(
      "secrets line 2: GET secret/data/app: Vault answered 404 not found: nothing at 'secret/app'; check the path (for KV v2 'secret/app' and its /data/ form both work), or end the line with ' ?' if the entry is optional",
    );
  });

  it('an optional entry that is not there is a warning, not a failure', async () => {
    const outcome = await (await fetch('secret/app password ?', { mounts: KV2 })).run;
    expect(outcome.secrets).toEqual([]);
    expect(outcome.warnings).toEqual(["secrets line 1: 'secret/app' not found; skipped (optional)"]);
  });

  it('a 403 with a valid token says which grant is missing; lookup-self is asked once', async () => {
    const { client, run } = await fetch('secret/data/a k\nsecret/data/b k', {
      mounts: KV2,
      answers: {
        'secret/data/a': vaultError('GET', 'secret/data/a', 403, { errors: ['permission denied'] }),
        'secret/data/b': vaultError('GET', 'secret/data/b', 403, { errors: ['permission denied'] }),
        'auth/token/lookup-self': { data: { ttl: 100 } },
      },
    });
    const error = await failure(run);
    expect(error.message).toBe(
      "secrets line 1: GET secret/data/a: Vault answered 403 permission denied: the token is valid but its policies do not allow this; grant 'read' on 'secret/data/a' in a policy of the token (or of the login role)",
    );
    expect(client.calls.filter((c) => c.path === 'auth/token/lookup-self')).toHaveLength(1);
  });

  it('a 403 when lookup-self is refused too says the token is invalid', async () => {
    const { run } = await fetch('secret/data/a k', {
      mounts: KV2,
      answers: {
        'secret/data/a': vaultError('GET', 'secret/data/a', 403, { errors: ['permission denied'] }),
        'auth/token/lookup-self': vaultError('GET', 'auth/token/lookup-self', 403, { errors: ['permission denied'] }),
      },
    });
    expect((await failure(run)).message).toMatch(
      /: the Vault token is invalid, expired or revoked \(auth\/token\/lookup-self is refused too\)/,
    );
  });

  it('a deleted or destroyed version is named as such, also for an optional entry', async () => {
    const deleted = vaultError('GET', 'secret/data/app', 404, {
      data: { data: null, metadata: { version: 3, deletion_time: '2030-01-01T00:00:00Z', destroyed: false } },
    });
    const destroyed = vaultError('GET', 'secret/data/old', 404, { data: { data: null, metadata: { version: 1, destroyed: true } } });
    const required = await failure((await fetch('secret/data/app k', { mounts: KV2, answers: { 'secret/data/app': deleted } })).run);
    expect(required).toBeInstanceOf(SecretError);
    expect(required.message).toBe(
      'secrets line 1: version 3 of secret/data/app was deleted at 2030-01-01T00:00:00Z; undelete it or pin another with ?version=N',
    );
    const optional = await (await fetch('secret/data/old k ?', { mounts: KV2, answers: { 'secret/data/old': destroyed } })).run;
    expect(optional.warnings).toEqual([
      'secrets line 1: version 1 of secret/data/old was destroyed; pin another with ?version=N; skipped (optional)',
    ]);
  });
});

describe('select', () => {
  const result = (data: Record<string, unknown>): ReadResult => ({
    readPath: 'secret/data/app',
    kvVersion: 2,
    data,
    version: 4,
    leaseId: undefined,
    leaseDuration: undefined,
    renewable: false,
  });
  const pick = (line: string, data: Record<string, unknown>, warnings: string[] = []) => {
    const [parsed] = parseSecretsInput(line);
    if (!parsed) throw new Error('no line');
    return select(parsed, result(data), warnings).map((s) => [s.name, s.envName, s.value]);
  };

  it('a key as written, else a dotted path, also into a string holding a JSON object', () => {
    expect(pick('secret/data/app db.url', { 'db.url': 'literal' })).toEqual([['db__url', 'DB__URL', 'literal']]);
    expect(pick('secret/data/app db.url', { db: { url: 'nested' } })).toEqual([['db__url', 'DB__URL', 'nested']]);
    expect(pick('secret/data/app sa.private_key | KEY', { sa: '{"private_key": "-----BEGIN-----"}' })).toEqual([
      ['KEY', 'KEY', '-----BEGIN-----'],
    ]);
  });

  it('renders non-string values as JSON text', () => {
    expect(pick('secret/data/app port', { port: 5432 })).toEqual([['port', 'PORT', '5432']]);
    expect(pick('secret/data/app on', { on: false })).toEqual([['on', 'ON', 'false']]);
    expect(pick('secret/data/app cfg', { cfg: { a: [1, 'x'] } })).toEqual([['cfg', 'CFG', '{"a":[1,"x"]}']]);
  });

  it('* takes every key (env names upper-cased, with the prefix), ** keeps the case; null values are left out', () => {
    const data = { user: 'u', 'api.key': 'k', gone: null };
    expect(pick('secret/data/app * | APP_', data)).toEqual([
      ['APP_user', 'APP_USER', 'u'],
      ['APP_api__key', 'APP_API__KEY', 'k'],
    ]);
    expect(pick('secret/data/app **', data)).toEqual([
      ['user', 'user', 'u'],
      ['api__key', 'api__key', 'k'],
    ]);
  });

  it('a key that gives no name under * fails naming the key and the path', () => {
    expect(() => pick('secret/data/app *', { 'ä€!': 'v' })).not.toThrow(); // letters are kept
    expect(() => pick('secret/data/app *', { '!!': 'v' })).toThrow(
      `secrets line 1: key "!!" at 'secret/data/app' gives an empty name under '*'`,
    );
  });

  it('a missing key names the line, path, key and the keys there, never a value', () => {
    let error: unknown;
    try {
      pick('secret/data/app passwrod', { password: 'hunter2-value', user: 'admin-value' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SecretError);
    expect((error as Error).message).toBe("secrets line 1: key 'passwrod' not found at 'secret/data/app' (keys there: password, user)");
    expect((error as Error).message).not.toMatch(/hunter2|admin-value/);
  });

  it('an optional missing key is a warning', () => {
    const warnings: string[] = [];
    expect(pick('secret/data/app nope ?', { a: 'b' }, warnings)).toEqual([]);
    expect(warnings).toEqual(["secrets line 1: key 'nope' not found at 'secret/data/app' (keys there: a); skipped (optional)"]);
  });
});

describe('readKey', () => {
  it('one key per path and version, and per write path and body', () => {
    const [a, b, c] = parseSecretsInput('secret/app k\nsecret/app?version=2 k\nwrite pki/issue/ci {"common_name": "x"} k');
    expect([a, b, c].map((l) => (l ? readKey(l) : ''))).toEqual([
      'secret/app',
      'secret/app?version=2',
      'write pki/issue/ci {"common_name":"x"}',
    ]);
  });
});

describe("a '*' key that gives an empty name", () => {
  it('is refused with one line naming the line, path and key', () => {
    const line = {
      line: 3,
      path: 'secret/data/ci/odd',
      version: undefined,
      selector: { kind: 'all', keepCase: false, prefix: 'P_' },
      optional: false,
      name: undefined,
      body: undefined,
      encoding: 'utf8',
    } as const;
    const result = { data: { '@@\n': 'value-of-odd-key', ok: 'v' }, readPath: 'secret/data/ci/odd' } as unknown as Parameters<
      typeof select
    >[1];
    let error: unknown;
    try {
      select(line, result, []);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SecretError);
    const message = (error as Error).message;
    expect(message).toMatch(/^secrets line 3: key "@@\\n" at 'secret\/data\/ci\/odd' gives an empty name under '\*'/);
    expect(message).not.toContain('\n');
    expect(message).not.toContain('value-of-odd-key');
  });
});

describe('decoding (?encoding=)', () => {
  const P12 = Buffer.from([0x30, 0x82, 0x0a, 0x00, 0x02, 0x01, 0x03, 0xff, 0xfe]); // not UTF-8
  it('a value decoded to bytes that are not text: the bytes for the file, only the stored form masked', async () => {
    const stored = P12.toString('base64');
    const { values, run } = await fetch('secret/data/ci?encoding=base64 p12 | KEYSTORE', {
      mounts: KV2,
      answers: { 'secret/data/ci': kv2({ p12: stored }) },
    });
    const [secret] = (await run).secrets;
    expect(secret?.decoded?.bytes.equals(P12)).toBe(true);
    expect(secret?.decoded?.text).toBe(false);
    expect(values).toEqual([stored]);
  });

  it('a value decoded to text: the text is delivered, and it and the stored form are masked', async () => {
    const stored = Buffer.from('user: ci\npassword: s3cret-pw').toString('hex').toUpperCase();
    const { values, run } = await fetch('secret/data/ci?encoding=hex conf | CONF', {
      mounts: KV2,
      answers: { 'secret/data/ci': kv2({ conf: stored }) },
    });
    const [secret] = (await run).secrets;
    expect(secret?.value).toBe('user: ci\npassword: s3cret-pw');
    expect(values).toEqual([stored, 'user: ci\npassword: s3cret-pw']);
  });

  it('a wildcard decodes every key; a value that does not decode fails its line, naming the key, never the value', async () => {
    const { values, run } = await fetch('secret/data/ci?encoding=base64 *', {
      mounts: KV2,
      answers: { 'secret/data/ci': kv2({ good: 'aGVsbG8td29ybGQ=', bad: 'aGVs*bG8=' }) },
    });
    const error = await failure(run);
    expect(error).toBeInstanceOf(SecretError);
    expect(error.message).toBe(
      "secrets line 1: the value of key 'bad' at 'secret/data/ci' is not valid base64 (a character at offset 4 is not in the base64 alphabet); store it base64-encoded, or give this line another ?encoding= (utf8: as stored)",
    );
    expect(values).toEqual([]); // nothing of a line that fails is masked: nothing of it is delivered or shown
  });

  it('lines with different encodings of one path share one read', async () => {
    const { client, run } = await fetch('secret/data/ci k | RAW\nsecret/data/ci?encoding=base64 k | DECODED', {
      mounts: KV2,
      answers: { 'secret/data/ci': kv2({ k: 'c2VjcmV0LXZhbHVl' }) },
    });
    expect((await run).secrets.map((s) => [s.name, s.value])).toEqual([
      ['RAW', 'c2VjcmV0LXZhbHVl'],
      ['DECODED', 'secret-value'],
    ]);
    expect(client.calls.filter((c) => !c.path.startsWith('sys/')).length).toBe(1);
  });
});
