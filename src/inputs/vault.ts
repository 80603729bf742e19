// The Vault inputs of the main step: the server (`url` or VAULT_ADDR, `namespace`), the login
// (`method` and the inputs each method needs, a JWT's signing key), TLS (CA, client certificate,
// skip-verify), `extra-headers` and the proxy from the standard environment variables. Post reads
// the TLS, header and proxy settings here too, to revoke what main created with the same
// connection. Errors name the input, never a credential.
// About 390 lines: one parser per Vault input, each small; split, they would share every helper.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import { getBoolean, getInput, getInteger, requireInput, type Env } from './common.ts';

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
      /** A JWT given directly; when absent (and no `signing`), the job's GitHub OIDC token is requested. */
      readonly jwt: string | undefined;
      readonly audience: string | undefined;
      /** `jwt-private-key`: the action signs its own JWT (vault-action's jwtPrivateKey). */
      readonly signing?: JwtSigning;
    }
  | { readonly method: 'github'; readonly mount: string; readonly githubToken: string }
  | { readonly method: 'kubernetes'; readonly mount: string; readonly role: string; readonly tokenPath: string }
  | { readonly method: 'userpass' | 'ldap'; readonly mount: string; readonly username: string; readonly password: string }
  | { readonly method: 'cert'; readonly mount: string; readonly role: string | undefined }
  | { readonly method: 'custom'; readonly mount: string; readonly payload: Record<string, unknown> };

/** A JWT the action signs itself, with vault-action's claims (src/vault/jwt-sign.ts). */
export interface JwtSigning {
  /** The private key as PEM text (possibly encrypted: then `passphrase`). */
  readonly privateKey: string;
  readonly passphrase: string | undefined;
  /** RS256 for an RSA key, ES256 for an EC P-256 key: decided by the key. */
  readonly algorithm: 'RS256' | 'ES256';
  readonly ttlSeconds: number;
  /** vault-action's claims from the job's environment (GITHUB_EVENT_NAME, ...); absent ones left out. */
  readonly claims: Readonly<Record<string, string>>;
}

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
  /** `extra-headers`: sent on every request to Vault; their values are secrets (masked, never logged). */
  readonly headers: Readonly<Record<string, string>>;
  readonly exportToken: boolean;
}

const METHODS = ['token', 'approle', 'jwt', 'github', 'kubernetes', 'userpass', 'ldap', 'cert', 'custom'] as const;
/** vault-action's jwtTtl default, in seconds. */
const DEFAULT_JWT_TTL_SECONDS = 3600;
/** The job's environment variables vault-action's signed JWT carries, and the claim each becomes. */
const JWT_CLAIMS_FROM_ENV = {
  event: 'GITHUB_EVENT_NAME',
  workflow: 'GITHUB_WORKFLOW',
  sha: 'GITHUB_SHA',
  actor: 'GITHUB_ACTOR',
  repository: 'GITHUB_REPOSITORY',
  ref: 'GITHUB_REF',
} as const;
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
      const signing = parseJwtSigning(env);
      if (signing && jwt !== '') throw new InputError('jwt-private-key', "and 'jwt' both give the JWT; give one of them");
      return {
        method,
        mount: parseMount(env, method),
        role: requireInput(env, 'role', why),
        jwt: jwt === '' ? undefined : jwt,
        audience: getInput(env, 'jwt-audience') || undefined,
        ...(signing ? { signing } : {}),
      };
    }
    case 'github':
      // https://developer.hashicorp.com/vault/api-docs/auth/github#login
      return { method, mount: parseMount(env, method), githubToken: requireInput(env, 'github-token', why) };
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
 * `jwt-private-key` (PEM, base64 PEM as vault-action takes it, or a file path), `jwt-key-password`
 * and `jwt-ttl`. The key is opened here so that a wrong password or an unsupported key type is an
 * input error before any request; the algorithm follows from the key. Never echoes the key.
 */
function parseJwtSigning(env: Env): JwtSigning | undefined {
  const raw = getInput(env, 'jwt-private-key');
  const passphrase = getInput(env, 'jwt-key-password') || undefined;
  if (raw === '') {
    for (const input of ['jwt-key-password', 'jwt-ttl'])
      if (getInput(env, input) !== '') throw new InputError(input, "takes effect only with 'jwt-private-key'");
    return undefined;
  }
  const privateKey = pemText(env, 'jwt-private-key', raw, 'key');
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase !== undefined ? { key: privateKey, passphrase } : privateKey);
  } catch (error) {
    const encrypted = /ENCRYPTED/.test(privateKey);
    throw new InputError(
      'jwt-private-key',
      encrypted && passphrase === undefined
        ? "is an encrypted key: give its password in 'jwt-key-password'"
        : encrypted
          ? "could not be decrypted with 'jwt-key-password'; check the password"
          : `is not a valid PEM private key${(error as { code?: string }).code === 'ERR_MISSING_PASSPHRASE' ? " (it is encrypted: give 'jwt-key-password')" : ''}`,
    );
  }
  let algorithm: JwtSigning['algorithm'];
  if (key.asymmetricKeyType === 'rsa') algorithm = 'RS256';
  else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') algorithm = 'ES256';
  else
    throw new InputError(
      'jwt-private-key',
      `is a${key.asymmetricKeyType === 'ec' ? `n EC ${key.asymmetricKeyDetails?.namedCurve ?? ''}` : ` ${key.asymmetricKeyType ?? 'unknown'}`} key; use an RSA key (RS256) or an EC P-256 key (ES256)`,
    );
  const claims: Record<string, string> = {};
  for (const [claim, variable] of Object.entries(JWT_CLAIMS_FROM_ENV)) {
    const value = env[variable];
    if (value !== undefined && value !== '') claims[claim] = value;
  }
  return {
    privateKey,
    passphrase,
    algorithm,
    ttlSeconds: getInteger(env, 'jwt-ttl', DEFAULT_JWT_TTL_SECONDS, 1, 86_400),
    claims,
  };
}

// Header names the action sets itself, or that would break every request: refused in
// `extra-headers` rather than sent twice or overriding the action's own.
const RESERVED_HEADERS: Readonly<Record<string, string>> = {
  'x-vault-token': 'the token comes from the login inputs',
  'x-vault-namespace': "use the 'namespace' input",
  'x-vault-request': 'the action sends it on every request',
  'x-vault-wrap-ttl': 'it would wrap every answer, the login included, so nothing could be read',
  host: 'it is set from url',
  'content-length': 'it is set per request',
  'content-type': 'it is set per request',
  'transfer-encoding': 'it is set per request',
  connection: 'it is hop-by-hop, managed by the connection',
  'keep-alive': 'it is hop-by-hop, managed by the connection',
  upgrade: 'it is hop-by-hop, managed by the connection',
  te: 'it is hop-by-hop, managed by the connection',
  trailer: 'it is hop-by-hop, managed by the connection',
  expect: 'it is hop-by-hop, managed by the connection',
  'proxy-authorization': 'a proxy from https_proxy carries its credentials in its URL',
};
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * `extra-headers`, as vault-action reads `extraHeaders`: one `Name: value` per line, names
 * case-insensitive (sent lower-cased), a repeated name's values joined with ", ". The values are
 * treated as secrets (a gateway's key, a bearer token): no message here ever holds one.
 */
export function parseExtraHeaders(raw: string): Record<string, string> {
  const headers: Record<string, string> = {};
  raw.split(/\r?\n/).forEach((text, index) => {
    const line = text.trim();
    if (line === '') return;
    const where = `line ${index + 1}`;
    const colon = line.indexOf(':');
    const name = (colon < 0 ? '' : line.slice(0, colon)).trim().toLowerCase();
    if (colon < 0 || !HEADER_NAME.test(name))
      throw new InputError('extra-headers', `${where}: expected 'Name: value' with a header name of letters, digits and -`);
    const why = RESERVED_HEADERS[name];
    if (why !== undefined) throw new InputError('extra-headers', `${where}: '${name}' cannot be given here: ${why}`);
    const value = line.slice(colon + 1).trim();
    // Node refuses such a value when sending; refused here with a line number and without the value.
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value))
      throw new InputError('extra-headers', `${where}: the value of '${name}' holds a control or non-Latin-1 character`);
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  });
  return headers;
}

/**
 * A PEM input may be the PEM text, its base64 (as vault-action takes it), or a file path.
 * Checked here with node:crypto so a bad certificate is an input error, not a TLS failure later.
 */
function readPem(env: Env, input: string, raw: string, kind: 'certificate' | 'key'): string {
  const pem = pemText(env, input, raw, kind);
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
  return pem;
}

/** The PEM text of an input given as PEM, base64 PEM or a file path (a key's content never echoed). */
function pemText(env: Env, input: string, raw: string, kind: 'certificate' | 'key'): string {
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
/** `neededBy` names the inputs whose entries need Vault, for the message when `url` is missing. */
export function parseVault(env: Env, neededBy = '`secrets`'): VaultConfig {
  const rawUrl = getInput(env, 'url') || (env.VAULT_ADDR ?? '').trim();
  if (rawUrl === '') throw new InputError('url', `is required when ${neededBy} has entries (or set VAULT_ADDR)`);
  const url = parseUrl(rawUrl, getInput(env, 'url') ? 'url' : 'VAULT_ADDR');
  return {
    url,
    namespace: getInput(env, 'namespace').replace(/^\/+|\/+$/g, '') || undefined,
    auth: parseAuth(env),
    tls: parseTls(env),
    proxy: proxyFor(url, env),
    headers: parseExtraHeaders(getInput(env, 'extra-headers')),
    exportToken: getBoolean(env, 'export-token', false),
  };
}
