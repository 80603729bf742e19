// Works out how to read each path: which mount it is on and, for KV, which version, so a user can
// write `secret/app` or `secret/data/app` for KV v2 alike. One lookup per mount, not per path.
import { SecretError, VaultError } from '../core/errors.ts';
import { mapLimit } from '../core/pool.ts';
import type { VaultClient, VaultResponse } from './client.ts';

export interface MountInfo {
  /** Mount path with a trailing slash, e.g. `secret/`; undefined when Vault would not say. */
  readonly mount: string | undefined;
  readonly type: string | undefined;
  readonly kvVersion: 1 | 2 | undefined;
}

const UNKNOWN: MountInfo = { mount: undefined, type: undefined, kvVersion: undefined };

// GET /v1/sys/internal/ui/mounts/:path names the mount a path is on and its options
// (https://developer.hashicorp.com/vault/api-docs/system/internal-ui-mounts#get-single-mount-details);
// the token needs some capability on the path, not on sys/. The Vault CLI makes the same preflight.
async function lookupMount(client: VaultClient, path: string): Promise<MountInfo> {
  let response: VaultResponse;
  try {
    response = await client.read(`sys/internal/ui/mounts/${path}`);
  } catch (error) {
    // 403/404: an older Vault or a policy without access to the preflight; read the path as written.
    if (error instanceof VaultError && (error.status === 403 || error.status === 404)) return UNKNOWN;
    throw error;
  }
  const data = response.data ?? {};
  const mount = typeof data.path === 'string' && data.path !== '' ? data.path.replace(/\/*$/, '/') : undefined;
  const type = typeof data.type === 'string' ? data.type : undefined;
  const options = (data.options ?? {}) as Record<string, unknown>;
  // Vault sends the version as a string ("2"); a number is taken too, anything else is version 1.
  const kvVersion = type === 'kv' || type === 'generic' ? (options.version === '2' || options.version === 2 ? 2 : 1) : undefined;
  return { mount, type, kvVersion };
}

/** Mount info for every path: one lookup per first path segment, a second only for nested mounts. */
export async function resolveMounts(client: VaultClient, paths: readonly string[], concurrency: number): Promise<Map<string, MountInfo>> {
  const result = new Map<string, MountInfo>();
  const groups = new Map<string, string[]>();
  for (const path of new Set(paths)) {
    const head = path.split('/')[0] ?? path;
    groups.set(head, [...(groups.get(head) ?? []), path]);
  }
  const firsts = await mapLimit([...groups.values()], concurrency, (group) => lookupMount(client, group[0] ?? ''));
  const again: string[] = [];
  [...groups.values()].forEach((group, index) => {
    const info = firsts[index] ?? UNKNOWN;
    for (const path of group) {
      if (info.mount === undefined ? path === group[0] : `${path}/`.startsWith(info.mount)) result.set(path, info);
      else again.push(path);
    }
  });
  const seconds = await mapLimit(again, concurrency, (path) => lookupMount(client, path));
  again.forEach((path, index) => result.set(path, seconds[index] ?? UNKNOWN));
  return result;
}

export interface ReadPlan {
  readonly path: string;
  readonly version: number | undefined;
  readonly line: number;
}

export interface ReadResult {
  readonly readPath: string;
  readonly kvVersion: 1 | 2 | undefined;
  /** The key/value map of the secret. */
  readonly data: Record<string, unknown>;
  /** KV v2 version read. */
  readonly version: number | undefined;
  readonly leaseId: string | undefined;
  readonly leaseDuration: number | undefined;
  readonly renewable: boolean;
}

/** The API path to GET for a user's path, given its mount. */
export function apiPath(plan: ReadPlan, info: MountInfo): string {
  if (info.kvVersion === 2 && info.mount !== undefined) {
    const relative = `${plan.path}/`.slice(info.mount.length).replace(/\/$/, '');
    return relative.startsWith('data/') ? plan.path : `${info.mount}data/${relative}`;
  }
  return plan.path;
}

/**
 * True when the path already names the KV v2 API form `<mount>/data/<path>` for a first-segment
 * mount, as vault-action users write it: `data` right after the mount. A `data` segment further
 * in (`secret/team/data/creds`) is part of the secret's own path; only the mount lookup can say.
 */
export function isExplicitDataPath(path: string): boolean {
  const segments = path.split('/');
  return segments.length > 2 && segments[1] === 'data';
}

/**
 * GETs an API path; with `?version=` when pinned. `retrySafe` says whether a retry after a reset
 * or timeout is harmless: true for KV reads only (a GET on another engine may mint a credential).
 */
export function readRaw(
  client: VaultClient,
  readPath: string,
  version: number | undefined,
  retrySafe: boolean | (() => Promise<boolean>) = false,
): Promise<VaultResponse> {
  return client.read(readPath, version !== undefined ? { version: String(version) } : undefined, retrySafe);
}

/** Reads what the user asked for, once the mount is known. */
export async function readSecret(client: VaultClient, plan: ReadPlan, info: MountInfo): Promise<ReadResult> {
  const readPath = apiPath(plan, info);
  return interpret(plan, readPath, await readRaw(client, readPath, plan.version, info.kvVersion !== undefined), info);
}

/** Why a KV v2 read found no data: the version was deleted (undeletable) or destroyed. */
export function deletedVersionText(
  readPath: string,
  state: { version: number | undefined; deletionTime: string | undefined; destroyed: boolean },
): string {
  const which = state.version !== undefined ? `version ${state.version} of ${readPath}` : `the requested version of ${readPath}`;
  return state.destroyed
    ? `${which} was destroyed; pin another with ?version=N`
    : `${which} was deleted at ${state.deletionTime ?? 'an unknown time'}; undelete it or pin another with ?version=N`;
}

/** Picks the key/value map out of a read: KV v2 nests it in data.data beside data.metadata. */
export function interpret(plan: ReadPlan, readPath: string, response: VaultResponse, info: MountInfo): ReadResult {
  if (plan.version !== undefined && info.kvVersion === 1) {
    throw new SecretError(`secrets line ${plan.line}: '${plan.path}' is on a KV v1 mount, which has no versions; drop '?version='`);
  }
  const data = response.data ?? {};
  // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version
  const looksV2 = isRecord(data.data) && isRecord(data.metadata);
  const kvVersion = info.kvVersion ?? (looksV2 ? 2 : undefined);
  if (kvVersion === 2 && !isRecord(data.data)) {
    const meta = isRecord(data.metadata) ? data.metadata : {};
    const deletionTime = typeof meta.deletion_time === 'string' && meta.deletion_time !== '' ? meta.deletion_time : undefined;
    if (meta.destroyed === true || deletionTime !== undefined) {
      const version = typeof meta.version === 'number' ? meta.version : undefined;
      throw new SecretError(
        `secrets line ${plan.line}: ${deletedVersionText(readPath, { version, deletionTime, destroyed: meta.destroyed === true })}`,
      );
    }
    throw new SecretError(`secrets line ${plan.line}: '${readPath}' holds no data (deleted or destroyed version?)`);
  }
  const map = kvVersion === 2 ? (data.data as Record<string, unknown>) : data;
  const metadata = kvVersion === 2 && isRecord(data.metadata) ? data.metadata : {};
  return {
    readPath,
    kvVersion,
    data: map,
    version: typeof metadata.version === 'number' ? metadata.version : undefined,
    leaseId: typeof response.lease_id === 'string' && response.lease_id !== '' ? response.lease_id : undefined,
    leaseDuration: typeof response.lease_duration === 'number' ? response.lease_duration : undefined,
    renewable: response.renewable === true,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
