// What each login method sends and keeps, over a fake VaultClient and a recording runner: the
// payload per method, every credential masked before the request goes out, the token the answer
// carries, batch tokens, and the warning for a given token that will not outlive the agent.
import { generateKeyPairSync, verify } from 'node:crypto';
import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InputError, VaultError } from '../../../src/core/errors.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import type { AuthConfig } from '../../../src/inputs/main.ts';
import { givenTokenExpiryWarning, isBatchToken, login } from '../../../src/vault/auth.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';
import { fakeVault, vaultError, type Answer } from './fake-vault.ts';

const TOKEN = 'hvs.CAESIissued-token-0123456789';
const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** A login answer; `masked` records what the runner had masked when the request arrived. */
function loginAnswer(runner: FakeRunner, masked: string[][], auth: Record<string, unknown> = {}): Answer {
  return () => {
    masked.push([...runner.masked]);
    return { auth: { client_token: TOKEN, lease_duration: 3600, token_type: 'service', ...auth } };
  };
}

async function run(auth: AuthConfig, answers: Record<string, Answer>, runner = fakeRunner()) {
  const client = fakeVault({ answers });
  client.token = 'a token left over';
  const session = await login(client, auth, { masks: new MaskRegistry(runner), getIDToken: (aud) => runner.getIDToken(aud) });
  return { client, session, runner };
}

describe('login payloads', () => {
  it('token: used as given, masked, never sent to a login, never revoked', async () => {
    const { client, session, runner } = await run({ method: 'token', token: 'hvs.given-token-abcdef' }, {});
    expect(client.calls).toEqual([]);
    expect(client.token).toBe('hvs.given-token-abcdef');
    expect(runner.masked).toContain('hvs.given-token-abcdef');
    expect(session).toEqual({ token: 'hvs.given-token-abcdef', created: false, batch: false, method: 'token', ttlSeconds: undefined });
  });

  it('approle: role_id and secret_id, masked before the request, with no token on it', async () => {
    const runner = fakeRunner();
    const masked: string[][] = [];
    const auth: AuthConfig = {
      method: 'approle',
      mount: 'ci-approle',
      roleId: 'role-id-1234',
      secretId: 'secret-id-5678',
      unwrapSecretId: false,
    };
    const { client, session } = await run(auth, { 'auth/ci-approle/login': loginAnswer(runner, masked) }, runner);
    expect(client.calls).toEqual([
      { op: 'write', path: 'auth/ci-approle/login', token: undefined, body: { role_id: 'role-id-1234', secret_id: 'secret-id-5678' } },
    ]);
    expect(masked[0]).toEqual(expect.arrayContaining(['role-id-1234', 'secret-id-5678']));
    expect(runner.masked).toContain(TOKEN);
    expect(client.token).toBe(TOKEN);
    expect(session).toEqual({ token: TOKEN, created: true, batch: false, method: 'approle', ttlSeconds: 3600 });
  });

  it('approle with a wrapped secret-id: unwrapped with the wrapping token, then the login with what it held', async () => {
    const runner = fakeRunner();
    const auth: AuthConfig = {
      method: 'approle',
      mount: 'approle',
      roleId: 'role-id-1234',
      secretId: 'hvs.wrapping-token-99',
      unwrapSecretId: true,
    };
    const { client } = await run(
      auth,
      { 'sys/wrapping/unwrap': { data: { secret_id: 'unwrapped-secret-id-1' } }, 'auth/approle/login': loginAnswer(runner, []) },
      runner,
    );
    expect(client.calls.map((c) => [c.path, c.token, c.body])).toEqual([
      ['sys/wrapping/unwrap', 'hvs.wrapping-token-99', {}],
      ['auth/approle/login', undefined, { role_id: 'role-id-1234', secret_id: 'unwrapped-secret-id-1' }],
    ]);
    expect(runner.masked).toContain('unwrapped-secret-id-1');
  });

  it('approle with a wrapped answer holding no secret_id says what to check', async () => {
    const auth: AuthConfig = {
      method: 'approle',
      mount: 'approle',
      roleId: 'role-id-1234',
      secretId: 'hvs.wrapping-token-99',
      unwrapSecretId: true,
    };
    await expect(run(auth, { 'sys/wrapping/unwrap': { data: { token: 'x' } } })).rejects.toThrow(
      "POST sys/wrapping/unwrap: the wrapped response holds no secret_id; is 'secret-id' a wrapped AppRole secret-id?",
    );
  });

  it("jwt: the runner's OIDC token for the audience asked, masked", async () => {
    const audiences: Array<string | undefined> = [];
    const runner = fakeRunner({
      idToken: async (aud) => {
        audiences.push(aud);
        return 'eyJ.oidc-token.sig';
      },
    });
    const auth: AuthConfig = { method: 'jwt', mount: 'jwt', role: 'ci', jwt: undefined, audience: 'https://vault.example' };
    const { client } = await run(auth, { 'auth/jwt/login': loginAnswer(runner, []) }, runner);
    expect(audiences).toEqual(['https://vault.example']);
    expect(client.calls[0]?.body).toEqual({ role: 'ci', jwt: 'eyJ.oidc-token.sig' });
    expect(runner.masked).toContain('eyJ.oidc-token.sig');
  });

  it("jwt: a token given in 'jwt' is sent instead, and the OIDC token is not asked for", async () => {
    const runner = fakeRunner({ idToken: async () => Promise.reject(new Error('not asked')) });
    const auth: AuthConfig = { method: 'jwt', mount: 'jwt', role: 'ci', jwt: 'eyJ.given.sig', audience: undefined };
    const { client } = await run(auth, { 'auth/jwt/login': loginAnswer(runner, []) }, runner);
    expect(client.calls[0]?.body).toEqual({ role: 'ci', jwt: 'eyJ.given.sig' });
  });

  it('jwt without id-token: write says which permission to add', async () => {
    const runner = fakeRunner({
      idToken: async () => Promise.reject(new Error('Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable')),
    });
    const auth: AuthConfig = { method: 'jwt', mount: 'jwt', role: 'ci', jwt: undefined, audience: undefined };
    const error = await run(auth, {}, runner).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/add `permissions: id-token: write` to the job/);
  });

  it("jwt refused for its audience says to set 'jwt-audience'", async () => {
    const runner = fakeRunner({ idToken: async () => 'eyJ.oidc-token.sig' });
    const auth: AuthConfig = { method: 'jwt', mount: 'jwt', role: 'ci', jwt: undefined, audience: undefined };
    const refused = vaultError('POST', 'auth/jwt/login', 400, {
      errors: ['error validating token: invalid audience (aud) claim: audience claim does not match any expected audience'],
    });
    const error = await run(auth, { 'auth/jwt/login': refused }, runner).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).status).toBe(400);
    expect((error as Error).message).toMatch(
      /audience claim does not match any expected audience: the job's OIDC token \(audience: GitHub's default, https:\/\/github.com\/OWNER\) carries an audience that role 'ci' does not bind; set 'jwt-audience'/,
    );
  });

  it('github: the GitHub token as {token}, masked before the request', async () => {
    const runner = fakeRunner();
    const masked: string[][] = [];
    const auth: AuthConfig = { method: 'github', mount: 'gh', githubToken: 'ghp_0123456789abcdef' };
    const { client, session } = await run(auth, { 'auth/gh/login': loginAnswer(runner, masked) }, runner);
    expect(client.calls).toEqual([{ op: 'write', path: 'auth/gh/login', token: undefined, body: { token: 'ghp_0123456789abcdef' } }]);
    expect(masked[0]).toContain('ghp_0123456789abcdef');
    expect(session).toMatchObject({ token: TOKEN, created: true, method: 'github' });
  });

  it('jwt with jwt-private-key: a JWT signed here is sent, the key and the JWT masked first, no OIDC token asked for', async () => {
    const runner = fakeRunner({ idToken: async () => Promise.reject(new Error('not asked')) });
    const masked: string[][] = [];
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const auth: AuthConfig = {
      method: 'jwt',
      mount: 'jwt',
      role: 'ci',
      jwt: undefined,
      audience: undefined,
      signing: { privateKey: pem, passphrase: 'unused-pass', algorithm: 'ES256', ttlSeconds: 60, claims: {} },
    };
    const { client } = await run(auth, { 'auth/jwt/login': loginAnswer(runner, masked) }, runner);
    const jwt = String(client.calls[0]?.body?.jwt);
    const [h = '', p = '', sig = ''] = jwt.split('.');
    expect(verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'))).toBe(
      true,
    );
    expect(masked[0]).toEqual(expect.arrayContaining([jwt, 'unused-pass', pem.split('\n')[1]]));
  });

  it('kubernetes: the service account token read from its file, trimmed, masked', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-auth-'));
    made.push(dir);
    const tokenPath = path.join(dir, 'token');
    await fs.writeFile(tokenPath, 'eyJ.k8s-sa-token.sig\n');
    const runner = fakeRunner();
    const masked: string[][] = [];
    const auth: AuthConfig = { method: 'kubernetes', mount: 'kubernetes', role: 'ci', tokenPath };
    const { client } = await run(auth, { 'auth/kubernetes/login': loginAnswer(runner, masked) }, runner);
    expect(client.calls[0]?.body).toEqual({ role: 'ci', jwt: 'eyJ.k8s-sa-token.sig' });
    expect(masked[0]).toContain('eyJ.k8s-sa-token.sig');
  });

  it('kubernetes: a missing or empty token file names the input', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-auth-'));
    made.push(dir);
    const missing = path.join(dir, 'none');
    await expect(run({ method: 'kubernetes', mount: 'kubernetes', role: 'ci', tokenPath: missing }, {})).rejects.toThrow(
      `input 'kubernetes-token-path': cannot read ${missing} (ENOENT); is this runner in a Kubernetes pod with a service account token?`,
    );
    const empty = path.join(dir, 'empty');
    await fs.writeFile(empty, '\n');
    await expect(run({ method: 'kubernetes', mount: 'kubernetes', role: 'ci', tokenPath: empty }, {})).rejects.toThrow(
      `input 'kubernetes-token-path': ${empty} is empty`,
    );
  });

  it.each(['userpass', 'ldap'] as const)('%s: the username in the path (encoded), the password in the body', async (method) => {
    const runner = fakeRunner();
    const { client } = await run(
      { method, mount: method, username: 'ci bot/1', password: 'pass-word-42' },
      { [`auth/${method}/login/ci%20bot%2F1`]: loginAnswer(runner, []) },
      runner,
    );
    expect(client.calls[0]).toMatchObject({ path: `auth/${method}/login/ci%20bot%2F1`, body: { password: 'pass-word-42' } });
    expect(runner.masked).toContain('pass-word-42');
  });

  it('cert: the role as name, or nothing (the TLS client certificate is the credential)', async () => {
    const named = await run({ method: 'cert', mount: 'cert', role: 'web' }, { 'auth/cert/login': { auth: { client_token: TOKEN } } });
    const bare = await run({ method: 'cert', mount: 'cert', role: undefined }, { 'auth/cert/login': { auth: { client_token: TOKEN } } });
    expect([named.client.calls[0]?.body, bare.client.calls[0]?.body]).toEqual([{ name: 'web' }, {}]);
  });

  it('custom: the payload as given, every string field and the whole masked', async () => {
    const runner = fakeRunner();
    const payload = { role: 'ci-role', api_key: 'custom-key-0987', n: 3 };
    const { client } = await run({ method: 'custom', mount: 'oci', payload }, { 'auth/oci/login': loginAnswer(runner, []) }, runner);
    expect(client.calls[0]?.body).toEqual(payload);
    expect(runner.masked).toEqual(expect.arrayContaining(['custom-key-0987', 'ci-role', JSON.stringify(payload)]));
  });

  it('an answer without auth.client_token fails naming the path', async () => {
    await expect(run({ method: 'cert', mount: 'cert', role: undefined }, { 'auth/cert/login': { auth: null } })).rejects.toThrow(
      new VaultError('auth/cert/login', "POST auth/cert/login: Vault's answer carried no auth.client_token"),
    );
  });
});

describe('batch tokens', () => {
  it.each([
    ['hvb.AAAA', true],
    ['b.AAAA', true],
    ['hvs.AAAA', false],
    ['s.AAAA', false],
    ['hvbx.AAAA', false],
  ])('isBatchToken(%s) = %s', (token, expected) => {
    expect(isBatchToken(token)).toBe(expected);
  });

  it("a login answer's token_type: batch makes a batch session, whatever the prefix", async () => {
    const runner = fakeRunner();
    const { session } = await run(
      { method: 'cert', mount: 'cert', role: undefined },
      { 'auth/cert/login': loginAnswer(runner, [], { token_type: 'batch', lease_duration: 600 }) },
      runner,
    );
    expect([session.batch, session.ttlSeconds]).toEqual([true, 600]);
  });
});

describe('givenTokenExpiryWarning', () => {
  const lookup = (answer: Answer) => fakeVault({ answers: { 'auth/token/lookup-self': answer } });
  it('warns when the token expires before the agent would stop', async () => {
    expect(await givenTokenExpiryWarning(lookup({ data: { ttl: 900 } }), 3_600_000)).toBe(
      "renew: the token given in 'token' expires in 900 s, before 'agent-max-lifetime' (3600 s), and the agent does not renew a token it did not create: after that it cannot re-read secrets or renew leases; use a login method (approle, jwt...) so the agent renews its own token, give a longer-lived token, or lower 'agent-max-lifetime'",
    );
  });

  it.each([
    ['a token that outlives the agent', { data: { ttl: 3600 } }],
    ['a token with no TTL (ttl 0: a root token)', { data: { ttl: 0 } }],
    ['a lookup that fails', vaultError('GET', 'auth/token/lookup-self', 403)],
  ])('says nothing for %s', async (_what, answer) => {
    expect(await givenTokenExpiryWarning(lookup(answer), 3_600_000)).toBeUndefined();
  });
});
