// The Vault inputs (src/inputs/vault.ts), through main's parseInputs: auth methods, TLS material,
// the proxy from the environment.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { parseInputs } from '../../../src/inputs/main.ts';
import { parseExtraHeaders, proxyFor } from '../../../src/inputs/vault.ts';
import { thrown } from '../../support/errors.ts';

const base = { INPUT_SECRETS: 'secret/data/app password', INPUT_URL: 'https://vault.example.com:8200', INPUT_TOKEN: 'hvs.x' };
let certPem = '';
let keyPem = '';
let dir = '';
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ps-pem-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=test', '-days', '1', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`],
    { stdio: 'ignore' },
  );
  certPem = readFileSync(`${dir}/c.pem`, 'utf8');
  keyPem = readFileSync(`${dir}/k.pem`, 'utf8');
});

const inputError = (env: Record<string, string>): InputError => thrown(() => parseInputs({ ...base, ...env }), InputError);

describe('auth methods', () => {
  it.each([
    [
      { INPUT_METHOD: 'kubernetes', INPUT_ROLE: 'ci' },
      { method: 'kubernetes', mount: 'kubernetes', role: 'ci', tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token' },
    ],
    [
      { INPUT_METHOD: 'userpass', INPUT_USERNAME: 'bot', INPUT_PASSWORD: 'pw', INPUT_MOUNT: 'people' },
      { method: 'userpass', mount: 'people', username: 'bot', password: 'pw' },
    ],
    [
      { INPUT_METHOD: 'ldap', INPUT_USERNAME: 'bot', INPUT_PASSWORD: 'pw' },
      { method: 'ldap', mount: 'ldap' },
    ],
    [
      { INPUT_METHOD: 'custom', INPUT_MOUNT: 'oci', 'INPUT_AUTH-PAYLOAD': '{"role":"x","sig":"y"}' },
      { method: 'custom', mount: 'oci', payload: { role: 'x', sig: 'y' } },
    ],
    [
      { INPUT_METHOD: 'approle', 'INPUT_ROLE-ID': 'r', 'INPUT_SECRET-ID': 'w', 'INPUT_UNWRAP-SECRET-ID': 'true' },
      { method: 'approle', unwrapSecretId: true },
    ],
  ])('%j', (env, auth) => {
    expect(parseInputs({ ...base, ...env }).vault?.auth).toMatchObject(auth);
  });

  it('method cert needs a client certificate and key', () => {
    expect(inputError({ INPUT_METHOD: 'cert' }).message).toBe(
      "input 'client-certificate': is required, with 'client-key', for method 'cert' (TLS client certificate login)",
    );
    const auth = parseInputs({
      ...base,
      INPUT_METHOD: 'cert',
      INPUT_ROLE: 'ci',
      'INPUT_CLIENT-CERTIFICATE': certPem,
      'INPUT_CLIENT-KEY': keyPem,
    }).vault?.auth;
    expect(auth).toEqual({ method: 'cert', mount: 'cert', role: 'ci' });
  });

  it.each([
    [{ INPUT_METHOD: 'custom', 'INPUT_AUTH-PAYLOAD': '{}' }, 'mount', /is required for method 'custom'/],
    [{ INPUT_METHOD: 'custom', INPUT_MOUNT: 'x', 'INPUT_AUTH-PAYLOAD': '{"secret": "s3cr3t-payload' }, 'auth-payload', /is not valid JSON/],
    [{ INPUT_METHOD: 'custom', INPUT_MOUNT: 'x', 'INPUT_AUTH-PAYLOAD': '["a"]' }, 'auth-payload', /must be a JSON object/],
    [{ INPUT_METHOD: 'userpass', INPUT_USERNAME: 'a/b', INPUT_PASSWORD: 'p' }, 'username', /must not contain '\/'/],
    [{ INPUT_METHOD: 'kubernetes' }, 'role', /is required for method 'kubernetes'/],
  ])('%j names input %s', (env, input, message) => {
    const error = inputError(env);
    expect(error.input).toBe(input);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('s3cr3t-payload');
  });
});

describe('TLS inputs', () => {
  it('accepts PEM text, base64 PEM and a file path', () => {
    for (const ca of [certPem, Buffer.from(certPem).toString('base64'), `${dir}/c.pem`]) {
      expect(parseInputs({ ...base, 'INPUT_CA-CERTIFICATE': ca }).vault?.tls.ca).toBe(certPem);
    }
  });
  it.each([
    [{ 'INPUT_CA-CERTIFICATE': '/nonexistent/ca.pem' }, 'ca-certificate', /neither PEM text, base64 PEM, nor a readable file .*ENOENT/],
    [
      { 'INPUT_CA-CERTIFICATE': '-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----' },
      'ca-certificate',
      /is not a valid PEM certificate/,
    ],
    [{ 'INPUT_CLIENT-KEY': 'x' }, 'client-certificate', /go together/],
    [{ 'INPUT_CLIENT-CERTIFICATE': 'x' }, 'client-key', /go together/],
    [{ 'INPUT_TLS-SKIP-VERIFY': 'maybe' }, 'tls-skip-verify', /not a boolean/],
  ])('%j names input %s', (env, input, message) => {
    const error = inputError(env);
    expect(error.input).toBe(input);
    expect(error.message).toMatch(message);
  });
  it('a bad key is refused without echoing it', () => {
    const error = inputError({
      'INPUT_CLIENT-CERTIFICATE': certPem,
      'INPUT_CLIENT-KEY': '-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----',
    });
    expect(error.input).toBe('client-key');
    expect(error.message).toBe("input 'client-key': is not a valid PEM key");
  });
  it('reads a key file', () => {
    writeFileSync(`${dir}/k2.pem`, keyPem);
    expect(parseInputs({ ...base, 'INPUT_CLIENT-CERTIFICATE': certPem, 'INPUT_CLIENT-KEY': `${dir}/k2.pem` }).vault?.tls.key).toBe(keyPem);
  });
});

describe('proxyFor', () => {
  it.each([
    ['https://vault.example.com', { https_proxy: 'http://proxy:3128' }, 'http://proxy:3128/'],
    ['https://vault.example.com', { HTTPS_PROXY: 'proxy:3128' }, 'http://proxy:3128/'],
    ['http://vault.example.com', { https_proxy: 'http://proxy:3128' }, undefined],
    ['http://vault.example.com', { http_proxy: 'http://proxy:3128' }, 'http://proxy:3128/'],
    ['https://vault.example.com', { https_proxy: 'http://p:1', no_proxy: 'example.com' }, undefined],
    ['https://vault.example.com', { https_proxy: 'http://p:1', no_proxy: '.example.com' }, undefined],
    ['https://vault.example.com', { https_proxy: 'http://p:1', NO_PROXY: 'other.com, *.example.com' }, undefined],
    ['https://vault.example.com', { https_proxy: 'http://p:1', no_proxy: 'ample.com' }, 'http://p:1/'],
    ['https://vault.example.com:8200', { https_proxy: 'http://p:1', no_proxy: 'vault.example.com:443' }, 'http://p:1/'],
    ['https://vault.example.com:8200', { https_proxy: 'http://p:1', no_proxy: 'vault.example.com:8200' }, undefined],
    ['https://127.0.0.1:8200', { https_proxy: 'http://p:1', no_proxy: '*' }, undefined],
  ])('%s with %j -> %s', (url, env, expected) => {
    expect(proxyFor(url, env)).toBe(expected);
  });
  it('refuses a socks proxy by name', () => {
    expect(() => proxyFor('https://v', { https_proxy: 'socks5://p:1' })).toThrow(/'socks5:' proxies are not supported/);
  });
});

describe('method github', () => {
  it('reads github-token, with its mount', () => {
    expect(parseInputs({ ...base, INPUT_METHOD: 'github', 'INPUT_GITHUB-TOKEN': 'ghp_abc', INPUT_MOUNT: 'gh' }).vault?.auth).toEqual({
      method: 'github',
      mount: 'gh',
      githubToken: 'ghp_abc',
    });
    expect(inputError({ INPUT_METHOD: 'github' }).message).toBe("input 'github-token': is required for method 'github'");
  });
});

describe('a JWT signed with jwt-private-key', () => {
  const jwtEnv = { INPUT_METHOD: 'jwt', INPUT_ROLE: 'ci' };
  const rsa = (): string =>
    generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

  it("takes the key as PEM or base64 PEM (vault-action's form), the algorithm from the key, vault-action's claims", () => {
    const pem = rsa();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const env = { ...jwtEnv, GITHUB_REPOSITORY: 'org/repo', GITHUB_REF: 'refs/heads/main', GITHUB_SHA: '', 'INPUT_JWT-TTL': '120' };
    const auth = parseInputs({ ...base, ...env, 'INPUT_JWT-PRIVATE-KEY': Buffer.from(pem).toString('base64') }).vault?.auth;
    expect(auth).toMatchObject({
      method: 'jwt',
      jwt: undefined,
      signing: {
        privateKey: pem,
        passphrase: undefined,
        algorithm: 'RS256',
        ttlSeconds: 120,
        claims: { repository: 'org/repo', ref: 'refs/heads/main' },
      },
    });
    const ecAuth = parseInputs({ ...base, ...jwtEnv, 'INPUT_JWT-PRIVATE-KEY': ec }).vault?.auth;
    expect(ecAuth).toMatchObject({ signing: { algorithm: 'ES256', ttlSeconds: 3600 } });
  });

  it('refuses what cannot sign, naming the input and never the key', () => {
    const pem = rsa();
    const encrypted = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'right password',
    }) as string;
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ 'INPUT_JWT-PRIVATE-KEY': encrypted }, 'jwt-private-key', /encrypted key: give its password in 'jwt-key-password'/],
      [{ 'INPUT_JWT-PRIVATE-KEY': encrypted, 'INPUT_JWT-KEY-PASSWORD': 'wrong' }, 'jwt-private-key', /could not be decrypted/],
      [{ 'INPUT_JWT-PRIVATE-KEY': ed }, 'jwt-private-key', /ed25519 key; use an RSA key \(RS256\) or an EC P-256 key/],
      [{ 'INPUT_JWT-PRIVATE-KEY': p384 }, 'jwt-private-key', /EC secp384r1 key/],
      [
        { 'INPUT_JWT-PRIVATE-KEY': '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----' },
        'jwt-private-key',
        /not a valid PEM private key/,
      ],
      [{ 'INPUT_JWT-PRIVATE-KEY': pem, INPUT_JWT: 'a.b.c' }, 'jwt-private-key', /both give the JWT/],
      [{ 'INPUT_JWT-PRIVATE-KEY': pem, 'INPUT_JWT-TTL': '0' }, 'jwt-ttl', /from 1 to 86400/],
      [{ 'INPUT_JWT-TTL': '60' }, 'jwt-ttl', /only with 'jwt-private-key'/],
      [{ 'INPUT_JWT-KEY-PASSWORD': 'pw' }, 'jwt-key-password', /only with 'jwt-private-key'/],
    ];
    for (const [env, input, message] of cases) {
      const error = inputError({ ...jwtEnv, ...env });
      expect(error.input).toBe(input);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('right password');
      expect(error.message).not.toContain('BEGIN');
    }
    expect(
      parseInputs({ ...base, ...jwtEnv, 'INPUT_JWT-PRIVATE-KEY': encrypted, 'INPUT_JWT-KEY-PASSWORD': 'right password' }).vault?.auth,
    ).toMatchObject({
      signing: { passphrase: 'right password', algorithm: 'RS256' },
    });
  });
});

describe('extra-headers', () => {
  it("reads vault-action's format: Name: value lines, names lower-cased, a repeated name's values joined", () => {
    expect(parseExtraHeaders('X-Gateway-Key: k1:with:colons\n\n  CF-Access-Client-Id:  id  \nx-gateway-key: k2')).toEqual({
      'x-gateway-key': 'k1:with:colons, k2',
      'cf-access-client-id': 'id',
    });
    expect(parseInputs({ ...base, 'INPUT_EXTRA-HEADERS': 'X-A: 1' }).vault?.headers).toEqual({ 'x-a': '1' });
  });

  it('refuses the headers the action sets and malformed lines, naming the line and never the value', () => {
    for (const [raw, message] of [
      ['X-Vault-Token: s3cr3t-value', /line 1: 'x-vault-token' cannot be given here: the token comes from the login inputs/],
      ['ok: 1\nX-Vault-Namespace: s3cr3t-value', /line 2: 'x-vault-namespace' cannot be given here: use the 'namespace' input/],
      ['Host: s3cr3t-value', /'host' cannot be given here/],
      ['X-Vault-Wrap-TTL: s3cr3t-value', /'x-vault-wrap-ttl'/],
      ['s3cr3t-value', /line 1: expected 'Name: value'/],
      ['bad name: s3cr3t-value', /line 1: expected 'Name: value'/],
      ['X-A: s3cr3t-value\u0007', /line 1: the value of 'x-a' holds a control/],
    ] as const) {
      const error = thrown(() => parseExtraHeaders(raw), InputError);
      expect(error.input).toBe('extra-headers');
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('s3cr3t');
    }
  });
});
