import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { normalizeName, parseEnvSecretsInput, parseSecretEncoding, parseSecretsInput } from '../../../src/inputs/secret-spec.ts';

describe('parseSecretsInput (hashicorp/vault-action syntax)', () => {
  it.each([
    [
      'secret/data/ci npmToken | NPM_TOKEN',
      { path: 'secret/data/ci', selector: { kind: 'key', key: 'npmToken' }, name: 'NPM_TOKEN', optional: false },
    ],
    ['kv/legacy key', { path: 'kv/legacy', selector: { kind: 'key', key: 'key' }, name: undefined }],
    ['/cubbyhole/foo foo', { path: 'cubbyhole/foo', selector: { kind: 'key', key: 'foo' } }],
    ['secret/data/ci/aws *', { selector: { kind: 'all', keepCase: false, prefix: '' } }],
    ['secret/data/ci/aws ** | MYAPP_', { selector: { kind: 'all', keepCase: true, prefix: 'MYAPP_' } }],
    ['secret/data/ci/aws * | MYAPP_', { selector: { kind: 'all', keepCase: false, prefix: 'MYAPP_' } }],
    ['secret/data/app?version=3 password', { path: 'secret/data/app', version: 3 }],
    ['secret/app password | DB ?', { path: 'secret/app', name: 'DB', optional: true }],
    ['secret/app nested.key', { selector: { kind: 'key', key: 'nested.key' } }],
    ['secret/app "my.key"', { selector: { kind: 'key', key: 'my.key' } }],
  ])('%s', (input, expected) => {
    const [line] = parseSecretsInput(input);
    expect(line).toMatchObject(expected);
  });

  it('splits on new lines and semicolons and keeps line numbers', () => {
    const lines = parseSecretsInput('a/b k1 ;\n\n# comment\nc/d k2 ; e/f k3 | X\n');
    expect(lines.map((l) => [l.line, l.path])).toEqual([
      [1, 'a/b'],
      [4, 'c/d'],
      [4, 'e/f'],
    ]);
  });

  it.each([
    ['secret/app', /line 1: found 1 word/],
    ['secret/app a b', /line 1: found 3 words and no '\|'; write '<path> <key> \| NAME'/],
    ['secret/app a b c | N', /line 1: found 4 word\(s\) before '\|'/],
    ['secret/app $join([a, b], " ") | X', /JSONata expressions are not supported, only a key or a dotted key path/],
    ['secret/app key |', /line 1: nothing after '\|'/],
    ['secret/app $join(x) | X', /JSONata expressions are not supported/],
    ['secret/app key | ../evil', /the name after '\|' may hold only/],
    ['secret/app key | .hidden', /the name after '\|' may hold only/],
    ['secret/app?version=0 key', /version '0'/],
    ['secret/app?v=1 key', /unknown query 'v'/],
    ['secret//app key', /is not a Vault path/],
    ['secret/../sys key', /is not a Vault path/],
    ['secret/app * | bad prefix!', /prefix/],
  ])('rejects %j naming the input and line', (input, message) => {
    let caught: unknown;
    try {
      parseSecretsInput(`\n${input}`.slice(1));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as Error).message).toMatch(/^input 'secrets': /);
    expect((caught as Error).message).toMatch(message);
  });
});

describe('normalizeName (vault-action defaults)', () => {
  it.each([
    ['npmToken', false, 'npmToken'],
    ['npmToken', true, 'NPMTOKEN'],
    ['a.b.c', false, 'a__b__c'],
    ['my-key', true, 'MYKEY'],
    ['api-key', false, 'apikey'],
    ['under_score', true, 'UNDER_SCORE'],
    ['we!rd key$', false, 'werdkey'],
    ['ключ', true, 'КЛЮЧ'],
  ])('%s (env %s) -> %s', (key, upper, expected) => {
    expect(normalizeName(key, upper)).toBe(expected);
  });
});

describe('parseEnvSecretsInput', () => {
  it('accepts NAME and NAME=ENV_VAR, lines and commas, optional marker', () => {
    expect(parseEnvSecretsInput('A, B=OTHER\nC ?')).toEqual([
      { line: 1, name: 'A', envVar: 'A', optional: false, encoding: 'utf8' },
      { line: 1, name: 'B', envVar: 'OTHER', optional: false, encoding: 'utf8' },
      { line: 2, name: 'C', envVar: 'C', optional: true, encoding: 'utf8' },
    ]);
  });
  it('takes ?encoding= after the variable (or the name, when they are one)', () => {
    expect(parseEnvSecretsInput('KEYSTORE=KEYSTORE_B64?encoding=base64, KEY?encoding=hex ?')).toEqual([
      { line: 1, name: 'KEYSTORE', envVar: 'KEYSTORE_B64', optional: false, encoding: 'base64' },
      { line: 1, name: 'KEY', envVar: 'KEY', optional: true, encoding: 'hex' },
    ]);
  });
  it.each([
    ['a/b', /line 1: a name may hold only letters/],
    ['A=1X', /line 1: the part after '=' is not an environment variable name/],
    ['ghp_PastedValueNotAName!=X', /^input 'env-secrets': line 1: a name may hold only/],
    ['A=B?encoding=b64', /^input 'env-secrets': line 1: the encoding after '\?encoding=' is not one of utf8, base64, hex$/],
    ['A=B?version=2', /^input 'env-secrets': line 1: after '\?' only encoding=utf8\|base64\|hex is accepted$/],
  ])('rejects %j', (input, message) => {
    expect(() => parseEnvSecretsInput(input)).toThrow(message);
  });
});

describe('write entries', () => {
  it('parses a JSON body with spaces, | and ; inside, and a selector after it', () => {
    const [line, other] = parseSecretsInput(
      'write pki/issue/web {"common_name": "web.example.com", "alt": "a|b;c"} certificate | TLS_CERT ; kv/x y',
    );
    expect(line).toMatchObject({
      path: 'pki/issue/web',
      body: { common_name: 'web.example.com', alt: 'a|b;c' },
      selector: { kind: 'key', key: 'certificate' },
      name: 'TLS_CERT',
    });
    expect(other).toMatchObject({ path: 'kv/x', body: undefined });
  });
  it.each([
    ['write aws/sts/deploy', /needs a path and a JSON object body/],
    ['write aws/sts/deploy {"ttl": } key', /not valid JSON/],
    ['write aws/sts/deploy {"ttl": "1h" key', /no closing/],
    ['write aws/sts/deploy?version=2 {} key', /does not apply to a write/],
  ])('rejects %j', (input, message) => {
    expect(() => parseSecretsInput(input)).toThrow(message);
  });
});

describe('inputs that hold names never echo what was given', () => {
  it('a value pasted into env-secrets is not in the error', () => {
    for (const input of ['ghp_PastedValueNotAName!', 'X=ghp_PastedValueNotAName!']) {
      expect(() => parseEnvSecretsInput(input)).toThrow(/^(?!.*ghp_PastedValue)/s);
    }
  });
});

describe('?encoding= and secret-encoding', () => {
  it.each([
    ['secret/app p12 | KEYSTORE', 'utf8', 'utf8'],
    ['secret/app p12 | KEYSTORE', 'base64', 'base64'],
    ['secret/app?encoding=base64 p12 | KEYSTORE', 'utf8', 'base64'],
    ['secret/app?encoding=hex p12 | KEYSTORE', 'base64', 'hex'],
    ['secret/app?encoding=utf8 p12 | KEYSTORE', 'base64', 'utf8'],
    ['secret/app?version=2&encoding=hex p12 ?', 'utf8', 'hex'],
    ['secret/app?encoding=base64 *', 'utf8', 'base64'],
    ['write transit/decrypt/k?encoding=base64 {"ciphertext": "vault:v1:x"} plaintext | PLAIN', 'utf8', 'base64'],
  ] as const)('%s with secret-encoding %s decodes as %s', (input, fallback, encoding) => {
    const [line] = parseSecretsInput(input, fallback);
    expect(line?.encoding).toBe(encoding);
    expect(line?.path).not.toContain('?');
  });

  it('keeps ?version= and the optional marker beside ?encoding=', () => {
    expect(parseSecretsInput('secret/app?version=2&encoding=hex p12 | K ?')[0]).toMatchObject({
      path: 'secret/app',
      version: 2,
      encoding: 'hex',
      optional: true,
      name: 'K',
    });
  });

  it.each([
    ['secret/app?encoding=b64 k', /^input 'secrets': line 1: encoding 'b64' is not one of utf8, base64, hex$/],
    ['secret/app?encoding=base64&encoding=hex k', /^input 'secrets': line 1: 'encoding' is given twice on the path$/],
    ['secret/app?decode=base64 k', /unknown query 'decode' on the path; only \?version=N and \?encoding=utf8\|base64\|hex are accepted/],
  ])('refuses %j in one line naming the input and line', (input, message) => {
    expect(() => parseSecretsInput(input)).toThrow(message);
  });

  it('secret-encoding: empty is utf8; a bad value names the input', () => {
    expect(parseSecretEncoding('')).toBe('utf8');
    expect(parseSecretEncoding(' hex ')).toBe('hex');
    expect(() => parseSecretEncoding('base32')).toThrow(/^input 'secret-encoding': 'base32' is not one of utf8, base64, hex$/);
  });
});
