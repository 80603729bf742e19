// Main's time with Vault, step by step: leases and the token reach state the moment they exist, the
// token waits in a 0600 file, a cancelled session fails even when its requests all answered, and
// the client is built from the inputs and always closed.
import { promises as fs, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readSideValues, SIDE_VALUES_FILE } from '../../../src/core/job-values.ts';
import { LedgerWriter, type Ledger } from '../../../src/core/ledger.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { parseInputs, type Config, type VaultConfig } from '../../../src/inputs/main.ts';
import { authenticate, fetchSecrets, leaseRecorder, vaultSecrets, type VaultSessionDeps } from '../../../src/main/vault-session.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';
import { fakeVault, type FakeVaultOptions } from './fake-vault.ts';

const T0 = Date.parse('2030-01-02T03:04:05.000Z');
const TOKEN = 'hvs.fake-vault-token-0123456789';
const CLIENT = { url: 'https://vault.example:8200', namespace: undefined, deadline: T0, retries: 0, maxSockets: 1 };
const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function temp(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ps-unit-vault-session-'));
  made.push(dir);
  return dir;
}

function inputs(extra: Record<string, string> = {}): Config {
  const env: Record<string, string> = {};
  const all = {
    url: 'https://vault.example:8200',
    method: 'approle',
    'role-id': 'role-1',
    'secret-id': 'fake-secret-id-0123456789',
    secrets: 'database/creds/app password | DB_PASSWORD\nsecret/data/app password | APP_PASSWORD',
    ...extra,
  };
  for (const [name, value] of Object.entries(all)) env[`INPUT_${name.toUpperCase()}`] = value;
  return parseInputs(env);
}

const VAULT: FakeVaultOptions = {
  kv: { app: { password: 'app-password-Kq8!vX2#mLp' } },
  dynamic: { 'database/creds/app': (n) => ({ password: `db-password-${n}-Zr4tY8wQ` }) },
};

function deps(runner: FakeRunner = fakeRunner(), extra: Partial<VaultSessionDeps> = {}): VaultSessionDeps {
  return { runner, masks: new MaskRegistry(runner), ledger: new LedgerWriter(runner), now: () => T0, ...extra };
}
const saved = (runner: FakeRunner): Ledger => JSON.parse(runner.state.get('ledger') ?? '{}') as Ledger;

describe('leaseRecorder', () => {
  it('records each lease id once, as it arrives, with its end from the clock', () => {
    const runner = fakeRunner();
    const ledger = new LedgerWriter(runner);
    const record = leaseRecorder(ledger, () => T0);
    record({ leaseId: 'db/creds/a/1', path: 'db/creds/a', duration: 60, renewable: true });
    record({ leaseId: 'db/creds/a/1', path: 'db/creds/a', duration: 60, renewable: true });
    record({ leaseId: 'pki/issue/x/2', path: 'pki/issue/x', duration: undefined, renewable: false });
    expect(saved(runner).leases).toEqual(['db/creds/a/1', 'pki/issue/x/2']);
    expect(saved(runner).leaseExpires).toEqual({ 'db/creds/a/1': new Date(T0 + 60_000).toISOString() });
  });
});

describe('authenticate', () => {
  it('a login writes the token to a 0600 file of the root, named in state; post may revoke it', async () => {
    const root = await temp();
    const d = deps();
    const client = fakeVault(VAULT).factory(CLIENT);
    const auth = await authenticate(client, inputs().vault as VaultConfig, root, d);
    expect(auth).toMatchObject({ tokenRevocable: true, batchTokenExpires: undefined, session: { token: TOKEN, created: true } });
    expect(await fs.readFile(path.join(root, 'vault-token'), 'utf8')).toBe(TOKEN);
    expect(statSync(path.join(root, 'vault-token')).mode & 0o777).toBe(0o600);
    expect(saved(d.runner as FakeRunner).tokenFile).toBe(path.join(root, 'vault-token'));
    expect((d.runner as FakeRunner).masked).toContain(TOKEN);
  });

  it('the token file is named in state before it is written: a planted file fails the step, post still knows the path', async () => {
    const root = await temp();
    await fs.writeFile(path.join(root, 'vault-token'), 'planted');
    const d = deps();
    const client = fakeVault(VAULT).factory(CLIENT);
    await expect(authenticate(client, inputs().vault as VaultConfig, root, d)).rejects.toThrow(/already exists/);
    expect(saved(d.runner as FakeRunner).tokenFile).toBe(path.join(root, 'vault-token'));
  });

  it('a batch token: not revocable, its end recorded', async () => {
    const d = deps();
    const client = fakeVault({ ...VAULT, token: 'hvb.batch-0123456789', tokenType: 'batch', tokenTtl: 120 }).factory(CLIENT);
    const auth = await authenticate(client, inputs().vault as VaultConfig, await temp(), d);
    const expires = new Date(T0 + 120_000).toISOString();
    expect(auth).toMatchObject({ tokenRevocable: false, batchTokenExpires: expires });
    expect(saved(d.runner as FakeRunner)).toMatchObject({ tokenBatch: true, tokenExpires: expires });
  });

  it("the user's own token is used, never revoked: no token file for post, only the side-values file the leak scan reads", async () => {
    const root = await temp();
    const d = deps();
    const client = fakeVault(VAULT).factory(CLIENT);
    const auth = await authenticate(client, inputs({ method: 'token', token: TOKEN }).vault as VaultConfig, root, d);
    expect(auth).toMatchObject({ tokenRevocable: false, session: { created: false } });
    expect(await fs.readdir(root)).toEqual([SIDE_VALUES_FILE]);
    expect((await readSideValues(root)).values).toEqual([{ name: 'vault-token', source: 'vault-token', value: TOKEN }]);
    expect((d.runner as FakeRunner).state.size).toBe(0);
  });
});

describe('fetchSecrets', () => {
  it("renew with the user's token warns when the token ends before the agent's max lifetime", async () => {
    const config = inputs({ method: 'token', token: TOKEN, renew: 'true' });
    const d = deps();
    const client = fakeVault(VAULT).factory(CLIENT);
    client.token = TOKEN;
    const session = { token: TOKEN, created: false, batch: false, method: 'token' as const, ttlSeconds: undefined };
    const fetched = await fetchSecrets(client, config, session, { ...d, recordLease: leaseRecorder(d.ledger, d.now) });
    expect(fetched.secrets.map((s) => s.name).sort()).toEqual(['APP_PASSWORD', 'DB_PASSWORD']);
    expect(fetched.warnings).toEqual([expect.stringContaining("renew: the token given in 'token' expires in 3600 s")]);
    expect((d.runner as FakeRunner).masked).toEqual(expect.arrayContaining(['app-password-Kq8!vX2#mLp', 'db-password-1-Zr4tY8wQ']));
  });
});

describe('vaultSecrets', () => {
  it('builds the client from the inputs, masks the client key first, warns on skip-verify, records the address, and closes the client', async () => {
    const runner = fakeRunner();
    const config = inputs({ namespace: 'team-a', 'tls-skip-verify': 'true', concurrency: '3', retries: '2' });
    const key = '-----BEGIN PRIVATE KEY-----\nfake-key-material-0123456789\n-----END PRIVATE KEY-----\n';
    const vault = { ...(config.vault as VaultConfig), tls: { ...(config.vault as VaultConfig).tls, key } };
    const fake = fakeVault(VAULT);
    const d = deps(runner);
    const result = await vaultSecrets(d, config, vault, {
      root: await temp(),
      deadline: T0 + 1234,
      createClient: Promise.resolve((options) => {
        // The key is masked before any client exists.
        expect(runner.masked).toContain(key);
        return fake.factory(options);
      }),
    });
    expect(fake.clients).toEqual([
      expect.objectContaining({
        url: 'https://vault.example:8200',
        namespace: 'team-a',
        deadline: T0 + 1234,
        retries: 2,
        maxSockets: 3,
        tls: { key, rejectUnauthorized: false },
      }),
    ]);
    expect(runner.warnings[0]).toContain('tls-skip-verify is on');
    expect(saved(runner)).toMatchObject({
      vaultUrl: 'https://vault.example:8200',
      namespace: 'team-a',
      leases: ['database/creds/app/lease-1'],
    });
    expect(result.leases.map((l) => l.leaseId)).toEqual(['database/creds/app/lease-1']);
    expect(result.auth?.session.token).toBe(TOKEN);
    expect(fake.closed).toBe(1);
  });

  it('a cancellation starts no new request and fails the session though the requests in flight answered; it unsubscribes', async () => {
    const handlers: Array<(signal: string) => void> = [];
    let unsubscribed = false;
    const fake = fakeVault({
      ...VAULT,
      before: (_method, p) => {
        // Sent before the mount lookups answer (a /data/ path): the dynamic read comes after the signal.
        if (p === 'secret/data/app') for (const handler of handlers) handler('SIGTERM');
      },
    });
    const d = deps(fakeRunner(), {
      onCancel: (handler) => {
        handlers.push(handler);
        return () => void (unsubscribed = true);
      },
    });
    await expect(
      vaultSecrets(d, inputs(), inputs().vault as VaultConfig, {
        root: await temp(),
        deadline: T0,
        createClient: Promise.resolve(fake.factory),
      }),
    ).rejects.toThrow(
      /^the job was cancelled \(SIGTERM\) while talking to Vault; 0 lease\(s\) issued so far are recorded for post to revoke$/,
    );
    expect(fake.cancelled).toEqual(['SIGTERM']);
    expect(unsubscribed).toBe(true);
    expect(saved(d.runner as FakeRunner).leases).toEqual([]);
  });

  it('without a cancellation an error goes through as it is, and the client is closed', async () => {
    const fake = fakeVault({ ...VAULT, secretId: 'another-secret-id-0123' });
    await expect(
      vaultSecrets(deps(), inputs(), inputs().vault as VaultConfig, {
        root: await temp(),
        deadline: T0,
        createClient: Promise.resolve(fake.factory),
      }),
    ).rejects.toThrow('POST auth/approle/login: Vault answered 400 invalid role or secret ID');
    expect(fake.closed).toBe(1);
  });
});
