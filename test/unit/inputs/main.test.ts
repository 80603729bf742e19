import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { MAIN_BOOLEANS, parseFileAccess, parseInputs } from '../../../src/inputs/main.ts';

const base = { INPUT_SECRETS: 'secret/data/app password', INPUT_URL: 'https://vault.example.com:8200/', INPUT_TOKEN: 'hvs.x' };

describe('parseInputs', () => {
  it('reads a token config with defaults', () => {
    const config = parseInputs(base);
    expect(config.vault).toEqual({
      url: 'https://vault.example.com:8200',
      namespace: undefined,
      auth: { method: 'token', token: 'hvs.x' },
      tls: { ca: undefined, cert: undefined, key: undefined, skipVerify: false },
      proxy: undefined,
      headers: {},
      exportToken: false,
    });
    expect(config).toMatchObject({ exportEnv: false, exportOutputs: false, timeoutMs: 30_000, concurrency: 16, retries: 4 });
  });

  it("ignore-not-found makes every secrets line optional, as a trailing ' ?' does", () => {
    const lines = 'secret/data/a k1\nsecret/data/b k2 ?';
    expect(parseInputs({ ...base, INPUT_SECRETS: lines }).secrets.map((l) => l.optional)).toEqual([false, true]);
    expect(parseInputs({ ...base, INPUT_SECRETS: lines, 'INPUT_IGNORE-NOT-FOUND': 'true' }).secrets.map((l) => l.optional)).toEqual([
      true,
      true,
    ]);
    expect(() => parseInputs({ ...base, 'INPUT_IGNORE-NOT-FOUND': 'yes' })).toThrow("input 'ignore-not-found': 'yes' is not a boolean");
  });

  it('secret-encoding is the encoding of every secrets line without its own ?encoding=', () => {
    const lines = parseInputs({
      ...base,
      INPUT_SECRETS: 'secret/a k\nsecret/b?encoding=utf8 k | B',
      'INPUT_SECRET-ENCODING': 'base64',
    }).secrets;
    expect(lines.map((l) => l.encoding)).toEqual(['base64', 'utf8']);
    expect(parseInputs(base).secrets[0]?.encoding).toBe('utf8');
    expect(() => parseInputs({ ...base, 'INPUT_SECRET-ENCODING': 'Base64' })).toThrow(/^input 'secret-encoding': 'Base64' is not one of/);
  });

  it('falls back to VAULT_ADDR and needs no Vault inputs without Vault lines', () => {
    expect(parseInputs({ ...base, INPUT_URL: '', VAULT_ADDR: 'http://127.0.0.1:8200' }).vault?.url).toBe('http://127.0.0.1:8200');
    const config = parseInputs({ 'INPUT_ENV-SECRETS': 'A' });
    expect(config.vault).toBeUndefined();
    expect(config.envSecrets).toHaveLength(1);
  });

  it('a `pki` entry alone is Vault work: it needs the Vault inputs, and is something to do', () => {
    const pki = { INPUT_PKI: 'pki/issue/ci {"common_name": "a.test"}', INPUT_TOKEN: 'hvs.x' };
    const config = parseInputs({ ...pki, INPUT_URL: 'http://127.0.0.1:8200' });
    expect(config.vault?.url).toBe('http://127.0.0.1:8200');
    expect(config.secrets).toEqual([]);
    expect(config.pki.map((e) => [e.name, e.mount])).toEqual([['ci', 'pki']]);
    expect(() => parseInputs(pki)).toThrow("input 'url': is required when `secrets` or `pki` has entries (or set VAULT_ADDR)");
  });

  it('reads approle and jwt with their mounts', () => {
    expect(
      parseInputs({ ...base, INPUT_METHOD: 'AppRole', 'INPUT_ROLE-ID': 'r', 'INPUT_SECRET-ID': 's', INPUT_MOUNT: '/ci-approle/' }).vault
        ?.auth,
    ).toEqual({
      method: 'approle',
      mount: 'ci-approle',
      roleId: 'r',
      secretId: 's',
      unwrapSecretId: false,
    });
    expect(parseInputs({ ...base, INPUT_METHOD: 'jwt', INPUT_ROLE: 'deploy', 'INPUT_JWT-AUDIENCE': 'vault' }).vault?.auth).toEqual({
      method: 'jwt',
      mount: 'jwt',
      role: 'deploy',
      jwt: undefined,
      audience: 'vault',
    });
  });

  it.each([
    [{ INPUT_METHOD: 'kerberos' }, 'method', /'kerberos' is not supported/],
    [{ INPUT_URL: '', VAULT_ADDR: '' }, 'url', /is required/],
    [{ INPUT_URL: 'vault.example.com' }, 'url', /is not a URL/],
    [{ INPUT_URL: 'ftp://vault' }, 'url', /not supported/],
    [{ INPUT_URL: 'https://user:pw@vault' }, 'url', /must not contain a user name or password/],
    [{ INPUT_TOKEN: '' }, 'token', /is required for method 'token'/],
    [{ INPUT_METHOD: 'approle', 'INPUT_ROLE-ID': 'r' }, 'secret-id', /is required for method 'approle'/],
    [{ INPUT_METHOD: 'jwt' }, 'role', /is required for method 'jwt'/],
    [{ INPUT_TIMEOUT: '0' }, 'timeout', /from 1 to 3600/],
    [{ INPUT_TIMEOUT: '5s' }, 'timeout', /whole number/],
    [{ INPUT_CONCURRENCY: '1000' }, 'concurrency', /from 1 to 256/],
    [{ 'INPUT_EXPORT-ENV': 'yes' }, 'export-env', /not a boolean/],
    [{ INPUT_SECRETS: '' }, 'secrets', /nothing to do/],
  ])('%j is an error naming input %s', (overrides, input, message) => {
    let caught: unknown;
    try {
      parseInputs({ ...base, ...overrides });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as InputError).input).toBe(input);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toMatch(/\n/);
  });

  it('never echoes a credential in an error', () => {
    expect(() => parseInputs({ ...base, INPUT_URL: 'https://user:topsecretpw@vault' })).toThrow(/^(?!.*topsecretpw)/);
  });

  it('checks every fixed-value input in main, naming the input, the value and the allowed values', () => {
    expect(() => parseInputs({ ...base, INPUT_SCRUB: 'redacted' })).toThrow(
      /^input 'scrub': 'redacted' is not one of redact, delete, report, off$/,
    );
    expect(() => parseInputs({ ...base, INPUT_SCRUB: 'Redact' })).toThrow(/^input 'scrub': 'Redact' is not one of/);
    for (const name of MAIN_BOOLEANS) {
      const key = `INPUT_${name.toUpperCase()}`;
      expect(() => parseInputs({ ...base, [key]: 'yes' })).toThrow(
        new RegExp(`^input '${name}': 'yes' is not a boolean; use true or false$`),
      );
      for (const ok of ['true', 'True', 'TRUE', 'false', 'False', 'FALSE'])
        expect(() => parseInputs({ ...base, [key]: ok }), ok).not.toThrow(/boolean/);
    }
  });
});

const input = (owner: string, mode = ''): ReturnType<typeof parseFileAccess> =>
  parseFileAccess({ 'INPUT_FILE-OWNER': owner, 'INPUT_FILE-MODE': mode });

describe('parseFileAccess', () => {
  it('takes UID or UID:GID and the four modes, with defaults by what is given', () => {
    expect(parseFileAccess({})).toBeUndefined();
    expect(input('1000')).toEqual({ uid: 1000, mode: 0o400 });
    expect(input('1000:1001')).toEqual({ uid: 1000, gid: 1001, mode: 0o440 });
    expect(input('1000:1000', '0640')).toEqual({ uid: 1000, gid: 1000, mode: 0o640 });
    expect(input('1000', '600')).toEqual({ uid: 1000, mode: 0o600 });
    expect(input('', '0400')).toEqual({ mode: 0o400 });
  });

  it.each([
    ['node', '', /^input 'file-owner': 'node' is not UID or UID:GID in numbers/],
    ['1000:', '', /^input 'file-owner': '1000:'/],
    ['-1', '', /^input 'file-owner': '-1'/],
    ['4294967295', '', /^input 'file-owner': '4294967295'/],
    ['1000', '0644', /^input 'file-mode': '0644' is not one of 0400, 0440, 0600, 0640 \(secret files are never readable by others\)$/],
    ['1000', '0444', /^input 'file-mode': '0444' is not one of/],
    ['1000', 'u+r', /^input 'file-mode': 'u\+r' is not one of/],
    ['1000', '0440', /^input 'file-mode': '0440' lets a group read: name the group in file-owner as UID:GID$/],
    ['', '0640', /^input 'file-mode': '0640' lets a group read/],
  ])('refuses file-owner %j file-mode %j in one line naming the input', (owner, mode, expected) => {
    expect(() => input(owner, mode)).toThrow(expected);
  });
});
