// parsePostInputs: post's inputs read once, each bad one a problem naming it with the default used
// instead (post never stops on an input), and the defaults those of action.yml.
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUT_SECONDS } from '../../../src/inputs/common.ts';
import { DEFAULT_SCRUB, DEFAULT_VERIFY_PATH, parsePostInputs } from '../../../src/inputs/post.ts';
import { loadActionInputs } from '../../support/harness/action-yml.ts';

const NO_TLS = { ca: undefined, cert: undefined, key: undefined, skipVerify: false };

describe('parsePostInputs', () => {
  it("has action.yml's defaults", () => {
    const declared = loadActionInputs('action.yml').declared;
    expect(String(DEFAULT_TIMEOUT_SECONDS)).toBe(declared.get('timeout'));
    expect(DEFAULT_SCRUB).toBe(declared.get('scrub'));
    expect(DEFAULT_VERIFY_PATH).toBe(declared.get('verify-path'));
  });

  it('reads nothing into the defaults', () => {
    expect(parsePostInputs({})).toEqual({
      token: undefined,
      timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
      scrub: DEFAULT_SCRUB,
      verifyContainer: undefined,
      verifyPath: DEFAULT_VERIFY_PATH,
      vault: { url: undefined, namespace: undefined, tls: NO_TLS, proxy: undefined, headers: {} },
      problems: [],
    });
  });

  it('reads every input post uses, normalised as main takes them', () => {
    const inputs = parsePostInputs({
      INPUT_TOKEN: ' hvs.user ',
      INPUT_TIMEOUT: '90',
      INPUT_SCRUB: 'report',
      'INPUT_VERIFY-CONTAINER': 'app',
      'INPUT_VERIFY-PATH': '/secrets',
      INPUT_URL: 'https://Vault.example:8200/',
      INPUT_NAMESPACE: '/team/a/',
      'INPUT_TLS-SKIP-VERIFY': 'true',
      'INPUT_EXTRA-HEADERS': 'X-Gateway-Key: gw',
      https_proxy: 'proxy.example:3128',
    });
    expect(inputs).toEqual({
      token: 'hvs.user',
      timeoutMs: 90_000,
      scrub: 'report',
      verifyContainer: 'app',
      verifyPath: '/secrets',
      vault: {
        url: 'https://vault.example:8200',
        namespace: 'team/a',
        tls: { ...NO_TLS, skipVerify: true },
        proxy: 'http://proxy.example:3128/',
        headers: { 'x-gateway-key': 'gw' },
      },
      problems: [],
    });
  });

  it('falls back to VAULT_ADDR, has no address for what is not a URL, and no proxy for a no_proxy host', () => {
    expect(parsePostInputs({ VAULT_ADDR: ' http://127.0.0.1:8200 ' }).vault.url).toBe('http://127.0.0.1:8200');
    expect(parsePostInputs({ INPUT_URL: 'vault example', VAULT_ADDR: 'http://127.0.0.1:8200' }).vault.url).toBeUndefined();
    const env = { INPUT_URL: 'https://vault.internal', https_proxy: 'http://proxy:3128', no_proxy: '.internal' };
    expect(parsePostInputs(env).vault.proxy).toBeUndefined();
  });

  it.each([
    [{ INPUT_TIMEOUT: '0' }, "input 'timeout': '0' must be a whole number from 1 to 3600; post uses 30", { timeoutMs: 30_000 }],
    [{ INPUT_TIMEOUT: '5.5' }, "input 'timeout': '5.5' must be a whole number from 1 to 3600; post uses 30", { timeoutMs: 30_000 }],
    [{ INPUT_TIMEOUT: '3601' }, "input 'timeout': '3601' must be a whole number from 1 to 3600; post uses 30", { timeoutMs: 30_000 }],
    [
      { INPUT_SCRUB: 'Report' },
      "input 'scrub': 'Report' is not one of redact, delete, report, off; post scrubs with redact",
      { scrub: 'redact' },
    ],
    [
      { 'INPUT_TLS-SKIP-VERIFY': 'on', 'INPUT_CA-CERTIFICATE': '/nonexistent/ca.pem' },
      "input 'ca-certificate': is neither PEM text, base64 PEM, nor a readable file (/nonexistent/ca.pem: ENOENT); post tries to revoke without the TLS inputs",
      { vault: { url: undefined, namespace: undefined, tls: NO_TLS, proxy: undefined } },
    ],
    [
      { INPUT_URL: 'https://v.example', https_proxy: 'socks5://p:1080' },
      "input 'https_proxy': 'socks5:' proxies are not supported; use an http:// or https:// proxy; post tries to revoke without a proxy",
      { vault: { url: 'https://v.example', namespace: undefined, tls: NO_TLS, proxy: undefined } },
    ],
    [
      { 'INPUT_EXTRA-HEADERS': 'X-Vault-Token: hvs.secret-value' },
      "input 'extra-headers': line 1: 'x-vault-token' cannot be given here: the token comes from the login inputs; post tries to revoke without extra headers",
      { vault: { url: undefined, namespace: undefined, tls: NO_TLS, proxy: undefined, headers: {} } },
    ],
  ])('takes the default for a bad input and says so: %j', (env, problem, expected) => {
    const inputs = parsePostInputs(env);
    expect(inputs.problems).toEqual([problem]);
    expect(inputs).toMatchObject(expected);
  });

  it('gathers every bad input, each once', () => {
    const inputs = parsePostInputs({ INPUT_TIMEOUT: 'soon', INPUT_SCRUB: 'redacted', 'INPUT_TLS-SKIP-VERIFY': 'yes' });
    expect(inputs.problems.map((p) => /^input '([^']+)'/.exec(p)?.[1])).toEqual(['timeout', 'scrub', 'tls-skip-verify']);
  });
});
