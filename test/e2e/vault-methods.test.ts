// End to end: every Vault login method, TLS (CA, mTLS, skip-verify), a real CONNECT proxy,
// namespaces, dynamic and write-issued secrets, JSON fields, export-token and bad connection input.
// The bundled dist/ entries run through the runner harness (main, then post) against the Vault
// double; every test ends with the no-leak invariant over every value, credential and token.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../harness/index.ts';
import { startProxy, type Proxy } from '../services/proxy.ts';
import { makePki, type Pki } from '../services/tls.ts';
import { VaultDouble } from '../vault-double/index.ts';
import { MAIN, POST, newJob } from './setup.ts';

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A service-account token as the kubelet projects it (the double compares it byte for byte). */
const K8S_JWT = [
  b64url({ alg: 'RS256', kid: 'vm-test-key' }),
  b64url({
    iss: 'https://kubernetes.default.svc.cluster.local',
    sub: 'system:serviceaccount:ci:runner',
    'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'runner', uid: '5b1f0c9e-ci-runner' } },
  }),
  Buffer.from('vm-test-signature-bytes-0123456789abcdef').toString('base64url'),
].join('.');

const SA_PRIVATE_KEY = [
  '-----BEGIN PRIVATE KEY-----',
  'MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDVmTestKeyLine1',
  'k3Jq9ZfW0xYQpLr7TbN2cVhG8sDmE4aUoIyR1Kt6wPnXz5bHjCgFvMlS0dQeTLine2',
  'Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Ji0Hg9Fe8Dc7Ba6Line3',
  '-----END PRIVATE KEY-----',
  '',
].join('\n');

/** Every value and credential planted for this file; each test checks none of them leaks. */
const V = {
  password: 'vm-kv-password-7c1e95d3',
  teamValue: 'team-a-only-value-4411f0',
  rootDecoy: 'root-namespace-decoy-90b2',
  roleId: 'vm-approle-role-id-2d4f6a',
  secretId: 'vm-approle-secret-id-8e1c3b',
  wrappedRoleId: 'vm-wrapped-role-id-5a7c9e',
  wrappingToken: 'hvs.vm-wrapping-token-3f6b9d2e',
  knownUnwrappedSecretId: 'vm-unwrapped-secret-id-c4e8a1',
  wrappingToken2: 'hvs.vm-wrapping-token-2-77d1a0',
  k8sJwt: K8S_JWT,
  userpassPassword: 'userpass-Pw-93ab71e2',
  ldapPassword: 'ldap-Pw-e0f5c2b8',
  customSecret: 'oci-signing-secret-58d2a7',
  customNonce: 'oci-login-nonce-1b9e44',
  dbUser: 'v-approle-ci-user-6d1f2a',
  dbPassword: 'db-dyn-Pa55-3c9b7e0a',
  awsAccessKey: 'ASIAVMTESTACCESS00017',
  awsSecretKey: 'aws-sts-secret-key-1f2e3d4c5b',
  awsSessionToken: 'aws-sts-session-token-77aa09bc',
  saClientEmail: 'deployer@vm-project.iam.gserviceaccount.com',
  saPrivateKey: SA_PRIVATE_KEY,
} as const;

const SA_JSON = JSON.stringify({
  type: 'service_account',
  project_id: 'vm-project',
  private_key: V.saPrivateKey,
  client_email: V.saClientEmail,
});

const ALL: string[] = [...Object.values(V), SA_JSON];

const POLICY = [
  { path: 'secret/data/ci/*', capabilities: ['read'] },
  // A token of namespace team-a sees its own paths; a root token sees them under the prefix.
  { path: 'secret/data/app', capabilities: ['read'] },
  { path: 'team-a/secret/data/*', capabilities: ['read'] },
  { path: 'database/creds/ci', capabilities: ['read'] },
  { path: 'aws/sts/deploy', capabilities: ['update'] },
  { path: 'sys/leases/revoke', capabilities: ['update'] },
];

/** KV data, the policy and an AppRole every double of this file has. */
function seed(v: VaultDouble): void {
  v.enableKv('secret', 2);
  v.putKv('secret', 'ci/app', { password: V.password });
  v.addPolicy('vm', POLICY);
  v.addAppRole('approle', 'ci', { roleId: V.roleId, secretId: V.secretId, policies: ['vm'], ttl: 600 });
}

let vault: VaultDouble;
let pki: Pki;
let job: Job;
const doubles: VaultDouble[] = [];

async function startDouble(opts: Parameters<typeof VaultDouble.start>[0] = {}): Promise<VaultDouble> {
  const v = await VaultDouble.start(opts);
  doubles.push(v);
  seed(v);
  return v;
}

beforeAll(async () => {
  [vault, pki] = await Promise.all([startDouble(), makePki()]);
});
afterAll(async () => {
  await Promise.all(doubles.map((d) => d.stop()));
  await pki?.cleanup();
});
afterEach(async () => {
  for (const d of doubles) d.clearFaults();
  await job?.cleanup();
});

// ---- helpers ----------------------------------------------------------------------------------

type Inputs = Record<string, string>;

function ledgerOf(step: StepResult): { root: string; secretsDir: string; files: string[] } {
  return JSON.parse(step.state.ledger ?? '{}');
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/** The no-leak invariant over every value of this file plus `extra`; `moreDirs` hold input credentials. */
function check(steps: StepResult[], extra: string[] = [], moreDirs: string[] = []): void {
  const dirs = steps.flatMap((s) => (s.state.ledger ? [ledgerOf(s).root, ledgerOf(s).secretsDir] : []));
  assertNoLeak(job, steps, [...ALL, ...extra], { privateDirs: [...dirs, ...moreDirs] });
}

function newTokens(v: VaultDouble, before: ReadonlySet<string>): string[] {
  return v.liveTokens().filter((t) => !before.has(t));
}

async function delivered(main: StepResult, name: string): Promise<string> {
  return fs.readFile(path.join(main.outputs['secrets-dir'] ?? '', name), 'utf8');
}

const APP = 'secret/data/ci/app password | DB_PASSWORD';

const approle = (v: VaultDouble = vault): Inputs => ({
  url: v.url,
  method: 'approle',
  'role-id': V.roleId,
  'secret-id': V.secretId,
});

/**
 * Main logs in, delivers `files` (default: secret/ci/app password as DB_PASSWORD); post revokes the one token main
 * created and removes the private directory. Returns both steps and the token.
 */
async function loginCycle(
  v: VaultDouble,
  inputs: Inputs,
  opts: { env?: Record<string, string>; files?: Record<string, string> } = {},
): Promise<{ main: StepResult; post: StepResult; token: string }> {
  const env = opts.env ?? {};
  const before = new Set(v.liveTokens());
  const main = await job.runMain(MAIN, { url: v.url, secrets: APP, ...inputs }, { env });
  expect(main.exitCode, main.log).toBe(0);
  for (const [name, value] of Object.entries(opts.files ?? { DB_PASSWORD: V.password })) {
    expect(await delivered(main, name), name).toBe(value);
  }
  const created = newTokens(v, before);
  expect(created).toHaveLength(1);
  const token = created[0] ?? '';
  expect(main.masks).toContain(token);
  expect(await fs.readFile(main.files.state, 'utf8')).not.toContain(token);

  const post = await job.runPost(POST, main, { env });
  expect(post.exitCode, post.log).toBe(0);
  expect(post.annotations.filter((a) => a.level !== 'debug')).toEqual([]);
  expect(v.tokenState(token)).toBe('revoked');
  expect(newTokens(v, before)).toEqual([]);
  expect(await exists(ledgerOf(main).root)).toBe(false);
  return { main, post, token };
}

/** Exit 1 with exactly one one-line error annotation matching `expected`, no stack trace; post exits 0 and cleans up. */
async function failing(
  inputs: Inputs,
  expected: RegExp,
  env: Record<string, string> = {},
): Promise<{ main: StepResult; post: StepResult; message: string }> {
  const main = await job.runMain(MAIN, inputs, { env });
  expect(main.exitCode, main.log).toBe(1);
  const errors = main.annotations.filter((a) => a.level === 'error');
  expect(errors, main.log).toHaveLength(1);
  const message = errors[0]?.message ?? '';
  expect(message).toMatch(expected);
  expect(message).not.toMatch(/[\r\n]/);
  for (const text of [message, main.log, main.stderr]) expect(text).not.toMatch(/\bat .*:\d+:\d+\)/);
  expect(main.outputs['secrets-dir']).toBeUndefined();
  if (main.state.ledger) expect(ledgerOf(main).files).toEqual([]);
  const post = await job.runPost(POST, main, { env });
  expect(post.exitCode, post.log).toBe(0);
  if (main.state.ledger) expect(await exists(ledgerOf(main).root)).toBe(false);
  return { main, post, message };
}

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

// ---- auth methods -----------------------------------------------------------------------------

describe('each auth method logs in, delivers, and post revokes the token it created', () => {
  beforeAll(() => {
    vault.addKubernetesRole('k8s-ci', 'ci', { jwt: V.k8sJwt, policies: ['vm'], ttl: 600 });
    vault.addUser('userpass', 'users-ci', 'ci-bot', V.userpassPassword, ['vm']);
    vault.addUser('ldap', 'corp-ldap', 'ci-bot', V.ldapPassword, ['vm']);
    vault.addCustomLogin(
      'oci-ci',
      (body, at) =>
        at === 'auth/oci-ci/login' && body['role'] === 'ci' && body['signature'] === V.customSecret && body['nonce'] === V.customNonce,
      ['vm'],
      600,
    );
    vault.addAppRole('approle-wrapped', 'deploy', {
      roleId: V.wrappedRoleId,
      secretId: V.wrappingToken,
      secretIdWrapped: true,
      policies: ['vm'],
      ttl: 600,
    });
  });

  it('kubernetes: reads the service-account token file (trailing newline and all), custom mount', async () => {
    job = await newJob();
    // Where the kubelet would project it; a credential the user put there, not something the action wrote.
    const saDir = path.join(job.runnerTemp, 'serviceaccount');
    await fs.mkdir(saDir);
    const tokenPath = path.join(saDir, 'token');
    await fs.writeFile(tokenPath, `${V.k8sJwt}\n`);
    const { main, post, token } = await loginCycle(vault, {
      method: 'kubernetes',
      mount: 'k8s-ci',
      role: 'ci',
      'kubernetes-token-path': tokenPath,
    });
    expect(main.masks).toContain(V.k8sJwt);
    expect(vault.count({ method: 'POST', path: 'auth/k8s-ci/login' })).toBeGreaterThanOrEqual(1);
    check([main, post], [token], [saDir]);
  });

  it.each([
    ['userpass', 'users-ci', V.userpassPassword],
    ['ldap', 'corp-ldap', V.ldapPassword],
  ] as const)('%s with a custom mount', async (method, mount, password) => {
    job = await newJob();
    const { main, post, token } = await loginCycle(vault, { method, mount, username: 'ci-bot', password });
    expect(main.masks).toContain(password);
    expect(vault.requests.some((r) => r.method === 'POST' && r.path === `auth/${mount}/login/ci-bot` && r.status === 200)).toBe(true);
    check([main, post], [token]);
  });

  it('custom: POSTs auth-payload to auth/<mount>/login and masks every field of it', async () => {
    job = await newJob();
    const payload = `{"role": "ci", "signature": "${V.customSecret}", "nonce": "${V.customNonce}"}`;
    const { main, post, token } = await loginCycle(vault, { method: 'custom', mount: 'oci-ci', 'auth-payload': payload });
    expect(main.masks).toEqual(expect.arrayContaining([V.customSecret, V.customNonce]));
    check([main, post], [token, payload]);
  });

  it('approle with unwrap-secret-id: unwraps once; a second run with the same wrapping token fails clearly', async () => {
    job = await newJob();
    const inputs: Inputs = {
      method: 'approle',
      mount: 'approle-wrapped',
      'role-id': V.wrappedRoleId,
      'secret-id': V.wrappingToken,
      'unwrap-secret-id': 'true',
    };
    const from = vault.requests.length;
    const { main, post, token } = await loginCycle(vault, inputs);
    expect(main.masks).toContain(V.wrappingToken);
    // Unwrapped first, then the login with what was inside (the wrapping token is not a valid secret-id).
    const calls = vault.requests
      .slice(from)
      .filter((r) => r.method === 'POST' && /^(sys\/wrapping\/unwrap|auth\/approle-wrapped\/login)$/.test(r.path))
      .map((r) => `${r.path} ${r.status}`);
    expect(calls).toEqual(['sys/wrapping/unwrap 200', 'auth/approle-wrapped/login 200']);

    // Response wrapping is single use: the same token again is refused, naming the unwrap call.
    const before = new Set(vault.liveTokens());
    const again = await failing(
      { url: vault.url, secrets: APP, ...inputs },
      /POST sys\/wrapping\/unwrap: Vault answered 400 wrapping token is not valid or does not exist/,
    );
    expect(newTokens(vault, before)).toEqual([]);
    check([main, post, again.main, again.post], [token]);
  });

  it('approle with unwrap-secret-id: the unwrapped secret-id is masked and never leaks', async () => {
    // A wrapping token made with sys/wrapping/wrap, so the test knows the secret-id inside it.
    vault.addAppRole('approle-wrapped', 'deploy', {
      roleId: V.wrappedRoleId,
      secretId: V.knownUnwrappedSecretId,
      policies: ['vm'],
      ttl: 600,
    });
    const wrapping = vault.wrap({ secret_id: V.knownUnwrappedSecretId, secret_id_accessor: 'vm-accessor-1' });
    job = await newJob();
    const { main, post, token } = await loginCycle(vault, {
      method: 'approle',
      mount: 'approle-wrapped',
      'role-id': V.wrappedRoleId,
      'secret-id': wrapping,
      'unwrap-secret-id': 'true',
    });
    expect(main.masks).toContain(V.knownUnwrappedSecretId);
    check([main, post], [token, wrapping]);
  });
});

describe('cert auth over mTLS', () => {
  let mtls: VaultDouble;
  beforeAll(async () => {
    mtls = await startDouble({
      tls: { key: pki.serverKeyPem, cert: pki.serverCertPem, ca: pki.caPem, requestClientCert: true },
    });
    mtls.addCertRole('cert', 'ci', { certificatePem: pki.caPem, policies: ['vm'], ttl: 600 });
  });

  it.each([
    ['PEM text', () => ({ ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem, role: 'ci' })],
    [
      'base64 PEM (key from a file)',
      () => ({ ca: base64(pki.caPem), cert: base64(pki.clientCertPem), key: path.join(pki.dir, 'client.key'), role: 'ci' }),
    ],
    [
      'file paths (key as base64, no role)',
      () => ({ ca: path.join(pki.dir, 'ca.pem'), cert: path.join(pki.dir, 'client.pem'), key: base64(pki.clientKeyPem), role: '' }),
    ],
  ])('CA, client certificate and key as %s', async (_form, forms) => {
    const f = forms();
    job = await newJob();
    const inputs: Inputs = { method: 'cert', 'ca-certificate': f.ca, 'client-certificate': f.cert, 'client-key': f.key };
    if (f.role !== '') inputs['role'] = f.role;
    const { main, post, token } = await loginCycle(mtls, inputs);
    expect(mtls.requests.some((r) => r.method === 'POST' && r.path === 'auth/cert/login' && r.status === 200)).toBe(true);
    // Every line of the client key is masked in main and in post (post presents it again for mTLS).
    for (const line of pki.clientKeyPem.split('\n').filter((l) => l.trim().length >= 4)) {
      expect(main.masks).toContain(line.trim());
      expect(post.masks).toContain(line.trim());
    }
    check([main, post], [token, pki.clientKeyPem]);
  });
});

// ---- TLS ----------------------------------------------------------------------------------------

describe('TLS to Vault', () => {
  let https: VaultDouble;
  let host: string;
  beforeAll(async () => {
    https = await startDouble({ tls: { key: pki.serverKeyPem, cert: pki.serverCertPem } });
    host = new URL(https.url).host;
  });

  it('verifies Vault with ca-certificate', async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle(https, { ...approle(https), 'ca-certificate': base64(pki.caPem) });
    expect(main.annotations.filter((a) => a.level === 'warning')).toEqual([]);
    check([main, post], [token]);
  });

  it.each([
    ['without ca-certificate', (): Inputs => ({})],
    ['with a CA that did not sign it', (): Inputs => ({ 'ca-certificate': pki.otherCaPem })],
  ])("%s: one line naming the host and telling to give 'ca-certificate'", async (_name, extra) => {
    job = await newJob();
    const before = new Set(https.liveTokens());
    const { main, post, message } = await failing({ ...approle(https), secrets: APP, ...extra() }, /TLS check of Vault at/);
    expect(message).toContain(host);
    expect(message).toContain("'ca-certificate'");
    expect(newTokens(https, before)).toEqual([]);
    expect(main.state.ledger).toBeDefined();
    check([main, post]);
  });

  it('tls-skip-verify works and warns that the certificate is not checked', async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle(https, { ...approle(https), 'tls-skip-verify': 'true' });
    const warnings = main.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    expect(warnings.some((w) => /tls-skip-verify/.test(w) && /certificate is not checked/.test(w))).toBe(true);
    check([main, post], [token]);
  });

  it.each([
    [
      'a PEM that does not parse',
      (): string => '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----',
      /^input 'ca-certificate': is not a valid PEM certificate$/,
    ],
    [
      'an unreadable CA file',
      (): string => 'certs/missing-ca.pem',
      /^input 'ca-certificate': is neither PEM text, base64 PEM, nor a readable file \(.*\/certs\/missing-ca\.pem: ENOENT\)$/,
    ],
    ['a directory as the CA file', (): string => '/', /^input 'ca-certificate': .*nor a readable file \(\/: EISDIR\)$/],
  ])('%s is a one-line input error naming the input', async (_name, ca, expected) => {
    job = await newJob();
    const { main, post } = await failing({ ...approle(https), secrets: APP, 'ca-certificate': ca() }, expected);
    expect(main.state.ledger).toBeUndefined(); // refused before anything was created
    check([main, post]);
  });
});

// ---- proxy --------------------------------------------------------------------------------------

describe('https_proxy: a CONNECT tunnel, never Vault requests in the clear', () => {
  let https: VaultDouble;
  let proxy: Proxy;
  let port: number;
  beforeAll(async () => {
    [https, proxy] = await Promise.all([startDouble({ tls: { key: pki.serverKeyPem, cert: pki.serverCertPem } }), startProxy()]);
    port = Number(new URL(https.url).port);
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('main and post reach Vault through the proxy', async () => {
    job = await newJob();
    const env = { https_proxy: proxy.url };
    const seen = proxy.requests().length;
    const before = new Set(https.liveTokens());
    const main = await job.runMain(MAIN, { ...approle(https), 'ca-certificate': pki.caPem, secrets: APP }, { env });
    expect(main.exitCode, `${main.log}\n${proxy.log()}`).toBe(0);
    expect(await delivered(main, 'DB_PASSWORD')).toBe(V.password);
    const token = newTokens(https, before)[0] ?? '';
    expect(token).not.toBe('');
    const afterMain = proxy.requests().length;
    expect(afterMain).toBeGreaterThan(seen);
    expect(proxy.connects()).toContainEqual({ host: '127.0.0.1', port });

    const post = await job.runPost(POST, main, { env });
    expect(post.exitCode, post.log).toBe(0);
    expect(https.tokenState(token)).toBe('revoked');
    expect(proxy.requests().length).toBeGreaterThan(afterMain); // the revocation went through the proxy too
    const lines = proxy.requests().slice(seen);
    for (const line of lines) {
      expect(line).toMatch(/^CONNECT 127\.0\.0\.1:\d+ /);
      expect(line).not.toMatch(/\/v1\/|auth\/|secret\//);
    }
    expect(await exists(ledgerOf(main).root)).toBe(false);
    check([main, post], [token]);
  });

  it('no_proxy naming the Vault host bypasses the proxy', async () => {
    job = await newJob();
    const seen = proxy.requests().length;
    const { main, post, token } = await loginCycle(
      https,
      { ...approle(https), 'ca-certificate': pki.caPem },
      { env: { https_proxy: proxy.url, no_proxy: '127.0.0.1' } },
    );
    expect(proxy.requests().length).toBe(seen);
    check([main, post], [token]);
  });
});

// ---- namespaces ---------------------------------------------------------------------------------

describe('namespaces', () => {
  beforeAll(() => {
    vault.enableKv('secret', 2, 'team-a');
    vault.putKv('secret', 'app', { key: V.teamValue }, 'team-a');
    vault.putKv('secret', 'app', { key: V.rootDecoy }); // the same path in the root namespace
  });

  it("input 'namespace' with a KV v2 path written without /data/", async () => {
    job = await newJob();
    const from = vault.requests.length;
    const { main, post, token } = await loginCycle(
      vault,
      { ...approle(), namespace: 'team-a', secrets: 'secret/app key | TEAM_KEY' },
      { files: { TEAM_KEY: V.teamValue } },
    );
    const reads = vault.requests.slice(from).filter((r) => r.method === 'GET' && r.path === 'secret/data/app');
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.every((r) => r.namespace === 'team-a' && r.status === 200)).toBe(true);
    check([main, post], [token]);
  });

  it('a namespace prefix in the path, without the input', async () => {
    job = await newJob();
    const from = vault.requests.length;
    const { main, post, token } = await loginCycle(
      vault,
      { ...approle(), secrets: 'team-a/secret/data/app key | TEAM_KEY' },
      { files: { TEAM_KEY: V.teamValue } },
    );
    const reads = vault.requests.slice(from).filter((r) => r.method === 'GET' && r.path === 'team-a/secret/data/app');
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.every((r) => r.namespace === 'team-a' && r.status === 200)).toBe(true);
    check([main, post], [token]);
  });
});

// ---- dynamic secrets ------------------------------------------------------------------------------

describe('dynamic secrets: leases in the summary, revoked by post before the token', () => {
  beforeAll(() => {
    vault.addDynamicRole('database', 'ci', { ttl: 600, renewable: true, make: () => ({ username: V.dbUser, password: V.dbPassword }) });
    vault.addWriteRole('aws', 'sts/deploy', {
      make: () => ({ access_key: V.awsAccessKey, secret_key: V.awsSecretKey, security_token: V.awsSessionToken }),
    });
  });

  /** The index in vault.requests (from `from`) of the first request matching. */
  function indexOf(from: number, method: string, p: string): number {
    const i = vault.requests.slice(from).findIndex((r) => r.method === method && r.path === p);
    return i < 0 ? -1 : i + from;
  }

  it('database/creds: username and password files; the lease id in the summary; lease revoked before the token', async () => {
    job = await newJob();
    const before = new Set(vault.liveTokens());
    const leasesBefore = new Set(vault.liveLeases());
    const main = await job.runMain(MAIN, {
      ...approle(),
      secrets: 'database/creds/ci username | DB_USER\ndatabase/creds/ci password | DB_PASS',
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(await delivered(main, 'DB_USER')).toBe(V.dbUser);
    expect(await delivered(main, 'DB_PASS')).toBe(V.dbPassword);
    expect(vault.count({ method: 'GET', path: 'database/creds/ci' })).toBeGreaterThanOrEqual(1);
    const leases = vault.liveLeases().filter((l) => !leasesBefore.has(l));
    expect(leases).toHaveLength(1); // both lines share one read, so one lease
    const lease = leases[0] ?? '';
    expect(main.summary).toContain(lease);
    expect(main.state.ledger).toContain(lease);
    const token = newTokens(vault, before)[0] ?? '';

    const from = vault.requests.length;
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(vault.leaseState(lease)).toBe('revoked');
    expect(vault.tokenState(token)).toBe('revoked');
    const revokeLease = indexOf(from, 'POST', 'sys/leases/revoke');
    const revokeToken = indexOf(from, 'POST', 'auth/token/revoke-self');
    expect(revokeLease).toBeGreaterThanOrEqual(0);
    expect(vault.requests[revokeLease]?.status).toBe(204); // revoked by id, not only through the token
    expect(revokeToken).toBeGreaterThan(revokeLease);
    expect(newTokens(vault, before)).toEqual([]);
    check([main, post], [token]);
  });

  it('write form: two lines, one POST with the body, both files, its lease revoked by post', async () => {
    job = await newJob();
    const writes = vault.writes().length;
    const posts = vault.count({ method: 'POST', path: 'aws/sts/deploy' });
    const leasesBefore = new Set(vault.liveLeases());
    const before = new Set(vault.liveTokens());
    const main = await job.runMain(MAIN, {
      ...approle(),
      secrets: [
        'write aws/sts/deploy {"ttl": "15m"} access_key | AWS_ACCESS_KEY_ID',
        'write aws/sts/deploy {"ttl": "15m"} secret_key | AWS_SECRET_ACCESS_KEY',
      ].join('\n'),
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(vault.writes().slice(writes)).toEqual([{ path: 'aws/sts/deploy', body: { ttl: '15m' }, namespace: '' }]);
    expect(vault.count({ method: 'POST', path: 'aws/sts/deploy' }) - posts).toBe(1);
    expect(await delivered(main, 'AWS_ACCESS_KEY_ID')).toBe(V.awsAccessKey);
    expect(await delivered(main, 'AWS_SECRET_ACCESS_KEY')).toBe(V.awsSecretKey);
    // The field nobody asked for is masked too.
    expect(main.masks).toContain(V.awsSessionToken);
    const leases = vault.liveLeases().filter((l) => !leasesBefore.has(l));
    expect(leases).toHaveLength(1);
    const lease = leases[0] ?? '';
    expect(main.summary).toContain(lease);
    const token = newTokens(vault, before)[0] ?? '';

    const from = vault.requests.length;
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(vault.leaseState(lease)).toBe('revoked');
    expect(indexOf(from, 'POST', 'auth/token/revoke-self')).toBeGreaterThan(indexOf(from, 'POST', 'sys/leases/revoke'));
    expect(vault.tokenState(token)).toBe('revoked');
    check([main, post], [token]);
  });

  it("with the user's token: post revokes the leases and leaves the token active", async () => {
    const token = vault.createToken({ policies: ['vm'], ttl: 600 });
    job = await newJob();
    const leasesBefore = new Set(vault.liveLeases());
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'database/creds/ci password | DB_PASS\nwrite aws/sts/deploy {"ttl": "15m"} access_key | AWS_ACCESS_KEY_ID',
    });
    expect(main.exitCode, main.log).toBe(0);
    const leases = vault.liveLeases().filter((l) => !leasesBefore.has(l));
    expect(leases).toHaveLength(2);
    for (const lease of leases) expect(main.summary).toContain(lease);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(post.annotations.filter((a) => a.level === 'warning')).toEqual([]);
    for (const lease of leases) expect(vault.leaseState(lease)).toBe('revoked');
    expect(vault.tokenState(token)).toBe('active');
    expect(await exists(ledgerOf(main).root)).toBe(false);
    check([main, post], [token]);
  });
});

// ---- JSON fields, export-token ------------------------------------------------------------------

describe('a JSON field of a KV value', () => {
  beforeAll(() => {
    vault.putKv('secret', 'ci/gcp', { sa: SA_JSON });
  });

  it('sa.private_key delivers the multi-line key, masks every line, and a later cat shows only ***', async () => {
    job = await newJob();
    const before = new Set(vault.liveTokens());
    const main = await job.runMain(MAIN, { ...approle(), secrets: 'secret/data/ci/gcp sa.private_key | SA_KEY' });
    expect(main.exitCode, main.log).toBe(0);
    expect(await delivered(main, 'SA_KEY')).toBe(V.saPrivateKey);
    const lines = V.saPrivateKey.split('\n').filter((l) => l.trim().length >= 4);
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(main.masks).toContain(line);

    const printed = await job.runShell('cat "$PIPELINE_SECRETS_DIR/SA_KEY"');
    expect(printed.exitCode).toBe(0);
    expect(printed.stdout).toBe(V.saPrivateKey); // the step really printed it...
    for (const line of lines) expect(printed.log).not.toContain(line); // ...and the log shows none of it
    expect(printed.log.split('\n').filter((l) => l !== '')).toEqual(lines.map(() => '***'));

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    const token = newTokens(vault, before);
    expect(token).toEqual([]);
    // The cat step printed the key on purpose (its raw stdout holds it; the log does not): the
    // invariant is checked over the action's own steps.
    check([main, post]);
  });
});

describe('export-token', () => {
  it('true: the output vault-token is the created token, masked', async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle(vault, { ...approle(), 'export-token': 'true' });
    expect(main.outputs['vault-token']).toBe(token);
    expect(main.masks).toContain(token);
    expect(main.log).not.toContain(token);
    check([main, post], [token]);
  });

  it('default: no vault-token output', async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle(vault, approle());
    expect(main.outputs).not.toHaveProperty('vault-token');
    expect(Object.values(main.outputs)).not.toContain(token);
    check([main, post], [token]);
  });
});

// ---- bad input ----------------------------------------------------------------------------------

describe('bad connection and login input: one line, exit 1, post exits 0', () => {
  it.each([
    ['an unknown method', (): Inputs => ({ method: 'oci' }), /^input 'method': 'oci' is not supported; use one of /],
    [
      'auth-payload that is not JSON',
      (): Inputs => ({ method: 'custom', mount: 'oci-ci', 'auth-payload': `{role: ci, signature: ${V.customSecret}` }),
      /^input 'auth-payload': is not valid JSON/,
    ],
    [
      'a client key without a certificate',
      (): Inputs => ({ 'client-key': pki.clientKeyPem }),
      /^input 'client-certificate': .*'client-key'/,
    ],
    [
      'method cert with a key and no certificate',
      (): Inputs => ({ method: 'cert', 'client-key': pki.clientKeyPem }),
      /^input 'client-certificate': .*'client-key'/,
    ],
    ['an unreachable Vault', (): Inputs => ({ url: 'http://127.0.0.1:9' }), /cannot reach Vault at 127\.0\.0\.1:9: connection refused/],
    [
      'a Vault host that does not resolve',
      (): Inputs => ({ url: 'https://nonexistent.invalid:8200' }),
      /cannot resolve the Vault host nonexistent\.invalid:8200/,
    ],
  ])('%s', async (_name, extra, expected) => {
    job = await newJob();
    const before = new Set(vault.liveTokens());
    const { main, post } = await failing({ ...approle(), secrets: APP, timeout: '10', ...extra() }, expected);
    expect(newTokens(vault, before)).toEqual([]);
    check([main, post], [pki.clientKeyPem, `{role: ci, signature: ${V.customSecret}`]);
  });
});
