// A small Vault client: node-vault builds the requests (paths, token and namespace headers, error
// mapping) over our transport (retries, TLS, deadline). Errors become VaultError naming the
// operation and path; response bodies never reach a message.
import type NodeVault from 'node-vault';
import { VaultError } from '../core/errors.ts';
import type { TlsConfig } from '../inputs/main.ts';
import { TransportError } from './exchange.ts';
import { answeredAfterUncertainTry, createTransport, type TransportOptions } from './transport.ts';

export interface VaultResponse {
  data?: Record<string, unknown> | null;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
  auth?: {
    client_token?: string;
    accessor?: string;
    policies?: string[];
    lease_duration?: number;
    renewable?: boolean;
    token_type?: string;
  } | null;
  warnings?: string[] | null;
}

export interface VaultClientOptions extends TransportOptions {
  readonly url: string;
  readonly namespace: string | undefined;
}

/** Transport TLS options from the action's TLS inputs. */
export function tlsOptions(tls: TlsConfig): NonNullable<TransportOptions['tls']> {
  const out: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean } = {};
  if (tls.ca !== undefined) out.ca = tls.ca;
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  if (tls.skipVerify) out.rejectUnauthorized = false;
  return out;
}

export interface VaultClient {
  token: string | undefined;
  /** `retrySafe`: the caller knows this GET is a plain read (KV), so a retry cannot mint anything. */
  read(path: string, query?: Record<string, string>, retrySafe?: boolean | (() => Promise<boolean>)): Promise<VaultResponse>;
  write(path: string, body: Record<string, unknown>): Promise<VaultResponse | undefined>;
  revokeSelf(): Promise<void>;
  /** Starts no request or retry from now on; those in flight may still answer. */
  cancel(reason: string): void;
  close(): void;
}

// node-vault's typings lag its runtime (no namespace/pathPrefix, token not optional): our view of it.
interface NodeVaultClient {
  token: string | undefined;
  namespace: string | undefined;
  pathPrefix: string;
  request(options: { path: string; method: string; json?: unknown; retrySafe?: boolean | (() => Promise<boolean>) }): Promise<unknown>;
  write(path: string, data: unknown): Promise<unknown>;
  tokenRevokeSelf(): Promise<unknown>;
}

interface ApiResponseError extends Error {
  response?: { statusCode?: number; body?: { errors?: unknown[]; data?: unknown } };
}

export type VaultClientFactory = (options: VaultClientOptions) => VaultClient;

/** Loads node-vault (a separate bundle) and returns a factory of clients built on it. */
export async function loadVaultClient(): Promise<VaultClientFactory> {
  const nodeVault = (await import('./node-vault.ts')).default;
  return (options) => createVaultClient(nodeVault, options);
}

function createVaultClient(nodeVault: typeof NodeVault, options: VaultClientOptions): VaultClient {
  const transport = createTransport(options);
  const vault = nodeVault({
    endpoint: options.url,
    // Our transport replaces node-vault's axios one (see transport.ts).
    'request-promise': transport.rp,
    // node-vault's own debug output prints request bodies, which carry credentials: silence it.
    debug: () => {},
  }) as unknown as NodeVaultClient;
  // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE / VAULT_PREFIX from the environment;
  // this action decides those from its inputs only.
  vault.token = undefined;
  vault.namespace = options.namespace;
  vault.pathPrefix = '';

  async function call<T>(method: string, path: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw toVaultError(method, path, error);
    }
  }

  return {
    get token() {
      return vault.token;
    },
    set token(value: string | undefined) {
      vault.token = value;
    },
    read(path, query, retrySafe) {
      const qs = query && Object.keys(query).length > 0 ? `?${new URLSearchParams(query).toString()}` : '';
      return call(
        'GET',
        path,
        () =>
          vault.request({
            path: `/${path}${qs}`,
            method: 'GET',
            ...(retrySafe !== undefined ? { retrySafe } : {}),
          }) as Promise<VaultResponse>,
      );
    },
    write(path, body) {
      return call('POST', path, () => vault.write(path, body) as Promise<VaultResponse | undefined>);
    },
    async revokeSelf() {
      await call('POST', 'auth/token/revoke-self', () => vault.tokenRevokeSelf());
    },
    cancel: (reason) => transport.cancel(reason),
    close: () => transport.close(),
  };
}

export function toVaultError(method: string, path: string, error: unknown): VaultError {
  if (error instanceof VaultError) return error;
  if (error instanceof TransportError) {
    const transportError = new VaultError(path, `${method} ${path}: ${error.message}`, undefined, { cause: error });
    transportError.afterUncertainTry = error.mayHaveActed;
    return transportError;
  }
  const api = error as ApiResponseError;
  const status = api?.response?.statusCode;
  if (typeof status === 'number') {
    const errors = api.response?.body?.errors;
    // Vault's error strings describe the failure (e.g. "permission denied"); they are not values.
    const detail = Array.isArray(errors) && errors.length > 0 ? flattenErrors(errors) : statusText(status);
    const vaultError = new VaultError(path, `${method} ${path}: Vault answered ${status} ${detail}`, status);
    vaultError.afterUncertainTry = answeredAfterUncertainTry(api.response?.body);
    const kv = status === 404 ? kvVersionState(api.response?.body?.data) : undefined;
    if (kv) vaultError.kv = kv;
    return vaultError;
  }
  return new VaultError(path, `${method} ${path}: ${error instanceof Error ? error.message : String(error)}`);
}

/**
 * A deleted or destroyed KV v2 version comes back as 404 with the full envelope and no errors:
 * data.data null beside metadata naming the version, its deletion_time or destroyed. Only these
 * three fields are kept (custom_metadata is the user's and stays out of messages).
 */
function kvVersionState(data: unknown): VaultError['kv'] {
  if (data === null || typeof data !== 'object') return undefined;
  const { data: inner, metadata } = data as { data?: unknown; metadata?: unknown };
  if (inner !== null || metadata === null || typeof metadata !== 'object') return undefined;
  const m = metadata as { version?: unknown; deletion_time?: unknown; destroyed?: unknown };
  const deletionTime = typeof m.deletion_time === 'string' && m.deletion_time !== '' ? m.deletion_time : undefined;
  if (m.destroyed !== true && deletionTime === undefined) return undefined;
  return { version: typeof m.version === 'number' ? m.version : undefined, deletionTime, destroyed: m.destroyed === true };
}

/**
 * Vault joins several errors with go-multierror's layout ("1 error occurred:\n\t* permission
 * denied\n\n"); a message must stay on one line, so keep the items and drop the framing.
 */
export function flattenErrors(errors: unknown[]): string {
  const items: string[] = [];
  for (const error of errors) {
    const text = String(error);
    const bullets = [...text.matchAll(/^\s*\*\s+(.+)$/gm)].map((m) => (m[1] ?? '').trim());
    items.push(...(/^\d+ errors? occurred:/.test(text.trim()) && bullets.length > 0 ? bullets : [text.replace(/\s+/g, ' ').trim()]));
  }
  return [...new Set(items.filter((item) => item !== ''))].join('; ');
}

function statusText(status: number): string {
  switch (status) {
    case 400:
      return 'bad request';
    case 403:
      return 'permission denied';
    case 404:
      return 'not found';
    case 429:
      return 'rate limited';
    default:
      return 'error';
  }
}
