// The Vault inputs (src/inputs/vault.ts), through main's parseInputs: auth methods, TLS material,
// the proxy from the environment.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { parseInputs } from '../../../src/inputs/main.ts';
import { proxyFor } from '../../../src/inputs/vault.ts';
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
