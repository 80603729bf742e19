// revokeVault: leases by id, then the token this run created, against an in-memory Vault; a failed
// token revocation tried again while the failure is on the way and the budget has room; what is
// left alive is reported with why.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/core/ledger.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { parsePostInputs } from '../../../src/inputs/post.ts';
import { revokeVault, type RevokeDeps } from '../../../src/post/revoke.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';
import { fakeVault, LEASE_REVOKE, LOOKUP_SELF, PKI_REVOKE, REVOKE_SELF, vaultError, type FakeVault } from './fake-vault.ts';
import { LEASES, TOKEN, tmp, VAULT_URL } from './fixtures.ts';

function tokenFile(): string {
  const file = path.join(tmp(), 'vault-token');
  writeFileSync(file, TOKEN);
  return file;
}

/** Main's ledger with a token file, changed by `change` (an undefined field is left out). */
function ledgerWith(change: { [K in keyof Ledger]?: Ledger[K] | undefined } = {}): Ledger {
  const ledger: Record<string, unknown> = { files: [], leases: [...LEASES], vaultUrl: VAULT_URL, tokenFile: tokenFile(), ...change };
  for (const [key, value] of Object.entries(ledger)) if (value === undefined) delete ledger[key];
  return ledger as unknown as Ledger;
}

interface Revoked {
  readonly part: Awaited<ReturnType<typeof revokeVault>>;
  readonly runner: FakeRunner;
  readonly slept: number[];
}

async function revoke(
  vault: FakeVault,
  ledger: Ledger,
  env: Record<string, string> = { INPUT_URL: VAULT_URL },
  deps: Partial<RevokeDeps> = {},
): Promise<Revoked> {
  const runner = fakeRunner();
  const slept: number[] = [];
  const sleep = async (ms: number): Promise<void> => void slept.push(ms);
  const part = await revokeVault(
    { runner, loadVaultClient: vault.load, sleep, ...deps },
    ledger,
    parsePostInputs(env),
    new MaskRegistry(runner),
  );
  return { part, runner, slept };
}

describe('revokeVault', () => {
  it('revokes the leases by id, then the token, with a client per budget, both closed', async () => {
    const vault = fakeVault({ [TOKEN]: LEASES });
    let clock = 1_000_000;
    const { part, runner } = await revoke(
      vault,
      ledgerWith({ namespace: 'team' }),
      { INPUT_URL: VAULT_URL, INPUT_TIMEOUT: '60' },
      { now: () => clock++ },
    );
    expect(part).toEqual({
      tokenRevoked: true,
      tokenBatchExpires: undefined,
      leasesRevoked: 2,
      leasesWithToken: 0,
      leasesLeft: [],
      certsRevoked: 0,
      certsExpired: 0,
      certsLeft: [],
      problems: [],
    });
    expect(vault.calls.map((c) => [c.path, c.leaseId])).toEqual([
      [LEASE_REVOKE, LEASES[0]],
      [LEASE_REVOKE, LEASES[1]],
      [REVOKE_SELF, undefined],
    ]);
    // The leases get two thirds of the 60 s, the token all of it.
    expect(vault.clients.map((c) => [c.url, c.namespace, c.deadline])).toEqual([
      [VAULT_URL, 'team', 1_000_000 + 40_000],
      [VAULT_URL, 'team', 1_000_000 + 60_000],
    ]);
    expect(vault.closed).toBe(2);
    expect(runner.masked).toContain(TOKEN);
  });

  it('sends nothing without a proven Vault address, or without a token to send', async () => {
    const vault = fakeVault({ [TOKEN]: LEASES });
    expect((await revoke(vault, ledgerWith({ vaultUrl: undefined }))).part.leasesRevoked).toBe(0);
    // A second run: the token file went with the private directory.
    expect((await revoke(vault, ledgerWith({ tokenFile: path.join(tmp(), 'gone') }))).part.problems).toEqual([]);
    // A user's token and no leases: nothing to revoke with it.
    expect(
      (await revoke(vault, ledgerWith({ tokenFile: undefined, leases: [] }), { INPUT_URL: VAULT_URL, INPUT_TOKEN: TOKEN })).part,
    ).toMatchObject({
      tokenRevoked: undefined,
      leasesRevoked: 0,
    });
    expect(vault.clients).toEqual([]);
  });

  it('says when the token file cannot be read', async () => {
    const dir = path.join(tmp(), 'vault-token');
    mkdirSync(dir);
    const { part } = await revoke(fakeVault({ [TOKEN]: LEASES }), ledgerWith({ tokenFile: dir }));
    expect(part.problems).toEqual(['cannot read the token file (EISDIR)']);
  });

  it("revokes a user's token's leases and never the token itself; a refused lease is left alive with why and until when", async () => {
    const vault = fakeVault({ [TOKEN]: LEASES });
    vault.failures.set(LEASE_REVOKE, [{ error: vaultError(LEASE_REVOKE, 500) }]);
    const ledger = ledgerWith({ tokenFile: undefined, leaseExpires: { [LEASES[0] ?? '']: '2030-01-01T00:00:00.000Z' } });
    const { part } = await revoke(vault, ledger, { INPUT_URL: VAULT_URL, INPUT_TOKEN: TOKEN });
    expect(vault.calls.map((c) => c.path)).toEqual([LEASE_REVOKE, LEASE_REVOKE]);
    expect(vault.tokens.has(TOKEN)).toBe(true);
    expect(part).toMatchObject({ tokenRevoked: undefined, leasesRevoked: 1, leasesWithToken: 0 });
    expect(part.leasesLeft).toEqual([
      {
        leaseId: LEASES[0],
        expires: '2030-01-01T00:00:00.000Z',
        reason: 'not revoked: POST sys/leases/revoke: Vault answered 500 error',
      },
    ]);
  });

  it('leaves a batch token to expire, and its leases it could not revoke alive', async () => {
    const vault = fakeVault({ [TOKEN]: LEASES });
    vault.refuse.add(LEASE_REVOKE);
    const { part } = await revoke(vault, ledgerWith({ tokenBatch: true, tokenExpires: '2030-01-01T01:00:00.000Z' }));
    expect(vault.calls.map((c) => c.path)).toEqual([LEASE_REVOKE, LEASE_REVOKE]);
    expect(part).toMatchObject({ tokenRevoked: undefined, tokenBatchExpires: '2030-01-01T01:00:00.000Z', leasesRevoked: 0 });
    expect(part.leasesLeft.map((l) => l.leaseId)).toEqual(LEASES);
    expect(part.leasesLeft[0]?.reason).toMatch(/^Vault refused sys\/leases\/revoke \(403; the default policy lacks it\); grant path/);
  });

  it('tries the token revocation again after a pause for as long as it fails on the way (a cluster electing a leader)', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    const unavailable = () => ({ error: vaultError(REVOKE_SELF, 503) });
    vault.failures.set(REVOKE_SELF, [unavailable(), unavailable(), unavailable()]);
    let clock = 1_000_000;
    const { part, runner } = await revoke(
      vault,
      ledgerWith({ leases: [] }),
      { INPUT_URL: VAULT_URL, INPUT_TIMEOUT: '30' },
      { now: () => clock, sleep: async (ms) => void (clock += ms) },
    );
    expect(part.tokenRevoked).toBe(true);
    expect(vault.calls.map((c) => c.path)).toEqual([REVOKE_SELF, REVOKE_SELF, REVOKE_SELF, REVOKE_SELF]);
    expect(clock - 1_000_000).toBe(3000);
    expect(runner.infos).toEqual([
      "Vault token revocation failed (POST auth/token/revoke-self: Vault answered 503 error); trying again until the 'timeout' input runs out",
    ]);
  });

  it('stops trying while the budget still has room for one more try and its pause, and says what stayed alive', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    vault.failures.set(
      REVOKE_SELF,
      Array.from({ length: 50 }, () => ({ error: vaultError(REVOKE_SELF, 500) })),
    );
    let clock = 1_000_000;
    const { part } = await revoke(
      vault,
      ledgerWith({ leases: [], tokenExpires: '2030-01-01T02:00:00.000Z' }),
      { INPUT_URL: VAULT_URL, INPUT_TIMEOUT: '10' },
      { now: () => clock, sleep: async (ms) => void (clock += ms) },
    );
    // Tries at 0, 1, ..., 9 s; at 9 s less than a pause and a second are left.
    expect(vault.calls).toHaveLength(10);
    expect(clock - 1_000_000).toBe(9000);
    expect(part.tokenRevoked).toBe(false);
    expect(part.problems).toEqual([
      'Vault token not revoked: POST auth/token/revoke-self: Vault answered 500 error; it stays alive until it expires by its TTL (2030-01-01T02:00:00.000Z), nothing renews it any more, and its file goes with the private directory',
    ]);
  });

  it('does not try again when Vault refused, or when the budget has no room left', async () => {
    const refused = fakeVault({ [TOKEN]: [] });
    refused.refuse.add(REVOKE_SELF);
    const once = await revoke(refused, ledgerWith({ leases: [], tokenExpires: '2030-01-01T02:00:00.000Z' }));
    expect(once.slept).toEqual([]);
    expect(once.part.tokenRevoked).toBe(false);
    expect(once.part.problems).toEqual([
      'Vault token not revoked: POST auth/token/revoke-self: Vault answered 403 error; it stays alive until it expires by its TTL (2030-01-01T02:00:00.000Z), nothing renews it any more, and its file goes with the private directory',
    ]);
    const late = fakeVault({ [TOKEN]: [] });
    late.failures.set(REVOKE_SELF, [{ error: vaultError(REVOKE_SELF, 503) }]);
    const { part, slept } = await revoke(late, ledgerWith({ leases: [] }), { INPUT_URL: VAULT_URL, INPUT_TIMEOUT: '1' });
    expect(slept).toEqual([]);
    expect(part.problems[0]).toMatch(/^Vault token not revoked: .*503/);
  });

  it('counts the token revoked when an earlier try revoked it and its answer was lost', async () => {
    const vault = fakeVault({ [TOKEN]: LEASES });
    vault.refuse.add(LEASE_REVOKE);
    vault.failures.set(REVOKE_SELF, [{ error: vaultError(REVOKE_SELF, undefined, true), acted: true }]);
    const { part, runner } = await revoke(vault, ledgerWith());
    expect(vault.calls.map((c) => c.path)).toEqual([LEASE_REVOKE, LEASE_REVOKE, REVOKE_SELF, REVOKE_SELF, LOOKUP_SELF]);
    expect(part).toMatchObject({ tokenRevoked: true, leasesWithToken: 2, leasesLeft: [], problems: [] });
    expect(runner.infos).toContain('Vault token revoked (by an earlier try whose answer was lost; the retry found it gone)');
  });

  it('says the token may not have been revoked when it is still valid after an uncertain try', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    vault.failures.set(REVOKE_SELF, [{ error: vaultError(REVOKE_SELF, 403, true) }]);
    const { part } = await revoke(vault, ledgerWith({ leases: [] }));
    expect(vault.tokens.has(TOKEN)).toBe(true);
    expect(part.tokenRevoked).toBe(false);
    expect(part.problems[0]).toMatch(/^Vault token may not have been revoked: /);
  });

  it('goes through the proxy and with the TLS settings the inputs give', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    const env = { INPUT_URL: VAULT_URL, https_proxy: 'http://proxy.example:3128', 'INPUT_TLS-SKIP-VERIFY': 'true' };
    await revoke(vault, ledgerWith({ leases: [] }), env);
    expect(vault.clients[0]).toMatchObject({ proxy: 'http://proxy.example:3128/', tls: { rejectUnauthorized: false } });
  });
});

describe('revokeVault: certificates of `pki` entries', () => {
  const SERIAL = '4f:9c:2a:11:e0:77:31:5b';
  const PKI_LEASE = 'pki/issue/ci/lease-1';
  function cert(extra: { leaseId?: string } = {}) {
    const serialFile = path.join(tmp(), 'pki-client.serial');
    writeFileSync(serialFile, SERIAL);
    return { name: 'client', mount: 'pki', serialFile, expires: '2030-01-01T00:00:00.000Z', ...extra };
  }

  it('a certificate without a lease is revoked by serial, before the token', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    const { part } = await revoke(vault, ledgerWith({ leases: [], certs: [cert()] }));
    expect(vault.calls.map((c) => c.path)).toEqual([PKI_REVOKE, REVOKE_SELF]);
    expect(vault.serialsRevoked).toEqual([SERIAL]);
    expect(part).toMatchObject({ certsRevoked: 1, certsLeft: [], tokenRevoked: true });
  });

  it('an expired certificate (Vault answers without a revocation time) is counted apart: nothing was left to revoke', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    vault.expiredSerials.add(SERIAL);
    const { part } = await revoke(vault, ledgerWith({ leases: [], certs: [cert()] }));
    expect(part).toMatchObject({ certsRevoked: 0, certsExpired: 1, certsLeft: [] });
  });

  it('a certificate whose lease was revoked by id is not revoked again by serial', async () => {
    const vault = fakeVault({ [TOKEN]: [PKI_LEASE] });
    const { part } = await revoke(vault, ledgerWith({ leases: [PKI_LEASE], certs: [cert({ leaseId: PKI_LEASE })] }));
    expect(vault.calls.map((c) => c.path)).toEqual([LEASE_REVOKE, REVOKE_SELF]);
    expect(part).toMatchObject({ certsRevoked: 0, certsLeft: [], leasesRevoked: 1 });
  });

  it('refused both ways, a leased certificate goes with the token it was issued to', async () => {
    const vault = fakeVault({ [TOKEN]: [PKI_LEASE] });
    vault.refuse.add(LEASE_REVOKE);
    vault.refuse.add(PKI_REVOKE);
    const { part } = await revoke(vault, ledgerWith({ leases: [PKI_LEASE], certs: [cert({ leaseId: PKI_LEASE })] }));
    expect(vault.calls.map((c) => c.path)).toEqual([LEASE_REVOKE, PKI_REVOKE, REVOKE_SELF]);
    expect(part).toMatchObject({ tokenRevoked: true, leasesWithToken: 1, certsRevoked: 0, certsLeft: [] });
  });

  it('refused, a certificate without a lease is named by name, mount and expiry, never by its serial (masked)', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    vault.refuse.add(PKI_REVOKE);
    const { part, runner } = await revoke(vault, ledgerWith({ leases: [], certs: [cert()] }));
    expect(part.certsLeft).toEqual([
      {
        name: 'client',
        mount: 'pki',
        expires: '2030-01-01T00:00:00.000Z',
        reason: `Vault refused pki/revoke (403; the default policy lacks it); grant path "pki/revoke" { capabilities = ["update"] } in the token's policy`,
      },
    ]);
    expect(runner.masked).toContain(SERIAL);
    expect(JSON.stringify(part)).not.toContain(SERIAL);
  });

  it("with a user's token (never revoked), certificates alone are reason enough to use it", async () => {
    const userToken = 'hvs.users-own-token-77';
    const vault = fakeVault({ [userToken]: [] });
    const { part } = await revoke(vault, ledgerWith({ leases: [], tokenFile: undefined, certs: [cert()] }), {
      INPUT_URL: VAULT_URL,
      INPUT_TOKEN: userToken,
    });
    expect(vault.calls.map((c) => [c.path, c.token])).toEqual([[PKI_REVOKE, userToken]]);
    expect(part).toMatchObject({ certsRevoked: 1, tokenRevoked: undefined });
  });

  it('a serial file that is gone: the certificate is reported left valid, with why', async () => {
    const vault = fakeVault({ [TOKEN]: [] });
    const gone = { ...cert(), serialFile: path.join(tmp(), 'missing.serial') };
    const { part } = await revoke(vault, ledgerWith({ leases: [], certs: [gone] }));
    expect(part.certsLeft.map((c) => c.reason)).toEqual(['its serial file could not be read (ENOENT), so it was not revoked']);
  });
});
