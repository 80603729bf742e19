// explainRefusal: a 404 or 403 of a `secrets` line said as what to do, the token asked about only for a 403.
import { describe, expect, it } from 'vitest';
import { VaultError } from '../../../src/core/errors.ts';
import type { VaultClient } from '../../../src/vault/client.ts';
import { explainRefusal, tokenAccepted } from '../../../src/vault/refusal.ts';

const plan = { path: 'secret/ci/app', line: 3, body: undefined };

describe('explainRefusal', () => {
  it('a 404 names the line and the path, and says both KV v2 forms work, without asking about the token', async () => {
    let asked = 0;
    const text = await explainRefusal(new VaultError('secret/data/ci/app', 'GET secret/data/ci/app: 404', 404), plan, () => {
      asked++;
      return Promise.resolve(true);
    });
    expect(text).toMatch(/^secrets line 3: .*nothing at 'secret\/ci\/app'; check the path \(for KV v2/);
    expect(asked).toBe(0);
  });

  it('a 403 with a valid token asks for the grant (read for a GET, update for a write)', async () => {
    const error = new VaultError('secret/data/ci/app', 'GET secret/data/ci/app: 403', 403);
    expect(await explainRefusal(error, plan, () => Promise.resolve(true))).toContain("grant 'read' on 'secret/data/ci/app'");
    expect(await explainRefusal(error, { ...plan, body: {} }, () => Promise.resolve(true))).toContain("grant 'update'");
  });

  it('a 403 with a token Vault no longer accepts says so instead', async () => {
    const error = new VaultError('secret/data/ci/app', 'GET secret/data/ci/app: 403', 403);
    expect(await explainRefusal(error, plan, () => Promise.resolve(false))).toContain('the Vault token is invalid, expired or revoked');
  });
});

describe('tokenAccepted', () => {
  const client = (outcome: () => Promise<unknown>): VaultClient => ({ read: outcome }) as unknown as VaultClient;
  it('only a 403 from lookup-self means the token is not accepted', async () => {
    expect(await tokenAccepted(client(() => Promise.resolve({})))).toBe(true);
    expect(await tokenAccepted(client(() => Promise.reject(new VaultError('auth/token/lookup-self', 'x', 403))))).toBe(false);
    expect(await tokenAccepted(client(() => Promise.reject(new VaultError('auth/token/lookup-self', 'x', 503))))).toBe(true);
  });
});
