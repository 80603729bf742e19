// KV secrets engine, versions 1 and 2.
import type { Mount } from './mounts.ts';
import { listChildren } from './mounts.ts';
import { badRequest, type Ctx, envelope, noContent, notFound, ok, type Reply, unsupportedOperation } from './reply.ts';
import { isRecord, parseDuration, rfc3339, trimSlashes } from './util.ts';

export interface KvVersion {
  data: Record<string, unknown> | null;
  createdTime: number;
  deletionTime: number | null;
  destroyed: boolean;
}

export interface KvSecret {
  versions: Map<number, KvVersion>;
  current: number;
  oldest: number;
  createdTime: number;
  updatedTime: number;
  customMetadata: Record<string, string> | null;
  maxVersions: number;
  casRequired: boolean;
}

/** Mount-wide default max_versions of KV v2. */
const DEFAULT_MAX_VERSIONS = 10;

function secretKey(p: string): string {
  return trimSlashes(p);
}

// ---- direct (test-side) operations ------------------------------------------------------

export function writeV2(m: Mount, path: string, data: Record<string, unknown>): KvVersion & { version: number } {
  const key = secretKey(path);
  const now = Date.now();
  let s = m.kv2.get(key);
  if (!s) {
    s = {
      versions: new Map(),
      current: 0,
      oldest: 0,
      createdTime: now,
      updatedTime: now,
      customMetadata: null,
      maxVersions: 0,
      casRequired: false,
    };
    m.kv2.set(key, s);
  }
  const version = s.current + 1;
  const v: KvVersion = { data: structuredClone(data), createdTime: now, deletionTime: null, destroyed: false };
  s.versions.set(version, v);
  s.current = version;
  s.updatedTime = now;
  if (s.oldest === 0) s.oldest = version;
  // Versions beyond max_versions are permanently removed, oldest first.
  const max = s.maxVersions > 0 ? s.maxVersions : DEFAULT_MAX_VERSIONS;
  while (s.versions.size > max) {
    s.versions.delete(s.oldest);
    s.oldest += 1;
  }
  return { ...v, version };
}

export function writeV1(m: Mount, path: string, data: Record<string, unknown>): void {
  m.kv1.set(secretKey(path), structuredClone(data));
}

function versionOf(m: Mount, path: string, version: number): KvVersion {
  const s = m.kv2.get(secretKey(path));
  const v = s?.versions.get(version);
  if (!v) throw new Error(`no version ${version} at ${m.path}/${secretKey(path)}`);
  return v;
}

export function softDelete(m: Mount, path: string, version: number): void {
  const v = versionOf(m, path, version);
  if (v.deletionTime === null) v.deletionTime = Date.now();
}

export function destroy(m: Mount, path: string, version: number): void {
  const v = versionOf(m, path, version);
  v.destroyed = true;
  v.data = null;
}

/** Existence check Vault runs to tell 'create' from 'update' for POST/PUT. */
export function kvExists(m: Mount, rest: string): boolean {
  if (m.version === 2) {
    const mm = /^(data|metadata|delete|undelete|destroy)\/(.+)$/.exec(rest);
    return mm ? m.kv2.has(secretKey(mm[2] ?? '')) : rest === 'config';
  }
  return m.kv1.has(secretKey(rest));
}

// ---- HTTP -----------------------------------------------------------------------------

function versionMetadata(s: KvSecret, n: number, v: KvVersion): Record<string, unknown> {
  return {
    created_time: rfc3339(v.createdTime),
    custom_metadata: s.customMetadata,
    deletion_time: v.deletionTime === null ? '' : rfc3339(v.deletionTime),
    destroyed: v.destroyed,
    version: n,
  };
}

export function handleKv(ctx: Ctx, m: Mount, rest: string): Reply {
  return m.version === 2 ? handleV2(ctx, m, rest) : handleV1(ctx, m, rest);
}

// https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1
function handleV1(ctx: Ctx, m: Mount, rest: string): Reply {
  const key = secretKey(rest);
  switch (ctx.op) {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#read-secret
    // data is the stored map; lease_duration is a refresh hint (768h, or the secret's "ttl").
    case 'read': {
      const d = m.kv1.get(key);
      if (!d) return notFound();
      const ttl = parseDuration(d['ttl']);
      return ok(ctx, { data: structuredClone(d), lease_duration: ttl ?? 768 * 3600, mount_type: 'kv' });
    }
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#create-update-secret
    case 'update':
      if (!key) return badRequest('missing path');
      if (Object.keys(ctx.body).length === 0) return badRequest('missing data fields');
      writeV1(m, key, ctx.body);
      return noContent();
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#delete-secret
    case 'delete':
      m.kv1.delete(key);
      return noContent();
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#list-secrets
    case 'list': {
      const keys = listChildren(m.kv1.keys(), key);
      return keys.length ? ok(ctx, { data: { keys }, mount_type: 'kv' }) : notFound();
    }
    default:
      return unsupportedOperation();
  }
}

/** A 404 whose body is a full response (logical.RespondWithStatusCode), not {"errors":[]}. */
function rawNotFound(ctx: Ctx, p: { data?: unknown; warnings?: string[] }): Reply {
  return { status: 404, body: envelope(ctx.requestId, p) };
}

// https://github.com/hashicorp/vault-plugin-secrets-kv/blob/main/backend.go (pathInvalid)
function invalidV2Path(ctx: Ctx, rest: string): Reply {
  if (['metadata', 'data', 'delete', 'undelete', 'destroy'].includes(rest)) {
    return rawNotFound(ctx, { warnings: ['Non-listing operations on the root of a K/V v2 mount are not supported.'] });
  }
  const sub = { read: 'get', list: 'list', delete: 'delete', patch: 'patch', update: 'put' }[ctx.op];
  return rawNotFound(ctx, {
    warnings: [
      `Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ${sub}' for this operation.`,
    ],
  });
}

function versionsParam(body: Record<string, unknown>): number[] | null {
  const raw = body['versions'];
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : typeof raw === 'number' ? [raw] : null;
  if (!list || list.length === 0) return null;
  const out = list.map((x) => Number(x));
  return out.every((n) => Number.isInteger(n) && n > 0) ? out : null;
}

// https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2
function handleV2(ctx: Ctx, m: Mount, rest: string): Reply {
  if (rest === 'config') {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-kv-engine-configuration
    if (ctx.op === 'read') {
      return ok(ctx, { data: { cas_required: false, delete_version_after: '0s', max_versions: 0 }, mount_type: 'kv' });
    }
    if (ctx.op === 'update') return noContent();
    return unsupportedOperation();
  }
  if (ctx.op === 'list' && (rest === 'metadata' || rest.startsWith('metadata/'))) {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#list-secrets
    const keys = listChildren(m.kv2.keys(), rest.slice('metadata'.length));
    return keys.length ? ok(ctx, { data: { keys }, mount_type: 'kv' }) : notFound();
  }
  const mm = /^(data|metadata|delete|undelete|destroy)\/(.*[^/])$/.exec(rest);
  if (!mm) return invalidV2Path(ctx, rest);
  const kind = mm[1] ?? '';
  const key = secretKey(mm[2] ?? '');
  const s = m.kv2.get(key);

  if (kind === 'data') {
    switch (ctx.op) {
      case 'read':
        return readV2(ctx, s);
      case 'update':
        return writeV2Api(ctx, m, key, s);
      case 'patch':
        return patchV2(ctx, m, key, s);
      // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#delete-latest-version-of-secret
      case 'delete':
        if (s) {
          const v = s.versions.get(s.current);
          if (v && v.deletionTime === null) v.deletionTime = Date.now();
        }
        return noContent();
      default:
        return unsupportedOperation();
    }
  }
  if (kind === 'metadata') {
    switch (ctx.op) {
      // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-metadata
      case 'read': {
        if (!s) return notFound();
        const versions: Record<string, unknown> = {};
        for (const [n, v] of s.versions) {
          versions[String(n)] = {
            created_time: rfc3339(v.createdTime),
            deletion_time: v.deletionTime === null ? '' : rfc3339(v.deletionTime),
            destroyed: v.destroyed,
          };
        }
        return ok(ctx, {
          data: {
            cas_required: s.casRequired,
            created_time: rfc3339(s.createdTime),
            current_version: s.current,
            custom_metadata: s.customMetadata,
            delete_version_after: '0s',
            max_versions: s.maxVersions,
            oldest_version: s.oldest,
            updated_time: rfc3339(s.updatedTime),
            versions,
          },
          mount_type: 'kv',
        });
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-metadata
      case 'update': {
        const target =
          s ??
          ({
            versions: new Map(),
            current: 0,
            oldest: 0,
            createdTime: Date.now(),
            updatedTime: Date.now(),
            customMetadata: null,
            maxVersions: 0,
            casRequired: false,
          } satisfies KvSecret);
        const cm = ctx.body['custom_metadata'];
        if (isRecord(cm)) target.customMetadata = Object.fromEntries(Object.entries(cm).map(([k, v]) => [k, String(v)]));
        if (typeof ctx.body['max_versions'] === 'number') target.maxVersions = ctx.body['max_versions'];
        if (typeof ctx.body['cas_required'] === 'boolean') target.casRequired = ctx.body['cas_required'];
        m.kv2.set(key, target);
        return noContent();
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#delete-metadata-and-all-versions
      case 'delete':
        m.kv2.delete(key);
        return noContent();
      default:
        return unsupportedOperation();
    }
  }
  // delete / undelete / destroy: POST with {"versions": [...]}
  // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#delete-secret-versions
  // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#undelete-secret-versions
  // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#destroy-secret-versions
  if (ctx.op !== 'update') return unsupportedOperation();
  const versions = versionsParam(ctx.body);
  if (!versions) return badRequest('no version number provided');
  for (const n of versions) {
    const v = s?.versions.get(n);
    if (!v) continue;
    if (kind === 'delete' && v.deletionTime === null && !v.destroyed) v.deletionTime = Date.now();
    if (kind === 'undelete' && !v.destroyed) v.deletionTime = null;
    if (kind === 'destroy') {
      v.destroyed = true;
      v.data = null;
    }
  }
  return noContent();
}

// https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version
function readV2(ctx: Ctx, s: KvSecret | undefined): Reply {
  if (!s) return notFound();
  const raw = ctx.query.get('version');
  let n = s.current;
  if (raw !== null && raw !== '') {
    const parsed = Number(raw);
    if (!Number.isInteger(parsed)) {
      return badRequest(
        `error converting input ${raw} for field "version": cannot parse '' as int: strconv.ParseInt: parsing "${raw}": invalid syntax`,
      );
    }
    if (parsed > 0) n = parsed;
  }
  const v = s.versions.get(n);
  if (!v) return notFound();
  const metadata = versionMetadata(s, n, v);
  // A deleted or destroyed version answers 404 with its metadata and data: null
  // (path_data.go: logical.RespondWithStatusCode(resp, req, http.StatusNotFound)).
  if ((v.deletionTime !== null && v.deletionTime <= Date.now()) || v.destroyed) {
    return rawNotFound(ctx, { data: { data: null, metadata } });
  }
  return ok(ctx, { data: { data: structuredClone(v.data), metadata }, mount_type: 'kv' });
}

function casCheck(ctx: Ctx, s: KvSecret | undefined): Reply | null {
  const options = ctx.body['options'];
  const cas = isRecord(options) ? options['cas'] : undefined;
  if (cas !== undefined) {
    const n = Number(cas);
    if (!Number.isInteger(n)) return badRequest('error parsing check-and-set parameter');
    if (n !== (s?.current ?? 0)) return badRequest('check-and-set parameter did not match the current version');
  } else if (s?.casRequired) {
    return badRequest('check-and-set parameter required for this call');
  }
  return null;
}

// https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-secret
function writeV2Api(ctx: Ctx, m: Mount, key: string, s: KvSecret | undefined): Reply {
  const data = ctx.body['data'];
  if (data === undefined || data === null) return badRequest('no data provided');
  if (!isRecord(data))
    return badRequest(`error converting input for field "data": '' expected a map, got '${Array.isArray(data) ? 'slice' : typeof data}'`);
  const casErr = casCheck(ctx, s);
  if (casErr) return casErr;
  const v = writeV2(m, key, data);
  const secret = m.kv2.get(key);
  return ok(ctx, {
    data: {
      created_time: rfc3339(v.createdTime),
      custom_metadata: secret?.customMetadata ?? null,
      deletion_time: '',
      destroyed: false,
      version: v.version,
    },
    mount_type: 'kv',
  });
}

// https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#patch-secret
// JSON merge patch of the current version into a new version; needs the merge-patch content type.
function patchV2(ctx: Ctx, m: Mount, key: string, s: KvSecret | undefined): Reply {
  if (!ctx.contentType.startsWith('application/merge-patch+json')) {
    return {
      status: 415,
      body: { errors: [`PATCH requires Content-Type of application/merge-patch+json, got "${ctx.contentType}"`] },
    };
  }
  const patch = ctx.body['data'];
  if (!isRecord(patch)) return badRequest('no data provided');
  if (!s) return notFound();
  const cur = s.versions.get(s.current);
  if (!cur || cur.destroyed || cur.data === null || (cur.deletionTime !== null && cur.deletionTime <= Date.now())) {
    return notFound();
  }
  const casErr = casCheck(ctx, s);
  if (casErr) return casErr;
  const merged: Record<string, unknown> = structuredClone(cur.data);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  const v = writeV2(m, key, merged);
  return ok(ctx, {
    data: {
      created_time: rfc3339(v.createdTime),
      custom_metadata: s.customMetadata,
      deletion_time: '',
      destroyed: false,
      version: v.version,
    },
    mount_type: 'kv',
  });
}
