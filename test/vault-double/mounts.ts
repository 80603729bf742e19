// Namespaces and their mount tables, dynamic-secret roles and the cubbyhole.
// https://developer.hashicorp.com/vault/docs/enterprise/namespaces
// Each namespace has its own mount table; a namespace is chosen by the X-Vault-Namespace header
// and/or by a namespace prefix in the request path (both may be combined: header "ns1" plus path
// "team/secret/data/x" addresses namespace "ns1/team").
import type { KvSecret } from './kv.ts';
import { badRequest, type Ctx, notFound, noContent, ok, type Reply, unsupportedOperation, unsupportedPath } from './reply.ts';
import type { TokenStore } from './tokens.ts';
import { base62, parseDuration, trimSlashes, uuid } from './util.ts';

export interface DynamicRole {
  ttl: number;
  maxTtl?: number | undefined;
  renewable?: boolean | undefined;
  make?: (() => Record<string, unknown>) | undefined;
}

/** A POST-only endpoint that mints data from the request body (aws/sts/ROLE, pki/issue/ROLE, ...). */
export interface WriteRole {
  ttl?: number | undefined;
  maxTtl?: number | undefined;
  renewable?: boolean | undefined;
  /** Attach a lease (aws/sts) or not (pki/issue without generate_lease). */
  lease: boolean;
  /** GET answers too, with the query parameters as the body (aws/sts takes read and update). */
  read: boolean;
  make: (body: Record<string, unknown>) => Record<string, unknown>;
}

/** A body sent to a write role, as the double parsed it. */
export interface RecordedWrite {
  /** Full path after /v1/ without the namespace prefix, e.g. 'aws/sts/deploy'. */
  path: string;
  body: Record<string, unknown>;
  /** Namespace of the request ('' = root). */
  namespace: string;
}

export interface Mount {
  /** Mount path without trailing slash, e.g. 'secret' or 'team/kv'. */
  path: string;
  ns: string;
  type: string;
  /** KV version (only for type 'kv'). */
  version: 1 | 2 | undefined;
  description: string;
  accessor: string;
  uuid: string;
  local: boolean;
  options: Record<string, string> | null;
  kv1: Map<string, Record<string, unknown>>;
  kv2: Map<string, KvSecret>;
  roles: Map<string, DynamicRole>;
  /** Write roles by path below the mount, e.g. 'sts/deploy'. */
  writeRoles: Map<string, WriteRole>;
  /** cubbyhole: token id → path → data */
  cubby: Map<string, Map<string, Record<string, unknown>>>;
}

const DESCRIPTIONS: Record<string, string> = {
  cubbyhole: 'per-token private secret storage',
  identity: 'identity store',
  system: 'system endpoints used for control, policy and debugging',
  kv: 'key/value secret storage',
};

function newMount(ns: string, path: string, type: string, version?: 1 | 2): Mount {
  return {
    path,
    ns,
    type,
    version,
    description: DESCRIPTIONS[type] ?? '',
    accessor: `${type}_${base62(8).toLowerCase()}`,
    uuid: uuid(),
    local: type === 'cubbyhole',
    // https://developer.hashicorp.com/vault/api-docs/system/mounts — options carry the KV version.
    options: type === 'kv' && version === 2 ? { version: '2' } : null,
    kv1: new Map(),
    kv2: new Map(),
    roles: new Map(),
    writeRoles: new Map(),
    cubby: new Map(),
  };
}

export class MountTable {
  /** namespace path ('' = root) → mount path → mount */
  readonly namespaces = new Map<string, Map<string, Mount>>();
  /** Every body a write role received, in order. */
  readonly writes: RecordedWrite[] = [];

  constructor() {
    this.ensureNamespace('');
  }

  ensureNamespace(ns: string): Map<string, Mount> {
    const clean = trimSlashes(ns);
    let table = this.namespaces.get(clean);
    if (!table) {
      // Every namespace starts with its own cubbyhole, identity and sys mounts.
      table = new Map<string, Mount>();
      for (const [p, t] of [
        ['cubbyhole', 'cubbyhole'],
        ['identity', 'identity'],
        ['sys', 'system'],
      ] as const) {
        table.set(p, newMount(clean, p, t));
      }
      this.namespaces.set(clean, table);
      const parent = clean.includes('/') ? clean.slice(0, clean.lastIndexOf('/')) : '';
      if (clean !== '') this.ensureNamespace(parent);
    }
    return table;
  }

  enable(ns: string, path: string, type: string, version?: 1 | 2): Mount {
    const table = this.ensureNamespace(ns);
    const p = trimSlashes(path);
    if (!p) throw new Error('mount path must not be empty');
    const existing = table.get(p);
    if (existing) {
      if (existing.type !== type || existing.version !== version) {
        throw new Error(`path is already in use at ${p}/`);
      }
      return existing;
    }
    for (const other of table.keys()) {
      if (`${other}/`.startsWith(`${p}/`) || `${p}/`.startsWith(`${other}/`)) {
        throw new Error(`path is already in use at ${other}/`);
      }
    }
    const m = newMount(trimSlashes(ns), p, type, version);
    table.set(p, m);
    return m;
  }

  get(ns: string, path: string): Mount | undefined {
    return this.namespaces.get(trimSlashes(ns))?.get(trimSlashes(path));
  }

  /**
   * Split a request path into namespace and namespace-relative path. headerNs must exist.
   * The longest path prefix naming a child namespace wins.
   */
  resolve(headerNs: string, path: string): { ns: string; path: string } | undefined {
    const base = trimSlashes(headerNs);
    if (!this.namespaces.has(base)) return undefined;
    const segs = path.split('/');
    for (let k = segs.length - 1; k >= 1; k--) {
      const cand = [base, ...segs.slice(0, k)].filter(Boolean).join('/');
      if (this.namespaces.has(cand)) return { ns: cand, path: segs.slice(k).join('/') };
    }
    return { ns: base, path };
  }

  /** Longest mount whose path is a prefix of the namespace-relative path. */
  match(ns: string, path: string): { mount: Mount; rest: string } | undefined {
    const table = this.namespaces.get(ns);
    if (!table) return undefined;
    let best: Mount | undefined;
    for (const m of table.values()) {
      if (path === m.path || path.startsWith(`${m.path}/`)) {
        if (!best || m.path.length > best.path.length) best = m;
      }
    }
    if (!best) return undefined;
    return { mount: best, rest: path === best.path ? '' : path.slice(best.path.length + 1) };
  }

  all(ns: string): Mount[] {
    return [...(this.namespaces.get(ns)?.values() ?? [])];
  }
}

// https://developer.hashicorp.com/vault/api-docs/system/mounts#get-the-configuration-of-a-secret-engine
// Mount details as sys/mounts and sys/internal/ui/mounts print them.
export function mountInfo(m: Mount): Record<string, unknown> {
  return {
    accessor: m.accessor,
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    description: m.description,
    external_entropy_access: false,
    local: m.local,
    options: m.options,
    plugin_version: '',
    running_plugin_version: `v${VAULT_VERSION}+builtin.vault`,
    running_sha256: '',
    seal_wrap: false,
    type: m.type,
    uuid: m.uuid,
  };
}

export const VAULT_VERSION = '1.17.2';

// https://developer.hashicorp.com/vault/api-docs/secret/databases#generate-credentials
// GET <mount>/creds/<role> returns fresh credentials under a lease.
export function handleDynamic(ctx: Ctx, m: Mount, rest: string, tokens: TokenStore, tokenId: string, writes: RecordedWrite[]): Reply {
  const key = trimSlashes(rest);
  const writeRole = m.writeRoles.get(key);
  if (writeRole) return handleWrite(ctx, m, key, writeRole, tokens, tokenId, writes);
  // Role paths of engines with write roles, for a role the double was not given.
  const named = /^(issue|sign|sts|creds)\/([^/]+)$/.exec(key);
  if (named && m.type === 'pki' && named[1] !== 'sts' && named[1] !== 'creds') return badRequest(`unknown role: ${named[2] ?? ''}`);
  if (named && m.type === 'aws' && (named[1] === 'sts' || named[1] === 'creds')) return badRequest(`Role "${named[2] ?? ''}" not found`);
  const match = /^creds\/([^/]+)$/.exec(rest);
  if (!match) return unsupportedPath();
  if (ctx.op !== 'read') return unsupportedOperation();
  const roleName = match[1] ?? '';
  const role = m.roles.get(roleName);
  if (!role) return badRequest(`unknown role: ${roleName}`);
  const fullMount = m.ns ? `${m.ns}/${m.path}` : m.path;
  const lease = tokens.createLease({
    path: `${fullMount}/creds/${roleName}`,
    ttl: role.ttl,
    maxTtl: role.maxTtl,
    renewable: role.renewable,
    token: tokenId,
  });
  const data = role.make ? role.make() : { username: `v-token-${roleName}-${base62(20)}`, password: base62(20) };
  return ok(ctx, {
    lease_id: lease.id,
    renewable: lease.renewable,
    lease_duration: Math.round((lease.expireAt - lease.issuedAt) / 1000),
    data,
    mount_type: m.type,
  });
}

// https://developer.hashicorp.com/vault/api-docs/secret/aws#generate-credentials
//   GET or POST aws/sts/:name (builtin/logical/aws/path_user.go takes read and update): STS
//   credentials under a lease that cannot be renewed; `ttl` in the body (or query), default 3600.
//   An unknown role is 400 `Role "x" not found`.
// https://developer.hashicorp.com/vault/api-docs/secret/pki#generate-certificate-and-key
//   POST pki/issue/:name: no lease unless the role has generate_lease (default false, see
//   https://developer.hashicorp.com/vault/api-docs/secret/pki#create-update-role); `ttl` in the body.
//   An unknown role is 400 `unknown role: x`.
// A `make` that throws answers 400 with its message (a handler's logical.ErrorResponse).
function handleWrite(
  ctx: Ctx,
  m: Mount,
  key: string,
  role: WriteRole,
  tokens: TokenStore,
  tokenId: string,
  writes: RecordedWrite[],
): Reply {
  let body: Record<string, unknown>;
  if (ctx.op === 'update') body = ctx.body;
  else if (ctx.op === 'read' && role.read) body = Object.fromEntries(ctx.query.entries());
  else return unsupportedOperation();
  writes.push({ path: `${m.path}/${key}`, body: structuredClone(body), namespace: m.ns });
  let data: Record<string, unknown>;
  try {
    data = role.make(structuredClone(body));
  } catch (e) {
    return badRequest(e instanceof Error ? e.message : String(e));
  }
  if (!role.lease) return ok(ctx, { data, mount_type: m.type });
  const asked = body['ttl'] === undefined ? null : parseDuration(body['ttl']);
  const fullMount = m.ns ? `${m.ns}/${m.path}` : m.path;
  const lease = tokens.createLease({
    path: `${fullMount}/${key}`,
    ttl: asked && asked > 0 ? asked : (role.ttl ?? 3600),
    maxTtl: role.maxTtl,
    renewable: role.renewable ?? false,
    token: tokenId,
  });
  return ok(ctx, {
    lease_id: lease.id,
    renewable: lease.renewable,
    lease_duration: Math.round((lease.expireAt - lease.issuedAt) / 1000),
    data,
    mount_type: m.type,
  });
}

// https://developer.hashicorp.com/vault/api-docs/secret/cubbyhole
// Per-token storage: every token sees only its own cubbyhole.
export function handleCubbyhole(ctx: Ctx, m: Mount, rest: string, tokenId: string): Reply {
  let store = m.cubby.get(tokenId);
  if (!store) {
    store = new Map();
    m.cubby.set(tokenId, store);
  }
  const key = trimSlashes(rest);
  switch (ctx.op) {
    case 'read': {
      const d = store.get(key);
      return d ? ok(ctx, { data: d, mount_type: 'cubbyhole' }) : notFound();
    }
    case 'update':
      if (Object.keys(ctx.body).length === 0) return badRequest('missing data fields');
      store.set(key, ctx.body);
      return noContent();
    case 'delete':
      store.delete(key);
      return noContent();
    case 'list': {
      const keys = listChildren(store.keys(), key);
      return keys.length ? ok(ctx, { data: { keys }, mount_type: 'cubbyhole' }) : notFound();
    }
    default:
      return unsupportedOperation();
  }
}

/** Immediate children of a folder among slash-separated keys; folders end with '/'. */
export function listChildren(keys: Iterable<string>, folder: string): string[] {
  const f = trimSlashes(folder);
  const prefix = f === '' ? '' : `${f}/`;
  const out = new Set<string>();
  for (const k of keys) {
    if (!k.startsWith(prefix)) continue;
    const rest = k.slice(prefix.length);
    if (!rest) continue;
    const i = rest.indexOf('/');
    out.add(i < 0 ? rest : rest.slice(0, i + 1));
  }
  return [...out].sort();
}
