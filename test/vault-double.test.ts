/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are free-form JSON */
// Tests of the Vault HTTP API double itself, hitting it with plain fetch (and https for TLS).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makePki, type Pki } from './services/tls.ts';
import { VaultDouble } from './vault-double/index.ts';

interface Res {
  status: number;
  body: any;
  headers: Headers;
}

async function call(
  v: VaultDouble,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers['X-Vault-Token'] = opts.token;
  const init: RequestInit = { method, headers };
  if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
  const r = await fetch(`${v.url}/v1/${path}`, init);
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined, headers: r.headers };
}

const ENVELOPE_KEYS = ['request_id', 'lease_id', 'renewable', 'lease_duration', 'data', 'wrap_info', 'warnings', 'auth', 'mount_type'];

async function login(v: VaultDouble, mount: string, body: unknown, suffix = ''): Promise<string> {
  const r = await call(v, 'POST', `auth/${mount}/login${suffix}`, { body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.auth.client_token as string;
}

describe('KV engines, envelope and errors', () => {
  let v: VaultDouble;
  beforeAll(async () => {
    v = await VaultDouble.start();
    v.enableKv('secret', 2);
    v.enableKv('kv1', 1);
    v.putKv('secret', 'app/db', { password: 'one' });
    v.putKv('secret', 'app/db', { password: 'two' });
    v.putKv('kv1', 'app/db', { password: 'v1pw' });
  });
  afterAll(() => v.stop());

  it('reads KV v2 in the documented envelope, latest or ?version=N', async () => {
    const r = await call(v, 'GET', 'secret/data/app/db', { token: v.rootToken });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(Object.keys(r.body)).toEqual(ENVELOPE_KEYS);
    expect(r.body).toMatchObject({
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      wrap_info: null,
      warnings: null,
      auth: null,
      mount_type: 'kv',
    });
    expect(r.body.data.data).toEqual({ password: 'two' });
    expect(Object.keys(r.body.data.metadata).sort()).toEqual(['created_time', 'custom_metadata', 'deletion_time', 'destroyed', 'version']);
    expect(r.body.data.metadata).toMatchObject({ version: 2, deletion_time: '', destroyed: false, custom_metadata: null });
    expect(Number.isNaN(Date.parse(r.body.data.metadata.created_time))).toBe(false);
    const v1 = await call(v, 'GET', 'secret/data/app/db?version=1', { token: v.rootToken });
    expect(v1.body.data.data).toEqual({ password: 'one' });
  });

  it.each([
    ['missing secret', 'secret/data/nope'],
    ['missing version', 'secret/data/app/db?version=9'],
    ['missing v1 secret', 'kv1/nope'],
    ['missing v2 metadata', 'secret/metadata/nope'],
  ])('answers 404 {"errors":[]} for a %s', async (_name, path) => {
    const r = await call(v, 'GET', path, { token: v.rootToken });
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ errors: [] });
  });

  it('answers 404 with metadata for deleted and destroyed versions', async () => {
    v.putKv('secret', 'rot', { k: 'a' });
    v.putKv('secret', 'rot', { k: 'b' });
    v.putKv('secret', 'rot', { k: 'c' });
    v.deleteKvVersion('secret', 'rot', 3);
    v.destroyKvVersion('secret', 'rot', 2);
    const deleted = await call(v, 'GET', 'secret/data/rot', { token: v.rootToken });
    expect(deleted.status).toBe(404);
    expect(deleted.body.data.data).toBeNull();
    expect(deleted.body.data.metadata.version).toBe(3);
    expect(deleted.body.data.metadata.deletion_time).not.toBe('');
    const destroyed = await call(v, 'GET', 'secret/data/rot?version=2', { token: v.rootToken });
    expect(destroyed.status).toBe(404);
    expect(destroyed.body.data.metadata).toMatchObject({ version: 2, destroyed: true });
    const first = await call(v, 'GET', 'secret/data/rot?version=1', { token: v.rootToken });
    expect(first.body.data.data).toEqual({ k: 'a' });
  });

  it('writes new KV v2 versions through the API (POST and PUT) and checks cas', async () => {
    const w = await call(v, 'POST', 'secret/data/api', { token: v.rootToken, body: { data: { a: 1 } } });
    expect(w.status).toBe(200);
    expect(w.body.data).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
    const put = await call(v, 'PUT', 'secret/data/api', { token: v.rootToken, body: { data: { a: 2 }, options: { cas: 1 } } });
    expect(put.body.data.version).toBe(2);
    const cas = await call(v, 'POST', 'secret/data/api', { token: v.rootToken, body: { data: { a: 3 }, options: { cas: 1 } } });
    expect(cas.status).toBe(400);
    expect(cas.body.errors).toEqual(['check-and-set parameter did not match the current version']);
    expect(v.putKv('secret', 'api', { a: 4 })).toBe(3);
    const r = await call(v, 'GET', 'secret/data/api', { token: v.rootToken });
    expect(r.body.data.data).toEqual({ a: 4 });
    const noData = await call(v, 'POST', 'secret/data/api', { token: v.rootToken, body: {} });
    expect(noData.status).toBe(400);
    expect(noData.body.errors).toEqual(['no data provided']);
  });

  it('reads KV v2 metadata and lists keys', async () => {
    const m = await call(v, 'GET', 'secret/metadata/app/db', { token: v.rootToken });
    expect(m.body.data).toMatchObject({ current_version: 2, oldest_version: 1, max_versions: 0, cas_required: false });
    expect(Object.keys(m.body.data.versions)).toEqual(['1', '2']);
    const l = await call(v, 'LIST', 'secret/metadata/', { token: v.rootToken });
    expect(l.body.data.keys).toEqual(expect.arrayContaining(['app/', 'api', 'rot']));
    const l2 = await call(v, 'GET', 'secret/metadata/app?list=true', { token: v.rootToken });
    expect(l2.body.data.keys).toEqual(['db']);
  });

  it('answers a v2 path without data/ with 404 and the Invalid path warning', async () => {
    const r = await call(v, 'GET', 'secret/app/db', { token: v.rootToken });
    expect(r.status).toBe(404);
    expect(r.body.data).toBeNull();
    expect(r.body.warnings).toEqual([
      "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.",
    ]);
  });

  it('reads and writes KV v1', async () => {
    const r = await call(v, 'GET', 'kv1/app/db', { token: v.rootToken });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ password: 'v1pw' });
    expect(r.body.lease_duration).toBe(2764800);
    const w = await call(v, 'POST', 'kv1/app/new', { token: v.rootToken, body: { user: 'u' } });
    expect(w.status).toBe(204);
    expect((await call(v, 'GET', 'kv1/app/new', { token: v.rootToken })).body.data).toEqual({ user: 'u' });
    expect((await call(v, 'LIST', 'kv1/app', { token: v.rootToken })).body.data.keys).toEqual(['db', 'new']);
  });

  it.each([
    ['no token', 'GET', 'secret/data/app/db', {}, 403, ['missing client token']],
    ['unknown token', 'GET', 'secret/data/app/db', { token: 'hvs.nope' }, 403, ['permission denied', 'invalid token']],
    ['unmounted path', 'GET', 'nomount/x', { root: true }, 404, ['no handler for route "nomount/x". route entry not found.']],
    ['unsupported HTTP method', 'OPTIONS', 'secret/data/app/db', { root: true }, 405, []],
    [
      'unsupported operation',
      'DELETE',
      'auth/token/lookup-self',
      { root: true },
      405,
      ['1 error occurred:\n\t* unsupported operation\n\n'],
    ],
    ['invalid JSON', 'POST', 'secret/data/x', { root: true, raw: '{nope' }, 400, null],
  ] as const)('errors: %s', async (_n, method, path, o, status, errors) => {
    const headers: Record<string, string> = {};
    if ('token' in o) headers['X-Vault-Token'] = o.token;
    if ('root' in o) headers['X-Vault-Token'] = v.rootToken;
    const r = await fetch(`${v.url}/v1/${path}`, { method, headers, ...('raw' in o ? { body: o.raw } : {}) });
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe('application/json');
    const body = (await r.json()) as { errors: string[] };
    if (errors) expect(body.errors).toEqual(errors);
    else expect(body.errors[0]).toMatch(/^failed to parse JSON input/);
  });

  it('accepts Authorization: Bearer and X-Vault-Request, and records every request', async () => {
    const before = v.requests.length;
    const r = await fetch(`${v.url}/v1/secret/data/app/db?version=1`, {
      headers: { Authorization: `Bearer ${v.rootToken}`, 'X-Vault-Request': 'true' },
    });
    expect(r.status).toBe(200);
    await r.text();
    await call(v, 'GET', 'secret/data/app/db');
    const [a, b] = v.requests.slice(before);
    expect(a).toMatchObject({ method: 'GET', path: 'secret/data/app/db', query: 'version=1', status: 200, hadToken: true });
    expect(b).toMatchObject({ status: 403, hadToken: false });
    expect(v.count({ method: 'GET', path: /^secret\/data\/app\/db$/ })).toBeGreaterThanOrEqual(2);
  });
});

describe('mounts, namespaces and policies', () => {
  let v: VaultDouble;
  let reader: string;
  beforeAll(async () => {
    v = await VaultDouble.start();
    v.enableKv('secret', 2);
    v.enableKv('team/kv', 1);
    v.enableKv('secret', 2, 'ns1');
    v.enableEngine('database', 'database');
    v.putKv('secret', 'x', { where: 'root' });
    v.putKv('secret', 'x', { where: 'ns1' }, 'ns1');
    for (const p of ['app/db', 'app/private', 'team1/db', 'team1/other', 'team1/x/db']) v.putKv('secret', p, { p });
    v.addPolicy('glob', [{ path: 'secret/data/app/*', capabilities: ['read'] }]);
    v.addPolicy('deny-private', [{ path: 'secret/data/app/private', capabilities: ['deny'] }]);
    v.addPolicy('plus', [{ path: 'secret/data/+/db', capabilities: ['read'] }]);
    v.addPolicy('create-only', [{ path: 'secret/data/new/*', capabilities: ['create'] }]);
    v.addPolicy('lister', [{ path: 'secret/metadata/*', capabilities: ['list'] }]);
    v.addPolicy('ns1-reader', [{ path: 'ns1/secret/data/*', capabilities: ['read'] }]);
    reader = v.createToken({ policies: ['glob', 'deny-private', 'plus', 'create-only', 'lister', 'ns1-reader'] });
  });
  afterAll(() => v.stop());

  it.each([
    ['GET', 'secret/data/app/db', 200, 'glob grants read'],
    ['GET', 'secret/data/app/private', 403, 'deny beats the glob'],
    ['GET', 'secret/data/team1/db', 200, '+ matches one segment'],
    ['GET', 'secret/data/team1/x/db', 403, '+ does not match two segments'],
    ['GET', 'secret/data/team1/other', 403, 'no rule'],
    ['POST', 'secret/data/app/db', 403, 'read does not allow writes'],
    ['LIST', 'secret/metadata/app', 200, 'list capability'],
    ['GET', 'ns1/secret/data/x', 200, 'policy paths include the namespace'],
    ['GET', 'auth/token/lookup-self', 200, 'default policy'],
  ])('%s %s → %i (%s)', async (method, path, status) => {
    const r = await call(v, method, path, { token: reader, ...(method === 'POST' ? { body: { data: { a: 1 } } } : {}) });
    expect(r.status).toBe(status);
    if (status === 403) expect(r.body.errors).toEqual(['1 error occurred:\n\t* permission denied\n\n']);
  });

  it('tells create from update by whether the secret exists', async () => {
    const first = await call(v, 'POST', 'secret/data/new/one', { token: reader, body: { data: { a: 1 } } });
    expect(first.status).toBe(200);
    const again = await call(v, 'POST', 'secret/data/new/one', { token: reader, body: { data: { a: 2 } } });
    expect(again.status).toBe(403);
  });

  it('keeps one mount table per namespace (header or path prefix)', async () => {
    const root = await call(v, 'GET', 'secret/data/x', { token: v.rootToken });
    const viaHeader = await call(v, 'GET', 'secret/data/x', { token: v.rootToken, headers: { 'X-Vault-Namespace': 'ns1' } });
    const viaPath = await call(v, 'GET', 'ns1/secret/data/x', { token: v.rootToken });
    expect(root.body.data.data).toEqual({ where: 'root' });
    expect(viaHeader.body.data.data).toEqual({ where: 'ns1' });
    expect(viaPath.body.data.data).toEqual({ where: 'ns1' });
    expect(v.requests.at(-1)).toMatchObject({ path: 'ns1/secret/data/x', namespace: 'ns1' });
    const noMount = await call(v, 'GET', 'kv1/x', { token: v.rootToken, headers: { 'X-Vault-Namespace': 'ns1' } });
    expect(noMount.status).toBe(404);
  });

  it('describes the longest matching mount in sys/internal/ui/mounts', async () => {
    const v2 = await call(v, 'GET', 'sys/internal/ui/mounts/secret/app/db', { token: reader });
    expect(v2.status).toBe(200);
    expect(v2.body.data).toMatchObject({ type: 'kv', path: 'secret/', options: { version: '2' } });
    const v1 = await call(v, 'GET', 'sys/internal/ui/mounts/team/kv/a/b', { token: v.rootToken });
    expect(v1.body.data).toMatchObject({ type: 'kv', path: 'team/kv/', options: null });
    const db = await call(v, 'GET', 'sys/internal/ui/mounts/database/creds/x', { token: v.rootToken });
    expect(db.body.data).toMatchObject({ type: 'database', path: 'database/' });
    const ns = await call(v, 'GET', 'sys/internal/ui/mounts/secret/x', { token: v.rootToken, headers: { 'X-Vault-Namespace': 'ns1' } });
    expect(ns.body.data.path).toBe('secret/');
  });

  it.each([
    ['a mount the token has no rule under', 'team/kv/a', 'team/kv/a/'],
    ['no mount at all (same answer: no probing)', 'nowhere/x', 'nowhere/x/'],
  ])('answers 403 preflight for %s', async (_n, path, shown) => {
    const r = await call(v, 'GET', `sys/internal/ui/mounts/${path}`, { token: reader });
    expect(r.status).toBe(403);
    expect(r.body.errors).toEqual([
      `preflight capability check returned 403, please ensure client's policies grant access to path "${shown}"`,
    ]);
  });
});

describe('auth methods', () => {
  let v: VaultDouble;
  let key: KeyObject;
  let otherKey: KeyObject;
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'https://token.actions.githubusercontent.com',
    sub: 'repo:octo/app:ref:refs/heads/main',
    aud: 'https://github.com/octo',
    repository: 'octo/app',
    iat: now,
    nbf: now,
    exp: now + 300,
  };
  function jwt(payload: Record<string, unknown>, k: KeyObject = key, alg = 'RS256'): string {
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${enc({ alg, typ: 'JWT' })}.${enc(payload)}`;
    return `${input}.${sign('sha256', Buffer.from(input), k).toString('base64url')}`;
  }

  beforeAll(async () => {
    v = await VaultDouble.start();
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    key = pair.privateKey;
    otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    v.addAppRole('approle', 'ci', { roleId: 'role-1', secretId: 'secret-1', policies: ['ci'], ttl: 600 });
    v.addJwtRole('jwt', 'gha', {
      publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      boundAudiences: ['https://github.com/octo'],
      boundIssuer: 'https://token.actions.githubusercontent.com',
      boundClaims: { repository: 'octo/app' },
      policies: ['ci'],
      ttl: 300,
    });
    v.addKubernetesRole('kubernetes', 'app', { jwt: 'k8s.sa.jwt', policies: ['ci'] });
    v.addUser('userpass', 'userpass', 'Alice', 'pw', ['ci']);
    v.addUser('ldap', 'ldap', 'bob', 'pw', ['ci']);
  });
  afterAll(() => v.stop());

  it.each([
    ['approle', 'approle', '', { role_id: 'role-1', secret_id: 'secret-1' }, 600],
    ['kubernetes', 'kubernetes', '', { role: 'app', jwt: 'k8s.sa.jwt' }, 2764800],
    ['userpass', 'userpass', '/alice', { password: 'pw' }, 2764800],
    ['ldap', 'ldap', '/bob', { password: 'pw' }, 2764800],
  ])('%s login returns the auth block', async (_n, mount, suffix, body, ttl) => {
    const r = await call(v, 'POST', `auth/${mount}/login${suffix}`, { body });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(ENVELOPE_KEYS);
    expect(Object.keys(r.body.auth).sort()).toEqual(
      [
        'accessor',
        'client_token',
        'entity_id',
        'lease_duration',
        'metadata',
        'mfa_requirement',
        'num_uses',
        'orphan',
        'policies',
        'renewable',
        'token_policies',
        'token_type',
      ].sort(),
    );
    expect(r.body.auth).toMatchObject({
      policies: ['ci', 'default'],
      token_policies: ['ci', 'default'],
      lease_duration: ttl,
      renewable: true,
      token_type: 'service',
      orphan: true,
    });
    expect(r.body.auth.client_token).toMatch(/^hvs\./);
    expect(v.tokenState(r.body.auth.client_token)).toBe('active');
    expect(v.liveTokens()).toContain(r.body.auth.client_token);
  });

  it.each([
    ['approle wrong secret', 'approle', '', { role_id: 'role-1', secret_id: 'bad' }, 400, 'invalid role or secret ID'],
    ['approle unknown role_id', 'approle', '', { role_id: 'nope', secret_id: 'secret-1' }, 400, 'invalid role or secret ID'],
    ['approle missing secret_id', 'approle', '', { role_id: 'role-1' }, 400, 'missing secret_id'],
    ['kubernetes wrong jwt', 'kubernetes', '', { role: 'app', jwt: 'other' }, 403, 'permission denied'],
    ['kubernetes unknown role', 'kubernetes', '', { role: 'x', jwt: 'k8s.sa.jwt' }, 400, 'invalid role name "x"'],
    ['userpass wrong password', 'userpass', '/alice', { password: 'no' }, 400, 'invalid username or password'],
    ['userpass unknown user', 'userpass', '/eve', { password: 'pw' }, 400, 'invalid username or password'],
    ['ldap wrong password', 'ldap', '/bob', { password: 'no' }, 400, 'ldap operation failed: failed to bind as user'],
    // Not a known login path, so the token check comes first.
    ['unknown auth mount', 'github', '', {}, 403, 'missing client token'],
  ])('%s → %i', async (_n, mount, suffix, body, status, error) => {
    const r = await call(v, 'POST', `auth/${mount}/login${suffix}`, { body });
    expect(r.status).toBe(status);
    expect(r.body.errors).toEqual([error]);
  });

  it.each([
    ['a valid token', () => jwt(claims), 200, null],
    ['exp 30 s ago (inside the 60 s leeway)', () => jwt({ ...claims, iat: now - 600, nbf: now - 600, exp: now - 30 }), 200, null],
    ['another signing key', () => jwt(claims, otherKey), 400, 'no known key successfully validated the token signature'],
    [
      'alg none',
      () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`,
      400,
      'no known key successfully validated the token signature',
    ],
    [
      'an expired token',
      () => jwt({ ...claims, iat: now - 900, nbf: now - 900, exp: now - 120 }),
      400,
      'error validating claims: go-jose/go-jose/jwt: validation failed, token is expired (exp)',
    ],
    [
      'a token not yet valid',
      () => jwt({ ...claims, nbf: now + 300, exp: now + 600 }),
      400,
      'error validating claims: go-jose/go-jose/jwt: validation failed, token not valid yet (nbf)',
    ],
    [
      'the wrong issuer',
      () => jwt({ ...claims, iss: 'https://evil' }),
      400,
      'error validating claims: go-jose/go-jose/jwt: validation failed, invalid issuer claim (iss)',
    ],
    [
      'the wrong audience',
      () => jwt({ ...claims, aud: ['other'] }),
      400,
      'error validating claims: aud claim does not match any bound audience',
    ],
    [
      'a bound claim mismatch',
      () => jwt({ ...claims, repository: 'octo/other' }),
      400,
      'error validating claims: claim "repository" does not match any associated bound claim values',
    ],
    [
      'no time claims',
      () => jwt({ ...claims, iat: undefined, nbf: undefined, exp: undefined }),
      400,
      'no issue time, notbefore, or expiration time encoded in token',
    ],
  ])('jwt login with %s', async (_n, make, status, error) => {
    const r = await call(v, 'POST', 'auth/jwt/login', { body: { role: 'gha', jwt: make() } });
    expect(r.status, JSON.stringify(r.body)).toBe(status);
    if (error) expect(r.body.errors).toEqual([error]);
    else expect(r.body.auth).toMatchObject({ lease_duration: 300, metadata: { role: 'gha' } });
  });

  it('jwt login with an unknown role', async () => {
    const r = await call(v, 'POST', 'auth/jwt/login', { body: { role: 'nope', jwt: jwt(claims) } });
    expect(r.body.errors).toEqual(['role "nope" could not be found']);
  });
});

describe('tokens, leases and wrapping', () => {
  let v: VaultDouble;
  beforeAll(async () => {
    v = await VaultDouble.start();
    v.enableKv('secret', 2);
    v.putKv('secret', 'app/db', { password: 'pw' });
    v.addPolicy('app', [
      { path: 'secret/data/*', capabilities: ['read'] },
      { path: 'database/creds/*', capabilities: ['read'] },
    ]);
    v.addPolicy('revoker', [{ path: 'sys/leases/revoke', capabilities: ['update'] }]);
    v.addDynamicRole('database', 'ro', { ttl: 60, maxTtl: 100, make: () => ({ username: 'u', password: 'p' }) });
    v.addAppRole('approle', 'ci', { roleId: 'r', secretId: 's', policies: ['app', 'revoker'], ttl: 60 });
  });
  afterAll(() => v.stop());
  afterEach(() => {
    vi.useRealTimers();
  });

  it('looks up, renews and revokes its own token', async () => {
    const t = await login(v, 'approle', { role_id: 'r', secret_id: 's' });
    const look = await call(v, 'GET', 'auth/token/lookup-self', { token: t });
    expect(look.status).toBe(200);
    expect(look.body.data).toMatchObject({
      id: t,
      policies: ['app', 'default', 'revoker'],
      renewable: true,
      path: 'auth/approle/login',
      type: 'service',
      num_uses: 0,
      creation_ttl: 60,
    });
    expect(look.body.data.ttl).toBeGreaterThan(55);
    expect(Number.isNaN(Date.parse(look.body.data.expire_time))).toBe(false);
    const renew = await call(v, 'POST', 'auth/token/renew-self', { token: t, body: { increment: '1h' } });
    expect(renew.status).toBe(200);
    expect(renew.body.auth).toMatchObject({ client_token: t, lease_duration: 3600, renewable: true });
    const revoke = await call(v, 'POST', 'auth/token/revoke-self', { token: t });
    expect(revoke.status).toBe(204);
    expect(await (await fetch(`${v.url}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': t } })).json()).toEqual({
      errors: ['permission denied', 'invalid token'],
    });
    expect(v.tokenState(t)).toBe('revoked');
    expect(v.liveTokens()).not.toContain(t);
  });

  it('caps renewals at the max TTL and refuses non-renewable tokens', async () => {
    const t = v.createToken({ policies: ['app'], ttl: 60 });
    const r = await call(v, 'PUT', 'auth/token/renew-self', { token: t, body: { increment: 3600 * 24 * 40 } });
    expect(r.body.auth.lease_duration).toBeLessThanOrEqual(768 * 3600);
    expect(r.body.warnings[0]).toMatch(
      /^TTL of "960h0m0s" exceeded the effective max_ttl of "76\dh\d+m\d+s"; TTL value is capped accordingly$/,
    );
    const fixed = v.createToken({ renewable: false });
    const no = await call(v, 'POST', 'auth/token/renew-self', { token: fixed });
    expect(no.status).toBe(400);
    expect(no.body.errors).toEqual(['lease is not renewable']);
    const root = await call(v, 'GET', 'auth/token/lookup-self', { token: v.rootToken });
    expect(root.body.data).toMatchObject({ policies: ['root'], ttl: 0, expire_time: null, path: 'auth/token/root' });
  });

  it('expires tokens by wall clock', async () => {
    const t = v.createToken({ policies: ['app'], ttl: 30 });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 31_000);
    expect(v.tokenState(t)).toBe('expired');
    expect(v.liveTokens()).not.toContain(t);
    const r = await call(v, 'GET', 'secret/data/app/db', { token: t });
    expect(r.status).toBe(403);
  });

  it('counts down num_uses and revokes the token after the last use', async () => {
    const t = v.createToken({ policies: ['app'], numUses: 2 });
    expect((await call(v, 'GET', 'secret/data/app/db', { token: t })).status).toBe(200);
    const look = await call(v, 'GET', 'auth/token/lookup-self', { token: t });
    expect(look.body.data.num_uses).toBe(0);
    expect(v.tokenState(t)).toBe('revoked');
    expect((await call(v, 'GET', 'secret/data/app/db', { token: t })).status).toBe(403);
  });

  it('hands out leased dynamic secrets, renews (capped by max TTL) and revokes them', async () => {
    const t = await login(v, 'approle', { role_id: 'r', secret_id: 's' });
    const c = await call(v, 'GET', 'database/creds/ro', { token: t });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ renewable: true, lease_duration: 60, data: { username: 'u', password: 'p' }, mount_type: 'database' });
    const id = c.body.lease_id as string;
    expect(id).toMatch(/^database\/creds\/ro\/[A-Za-z0-9]{24}$/);
    expect(v.leaseState(id)).toBe('active');
    expect(v.liveLeases()).toContain(id);

    const r1 = await call(v, 'PUT', 'sys/leases/renew', { token: t, body: { lease_id: id, increment: 80 } });
    expect(r1.body).toMatchObject({ lease_id: id, lease_duration: 80, renewable: true, warnings: null });
    const r2 = await call(v, 'PUT', `sys/leases/renew/${id}`, { token: v.rootToken, body: { increment: 500 } });
    expect(r2.body.lease_duration).toBeLessThanOrEqual(100);
    expect(r2.body.warnings).toHaveLength(1);

    const rv = await call(v, 'PUT', 'sys/leases/revoke', { token: t, body: { lease_id: id } });
    expect(rv.status).toBe(204);
    expect(v.leaseState(id)).toBe('revoked');
    const again = await call(v, 'PUT', 'sys/leases/renew', { token: t, body: { lease_id: id } });
    expect(again.status).toBe(400);
    expect(again.body.errors).toEqual(['lease not found']);
  });

  it('needs a policy for sys/leases/revoke (not in the default policy)', async () => {
    const t = v.createToken({ policies: ['app'] });
    const c = await call(v, 'GET', 'database/creds/ro', { token: t });
    const r = await call(v, 'PUT', 'sys/leases/revoke', { token: t, body: { lease_id: c.body.lease_id } });
    expect(r.status).toBe(403);
  });

  it('revokes the leases of a token when the token is revoked, and expires leases by clock', async () => {
    const t = v.createToken({ policies: ['app'] });
    const a = (await call(v, 'GET', 'database/creds/ro', { token: t })).body.lease_id as string;
    const b = (await call(v, 'GET', 'database/creds/ro', { token: v.rootToken })).body.lease_id as string;
    expect((await call(v, 'POST', 'auth/token/revoke-self', { token: t })).status).toBe(204);
    expect(v.leaseState(a)).toBe('revoked');
    expect(v.leaseState(b)).toBe('active');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    expect(v.leaseState(b)).toBe('expired');
    expect(v.liveLeases()).not.toContain(b);
    const r = await call(v, 'PUT', 'sys/leases/renew', { token: v.rootToken, body: { lease_id: b } });
    expect(r.body.errors).toEqual(['lease expired']);
    expect(v.leaseState('database/creds/ro/nope')).toBe('unknown');
  });

  it('wraps a read on X-Vault-Wrap-TTL and unwraps it exactly once', async () => {
    const w = await call(v, 'GET', 'secret/data/app/db', { token: v.rootToken, headers: { 'X-Vault-Wrap-TTL': '90s' } });
    expect(w.status).toBe(200);
    expect(w.body.data).toBeNull();
    expect(w.body.wrap_info).toMatchObject({ ttl: 90, creation_path: 'secret/data/app/db' });
    expect(Object.keys(w.body.wrap_info).sort()).toEqual(['accessor', 'creation_path', 'creation_time', 'token', 'ttl']);
    const wt = w.body.wrap_info.token as string;
    const u = await call(v, 'POST', 'sys/wrapping/unwrap', { token: wt });
    expect(u.status).toBe(200);
    expect(u.body.data.data).toEqual({ password: 'pw' });
    const second = await call(v, 'POST', 'sys/wrapping/unwrap', { token: wt });
    expect(second.status).toBe(400);
    expect(second.body.errors).toEqual(['wrapping token is not valid or does not exist']);
    expect(v.tokenState(wt)).toBe('revoked');
  });

  it('unwraps a wrap() token given in the body, and spends a wrapping token used elsewhere', async () => {
    const wt = v.wrap({ secret_id: 'abc' }, 60);
    const u = await call(v, 'POST', 'sys/wrapping/unwrap', { token: v.rootToken, body: { token: wt } });
    expect(u.body.data).toEqual({ secret_id: 'abc' });
    const misuse = v.wrap({ x: 1 });
    expect((await call(v, 'GET', 'secret/data/app/db', { token: misuse })).status).toBe(403);
    expect((await call(v, 'POST', 'sys/wrapping/unwrap', { token: misuse })).status).toBe(400);
  });

  it('wraps logins, and serves wrapped AppRole secret IDs', async () => {
    const w = await call(v, 'POST', 'auth/approle/login', {
      body: { role_id: 'r', secret_id: 's' },
      headers: { 'X-Vault-Wrap-TTL': '60' },
    });
    expect(w.body.auth).toBeNull();
    expect(w.body.wrap_info.wrapped_accessor).toMatch(/^[A-Za-z0-9]{24}$/);
    const u = await call(v, 'POST', 'sys/wrapping/unwrap', { token: w.body.wrap_info.token });
    expect(v.tokenState(u.body.auth.client_token)).toBe('active');

    v.addAppRole('approle', 'wrapped', { roleId: 'r2', secretId: 'hvs.wrappedSecretIdToken0001', secretIdWrapped: true, policies: [] });
    const direct = await call(v, 'POST', 'auth/approle/login', { body: { role_id: 'r2', secret_id: 'hvs.wrappedSecretIdToken0001' } });
    expect(direct.status).toBe(400);
    const sid = await call(v, 'POST', 'sys/wrapping/unwrap', { token: 'hvs.wrappedSecretIdToken0001' });
    expect(sid.body.data).toMatchObject({ secret_id: expect.any(String), secret_id_accessor: expect.any(String) });
    await login(v, 'approle', { role_id: 'r2', secret_id: sid.body.data.secret_id });
  });
});

describe('faults', () => {
  let v: VaultDouble;
  beforeAll(async () => {
    v = await VaultDouble.start();
    v.enableKv('secret', 2);
    v.putKv('secret', 'app', { a: 1 });
  });
  afterAll(() => v.stop());
  afterEach(() => v.clearFaults());

  it.each([
    [503, undefined, ['Vault is sealed']],
    [429, 3, ['request path "secret/data/app": rate limit quota exceeded']],
    [412, undefined, ['required index state not present']],
    [500, undefined, ['internal error']],
    [502, undefined, ['upstream rate limited']],
  ])('status %i answers a Vault-shaped error, `times` counts down', async (status, retryAfter, errors) => {
    v.inject({ method: 'GET', path: 'secret/data/app', kind: 'status', status, times: 1, ...(retryAfter ? { retryAfter } : {}) });
    const r = await call(v, 'GET', 'secret/data/app', { token: v.rootToken });
    expect(r.status).toBe(status);
    expect(r.body).toEqual({ errors });
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('retry-after')).toBe(retryAfter === undefined ? null : String(retryAfter));
    expect((await call(v, 'GET', 'secret/data/app', { token: v.rootToken })).status).toBe(200);
  });

  it('matches by method and RegExp path, in injection order', async () => {
    v.inject({ method: 'POST', path: /^secret\//, kind: 'status', status: 500 });
    v.inject({ path: /^secret\//, kind: 'status', status: 503, times: 1 });
    v.inject({ path: /^secret\//, kind: 'status', status: 502, times: 1 });
    expect((await call(v, 'GET', 'secret/data/app', { token: v.rootToken })).status).toBe(503);
    expect((await call(v, 'GET', 'secret/data/app', { token: v.rootToken })).status).toBe(502);
    expect((await call(v, 'GET', 'secret/data/app', { token: v.rootToken })).status).toBe(200);
    expect((await call(v, 'POST', 'secret/data/app', { token: v.rootToken, body: { data: {} } })).status).toBe(500);
  });

  it('reset destroys the connection without an answer', async () => {
    v.inject({ path: 'secret/data/app', kind: 'reset', times: 1 });
    await expect(fetch(`${v.url}/v1/secret/data/app`, { headers: { 'X-Vault-Token': v.rootToken } })).rejects.toThrow();
    expect((await call(v, 'GET', 'secret/data/app', { token: v.rootToken })).status).toBe(200);
  });

  it('malformed answers 200 with a body that is not JSON', async () => {
    v.inject({ path: 'secret/data/app', kind: 'malformed', times: 1 });
    const r = await fetch(`${v.url}/v1/secret/data/app`, { headers: { 'X-Vault-Token': v.rootToken } });
    expect(r.status).toBe(200);
    await expect(r.json()).rejects.toThrow();
  });

  it('latency delays and then handles normally; latencyMs applies to every request', async () => {
    v.inject({ path: 'secret/data/app', kind: 'latency', latencyMs: 150, times: 1 });
    let t = Date.now();
    expect((await call(v, 'GET', 'secret/data/app', { token: v.rootToken })).status).toBe(200);
    expect(Date.now() - t).toBeGreaterThanOrEqual(140);
    v.latencyMs = 100;
    t = Date.now();
    await call(v, 'GET', 'sys/health');
    expect(Date.now() - t).toBeGreaterThanOrEqual(90);
    v.latencyMs = 0;
  });

  it('hang never answers; stop() closes hung and keep-alive sockets promptly', async () => {
    const h = await VaultDouble.start({ latencyMs: 0 });
    await call(h, 'GET', 'sys/health'); // leaves a keep-alive connection open
    h.inject({ path: 'sys/health', kind: 'hang' });
    let settled = false;
    const pending = fetch(`${h.url}/v1/sys/health`).then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).toBe(false);
    expect(h.requests.at(-1)).toMatchObject({ path: 'sys/health', status: 0 });
    const t = Date.now();
    await h.stop();
    expect(Date.now() - t).toBeLessThan(500);
    await pending;
    expect(settled).toBe(true);
  });
});

describe('TLS', () => {
  let dir: string;
  let cert: string;
  let key: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vault-double-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    key = readFileSync(join(dir, 'key.pem'), 'utf8');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function get(url: string, ca?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.get(url, { ...(ca ? { ca } : {}), headers: { 'X-Vault-Request': 'true' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
  }

  it('serves HTTPS with the given certificate', async () => {
    const v = await VaultDouble.start({ tls: { key, cert, requestClientCert: true } });
    try {
      expect(v.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const r = await get(`${v.url}/v1/sys/health`, cert);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ initialized: true, sealed: false });
      await expect(get(`${v.url}/v1/sys/health`)).rejects.toThrow(/self[- ]signed/i);
    } finally {
      await v.stop();
    }
  });
});

describe('cert auth over mutual TLS', () => {
  let pki: Pki;
  let v: VaultDouble;

  /** One request over its own TLS connection, presenting `client` (PEMs) when given. */
  function mtls(
    method: string,
    path: string,
    o: { client?: { cert: string; key: string }; body?: unknown; token?: string } = {},
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
      const req = https.request(
        `${v.url}/v1/${path}`,
        {
          method,
          ca: pki.caPem,
          agent: false,
          ...(o.client ? { cert: o.client.cert, key: o.client.key } : {}),
          headers: { ...(o.token ? { 'X-Vault-Token': o.token } : {}), ...(payload ? { 'Content-Type': 'application/json' } : {}) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, headers: new Headers() }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** What openssl prints for a certificate field, for cross-checking the double's DER parsing. */
  function opensslField(pem: string, args: string[]): string {
    return execFileSync('openssl', ['x509', '-noout', ...args], { input: pem }).toString();
  }

  beforeAll(async () => {
    pki = await makePki({ clientCn: 'ps-client' });
    v = await VaultDouble.start({ tls: { key: pki.serverKeyPem, cert: pki.serverCertPem, requestClientCert: true } });
    v.enableKv('secret', 2);
    v.putKv('secret', 'app', { a: 1 });
    v.addPolicy('ci', [{ path: 'secret/data/*', capabilities: ['read'] }]);
    v.addCertRole('cert', 'web', { certificatePem: pki.caPem, policies: ['ci'], ttl: 300 });
    v.addCertRole('cert', 'other', { certificatePem: pki.otherCaPem, policies: [] });
    v.addCertRole('cert-other', 'only', { certificatePem: pki.otherCaPem, policies: ['ci'] });
    v.addCertRole('cert-leaf', 'pinned', { certificatePem: pki.clientCertPem, policies: ['ci'] });
    v.addCertRole('cert-cn', 'narrow', { certificatePem: pki.caPem, policies: ['ci'], allowedCommonNames: ['deploy-*'] });
    v.addCertRole('cert-cn', 'wide', { certificatePem: pki.caPem, policies: ['ci'], allowedCommonNames: ['ps-*'] });
  });
  afterAll(async () => {
    await v?.stop();
    await pki?.cleanup();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs in with the client certificate of the connection; metadata as Vault sets it', async () => {
    const client = { cert: pki.clientCertPem, key: pki.clientKeyPem };
    const r = await mtls('POST', 'auth/cert/login', { client });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ mount_type: 'cert', data: null });
    expect(r.body.auth).toMatchObject({ policies: ['ci', 'default'], lease_duration: 300, renewable: true });
    const serialHex = /serial=([0-9A-F]+)/.exec(opensslField(pki.clientCertPem, ['-serial']))?.[1] ?? '';
    const hexOf = (ext: string): string =>
      (/([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(opensslField(pki.clientCertPem, ['-ext', ext]))?.[1] ?? '').toLowerCase();
    expect(r.body.auth.metadata).toEqual({
      authority_key_id: hexOf('authorityKeyIdentifier'),
      cert_name: 'web',
      common_name: 'ps-client',
      serial_number: BigInt(`0x${serialHex}`).toString(),
      subject_key_id: hexOf('subjectKeyIdentifier'),
    });
    expect(r.body.auth.metadata.subject_key_id).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){19}$/);
    const token = r.body.auth.client_token as string;
    const read = await mtls('GET', 'secret/data/app', { token });
    expect(read.body.data.data).toEqual({ a: 1 });
    const self = await mtls('GET', 'auth/token/lookup-self', { token });
    expect(self.body.data).toMatchObject({ display_name: 'cert-web', path: 'auth/cert/login' });
    const named = await mtls('POST', 'auth/cert/login', { client, body: { name: 'web' } });
    expect(named.body.auth.metadata.cert_name).toBe('web');
  });

  it.each([
    ['no client certificate', 'cert', {}, false, 400, 'client certificate must be supplied'],
    ['a role name that does not exist', 'cert', { name: 'nope' }, true, 400, 'invalid certificate or no client certificate supplied'],
    ['a role of another CA, by name', 'cert', { name: 'other' }, true, 400, 'invalid certificate or no client certificate supplied'],
    ['a mount trusting only another CA', 'cert-other', {}, true, 400, 'invalid certificate or no client certificate supplied'],
  ])('refuses %s', async (_n, mount, body, withCert, status, error) => {
    const r = await mtls('POST', `auth/${mount}/login`, {
      body,
      ...(withCert ? { client: { cert: pki.clientCertPem, key: pki.clientKeyPem } } : {}),
    });
    expect(r.status).toBe(status);
    expect(r.body).toEqual({ errors: [error] });
  });

  it('trusts a pinned non-CA certificate by serial and authority key id only', async () => {
    const ok = await mtls('POST', 'auth/cert-leaf/login', { client: { cert: pki.clientCertPem, key: pki.clientKeyPem } });
    expect(ok.status).toBe(200);
    expect(ok.body.auth.metadata.cert_name).toBe('pinned');
    const other = await mtls('POST', 'auth/cert-leaf/login', { client: { cert: pki.serverCertPem, key: pki.serverKeyPem } });
    expect(other.body).toEqual({ errors: ['invalid certificate or no client certificate supplied'] });
  });

  it('refuses a certificate without the clientAuth usage the way x509 verification fails (500)', async () => {
    const r = await mtls('POST', 'auth/cert/login', { client: { cert: pki.serverCertPem, key: pki.serverKeyPem } });
    expect(r.status).toBe(500);
    expect(r.body.errors).toEqual(["failed to verify client's certificate: x509: certificate specifies an incompatible key usage"]);
  });

  it('applies allowed_common_names', async () => {
    const client = { cert: pki.clientCertPem, key: pki.clientKeyPem };
    const narrow = await mtls('POST', 'auth/cert-cn/login', { client, body: { name: 'narrow' } });
    expect(narrow.status).toBe(400);
    expect(narrow.body.errors).toEqual(['no chain matching all constraints could be found for this login certificate']);
    const any = await mtls('POST', 'auth/cert-cn/login', { client });
    expect(any.body.auth.metadata.cert_name).toBe('wide');
  });

  it('refuses an expired client certificate (500 from x509 verification)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 3 * 86400_000);
    const r = await mtls('POST', 'auth/cert/login', { client: { cert: pki.clientCertPem, key: pki.clientKeyPem } });
    expect(r.status).toBe(500);
    expect(r.body.errors[0]).toMatch(
      /^failed to verify client's certificate: x509: certificate has expired or is not yet valid: current time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ is after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
  });

  it('needs a TLS connection', async () => {
    const plain = await VaultDouble.start();
    try {
      plain.addCertRole('cert', 'web', { certificatePem: pki.caPem, policies: [] });
      const r = await call(plain, 'POST', 'auth/cert/login');
      expect(r.status).toBe(400);
      expect(r.body.errors).toEqual(['tls connection required']);
    } finally {
      await plain.stop();
    }
  });
});

describe('write roles (POST-only dynamic endpoints)', () => {
  let v: VaultDouble;
  let token: string;
  beforeAll(async () => {
    v = await VaultDouble.start();
    let n = 0;
    v.addWriteRole('aws', 'sts/deploy', {
      ttl: 3600,
      make: (b) => ({ access_key: `ASIA${++n}`, secret_key: 'sk', security_token: 'st', arn: b['role_arn'] ?? null }),
    });
    v.addWriteRole('pki', 'issue/web', {
      make: (b) => {
        if (b['common_name'] === 'evil.example') throw new Error('common name evil.example not allowed by this role');
        return { certificate: `CERT(${String(b['common_name'])})`, private_key: 'KEY', serial_number: '1a:2b' };
      },
    });
    v.addWriteRole('pki-leased', 'issue/web', { lease: true, ttl: 600, make: () => ({ certificate: 'C' }) });
    v.addPolicy('writer', [
      { path: 'aws/sts/deploy', capabilities: ['update'] },
      { path: 'pki/issue/web', capabilities: ['update'] },
      { path: 'pki-leased/issue/*', capabilities: ['update'] },
    ]);
    v.addPolicy('reader', [{ path: 'aws/sts/deploy', capabilities: ['read'] }]);
    token = v.createToken({ policies: ['writer'] });
  });
  afterAll(() => v.stop());

  it('answers aws/sts with a lease that is not renewable; the body ttl sets its length', async () => {
    const r = await call(v, 'POST', 'aws/sts/deploy', { token, body: { role_arn: 'arn:aws:iam::1:role/deploy', ttl: '15m' } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(ENVELOPE_KEYS);
    expect(r.body).toMatchObject({ renewable: false, lease_duration: 900, mount_type: 'aws' });
    expect(r.body.data).toEqual({ access_key: 'ASIA1', secret_key: 'sk', security_token: 'st', arn: 'arn:aws:iam::1:role/deploy' });
    const id = r.body.lease_id as string;
    expect(id).toMatch(/^aws\/sts\/deploy\/[A-Za-z0-9]{24}$/);
    expect(v.leaseState(id)).toBe('active');
    const renew = await call(v, 'PUT', 'sys/leases/renew', { token, body: { lease_id: id } });
    expect(renew.body.errors).toEqual(['lease is not renewable']);
    expect((await call(v, 'PUT', 'sys/leases/revoke', { token: v.rootToken, body: { lease_id: id } })).status).toBe(204);
    expect(v.leaseState(id)).toBe('revoked');
    const plain = await call(v, 'PUT', 'aws/sts/deploy', { token, body: {} });
    expect(plain.body).toMatchObject({ lease_duration: 3600, data: { access_key: 'ASIA2', arn: null } });
  });

  it('answers pki/issue without a lease (no generate_lease), and with one when asked', async () => {
    const r = await call(v, 'POST', 'pki/issue/web', { token, body: { common_name: 'web.internal', ttl: '1h' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ lease_id: '', renewable: false, lease_duration: 0, mount_type: 'pki' });
    expect(r.body.data).toEqual({ certificate: 'CERT(web.internal)', private_key: 'KEY', serial_number: '1a:2b' });
    const leased = await call(v, 'POST', 'pki-leased/issue/web', { token, body: { common_name: 'x' } });
    expect(leased.body.lease_id).toMatch(/^pki-leased\/issue\/web\//);
    expect(leased.body).toMatchObject({ lease_duration: 600, renewable: false });
  });

  it('records every body it received, parsed', async () => {
    const before = v.writes().length;
    await call(v, 'POST', 'pki/issue/web', { token, body: { common_name: 'rec.internal', alt_names: 'a,b', ttl: 60 } });
    expect(v.writes().slice(before)).toEqual([
      { path: 'pki/issue/web', body: { common_name: 'rec.internal', alt_names: 'a,b', ttl: 60 }, namespace: '' },
    ]);
    expect(v.writes().map((w) => w.path)).toContain('aws/sts/deploy');
  });

  it.each([
    [
      'GET on pki/issue (update only)',
      'GET',
      'pki/issue/web',
      'root',
      undefined,
      405,
      ['1 error occurred:\n\t* unsupported operation\n\n'],
    ],
    ['no update capability', 'POST', 'aws/sts/deploy', 'reader', {}, 403, ['1 error occurred:\n\t* permission denied\n\n']],
    [
      'make throws (a handler error)',
      'POST',
      'pki/issue/web',
      'writer',
      { common_name: 'evil.example' },
      400,
      ['common name evil.example not allowed by this role'],
    ],
    ['an unknown pki role', 'POST', 'pki/issue/nope', 'root', {}, 400, ['unknown role: nope']],
    ['an unknown aws role', 'POST', 'aws/sts/nope', 'root', {}, 400, ['Role "nope" not found']],
    ['another path of the mount', 'POST', 'pki/roles/web', 'root', {}, 404, ['1 error occurred:\n\t* unsupported path\n\n']],
  ])('refuses: %s', async (_n, method, path, policy, body, status, errors) => {
    const t = policy === 'root' ? v.rootToken : v.createToken({ policies: [policy] });
    const r = await call(v, method, path, { token: t, ...(body ? { body } : {}) });
    expect(r.status).toBe(status);
    expect(r.body.errors).toEqual(errors);
  });

  it('answers GET on aws/sts too, with the query as parameters', async () => {
    const before = v.writes().length;
    const r = await call(v, 'GET', 'aws/sts/deploy?ttl=120&role_arn=arn:x', { token: v.rootToken });
    expect(r.body).toMatchObject({ lease_duration: 120, data: { arn: 'arn:x' } });
    expect(v.writes().slice(before)).toEqual([{ path: 'aws/sts/deploy', body: { ttl: '120', role_arn: 'arn:x' }, namespace: '' }]);
  });

  it('shows the mounts with their engine types', async () => {
    const aws = await call(v, 'GET', 'sys/internal/ui/mounts/aws/sts/deploy', { token: v.rootToken });
    expect(aws.body.data).toMatchObject({ type: 'aws', path: 'aws/' });
    const pki = await call(v, 'GET', 'sys/internal/ui/mounts/pki/issue/web', { token: v.rootToken });
    expect(pki.body.data).toMatchObject({ type: 'pki', path: 'pki/' });
  });
});

describe('fault targeting by position (skip)', () => {
  let v: VaultDouble;
  beforeAll(async () => {
    v = await VaultDouble.start();
    v.enableKv('secret', 2);
    v.putKv('secret', 'a', { a: 1 });
  });
  afterAll(() => v.stop());
  afterEach(() => v.clearFaults());

  const get = async (): Promise<number> => (await call(v, 'GET', 'secret/data/a', { token: v.rootToken })).status;

  it('lets the first `skip` matching requests through, then applies the fault `times` times', async () => {
    v.inject({ path: /^secret\/data\//, kind: 'status', status: 503, skip: 2, times: 1 });
    expect([await get(), await get(), await get(), await get()]).toEqual([200, 200, 503, 200]);
  });

  it('counts only matching requests (method and path) towards skip', async () => {
    v.inject({ method: 'GET', path: 'secret/data/a', kind: 'status', status: 500, skip: 1, times: 2 });
    expect(await get()).toBe(200);
    expect((await call(v, 'POST', 'secret/data/a', { token: v.rootToken, body: { data: { a: 2 } } })).status).toBe(200);
    expect((await call(v, 'GET', 'sys/health')).status).toBe(200);
    expect([await get(), await get(), await get()]).toEqual([500, 500, 200]);
  });

  it('without times, fails every matching request after the skipped ones; other faults still apply', async () => {
    v.inject({ path: 'secret/data/a', kind: 'reset', skip: 3 });
    v.inject({ path: 'secret/data/a', kind: 'status', status: 429, times: 1 });
    expect([await get(), await get(), await get()]).toEqual([429, 200, 200]);
    await expect(get()).rejects.toThrow();
    await expect(get()).rejects.toThrow();
  });
});

describe('namespaces: path prefix and header, for KV and sys/internal/ui/mounts', () => {
  let v: VaultDouble;
  let reader: string;
  beforeAll(async () => {
    v = await VaultDouble.start();
    v.enableKv('secret', 2, 'ns1');
    v.enableKv('kv', 1, 'ns1/team');
    v.putKv('secret', 'x', { where: 'ns1' }, 'ns1');
    v.putKv('kv', 'y', { where: 'ns1/team' }, 'ns1/team');
    v.addPolicy('ns1-reader', [{ path: 'ns1/secret/data/*', capabilities: ['read'] }]);
    reader = v.createToken({ policies: ['ns1-reader'] });
  });
  afterAll(() => v.stop());

  it('reads KV with the namespace as a path prefix, with no header', async () => {
    const r = await call(v, 'GET', 'ns1/secret/data/x', { token: reader });
    expect(r.status).toBe(200);
    expect(r.body.data.data).toEqual({ where: 'ns1' });
    expect(v.requests.at(-1)).toMatchObject({ path: 'ns1/secret/data/x', namespace: 'ns1' });
    const nested = await call(v, 'GET', 'team/kv/y', { token: v.rootToken, headers: { 'X-Vault-Namespace': 'ns1' } });
    expect(nested.body.data).toEqual({ where: 'ns1/team' });
    const bothInPath = await call(v, 'GET', 'ns1/team/kv/y', { token: v.rootToken });
    expect(bothInPath.body.data).toEqual({ where: 'ns1/team' });
    const rootHasNone = await call(v, 'GET', 'secret/data/x', { token: v.rootToken });
    expect(rootHasNone.status).toBe(404);
  });

  // Vault resolves the namespace (header and/or path prefix) before routing, so sys/ paths that are
  // not restricted to the root namespace work inside one either way; sys/internal/ui/mounts then
  // names the mount relative to the request's namespace (vault/logical_system.go
  // pathInternalUIMountRead), and with a child namespace in the mount path it prefixes it.
  it.each([
    ['the namespace header', 'sys/internal/ui/mounts/secret/x', { 'X-Vault-Namespace': 'ns1' }, 'secret/', 'ns1'],
    ['the namespace as path prefix', 'ns1/sys/internal/ui/mounts/secret/x', {}, 'secret/', 'ns1'],
    ['the namespace inside the mount path', 'sys/internal/ui/mounts/ns1/secret/x', {}, 'ns1/secret/', undefined],
    ['header plus a child namespace in the path', 'team/sys/internal/ui/mounts/kv/y', { 'X-Vault-Namespace': 'ns1' }, 'kv/', 'ns1/team'],
  ])('serves sys/internal/ui/mounts/... with %s', async (_n, path, headers, shown, ns) => {
    const r = await call(v, 'GET', path, { token: v.rootToken, headers });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data).toMatchObject({ path: shown, type: 'kv' });
    expect(v.requests.at(-1)?.namespace).toBe(ns);
  });

  it('checks the mount against the token policies in the namespace path too', async () => {
    const ok = await call(v, 'GET', 'ns1/sys/internal/ui/mounts/secret/x', { token: reader });
    expect(ok.body.data).toMatchObject({ path: 'secret/', options: { version: '2' } });
    const denied = await call(v, 'GET', 'ns1/sys/internal/ui/mounts/team/kv/y', { token: reader });
    expect(denied.status).toBe(403);
  });
});

describe('logins end to end with plain fetch', () => {
  let v: VaultDouble;
  let dir: string;
  const saJwt = [
    Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url'),
    Buffer.from(
      JSON.stringify({
        iss: 'https://kubernetes.default.svc',
        aud: ['vault'],
        sub: 'system:serviceaccount:ci:runner',
        'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'runner', uid: '0b7c-uid' } },
      }),
    ).toString('base64url'),
    'c2lnbmF0dXJl',
  ].join('.');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vault-double-logins-'));
    v = await VaultDouble.start();
    v.enableKv('secret', 2);
    v.putKv('secret', 'app', { password: 'pw' });
    v.addPolicy('app', [{ path: 'secret/data/app', capabilities: ['read'] }]);
    v.addKubernetesRole('k8s-ci', 'runner', { jwt: saJwt, policies: ['app'], ttl: 120 });
    v.addUser('userpass', 'ci-users', 'Alice', 'pw-a', ['app']);
    v.addUser('ldap', 'corp-ldap', 'bob', 'pw-b', ['app']);
    v.addCustomLogin(
      'oci',
      (body, path) => {
        if (path !== 'auth/oci/login/ci-role') return 'role not found';
        const h = body['request_headers'];
        return typeof h === 'object' && h !== null && (h as Record<string, unknown>)['authorization'] === 'Signature ok';
      },
      ['app'],
      90,
    );
    v.addAppRole('ci-approle', 'deploy', {
      roleId: 'rid',
      secretId: 'hvs.wrapToken0000000000001',
      secretIdWrapped: true,
      policies: ['app'],
    });
  });
  afterAll(async () => {
    await v.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function canRead(token: string): Promise<boolean> {
    const r = await call(v, 'GET', 'secret/data/app', { token });
    return r.status === 200 && r.body.data.data.password === 'pw';
  }

  it('kubernetes: the service-account JWT as read from its file; a trailing newline is refused', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, saJwt);
    const r = await call(v, 'POST', 'auth/k8s-ci/login', { body: { role: 'runner', jwt: readFileSync(file, 'utf8') } });
    expect(r.status).toBe(200);
    expect(r.body.auth).toMatchObject({
      lease_duration: 120,
      metadata: { role: 'runner', service_account_name: 'runner', service_account_namespace: 'ci', service_account_uid: '0b7c-uid' },
    });
    expect(await canRead(r.body.auth.client_token)).toBe(true);
    writeFileSync(file, `${saJwt}\n`);
    const raw = await call(v, 'POST', 'auth/k8s-ci/login', { body: { role: 'runner', jwt: readFileSync(file, 'utf8') } });
    expect(raw.status).toBe(403);
    const trimmed = await call(v, 'POST', 'auth/k8s-ci/login', { body: { role: 'runner', jwt: readFileSync(file, 'utf8').trim() } });
    expect(trimmed.status).toBe(200);
  });

  it('userpass and ldap at custom mounts', async () => {
    const up = await login(v, 'ci-users', { password: 'pw-a' }, '/alice');
    expect(await canRead(up)).toBe(true);
    const ld = await login(v, 'corp-ldap', { password: 'pw-b' }, '/bob');
    expect(await canRead(ld)).toBe(true);
    // the default mount paths are not there: not a login path, so the token check answers
    expect((await call(v, 'POST', 'auth/userpass/login/alice', { body: { password: 'pw-a' } })).body.errors).toEqual([
      'missing client token',
    ]);
    expect((await call(v, 'POST', 'auth/ci-users/login/alice', { body: { password: 'no' } })).status).toBe(400);
  });

  it('a custom login method decides on the whole payload', async () => {
    const r = await call(v, 'POST', 'auth/oci/login/ci-role', { body: { request_headers: { authorization: 'Signature ok' } } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ mount_type: 'custom', auth: { lease_duration: 90, policies: ['app', 'default'] } });
    expect(await canRead(r.body.auth.client_token)).toBe(true);
    const denied = await call(v, 'POST', 'auth/oci/login/ci-role', { body: { request_headers: { authorization: 'nope' } } });
    expect(denied.status).toBe(403);
    expect(denied.body.errors).toEqual(['permission denied']);
    const bad = await call(v, 'POST', 'auth/oci/login/other', { body: {} });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual(['role not found']);
    expect((await call(v, 'GET', 'auth/oci/login/ci-role')).status).toBe(405);
  });

  it('approle with a response-wrapped secret_id: unwrap, log in, read', async () => {
    const u = await call(v, 'POST', 'sys/wrapping/unwrap', { token: 'hvs.wrapToken0000000000001' });
    expect(u.status).toBe(200);
    const t = await login(v, 'ci-approle', { role_id: 'rid', secret_id: u.body.data.secret_id });
    expect(await canRead(t)).toBe(true);
    const again = await call(v, 'POST', 'sys/wrapping/unwrap', { token: 'hvs.wrapToken0000000000001' });
    expect(again.body.errors).toEqual(['wrapping token is not valid or does not exist']);
  });
});
