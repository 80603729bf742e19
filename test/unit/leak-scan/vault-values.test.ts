// fetchScanValues: the scan's own login and fetch against the in-memory Vault main's tests use;
// values masked as they arrive, and nothing left alive: leases and the token this step created
// revoked after a fetch, after a failed one and after a cancellation (on a fresh client); a token
// given as `token` is never revoked.
import { describe, expect, it } from 'vitest';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { parseScanInputs, type ScanVault } from '../../../src/inputs/scan.ts';
import { fetchScanValues } from '../../../src/leak-scan/vault-values.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { fakeVault, type FakeVaultOptions } from '../main/fake-vault.ts';

const TOKEN = 'hvs.scan-unit-token-0123456789';
const KV = { app: { password: 'scan-unit-Pa55-1234', user: 'ci' } };

function scanVault(
  secrets: string,
  auth: Record<string, string> = { INPUT_METHOD: 'approle', 'INPUT_ROLE-ID': 'role-1', 'INPUT_SECRET-ID': 'fake-secret-id-0123456789' },
): ScanVault {
  const config = parseScanInputs({ INPUT_PATHS: '.', INPUT_URL: 'https://vault.test:8200', INPUT_SECRETS: secrets, ...auth });
  if (!config.vault) throw new Error('no vault config');
  return config.vault;
}

function setup(options: FakeVaultOptions = {}) {
  const vault = fakeVault({ token: TOKEN, kv: KV, ...options });
  const runner = fakeRunner();
  const masks = new MaskRegistry(runner);
  return { vault, runner, masks, deps: { runner, masks, loadVaultClient: async () => vault.factory } };
}

describe('fetchScanValues', () => {
  it('logs in, fetches each line, masks every value as it arrives, revokes the token it created', async () => {
    const { vault, runner, deps } = setup();
    const values = await fetchScanValues(deps, scanVault('secret/app password | APP_PASSWORD\nsecret/app user | APP_USER'));
    expect(values).toEqual([
      { name: 'APP_PASSWORD', value: 'scan-unit-Pa55-1234', line: 1 },
      { name: 'APP_USER', value: 'ci', line: 2 },
    ]);
    expect(runner.masked).toEqual(expect.arrayContaining([TOKEN, 'scan-unit-Pa55-1234']));
    expect(vault.revoked).toEqual([TOKEN]);
    expect(vault.closed).toBeGreaterThanOrEqual(1);
    expect(runner.warnings).toEqual([]);
  });

  it('a fetch that fails still revokes the token before the error goes on', async () => {
    const { vault, deps } = setup();
    await expect(fetchScanValues(deps, scanVault('secret/missing password | X'))).rejects.toThrow(/secrets line 1: .*404/);
    expect(vault.revoked).toEqual([TOKEN]);
  });

  it('a fetch that spent its deadline: the token is revoked on a fresh client with a deadline of its own', async () => {
    let clock = 1_000_000;
    const { vault, deps } = setup({ before: (_, path) => void (path === 'secret/data/app' && (clock += 60_000)) });
    await fetchScanValues({ ...deps, now: () => clock }, scanVault('secret/app password | P'));
    expect(vault.clients.map((c) => c.deadline)).toEqual([1_000_000 + 30_000, clock + 5000]);
    expect(vault.revoked).toEqual([TOKEN]);
  });

  it("a token given as 'token' is used and never revoked", async () => {
    const { vault, deps } = setup();
    const values = await fetchScanValues(deps, scanVault('secret/app password | P', { INPUT_TOKEN: TOKEN }));
    expect(values.map((v) => v.name)).toEqual(['P']);
    expect(vault.revoked).toEqual([]);
  });

  it('a line answered with a lease: warned about, its lease revoked, then the token', async () => {
    const { vault, runner, deps } = setup({ dynamic: { 'database/creds/ci': (n) => ({ password: `dyn-Pa55-${n}-abcdef` }) } });
    const values = await fetchScanValues(deps, scanVault('database/creds/ci password | DB'));
    expect(values.map((v) => v.value)).toEqual(['dyn-Pa55-1-abcdef']);
    expect(vault.requests).toContain('POST sys/leases/revoke');
    expect(vault.requests.at(-1)).toBe('POST auth/token/revoke-self');
    expect(vault.revoked).toEqual([TOKEN]);
    expect(runner.warnings).toEqual([
      '1 answer(s) carried a lease (a dynamic secret): reading one issues a new credential, which no artifact made earlier can hold; revoked now',
    ]);
  });

  it('a cancelled job: nothing new starts, the token is revoked on a fresh client, and the step fails saying so', async () => {
    let release: () => void = () => {};
    let cancel: (signal: string) => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const { vault, deps } = setup({ before: (method, path) => (path === 'secret/data/app' ? held : undefined) });
    const fetching = fetchScanValues(
      { ...deps, onCancel: (handler) => ((cancel = handler), () => (cancel = () => {})) },
      scanVault('secret/app password | P'),
    );
    while (!vault.requests.includes('GET secret/data/app')) await new Promise((r) => setTimeout(r, 1));
    cancel('SIGTERM');
    release();
    await expect(fetching).rejects.toThrow(
      'the job was cancelled (SIGTERM) while this step read from Vault; the token it logged in for is revoked, and nothing was scanned',
    );
    expect(vault.cancelled).toEqual(['SIGTERM']);
    expect(vault.clients).toHaveLength(2);
    expect(vault.revoked).toEqual([TOKEN]);
  });
});
