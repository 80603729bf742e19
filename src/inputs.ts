// Every input is read and checked here, once, into a readonly typed config. Nothing else reads
// INPUT_* variables. Errors name the input (and the line) and never echo a credential.
import { InputError } from './errors.ts';
import { parseEnvSecretsInput, parseSecretsInput, type EnvSecretLine, type VaultSecretLine } from './secret-spec.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export type AuthConfig =
  | { readonly method: 'token'; readonly token: string }
  | { readonly method: 'approle'; readonly mount: string; readonly roleId: string; readonly secretId: string }
  | {
      readonly method: 'jwt';
      readonly mount: string;
      readonly role: string;
      /** A JWT given directly; when absent, the job's GitHub OIDC token is requested. */
      readonly jwt: string | undefined;
      readonly audience: string | undefined;
    };

export interface VaultConfig {
  readonly url: string;
  readonly namespace: string | undefined;
  readonly auth: AuthConfig;
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
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly retries: number;
}

export const METHODS = ['token', 'approle', 'jwt'] as const;

/** Reads an input the way @actions/core does: INPUT_<NAME upper-cased, spaces to _>, trimmed. */
export function getInput(env: Env, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

function getBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = getInput(env, name);
  if (raw === '') return fallback;
  if (/^(true|True|TRUE)$/.test(raw)) return true;
  if (/^(false|False|FALSE)$/.test(raw)) return false;
  throw new InputError(name, `'${raw}' is not a boolean; use true or false`);
}

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
  const mount = getInput(env, 'mount').replace(/^\/+|\/+$/g, '') || method;
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
    default:
      throw new InputError('method', `'${method}' is not supported; use one of ${METHODS.join(', ')}`);
  }
}

export function parseInputs(env: Env): Config {
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
    vault = {
      url: parseUrl(rawUrl, getInput(env, 'url') ? 'url' : 'VAULT_ADDR'),
      namespace: getInput(env, 'namespace').replace(/^\/+|\/+$/g, '') || undefined,
      auth: parseAuth(env),
    };
  } else if (envSecrets.length === 0) {
    throw new InputError('secrets', 'nothing to do: give `secrets` (Vault) or `env-secrets` (workflow secrets) entries');
  }

  const secretsDir = getInput(env, 'secrets-dir') || undefined;
  return { vault, secrets, envSecrets, exportEnv, exportOutputs, secretsDir, timeoutMs, concurrency, retries };
}
