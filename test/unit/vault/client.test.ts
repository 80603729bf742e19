// The client over node-vault and the transport: what each call sends (token and namespace from
// the inputs only, never VAULT_TOKEN from the environment), and how failures become one-line
// VaultErrors naming the operation and path, with the state of a deleted version and whether a
// lost try may have been acted on.
import { afterEach, describe, expect, it } from 'vitest';
import { VaultError } from '../../../src/core/errors.ts';
import { flattenErrors, loadVaultClient, tlsOptions, toVaultError } from '../../../src/vault/client.ts';
import { TransportError } from '../../../src/vault/exchange.ts';
import { json, reset, serve } from './local-server.ts';

const apiError = (statusCode: number, body: Record<string, unknown>) => Object.assign(new Error('x'), { response: { statusCode, body } });

describe('Vault error text', () => {
  it.each([
    [['1 error occurred:\n\t* permission denied\n\n'], 'permission denied'],
    [['2 errors occurred:\n\t* a\n\t* b\n\n'], 'a; b'],
    [['permission denied', 'invalid token'], 'permission denied; invalid token'],
    [['permission denied', 'permission denied'], 'permission denied'],
    [['missing client token'], 'missing client token'],
    [['line one\nline two'], 'line one line two'],
  ])('%j -> %s', (errors, expected) => {
    expect(flattenErrors(errors)).toBe(expected);
  });

  it('names the method, path and status on one line', () => {
    const error = toVaultError('GET', 'secret/data/x', apiError(403, { errors: ['1 error occurred:\n\t* permission denied\n\n'] }));
    expect(error.message).toBe('GET secret/data/x: Vault answered 403 permission denied');
    expect(error.status).toBe(403);
  });

  it.each([
    [400, 'bad request'],
    [403, 'permission denied'],
    [404, 'not found'],
    [429, 'rate limited'],
    [502, 'error'],
  ])('a %i with no errors says %s', (status, text) => {
    expect(toVaultError('GET', 'p', apiError(status, {})).message).toBe(`GET p: Vault answered ${status} ${text}`);
  });

  it("keeps a deleted or destroyed version's state from a 404, and nothing of the user's metadata", () => {
    const metadata = { version: 3, deletion_time: '2030-01-01T00:00:00Z', destroyed: false, custom_metadata: { owner: 'x' } };
    const deleted = toVaultError('GET', 'secret/data/a', apiError(404, { errors: [], data: { data: null, metadata } }));
    expect(deleted.kv).toEqual({ version: 3, deletionTime: '2030-01-01T00:00:00Z', destroyed: false });
    const destroyed = toVaultError(
      'GET',
      'secret/data/a',
      apiError(404, { data: { data: null, metadata: { version: 1, destroyed: true } } }),
    );
    expect(destroyed.kv).toEqual({ version: 1, deletionTime: undefined, destroyed: true });
    expect(toVaultError('GET', 'secret/data/a', apiError(404, { errors: [] })).kv).toBeUndefined();
    // A live version's metadata beside data: not a deletion.
    const live = { data: { data: { k: 'v' }, metadata: { version: 1, deletion_time: '', destroyed: false } } };
    expect(toVaultError('GET', 'secret/data/a', apiError(404, live)).kv).toBeUndefined();
  });

  it('a transport failure keeps its text, its cause and whether a try may have been acted on', () => {
    const cause = Object.assign(new TransportError('ECONNRESET', 'vault:8200', 'Vault at vault:8200 closed the connection'), {
      mayHaveActed: true,
    });
    const error = toVaultError('POST', 'auth/approle/login', cause);
    expect([error.message, error.status, error.afterUncertainTry, error.cause]).toEqual([
      'POST auth/approle/login: Vault at vault:8200 closed the connection',
      undefined,
      true,
      cause,
    ]);
  });

  it('a VaultError passes through; anything else is named by its message', () => {
    const given = new VaultError('p', 'GET p: x');
    expect(toVaultError('GET', 'p', given)).toBe(given);
    expect(toVaultError('GET', 'p', new Error('tv4 schema')).message).toBe('GET p: tv4 schema');
    expect(toVaultError('GET', 'p', 'odd').message).toBe('GET p: odd');
  });
});

describe('tlsOptions', () => {
  it('passes the CA, certificate and key given, and turns verification off only when asked', () => {
    expect(tlsOptions({ ca: 'CA', cert: 'CERT', key: 'KEY', skipVerify: false })).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY' });
    expect(tlsOptions({ ca: undefined, cert: undefined, key: undefined, skipVerify: true })).toEqual({ rejectUnauthorized: false });
  });
});

describe('requests through node-vault', () => {
  const saved = { VAULT_TOKEN: process.env.VAULT_TOKEN, VAULT_NAMESPACE: process.env.VAULT_NAMESPACE };
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  async function client(url: string, namespace: string | undefined = undefined) {
    const create = await loadVaultClient();
    return create({ url, namespace, deadline: Date.now() + 10_000, retries: 2, maxSockets: 2, sleep: async () => {} });
  }

  it('sends the token and namespace it was given, never VAULT_TOKEN or VAULT_NAMESPACE from the environment', async () => {
    process.env.VAULT_TOKEN = 'hvs.from-the-environment';
    process.env.VAULT_NAMESPACE = 'env-ns';
    const server = await serve((_req, res) => json(res, 200, { data: { k: 'v' } }));
    const c = await client(server.url);
    await c.read('secret/data/app', { version: '2' });
    const withNs = await client(server.url, 'team-a');
    withNs.token = 'hvs.given';
    await withNs.write('pki/issue/ci', { common_name: 'a' });
    await withNs.revokeSelf();
    expect(server.requests.map((r) => [r.method, r.url, r.headers['x-vault-token'], r.headers['x-vault-namespace'], r.body])).toEqual([
      ['GET', '/v1/secret/data/app?version=2', undefined, undefined, ''],
      ['POST', '/v1/pki/issue/ci', 'hvs.given', 'team-a', '{"common_name":"a"}'],
      ['POST', '/v1/auth/token/revoke-self', 'hvs.given', 'team-a', '{}'],
    ]);
    c.close();
    withNs.close();
  });

  it('passes retrySafe down: a KV read is retried after a reset, the same GET not marked safe is not', async () => {
    const server = await serve((_req, res, n) => (n % 2 === 0 ? reset(res) : json(res, 200, { data: { k: 'v' } })));
    const c = await client(server.url);
    expect(await c.read('secret/data/app', undefined, true)).toEqual({ data: { k: 'v' } });
    const error = await c.read('database/creds/ci').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VaultError);
    expect([(error as VaultError).message, (error as VaultError).afterUncertainTry]).toEqual([
      `GET database/creds/ci: Vault at 127.0.0.1:${server.port} closed the connection`,
      true,
    ]);
    expect(server.hits()).toBe(3);
    c.close();
  });

  it('a 403 to a revoke-self retried after a reset says the first try may have revoked it', async () => {
    const server = await serve((_req, res, n) => (n === 0 ? reset(res) : json(res, 403, { errors: ['permission denied'] })));
    const c = await client(server.url);
    c.token = 'hvs.given';
    const error = await c.revokeSelf().catch((e: unknown) => e);
    expect([(error as VaultError).status, (error as VaultError).afterUncertainTry]).toEqual([403, true]);
    c.close();
  });
});
