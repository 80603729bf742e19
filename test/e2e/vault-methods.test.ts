// End to end: every Vault login method, TLS (CA, mTLS, skip-verify), a real CONNECT proxy,
// namespaces, dynamic and write-issued secrets, JSON fields, export-token and bad connection input.
// The bundled dist/ entries run through the runner harness (main, then post) against a REAL server:
// one OpenBao dev server (test/support/services/openbao.ts) with its plain listener and a TLS listener that
// asks for client certificates. Each method logs in to OpenBao's own auth method: token, approle
// (plain and with a response-wrapped secret-id), userpass, ldap (against a real slapd), cert (over
// mTLS), jwt (the harness's OIDC tokens, verified by OpenBao), kubernetes (OpenBao calls a
// TokenReview stand-in for the API server: test/support/services/token-review.ts), and custom (an AppRole
// at a custom mount logged in to with a raw payload). Dynamic secrets are PKI certificates issued by
// a write and database credentials on a real PostgreSQL. Where a test asserts on the requests the
// action made, a fault proxy sits in front of the plain listener and records them. What is alive
// after post (tokens, leases, database roles) is asked of the servers themselves; every test ends
// with the no-leak invariant over every value, credential and token.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { baoBinary, OPENBAO_LDAP_VERSION } from '../support/services/openbao-install.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { startLdap, type Ldap } from '../support/services/ldap.ts';
import { startPostgres, type Postgres } from '../support/services/postgres.ts';
import { startProxy, type Proxy } from '../support/services/proxy.ts';
import { makePki, type Pki } from '../support/services/tls.ts';
import { startTokenReview, type TokenReviewServer } from '../support/services/token-review.ts';
import { MAIN, POST, exists, ledgerOf, newJob } from './setup.ts';

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A service-account token as the kubelet projects it. OpenBao's kubernetes auth (without pem_keys)
 * parses its claims without checking the signature, matches the role's bound name and namespace,
 * then asks the TokenReview endpoint, which is the authority on whether it is valid.
 */
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

/**
 * Every value and credential planted for this file; each test checks none of them leaks. What the
 * server makes itself (tokens, wrapping tokens, certificates, database credentials) is added by
 * the test that gets it.
 */
const V = {
  password: 'vm-kv-password-7c1e95d3',
  teamValue: 'team-a-only-value-4411f0',
  rootDecoy: 'root-namespace-decoy-90b2',
  roleId: 'vm-approle-role-id-2d4f6a',
  secretId: 'vm-approle-secret-id-8e1c3b',
  teamRoleId: 'vm-team-a-role-id-61b0d8',
  teamSecretId: 'vm-team-a-secret-id-e27c45',
  wrappedRoleId: 'vm-wrapped-role-id-5a7c9e',
  knownUnwrappedSecretId: 'vm-unwrapped-secret-id-c4e8a1',
  k8sJwt: K8S_JWT,
  /** The bearer OpenBao presents to the TokenReview endpoint (OpenBao's config, never the action's). */
  k8sReviewerJwt: 'vm-k8s-token-reviewer-jwt-0f3a9c71',
  userpassPassword: 'userpass-Pw-93ab71e2',
  ldapPassword: 'ldap-Pw-e0f5c2b8',
  customSecret: 'oci-signing-secret-58d2a7',
  customRoleId: 'oci-login-role-id-1b9e44',
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
  // A root-namespace token reads team-a's paths: with X-Vault-Namespace team-a the request path
  // secret/data/app is team-a/secret/data/app, as it is written with the prefix.
  { path: 'secret/data/app', capabilities: ['read'] },
  { path: 'team-a/secret/data/*', capabilities: ['read'] },
  { path: 'database/creds/ci', capabilities: ['read'] },
  { path: 'pki/issue/ci', capabilities: ['update'] },
  { path: 'sys/leases/revoke', capabilities: ['update'] },
];

let bao: OpenBao;
/** The recording (fault) proxy in front of bao's plain listener: where a test asserts on the requests made. */
let fp: FaultProxy;
let pki: Pki;
let job: Job | undefined;
/** https://127.0.0.1:PORT of OpenBao's TLS listener, and its host:port. */
let tlsUrl: string;
let tlsHost: string;

beforeAll(async () => {
  pki = await makePki();
  // The server certificate for 127.0.0.1; client certificates signed by the same CA are asked
  // for (and, for the cert auth method, checked by the method itself against its role).
  bao = await OpenBao.start({
    tls: {
      certFile: path.join(pki.dir, 'server.pem'),
      keyFile: path.join(pki.dir, 'server.key'),
      clientCaFile: path.join(pki.dir, 'ca.pem'),
    },
  });
  tlsUrl = bao.tlsUrl ?? '';
  tlsHost = new URL(tlsUrl).host;
  await bao.enableKv('secret', 2);
  await bao.putKv('secret', 'ci/app', { password: V.password });
  await bao.addPolicy('vm', POLICY);
  await bao.addAppRole('approle', 'ci', { roleId: V.roleId, secretId: V.secretId, policies: ['vm'], ttl: '600s' });
  fp = await startFaultProxy(bao.url);
}, 60_000);
afterAll(async () => {
  await fp?.stop();
  await bao?.stop();
  await pki?.cleanup();
});
afterEach(async () => {
  fp?.clearFaults();
  await job?.cleanup();
  job = undefined;
});

// ---- helpers ----------------------------------------------------------------------------------

type Inputs = Record<string, string>;

function theJob(): Job {
  if (!job) throw new Error('no job');
  return job;
}

/** The no-leak invariant over every value of this file plus `extra`; `moreDirs` hold input credentials. */
function check(steps: StepResult[], extra: string[] = [], moreDirs: string[] = []): void {
  const dirs = steps.flatMap((s) => (s.state.ledger ? [ledgerOf(s).root, ledgerOf(s).secretsDir] : []));
  assertNoLeak(theJob(), steps, [...ALL, ...extra], { privateDirs: [...dirs, ...moreDirs] });
}

/** Accessors of the live service tokens (root's aside). The real server keeps no list of token values. */
async function accessors(namespace?: string, server: OpenBao = bao): Promise<Set<string>> {
  return new Set(await server.liveAccessors(namespace));
}

async function newAccessors(before: ReadonlySet<string>, namespace?: string, server: OpenBao = bao): Promise<string[]> {
  return (await server.liveAccessors(namespace)).filter((a) => !before.has(a));
}

/** The token main created, from the 0600 token file its ledger names (post removes it): '' if none. */
function createdToken(main: StepResult): string {
  const file = ledgerOf(main).tokenFile;
  if (file === undefined) return '';
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function newLeases(before: ReadonlySet<string>, prefix: string): Promise<string[]> {
  return (await bao.liveLeases(prefix)).filter((l) => !before.has(l));
}

async function delivered(main: StepResult, name: string): Promise<string> {
  return fs.readFile(path.join(main.outputs['secrets-dir'] ?? '', name), 'utf8');
}

const APP = 'secret/data/ci/app password | DB_PASSWORD';

const approle = (url: string = bao.url): Inputs => ({
  url,
  method: 'approle',
  'role-id': V.roleId,
  'secret-id': V.secretId,
});

interface TokenInfo {
  accessor: string;
  path: string;
  display_name: string;
  policies: string[];
  meta: Record<string, string> | null;
  namespace_path?: string;
}

/**
 * Main logs in, delivers `files` (default: secret/ci/app password as DB_PASSWORD); post revokes the
 * one token main created and removes the private directory. Returns both steps, the token and how
 * the server sees that token (looked up while it was alive: its login path, display name, meta).
 * `namespace`: where the login makes its token (tokens are listed per namespace); `server`: the
 * OpenBao the action talks to (default: this file's).
 */
async function loginCycle(
  inputs: Inputs,
  opts: { env?: Record<string, string>; files?: Record<string, string>; namespace?: string; policy?: string; server?: OpenBao } = {},
): Promise<{ main: StepResult; post: StepResult; token: string; info: TokenInfo }> {
  const env = opts.env ?? {};
  const j = theJob();
  const server = opts.server ?? bao;
  const before = await accessors(opts.namespace, server);
  const main = await j.runMain(MAIN, { url: server.url, secrets: APP, ...inputs }, { env });
  expect(main.exitCode, main.log).toBe(0);
  for (const [name, value] of Object.entries(opts.files ?? { DB_PASSWORD: V.password })) {
    expect(await delivered(main, name), name).toBe(value);
  }
  const created = await newAccessors(before, opts.namespace, server);
  expect(created).toHaveLength(1);
  const token = createdToken(main);
  expect(token).not.toBe('');
  const info = (await server.call('POST', 'auth/token/lookup', { body: { token } })).data as TokenInfo;
  expect(info.accessor).toBe(created[0]);
  expect(info.policies).toContain(opts.policy ?? 'vm');
  expect(main.masks).toContain(token);
  expect(await fs.readFile(main.files.state, 'utf8')).not.toContain(token);

  const post = await j.runPost(POST, main, { env });
  expect(post.exitCode, post.log).toBe(0);
  expect(post.annotations.filter((a) => a.level !== 'debug')).toEqual([]);
  expect(await server.tokenAlive(token)).toBe(false);
  expect(await newAccessors(before, opts.namespace, server)).toEqual([]);
  expect(await exists(ledgerOf(main).root)).toBe(false);
  return { main, post, token, info };
}

/** Exit 1 with exactly one one-line error annotation matching `expected`, no stack trace; post exits 0 and cleans up. */
async function failing(
  inputs: Inputs,
  expected: RegExp,
  env: Record<string, string> = {},
): Promise<{ main: StepResult; post: StepResult; message: string }> {
  const j = theJob();
  const main = await j.runMain(MAIN, inputs, { env });
  expect(main.exitCode, main.log).toBe(1);
  const errors = main.annotations.filter((a) => a.level === 'error');
  expect(errors, main.log).toHaveLength(1);
  const message = errors[0]?.message ?? '';
  expect(message).toMatch(expected);
  expect(message).not.toMatch(/[\r\n]/);
  for (const text of [message, main.log, main.stderr]) expect(text).not.toMatch(/\bat .*:\d+:\d+\)/);
  expect(main.outputs['secrets-dir']).toBeUndefined();
  if (main.state.ledger) expect(ledgerOf(main).files).toEqual([]);
  const post = await j.runPost(POST, main, { env });
  expect(post.exitCode, post.log).toBe(0);
  if (main.state.ledger) expect(await exists(ledgerOf(main).root)).toBe(false);
  return { main, post, message };
}

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

// ---- auth methods -----------------------------------------------------------------------------

describe('each auth method logs in, delivers, and post revokes the token it created', () => {
  let tokenReview: TokenReviewServer;
  beforeAll(async () => {
    tokenReview = await startTokenReview({ certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, reviewerJwt: V.k8sReviewerJwt });
    tokenReview.addToken(V.k8sJwt, { namespace: 'ci', name: 'runner', uid: '5b1f0c9e-ci-runner' });
    await bao.addKubernetesRole('k8s-ci', 'ci', {
      host: tokenReview.url,
      caCertPem: pki.caPem,
      reviewerJwt: V.k8sReviewerJwt,
      serviceAccountNames: ['runner'],
      serviceAccountNamespaces: ['ci'],
      policies: ['vm'],
      ttl: '600s',
    });
    await bao.addUserpass('users-ci', 'ci-bot', V.userpassPassword, ['vm']);
    // method: custom logs in to any method by POSTing auth-payload to auth/<mount>/login: here an
    // AppRole mounted at a path of its own, the payload carrying its role_id and secret_id.
    await bao.addAppRole('oci-ci', 'ci', { roleId: V.customRoleId, secretId: V.customSecret, policies: ['vm'], ttl: '600s' });
    await bao.addAppRole('approle-wrapped', 'deploy', { roleId: V.wrappedRoleId, policies: ['vm'], ttl: '600s' });
  });
  afterAll(async () => {
    await tokenReview?.stop();
  });

  it('kubernetes: reads the service-account token file (trailing newline and all), custom mount', async () => {
    job = await newJob();
    // Where the kubelet would project it; a credential the user put there, not something the action wrote.
    const saDir = path.join(job.runnerTemp, 'serviceaccount');
    await fs.mkdir(saDir);
    const tokenPath = path.join(saDir, 'token');
    await fs.writeFile(tokenPath, `${V.k8sJwt}\n`);
    const reviews = tokenReview.reviews.length;
    const from = fp.requests.length;
    const { main, post, token, info } = await loginCycle({
      url: fp.url,
      method: 'kubernetes',
      mount: 'k8s-ci',
      role: 'ci',
      'kubernetes-token-path': tokenPath,
    });
    expect(main.masks).toContain(V.k8sJwt);
    expect(fp.requests.slice(from).filter((r) => r.method === 'POST' && r.path === 'auth/k8s-ci/login' && r.status === 200)).toHaveLength(
      1,
    );
    // OpenBao logged in at auth/k8s-ci/login after the TokenReview vouched for exactly the token in
    // the file (trimmed), with its own reviewer JWT as the bearer.
    expect(info.path).toBe('auth/k8s-ci/login');
    expect(info.meta).toMatchObject({ service_account_name: 'runner', service_account_namespace: 'ci' });
    expect(tokenReview.reviews.slice(reviews)).toEqual([
      { bearer: V.k8sReviewerJwt, token: V.k8sJwt, audiences: [], username: 'system:serviceaccount:ci:runner', status: 201 },
    ]);
    check([main, post], [token], [saDir]);
  });

  it('userpass with a custom mount', async () => {
    job = await newJob();
    const from = fp.requests.length;
    const { main, post, token, info } = await loginCycle({
      url: fp.url,
      method: 'userpass',
      mount: 'users-ci',
      username: 'ci-bot',
      password: V.userpassPassword,
    });
    expect(main.masks).toContain(V.userpassPassword);
    expect(fp.requests.slice(from).some((r) => r.method === 'POST' && r.path === 'auth/users-ci/login/ci-bot' && r.status === 200)).toBe(
      true,
    );
    expect(info.path).toBe('auth/users-ci/login/ci-bot');
    check([main, post], [token]);
  });

  it('jwt: the job OIDC token, verified by OpenBao (issuer, audience, bound claims)', async () => {
    job = await newJob({ oidc: true });
    const oidc = job.oidc;
    if (!oidc) throw new Error('harness gave no OIDC issuer');
    await bao.addJwtRole('jwt-ci', 'ci', {
      publicKeyPem: oidc.publicKeyPem,
      boundIssuer: oidc.issuer,
      boundAudiences: ['vault-ci'],
      boundClaims: { repository: String(oidc.claims['repository']) },
      policies: ['vm'],
      ttl: '600s',
    });
    const { main, post, token, info } = await loginCycle({ method: 'jwt', mount: 'jwt-ci', role: 'ci', 'jwt-audience': 'vault-ci' });
    expect(oidc.audienceSeen).toContain('vault-ci');
    expect(info.path).toBe('auth/jwt-ci/login');
    check([main, post], [token]);
  });

  it('custom: POSTs auth-payload to auth/<mount>/login and masks every field of it', async () => {
    job = await newJob();
    const payload = `{"role_id": "${V.customRoleId}", "secret_id": "${V.customSecret}"}`;
    const { main, post, token, info } = await loginCycle({ method: 'custom', mount: 'oci-ci', 'auth-payload': payload });
    expect(main.masks).toEqual(expect.arrayContaining([V.customSecret, V.customRoleId]));
    expect(info.path).toBe('auth/oci-ci/login');
    check([main, post], [token, payload]);
  });

  it('approle with unwrap-secret-id: unwraps once; a second run with the same wrapping token fails clearly', async () => {
    job = await newJob();
    // A real response-wrapped secret-id: OpenBao made the secret-id and wrapped it; nobody has seen it.
    const wrapping = await bao.wrappedSecretId('approle-wrapped', 'deploy');
    const inputs: Inputs = {
      method: 'approle',
      mount: 'approle-wrapped',
      'role-id': V.wrappedRoleId,
      'secret-id': wrapping,
      'unwrap-secret-id': 'true',
    };
    const from = fp.requests.length;
    const { main, post, token, info } = await loginCycle({ url: fp.url, ...inputs });
    expect(main.masks).toContain(wrapping);
    // Unwrapped first, then the login with what was inside (the wrapping token is not a valid secret-id).
    const calls = fp.requests
      .slice(from)
      .filter((r) => r.method === 'POST' && /^(sys\/wrapping\/unwrap|auth\/approle-wrapped\/login)$/.test(r.path))
      .map((r) => `${r.path} ${String(r.status)}`);
    expect(calls).toEqual(['sys/wrapping/unwrap 200', 'auth/approle-wrapped/login 200']);
    expect(await bao.tokenAlive(wrapping)).toBe(false); // used up
    expect(info.path).toBe('auth/approle-wrapped/login');

    // Response wrapping is single use: the same token again is refused, naming the unwrap call.
    const before = await accessors();
    const again = await failing(
      { url: bao.url, secrets: APP, ...inputs },
      /POST sys\/wrapping\/unwrap: Vault answered 400 wrapping token is not valid or does not exist/,
    );
    expect(await newAccessors(before)).toEqual([]);
    check([main, post, again.main, again.post], [token, wrapping]);
  });

  it('approle with unwrap-secret-id: the unwrapped secret-id is masked and never leaks', async () => {
    // A secret-id the test knows, wrapped with sys/wrapping/wrap, so the test can look for it.
    await bao.call('POST', 'auth/approle-wrapped/role/deploy/custom-secret-id', { body: { secret_id: V.knownUnwrappedSecretId } });
    const wrapping = await bao.wrap({ secret_id: V.knownUnwrappedSecretId });
    job = await newJob();
    const { main, post, token } = await loginCycle({
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

// OpenBao 2.7 has no builtin ldap auth method: this test's server is 2.6.2, the last release with
// ldap auth; test/support/services/openbao-install.ts's preflight installs both versions.
describe('ldap auth against a real directory (slapd)', () => {
  let ldapBao: OpenBao;
  let ldap: Ldap;
  beforeAll(async () => {
    [ldapBao, ldap] = await Promise.all([OpenBao.start({ binary: baoBinary(OPENBAO_LDAP_VERSION) }), startLdap()]);
    await ldapBao.enableKv('secret', 2);
    await ldapBao.putKv('secret', 'ci/app', { password: V.password });
    await ldapBao.addPolicy('vm', POLICY);
    // OpenBao's ldap auth binds as the directory's admin, finds uid=ci-bot under ou=people and
    // binds as that user with the password given: slapd checks it.
    await ldap.addUser('ci-bot', V.ldapPassword);
    await ldapBao.addLdapUser('corp-ldap', 'ci-bot', {
      url: ldap.url,
      userDn: ldap.usersDn,
      bindDn: ldap.bindDn,
      bindPassword: ldap.bindPassword,
      policies: ['vm'],
    });
  }, 180_000);
  afterAll(async () => {
    await ldapBao?.stop();
    await ldap?.stop();
  });

  it('ldap with a custom mount', async () => {
    job = await newJob();
    const { main, post, token, info } = await loginCycle(
      { method: 'ldap', mount: 'corp-ldap', username: 'ci-bot', password: V.ldapPassword },
      { server: ldapBao },
    );
    expect(main.masks).toContain(V.ldapPassword);
    expect(info.path).toBe('auth/corp-ldap/login/ci-bot');
    // The password was the directory's: a bind with it succeeds, with another it does not.
    expect(await ldap.canBind(ldap.userDn('ci-bot'), V.ldapPassword)).toBe(true);
    expect(await ldap.canBind(ldap.userDn('ci-bot'), `${V.ldapPassword}-not`)).toBe(false);
    check([main, post], [token]);
  });
});

describe('cert auth over mTLS', () => {
  beforeAll(async () => {
    await bao.addCertRole('cert', 'ci', { certificatePem: pki.caPem, policies: ['vm'], ttl: '600s' });
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
    const inputs: Inputs = { url: tlsUrl, method: 'cert', 'ca-certificate': f.ca, 'client-certificate': f.cert, 'client-key': f.key };
    if (f.role !== '') inputs['role'] = f.role;
    const { main, post, token, info } = await loginCycle(inputs);
    // OpenBao's cert method accepted the client certificate of the TLS connection for role ci.
    expect(info.path).toBe('auth/cert/login');
    expect(info.meta).toMatchObject({ cert_name: 'ci', common_name: 'pipeline-secrets-ci' });
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
  it('verifies Vault with ca-certificate', async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle({ ...approle(tlsUrl), 'ca-certificate': base64(pki.caPem) });
    expect(main.annotations.filter((a) => a.level === 'warning')).toEqual([]);
    check([main, post], [token]);
  });

  it.each([
    ['without ca-certificate', (): Inputs => ({})],
    ['with a CA that did not sign it', (): Inputs => ({ 'ca-certificate': pki.otherCaPem })],
  ])("%s: one line naming the host and telling to give 'ca-certificate'", async (_name, extra) => {
    job = await newJob();
    const before = await accessors();
    const { main, post, message } = await failing({ ...approle(tlsUrl), secrets: APP, ...extra() }, /TLS check of Vault at/);
    expect(message).toContain(tlsHost);
    expect(message).toContain("'ca-certificate'");
    expect(await newAccessors(before)).toEqual([]);
    expect(main.state.ledger).toBeDefined();
    check([main, post]);
  });

  it('tls-skip-verify works and warns that the certificate is not checked', async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle({ ...approle(tlsUrl), 'tls-skip-verify': 'true' });
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
    const { main, post } = await failing({ ...approle(tlsUrl), secrets: APP, 'ca-certificate': ca() }, expected);
    expect(main.state.ledger).toBeUndefined(); // refused before anything was created
    check([main, post]);
  });
});

// ---- proxy --------------------------------------------------------------------------------------

describe('https_proxy: a CONNECT tunnel, never Vault requests in the clear', () => {
  let proxy: Proxy;
  let port: number;
  beforeAll(async () => {
    proxy = await startProxy();
    port = Number(new URL(tlsUrl).port);
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('main and post reach Vault through the proxy', async () => {
    job = await newJob();
    const env = { https_proxy: proxy.url };
    const seen = proxy.requests().length;
    const before = await accessors();
    const main = await job.runMain(MAIN, { ...approle(tlsUrl), 'ca-certificate': pki.caPem, secrets: APP }, { env });
    expect(main.exitCode, `${main.log}\n${proxy.log()}`).toBe(0);
    expect(await delivered(main, 'DB_PASSWORD')).toBe(V.password);
    expect(await newAccessors(before)).toHaveLength(1);
    const token = createdToken(main);
    expect(token).not.toBe('');
    const afterMain = proxy.requests().length;
    expect(afterMain).toBeGreaterThan(seen);
    expect(proxy.connects()).toContainEqual({ host: '127.0.0.1', port });

    const post = await job.runPost(POST, main, { env });
    expect(post.exitCode, post.log).toBe(0);
    expect(await bao.tokenAlive(token)).toBe(false);
    expect(await newAccessors(before)).toEqual([]);
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
      { ...approle(tlsUrl), 'ca-certificate': pki.caPem },
      { env: { https_proxy: proxy.url, no_proxy: '127.0.0.1' } },
    );
    expect(proxy.requests().length).toBe(seen);
    check([main, post], [token]);
  });
});

// ---- namespaces ---------------------------------------------------------------------------------

describe('namespaces', () => {
  beforeAll(async () => {
    await bao.createNamespace('team-a');
    await bao.enableKv('secret', 2, 'team-a');
    await bao.putKv('secret', 'app', { key: V.teamValue }, 'team-a');
    await bao.putKv('secret', 'app', { key: V.rootDecoy }); // the same path in the root namespace
    // The real server applies X-Vault-Namespace to the login too (a login at the root whatever the
    // header would be a bug): with input 'namespace' the AppRole, its policy and the token it makes
    // are team-a's.
    await bao.addPolicy('team-vm', [{ path: 'secret/data/app', capabilities: ['read'] }], 'team-a');
    await bao.addAppRole('approle', 'ci', {
      roleId: V.teamRoleId,
      secretId: V.teamSecretId,
      policies: ['team-vm'],
      ttl: '600s',
      namespace: 'team-a',
    });
  });

  /** The reads of `p` since `from`, as the proxy saw them: the namespace header sent and the status got. */
  const readsOf = (from: number, p: string): Array<{ namespace: string | undefined; status: number | undefined }> =>
    fp.requests
      .slice(from)
      .filter((r) => r.method === 'GET' && r.path === p)
      .map((r) => ({ namespace: r.headers['x-vault-namespace'], status: r.status }));

  it("input 'namespace' with a KV v2 path written without /data/", async () => {
    job = await newJob();
    const from = fp.requests.length;
    const { main, post, token, info } = await loginCycle(
      {
        ...approle(fp.url),
        'role-id': V.teamRoleId,
        'secret-id': V.teamSecretId,
        namespace: 'team-a',
        secrets: 'secret/app key | TEAM_KEY',
      },
      { files: { TEAM_KEY: V.teamValue }, namespace: 'team-a', policy: 'team-vm' },
    );
    expect(info.namespace_path).toBe('team-a/');
    const reads = readsOf(from, 'secret/data/app');
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.every((r) => r.namespace === 'team-a' && r.status === 200)).toBe(true);
    check([main, post], [token]);
  });

  it('a namespace prefix in the path, without the input', async () => {
    job = await newJob();
    const from = fp.requests.length;
    const { main, post, token } = await loginCycle(
      { ...approle(fp.url), secrets: 'team-a/secret/data/app key | TEAM_KEY' },
      { files: { TEAM_KEY: V.teamValue } },
    );
    // A namespace prefix in the path is not turned into a header: on the wire the path goes as
    // written, with no namespace header, and the real server resolves team-a/ itself (the value is
    // team-a's, not the root's decoy).
    const reads = readsOf(from, 'team-a/secret/data/app');
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.every((r) => r.namespace === undefined && r.status === 200)).toBe(true);
    check([main, post], [token]);
  });
});

// ---- dynamic secrets ------------------------------------------------------------------------------

describe('dynamic secrets: leases in the summary, revoked by post before the token', () => {
  const ISSUE = 'write pki/issue/ci {"common_name": "deploy.ci.test", "ttl": "15m"}';
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
    // Login roles of a real PostgreSQL, each under a renewable lease; revoking it drops the role.
    await bao.addPostgresRole('database', 'ci', {
      port: pg.port,
      adminUser: pg.adminUser,
      adminPassword: pg.adminPassword,
      ttl: '600s',
      maxTtl: '1h',
    });
    // Certificates issued by a write (pki/issue is an update), each under a lease of its own.
    await bao.addPkiRole('pki', 'ci', { ttl: '1h', maxTtl: '2h' });
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  /** The index in fp.requests (from `from`) of the first request matching. */
  function indexOf(from: number, method: string, p: string): number {
    const i = fp.requests.slice(from).findIndex((r) => r.method === method && r.path === p);
    return i < 0 ? -1 : i + from;
  }

  it('database/creds: username and password files; the lease id in the summary; lease revoked before the token', async () => {
    job = await newJob();
    const before = await accessors();
    const leasesBefore = new Set(await bao.liveLeases('database/'));
    const rolesBefore = new Set(await pg.roles());
    const reads = fp.count('GET', 'database/creds/ci');
    const main = await job.runMain(MAIN, {
      ...approle(fp.url),
      secrets: 'database/creds/ci username | DB_USER\ndatabase/creds/ci password | DB_PASS',
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(fp.count('GET', 'database/creds/ci') - reads).toBe(1);
    const user = await delivered(main, 'DB_USER');
    const password = await delivered(main, 'DB_PASS');
    // A real login role, made for this read: it logs in with the delivered password.
    expect((await pg.roles()).filter((r) => !rolesBefore.has(r))).toEqual([user]);
    expect(await pg.queryAs(user, password, 'select current_user')).toEqual([[user]]);
    const leases = await newLeases(leasesBefore, 'database/');
    expect(leases).toHaveLength(1); // both lines share one read, so one lease
    const lease = leases[0] ?? '';
    expect(lease).toMatch(/^database\/creds\/ci\//);
    expect(main.summary).toContain(lease);
    expect(main.state.ledger).toContain(lease);
    expect(main.masks).toEqual(expect.arrayContaining([user, password]));
    const token = createdToken(main);
    expect(await newAccessors(before)).toHaveLength(1);

    const from = fp.requests.length;
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await bao.leaseAlive(lease)).toBe(false);
    expect(await bao.tokenAlive(token)).toBe(false);
    const revokeLease = indexOf(from, 'POST', 'sys/leases/revoke');
    const revokeToken = indexOf(from, 'POST', 'auth/token/revoke-self');
    expect(revokeLease).toBeGreaterThanOrEqual(0);
    expect(fp.requests[revokeLease]?.status).toBe(204); // revoked by id, not only through the token
    expect(revokeToken).toBeGreaterThan(revokeLease);
    expect(await pg.roles()).not.toContain(user); // the revocation dropped the role
    await expect(pg.queryAs(user, password, 'select 1')).rejects.toThrow();
    expect(await newAccessors(before)).toEqual([]);
    check([main, post], [token, user, password]);
  });

  it('write form: two lines, one POST with the body, both files, its lease revoked by post', async () => {
    job = await newJob();
    const leasesBefore = new Set(await bao.liveLeases('pki/'));
    const before = await accessors();
    const posts = fp.count('POST', 'pki/issue/ci');
    const main = await job.runMain(MAIN, {
      ...approle(fp.url),
      secrets: [`${ISSUE} certificate | TLS_CERT`, `${ISSUE} private_key | TLS_KEY`].join('\n'),
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(fp.count('POST', 'pki/issue/ci') - posts).toBe(1);
    const certPem = await delivered(main, 'TLS_CERT');
    const keyPem = await delivered(main, 'TLS_KEY');
    // What the server issued follows the body sent: the common name, a 15 minute validity (PKI
    // backdates notBefore by 30 s); the key is the certificate's.
    const cert = new X509Certificate(certPem);
    expect(cert.subject).toBe('CN=deploy.ci.test');
    const validity = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 1000;
    expect(validity).toBeGreaterThanOrEqual(15 * 60);
    expect(validity).toBeLessThanOrEqual(15 * 60 + 60);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    // Both lines share one write: one certificate, one lease.
    const leases = await newLeases(leasesBefore, 'pki/');
    expect(leases).toHaveLength(1);
    const lease = leases[0] ?? '';
    expect(lease).toMatch(/^pki\/issue\/ci\//);
    expect(main.summary).toContain(lease);
    expect(main.state.ledger).toContain(lease);
    // Only what is selected is masked: the fields nobody asked for (the serial number, the issuing
    // CA) are never delivered and not registered; the selected key is, line by line.
    const serial = cert.serialNumber.toLowerCase().match(/../g)?.join(':') ?? '';
    expect(serial).not.toBe('');
    expect(main.masks).not.toContain(serial);
    expect(main.masks).toContain(keyPem);
    const token = createdToken(main);
    expect(await newAccessors(before)).toHaveLength(1);

    const from = fp.requests.length;
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await bao.leaseAlive(lease)).toBe(false);
    expect(indexOf(from, 'POST', 'auth/token/revoke-self')).toBeGreaterThan(indexOf(from, 'POST', 'sys/leases/revoke'));
    expect(await bao.tokenAlive(token)).toBe(false);
    expect(await newAccessors(before)).toEqual([]);
    check([main, post], [token, certPem, keyPem]);
  });

  it("with the user's token: post revokes the leases and leaves the token active", async () => {
    const token = await bao.createToken({ policies: ['vm'], ttl: '600s' });
    job = await newJob();
    const leasesBefore = new Set(await bao.liveLeases());
    const rolesBefore = new Set(await pg.roles());
    const main = await job.runMain(MAIN, {
      url: bao.url,
      token,
      secrets: `database/creds/ci password | DB_PASS\n${ISSUE} private_key | TLS_KEY`,
    });
    expect(main.exitCode, main.log).toBe(0);
    const issued = [await delivered(main, 'DB_PASS'), await delivered(main, 'TLS_KEY')];
    const leases = await newLeases(leasesBefore, '');
    expect(leases).toHaveLength(2);
    const made = (await pg.roles()).filter((r) => !rolesBefore.has(r));
    expect(made).toHaveLength(1);
    for (const lease of leases) expect(main.summary).toContain(lease);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(post.annotations.filter((a) => a.level === 'warning')).toEqual([]);
    // Revoked by lease id: the token they were issued under is still alive.
    for (const lease of leases) expect(await bao.leaseAlive(lease)).toBe(false);
    expect(await bao.tokenAlive(token)).toBe(true);
    expect(await pg.roles()).not.toContain(made[0]);
    expect(await exists(ledgerOf(main).root)).toBe(false);
    check([main, post], [token, ...issued, ...made]);
  });
});

// ---- JSON fields, export-token ------------------------------------------------------------------

describe('a JSON field of a KV value', () => {
  beforeAll(async () => {
    await bao.putKv('secret', 'ci/gcp', { sa: SA_JSON });
  });

  it('sa.private_key delivers the multi-line key, masks every line, and a later cat shows only ***', async () => {
    job = await newJob();
    const before = await accessors();
    const main = await job.runMain(MAIN, { ...approle(), secrets: 'secret/data/ci/gcp sa.private_key | SA_KEY' });
    expect(main.exitCode, main.log).toBe(0);
    expect(await delivered(main, 'SA_KEY')).toBe(V.saPrivateKey);
    const lines = V.saPrivateKey.split('\n').filter((l) => l.trim().length >= 4);
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(main.masks).toContain(line);
    const token = createdToken(main);

    const printed = await job.runShell('cat "$PIPELINE_SECRETS_DIR/SA_KEY"');
    expect(printed.exitCode).toBe(0);
    expect(printed.stdout).toBe(V.saPrivateKey); // the step really printed it...
    for (const line of lines) expect(printed.log).not.toContain(line); // ...and the log shows none of it
    expect(printed.log.split('\n').filter((l) => l !== '')).toEqual(lines.map(() => '***'));

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await newAccessors(before)).toEqual([]);
    expect(await bao.tokenAlive(token)).toBe(false);
    // The cat step printed the key on purpose (its raw stdout holds it; the log does not): the
    // invariant is checked over the action's own steps.
    check([main, post], [token]);
  });
});

describe('export-token', () => {
  it("true: the outputs vault-token and vault_token (vault-action's name) are the created token, masked", async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle({ ...approle(), 'export-token': 'true' });
    expect(main.outputs['vault-token']).toBe(token);
    expect(main.outputs.vault_token).toBe(token);
    expect(main.masks).toContain(token);
    expect(main.log).not.toContain(token);
    check([main, post], [token]);
  });

  it('default: no vault-token output', async () => {
    job = await newJob();
    const { main, post, token } = await loginCycle(approle());
    expect(main.outputs).not.toHaveProperty('vault-token');
    expect(main.outputs).not.toHaveProperty('vault_token');
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
      (): Inputs => ({ method: 'custom', mount: 'oci-ci', 'auth-payload': `{role_id: ci, secret_id: ${V.customSecret}` }),
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
    const before = await accessors();
    const { main, post } = await failing({ ...approle(), secrets: APP, timeout: '10', ...extra() }, expected);
    expect(await newAccessors(before)).toEqual([]);
    check([main, post], [pki.clientKeyPem, `{role_id: ci, secret_id: ${V.customSecret}`]);
  });
});
