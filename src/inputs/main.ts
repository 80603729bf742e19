// Every input is read and checked here, once, into a readonly typed config. Nothing else reads
// INPUT_* variables. Errors name the input (and the line) and never echo a credential.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import { FILE_MODES, type FileAccess } from '../core/file-access.ts';
import { parseEnvSecretsInput, parseSecretsInput, type EnvSecretLine, type VaultSecretLine } from './secret-spec.ts';

export type Env = Readonly<Record<string, string | undefined>>;

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

export interface RegistryConfig {
  readonly registry: string;
  readonly username: string;
  /** The password: the name of a secret of this run, or a value given as an input (a workflow secret). */
  readonly password: { readonly secret: string } | { readonly value: string };
  /** Where it was configured, for messages: an input name, with the line for `registries`. */
  readonly source: string;
}

export interface BuildSecretSpec {
  readonly id: string;
  readonly name: string;
  readonly line: number;
}

export interface RenewConfig {
  readonly refreshMs: number;
  readonly onChange: string | undefined;
  readonly onChangeTimeoutMs: number;
  readonly maxLifetimeMs: number;
}

export interface Config {
  /** Present when the `secrets` input has at least one entry. */
  readonly vault: VaultConfig | undefined;
  readonly secrets: readonly VaultSecretLine[];
  readonly envSecrets: readonly EnvSecretLine[];
  readonly exportEnv: boolean;
  readonly exportOutputs: boolean;
  /** Where the secret files go when the user chooses; else a fresh directory on tmpfs. */
  readonly secretsDir: string | undefined;
  /** `file-owner` / `file-mode`: who besides the runner reads the secret files; absent: 0600, the runner's. */
  readonly fileAccess?: FileAccess;
  readonly registries: readonly RegistryConfig[];
  readonly buildSecrets: readonly BuildSecretSpec[];
  /** The renewal agent, when `renew` is true. */
  readonly renew: RenewConfig | undefined;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly retries: number;
}

export const METHODS = ['token', 'approle', 'jwt', 'kubernetes', 'userpass', 'ldap', 'cert', 'custom'] as const;
export const DEFAULT_KUBERNETES_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Reads an input the way @actions/core does: INPUT_<NAME upper-cased, spaces to _>, trimmed. */
export function getInput(env: Env, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

/**
 * A boolean input, strict as @actions/core's getBooleanInput (YAML 1.2 core schema: true, True,
 * TRUE, false, False, FALSE). Anything else is refused naming the value: a boolean is no secret.
 */
export function getBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = getInput(env, name);
  if (raw === '') return fallback;
  if (/^(true|True|TRUE)$/.test(raw)) return true;
  if (/^(false|False|FALSE)$/.test(raw)) return false;
  throw new InputError(name, `'${raw}' is not a boolean; use true or false`);
}

/** An input with a fixed set of values (as written: post compares them exactly); anything else is refused naming them. */
export function getChoice<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = getInput(env, name);
  if (raw === '') return fallback;
  const value = allowed.find((a) => a === raw);
  if (value === undefined) throw new InputError(name, `'${raw}' is not one of ${allowed.join(', ')}`);
  return value;
}

/** The main action's boolean inputs (action.yml): each checked on every run, whatever else is used. */
export const MAIN_BOOLEANS = ['unwrap-secret-id', 'tls-skip-verify', 'export-token', 'export-env', 'export-outputs', 'renew'] as const;
/** `scrub`'s values: checked here by main, acted on by post (src/post/scrub.ts). */
export const SCRUB_MODES = ['redact', 'delete', 'report', 'off'] as const;
export type ScrubMode = (typeof SCRUB_MODES)[number];

function getInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = getInput(env, name);
  if (raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new InputError(name, `'${raw}' must be a whole number from ${min} to ${max}`);
  }
  return Number(raw);
}

function required(env: Env, name: string, why: string): string {
  const value = getInput(env, name);
  if (value === '') throw new InputError(name, `is required ${why}`);
  return value;
}

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
      return { method, token: required(env, 'token', why) };
    case 'approle':
      return {
        method,
        mount: parseMount(env, method),
        roleId: required(env, 'role-id', why),
        secretId: required(env, 'secret-id', why),
        unwrapSecretId: getBoolean(env, 'unwrap-secret-id', false),
      };
    case 'jwt': {
      const jwt = getInput(env, 'jwt');
      return {
        method,
        mount: parseMount(env, method),
        role: required(env, 'role', why),
        jwt: jwt === '' ? undefined : jwt,
        audience: getInput(env, 'jwt-audience') || undefined,
      };
    }
    case 'kubernetes':
      return {
        method,
        mount: parseMount(env, method),
        role: required(env, 'role', why),
        tokenPath: getInput(env, 'kubernetes-token-path') || DEFAULT_KUBERNETES_TOKEN_PATH,
      };
    case 'userpass':
    case 'ldap': {
      const username = required(env, 'username', why);
      if (username.includes('/')) throw new InputError('username', "must not contain '/'");
      return { method, mount: parseMount(env, method), username, password: required(env, 'password', why) };
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
      const raw = required(env, 'auth-payload', why);
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

const REGISTRY = /^(https?:\/\/)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(\/[A-Za-z0-9._/-]*)?$/;
const SECRET_NAME = /^[\p{L}\p{N}_][\p{L}\p{N}_.-]*$/u;

function checkRegistry(input: string, registry: string): string {
  if (!REGISTRY.test(registry)) throw new InputError(input, `'${registry}' is not a registry like ghcr.io or registry.example.com:5000`);
  return registry;
}

function parseRegistries(env: Env): RegistryConfig[] {
  const out: RegistryConfig[] = [];
  const registry = getInput(env, 'registry');
  const username = getInput(env, 'registry-username');
  const password = getInput(env, 'registry-password');
  const passwordSecret = getInput(env, 'registry-password-secret');
  if (registry !== '' || username !== '' || password !== '' || passwordSecret !== '') {
    if (registry === '') throw new InputError('registry', "is required with 'registry-username' and a password");
    if (username === '') throw new InputError('registry-username', `is required to log in to registry '${registry}'`);
    if ((password === '') === (passwordSecret === '')) {
      throw new InputError(
        'registry-password',
        `give exactly one of 'registry-password' (a workflow secret) and 'registry-password-secret' (the name of a secret of this step) for registry '${registry}'`,
      );
    }
    if (passwordSecret !== '' && !SECRET_NAME.test(passwordSecret))
      // Not echoed: a password pasted here by mistake must not reach the log.
      throw new InputError(
        'registry-password-secret',
        "is not a secret name (letters, digits, '_', '-', '.'); to pass the password itself use 'registry-password'",
      );
    out.push({
      registry: checkRegistry('registry', registry),
      username,
      password: password !== '' ? { value: password } : { secret: passwordSecret },
      source: password !== '' ? "input 'registry-password'" : `secret '${passwordSecret}'`,
    });
  }
  getInput(env, 'registries')
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const text = raw.trim();
      if (text === '' || text.startsWith('#')) return;
      const where = `line ${index + 1}`;
      const words = text.split(/\s+/);
      if (words.length !== 3)
        throw new InputError(
          'registries',
          `${where}: expected '<registry> <username> <password-secret-name>', found ${words.length} word(s)`,
        );
      const [host = '', user = '', secret = ''] = words;
      // The third word is not echoed: a password pasted there by mistake must not reach the log.
      if (!SECRET_NAME.test(secret))
        throw new InputError(
          'registries',
          `${where}: the third word is not a secret name (letters, digits, '_', '-', '.'); give the name of a secret of this step, not the password`,
        );
      out.push({
        registry: checkRegistry('registries', host),
        username: user,
        password: { secret },
        source: `secret '${secret}' (registries ${where})`,
      });
    });
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.registry)) throw new InputError('registries', `registry '${r.registry}' is given twice`);
    seen.add(r.registry);
  }
  return out;
}

function parseBuildSecrets(env: Env): BuildSecretSpec[] {
  const out: BuildSecretSpec[] = [];
  getInput(env, 'build-secrets')
    .split(/\r?\n/)
    .forEach((raw, index) => {
      for (const part of raw.split(',')) {
        const text = part.trim();
        if (text === '' || text.startsWith('#')) continue;
        const eq = text.indexOf('=');
        const id = (eq >= 0 ? text.slice(0, eq) : text).trim();
        const name = (eq >= 0 ? text.slice(eq + 1) : text).trim();
        // BuildKit secret ids end up as /run/secrets/<id> in the build: same rule as our names.
        if (!SECRET_NAME.test(id))
          throw new InputError(
            'build-secrets',
            `line ${index + 1}: an id may hold only letters, digits, '_', '-' and '.' (give ID=NAME with names, never a value)`,
          );
        if (!SECRET_NAME.test(name))
          throw new InputError(
            'build-secrets',
            `line ${index + 1}: the part after '=' is not a secret name (letters, digits, '_', '-', '.'); give a name, not a value`,
          );
        if (out.some((s) => s.id === id)) throw new InputError('build-secrets', `line ${index + 1}: id '${id}' is given twice`);
        out.push({ id, name, line: index + 1 });
      }
    });
  return out;
}

/** Largest uid/gid taken: 2^32 - 2 (2^32 - 1 is chown's "unchanged"). */
const MAX_ID = 4_294_967_294;

/**
 * `file-owner` (UID or UID:GID, numbers only: a name means what the image's /etc/passwd says, not
 * the runner's) and `file-mode` (FILE_MODES: never readable by others; group bits only with a GID,
 * else the runner's own group would gain them). Default mode with an owner: 0400, 0440 with a GID.
 */
export function parseFileAccess(env: Env): FileAccess | undefined {
  const owner = getInput(env, 'file-owner');
  const rawMode = getInput(env, 'file-mode');
  if (owner === '' && rawMode === '') return undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  if (owner !== '') {
    const match = /^([0-9]{1,10})(?::([0-9]{1,10}))?$/.exec(owner);
    if (!match || Number(match[1]) > MAX_ID || (match[2] !== undefined && Number(match[2]) > MAX_ID)) {
      throw new InputError(
        'file-owner',
        `'${owner}' is not UID or UID:GID in numbers (e.g. 1000 or 1000:1000, what the container runs as: \`id -u\` in the image); user names are not taken`,
      );
    }
    uid = Number(match[1]);
    gid = match[2] === undefined ? undefined : Number(match[2]);
  }
  let mode = uid === undefined ? 0o600 : gid === undefined ? 0o400 : 0o440;
  if (rawMode !== '') {
    mode = /^0?[0-7]{3}$/.test(rawMode) ? parseInt(rawMode, 8) : -1;
    if (!FILE_MODES.includes(mode)) {
      throw new InputError('file-mode', `'${rawMode}' is not one of 0400, 0440, 0600, 0640 (secret files are never readable by others)`);
    }
    if ((mode & 0o070) !== 0 && gid === undefined) {
      throw new InputError('file-mode', `'${rawMode}' lets a group read: name the group in file-owner as UID:GID`);
    }
  }
  return { ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}), mode };
}

export function parseInputs(env: Env): Config {
  // Fixed-value inputs first, whether or not they apply to this run: a typo (`scrub: redacted`)
  // fails here, in main, instead of quietly turning a safeguard off in post.
  for (const name of MAIN_BOOLEANS) getBoolean(env, name, false);
  getChoice(env, 'scrub', SCRUB_MODES, 'redact');
  const secrets = parseSecretsInput(getInput(env, 'secrets'));
  const envSecrets = parseEnvSecretsInput(getInput(env, 'env-secrets'));
  const exportEnv = getBoolean(env, 'export-env', false);
  const exportOutputs = getBoolean(env, 'export-outputs', false);
  const timeoutMs = getInteger(env, 'timeout', 30, 1, 3600) * 1000;
  const concurrency = getInteger(env, 'concurrency', 16, 1, 256);
  const retries = getInteger(env, 'retries', 4, 0, 20);

  let vault: VaultConfig | undefined;
  if (secrets.length > 0) {
    const rawUrl = getInput(env, 'url') || (env.VAULT_ADDR ?? '').trim();
    if (rawUrl === '') throw new InputError('url', 'is required when `secrets` has entries (or set VAULT_ADDR)');
    const url = parseUrl(rawUrl, getInput(env, 'url') ? 'url' : 'VAULT_ADDR');
    vault = {
      url,
      namespace: getInput(env, 'namespace').replace(/^\/+|\/+$/g, '') || undefined,
      auth: parseAuth(env),
      tls: parseTls(env),
      proxy: proxyFor(url, env),
      exportToken: getBoolean(env, 'export-token', false),
    };
  }
  const registries = parseRegistries(env);
  const buildSecrets = parseBuildSecrets(env);
  if (secrets.length === 0 && envSecrets.length === 0 && registries.length === 0) {
    throw new InputError(
      'secrets',
      'nothing to do: give `secrets` (Vault) or `env-secrets` (workflow secrets) entries, or a registry to log in to',
    );
  }

  const secretsDir = getInput(env, 'secrets-dir') || undefined;
  const fileAccess = parseFileAccess(env);
  let renew: RenewConfig | undefined;
  if (getBoolean(env, 'renew', false)) {
    if (!vault) throw new InputError('renew', 'needs Vault `secrets` entries: there is nothing to renew or re-read otherwise');
    renew = {
      refreshMs: getInteger(env, 'refresh-interval', 60, 1, 86_400) * 1000,
      onChange: getInput(env, 'on-change') || undefined,
      onChangeTimeoutMs: getInteger(env, 'on-change-timeout', 30, 1, 3600) * 1000,
      maxLifetimeMs: getInteger(env, 'agent-max-lifetime', 21_600, 1, 604_800) * 1000,
    };
  } else if (getInput(env, 'on-change') !== '') {
    throw new InputError('on-change', "takes effect only with 'renew: true'");
  }
  return {
    vault,
    secrets,
    envSecrets,
    exportEnv,
    exportOutputs,
    secretsDir,
    ...(fileAccess ? { fileAccess } : {}),
    registries,
    buildSecrets,
    renew,
    timeoutMs,
    concurrency,
    retries,
  };
}
