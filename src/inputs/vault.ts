// The Vault inputs of the main step: the server (`url` or VAULT_ADDR, `namespace`), the login
// (`method` and the inputs each method needs), TLS (CA, client certificate, skip-verify) and the
// proxy from the standard environment variables. Post reads the TLS and proxy settings here too, to
// revoke what main created with the same connection. Errors name the input, never a credential.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import { getBoolean, getInput, requireInput, type Env } from './common.ts';

export type AuthConfig =
  | { readonly method: 'token'; readonly token: string }
  | {
      readonly method: 'approle';
      readonly mount: string;
      readonly roleId: string;
      readonly secretId: string;
      /** The secret-id input is a response-wrapping token to unwrap first. */
      readonly unwrapSecretId: boolean;
    }
  | {
      readonly method: 'jwt';
      readonly mount: string;
      readonly role: string;
      /** A JWT given directly; when absent, the job's GitHub OIDC token is requested. */
      readonly jwt: string | undefined;
      readonly audience: string | undefined;
    }
  | { readonly method: 'kubernetes'; readonly mount: string; readonly role: string; readonly tokenPath: string }
  | { readonly method: 'userpass' | 'ldap'; readonly mount: string; readonly username: string; readonly password: string }
  | { readonly method: 'cert'; readonly mount: string; readonly role: string | undefined }
  | { readonly method: 'custom'; readonly mount: string; readonly payload: Record<string, unknown> };

export interface TlsConfig {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly skipVerify: boolean;
}

export interface VaultConfig {
  readonly url: string;
  readonly namespace: string | undefined;
  readonly auth: AuthConfig;
  readonly tls: TlsConfig;
  /** HTTP(S) proxy from https_proxy / http_proxy, unless no_proxy exempts the Vault host. */
  readonly proxy: string | undefined;
  readonly exportToken: boolean;
}

const METHODS = ['token', 'approle', 'jwt', 'kubernetes', 'userpass', 'ldap', 'cert', 'custom'] as const;
const DEFAULT_KUBERNETES_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

function parseUrl(raw: string, input: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError(input, `'${raw}' is not a URL like https://vault.example.com:8200`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InputError(input, `'${url.protocol}' is not supported; use https:// (or http:// for a local Vault)`);
  }
  if (url.username || url.password) {
    // Credentials in a URL end up in logs and errors; refuse them rather than print them.
    throw new InputError(input, 'must not contain a user name or password');
  }
  return url.toString().replace(/\/+$/, '');
}

function parseMount(env: Env, method: string): string {
  const raw = getInput(env, 'mount').replace(/^\/+|\/+$/g, '');
  if (raw === '' && method === 'custom')
    throw new InputError('mount', "is required for method 'custom' (the auth mount to POST auth-payload to)");
  const mount = raw || method;
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(mount)) {
    throw new InputError('mount', `'${mount}' is not an auth mount path like 'approle' or 'github-jwt'`);
  }
  return mount;
}

function parseAuth(env: Env): AuthConfig {
  const method = (getInput(env, 'method') || 'token').toLowerCase();
  const why = `for method '${method}'`;
  switch (method) {
    case 'token':
      return { method, token: requireInput(env, 'token', why) };
    case 'approle':
      return {
        method,
        mount: parseMount(env, method),
        roleId: requireInput(env, 'role-id', why),
        secretId: requireInput(env, 'secret-id', why),
        unwrapSecretId: getBoolean(env, 'unwrap-secret-id', false),
      };
    case 'jwt': {
      const jwt = getInput(env, 'jwt');
      return {
        method,
        mount: parseMount(env, method),
        role: requireInput(env, 'role', why),
        jwt: jwt === '' ? undefined : jwt,
        audience: getInput(env, 'jwt-audience') || undefined,
      };
    }
    case 'kubernetes':
      return {
        method,
        mount: parseMount(env, method),
        role: requireInput(env, 'role', why),
        tokenPath: getInput(env, 'kubernetes-token-path') || DEFAULT_KUBERNETES_TOKEN_PATH,
      };
    case 'userpass':
    case 'ldap': {
      const username = requireInput(env, 'username', why);
      if (username.includes('/')) throw new InputError('username', "must not contain '/'");
      return { method, mount: parseMount(env, method), username, password: requireInput(env, 'password', why) };
    }
    case 'cert':
      for (const [input, other] of [
        ['client-certificate', 'client-key'],
        ['client-key', 'client-certificate'],
      ] as const) {
        if (getInput(env, input) === '')
          throw new InputError(input, `is required, with '${other}', for method 'cert' (TLS client certificate login)`);
      }
      return { method, mount: parseMount(env, method), role: getInput(env, 'role') || undefined };
    case 'custom': {
      const raw = requireInput(env, 'auth-payload', why);
      let payload: unknown;
      try {
        payload = JSON.parse(raw);
      } catch {
        // Never echo the payload: it holds credentials.
        throw new InputError('auth-payload', 'is not valid JSON (expected an object like {"role": "...", "jwt": "..."})');
      }
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
        throw new InputError('auth-payload', 'must be a JSON object');
      }
      return { method, mount: parseMount(env, method), payload: payload as Record<string, unknown> };
    }
    default:
      throw new InputError('method', `'${method}' is not supported; use one of ${METHODS.join(', ')}`);
  }
}

export function parseTls(env: Env): TlsConfig {
  const ca = getInput(env, 'ca-certificate');
  const cert = getInput(env, 'client-certificate');
  const key = getInput(env, 'client-key');
  if ((cert === '') !== (key === '')) {
    throw new InputError(
      cert === '' ? 'client-certificate' : 'client-key',
      "'client-certificate' and 'client-key' go together; give both or neither",
    );
  }
  return {
    ca: ca === '' ? undefined : readPem(env, 'ca-certificate', ca, 'certificate'),
    cert: cert === '' ? undefined : readPem(env, 'client-certificate', cert, 'certificate'),
    key: key === '' ? undefined : readPem(env, 'client-key', key, 'key'),
    skipVerify: getBoolean(env, 'tls-skip-verify', false),
  };
}

/**
 * A PEM input may be the PEM text, its base64 (as vault-action takes it), or a file path.
 * Checked here with node:crypto so a bad certificate is an input error, not a TLS failure later.
 */
function readPem(env: Env, input: string, raw: string, kind: 'certificate' | 'key'): string {
  let pem = raw;
  if (!raw.includes('-----BEGIN')) {
    const decoded = /^[A-Za-z0-9+/=\s]+$/.test(raw) ? Buffer.from(raw.replace(/\s+/g, ''), 'base64').toString('utf8') : '';
    if (decoded.includes('-----BEGIN')) pem = decoded;
    else if (kind === 'certificate' || !/\s/.test(raw)) {
      // Not PEM and not base64 PEM: a path to a file (never echo a key's content).
      const file = path.resolve(env.GITHUB_WORKSPACE ?? '.', raw);
      try {
        pem = readFileSync(file, 'utf8');
      } catch (error) {
        throw new InputError(
          input,
          `is neither PEM text, base64 PEM, nor a readable file (${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
        );
      }
    }
  }
  try {
    if (kind === 'certificate') {
      const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      if (blocks.length === 0) throw new Error('no certificate');
      for (const block of blocks) new X509Certificate(block);
    } else {
      createPrivateKey(pem);
    }
  } catch {
    throw new InputError(input, `is not a valid PEM ${kind}`);
  }
  return `${pem.trim()}\n`;
}

/** The proxy for a Vault URL from the standard environment variables, honouring no_proxy. */
export function proxyFor(url: string, env: Env): string | undefined {
  const target = new URL(url);
  const pick = (...names: string[]): string => names.map((n) => (env[n] ?? '').trim()).find((v) => v !== '') ?? '';
  const proxy = target.protocol === 'https:' ? pick('https_proxy', 'HTTPS_PROXY') : pick('http_proxy', 'HTTP_PROXY');
  if (proxy === '') return undefined;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (const raw of pick('no_proxy', 'NO_PROXY').split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return undefined;
    const [entryHost = '', entryPort] = entry.startsWith('[')
      ? [entry.slice(1, entry.indexOf(']')), entry.split(']:')[1]]
      : entry.split(':');
    if (entryPort !== undefined && entryPort !== port) continue;
    const bare = entryHost.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(proxy.includes('://') ? proxy : `http://${proxy}`);
  } catch {
    throw new InputError(
      target.protocol === 'https:' ? 'https_proxy' : 'http_proxy',
      'is not a proxy URL like http://proxy.example.com:3128',
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InputError('https_proxy', `'${parsed.protocol}' proxies are not supported; use an http:// or https:// proxy`);
  }
  return parsed.toString();
}

/** The Vault half of main's config: read when the `secrets` input has entries. */
export function parseVault(env: Env): VaultConfig {
  const rawUrl = getInput(env, 'url') || (env.VAULT_ADDR ?? '').trim();
  if (rawUrl === '') throw new InputError('url', 'is required when `secrets` or `pki` has entries (or set VAULT_ADDR)');
  const url = parseUrl(rawUrl, getInput(env, 'url') ? 'url' : 'VAULT_ADDR');
  return {
    url,
    namespace: getInput(env, 'namespace').replace(/^\/+|\/+$/g, '') || undefined,
    auth: parseAuth(env),
    tls: parseTls(env),
    proxy: proxyFor(url, env),
    exportToken: getBoolean(env, 'export-token', false),
  };
}
