// sys/* endpoints: health, internal UI mounts, leases and response wrapping.
import type { AuthMethods } from './auth.ts';
import { mountInfo, type MountTable, VAULT_VERSION } from './mounts.ts';
import type { PolicyStore } from './policies.ts';
import {
  badRequest,
  type Ctx,
  envelope,
  errorReply,
  noContent,
  ok,
  permissionDenied,
  type Reply,
  unsupportedOperation,
  unsupportedPath,
} from './reply.ts';
import type { TokenEntry, TokenStore } from './tokens.ts';
import { parseDuration } from './util.ts';

export interface SysDeps {
  mounts: MountTable;
  auth: AuthMethods;
  tokens: TokenStore;
  policies: PolicyStore;
}

/** Path as the token's policies see it, or null when the token's namespace does not contain it. */
export function policyPath(entry: TokenEntry, ns: string, rel: string): string | null {
  const full = ns ? `${ns}/${rel}` : rel;
  if (!entry.ns) return full;
  if (full === entry.ns) return '';
  return full.startsWith(`${entry.ns}/`) ? full.slice(entry.ns.length + 1) : null;
}

// https://developer.hashicorp.com/vault/api-docs/system/health
// Unauthenticated; answered without the usual envelope.
export function handleHealth(ctx: Ctx): Reply {
  if (ctx.op !== 'read') return unsupportedOperation();
  return {
    status: 200,
    body: {
      initialized: true,
      sealed: false,
      standby: false,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(Date.now() / 1000),
      version: VAULT_VERSION,
      enterprise: false,
      cluster_name: 'vault-double',
      cluster_id: '00000000-0000-0000-0000-000000000000',
      echo_duration_ms: 0,
      clock_skew_ms: 0,
    },
  };
}

// https://developer.hashicorp.com/vault/api-docs/system/internal-ui-mounts
export function handleUiMounts(ctx: Ctx, d: SysDeps): Reply {
  if (ctx.op !== 'read') return unsupportedOperation();
  const entry = d.tokens.active(ctx.token);
  const accessible = (e: TokenEntry, ns: string, mountPath: string): boolean => {
    const p = policyPath(e, ns, `${mountPath}/`);
    return p !== null && d.policies.hasMountAccess(e.policies, p);
  };

  // "Get available visible mounts": unauthenticated; with a valid token, the mounts it can use.
  if (ctx.path === 'sys/internal/ui/mounts') {
    const secret: Record<string, unknown> = {};
    const auth: Record<string, unknown> = {};
    if (entry) {
      for (const m of d.mounts.all(ctx.ns)) {
        if (m.type !== 'system' && m.type !== 'identity' && accessible(entry, ctx.ns, m.path)) secret[`${m.path}/`] = mountInfo(m);
      }
      for (const a of d.auth.mounts.values()) {
        if (accessible(entry, ctx.ns, `auth/${a.path}`)) {
          auth[`${a.path}/`] = { type: a.type, description: '', accessor: a.accessor, uuid: a.uuid, options: null };
        }
      }
    }
    return ok(ctx, { data: { auth, secret }, mount_type: 'system' });
  }

  // "Get single mount details" (vault/logical_system.go pathInternalUIMountRead):
  // the mount matching the path, if the token's policies grant anything below it. An unknown
  // mount answers the same 403 as a forbidden one, so the endpoint cannot probe for mounts.
  const raw = ctx.path.slice('sys/internal/ui/mounts/'.length);
  if (!raw) return badRequest('path not set');
  if (!entry) return permissionDenied();
  const sanitized = raw.endsWith('/') ? raw : `${raw}/`;
  const preflight = errorReply(
    403,
    `preflight capability check returned 403, please ensure client's policies grant access to path "${sanitized}"`,
  );
  const where = d.mounts.resolve(ctx.ns, raw.replace(/\/$/, ''));
  const hit = where ? d.mounts.match(where.ns, where.path) : undefined;
  if (!where || !hit) return preflight;
  if (!accessible(entry, where.ns, hit.mount.path)) return preflight;
  const data = mountInfo(hit.mount);
  data['path'] = where.ns !== ctx.ns ? `${where.ns}/${hit.mount.path}/` : `${hit.mount.path}/`;
  return ok(ctx, { data, mount_type: 'system' });
}

function leaseIdFrom(ctx: Ctx, prefix: string): string {
  const fromPath = ctx.path.length > prefix.length ? ctx.path.slice(prefix.length + 1) : '';
  const fromBody = ctx.body['lease_id'];
  return fromPath || (typeof fromBody === 'string' ? fromBody : '');
}

// https://developer.hashicorp.com/vault/api-docs/system/leases
export function handleLeases(ctx: Ctx, d: SysDeps): Reply {
  const p = ctx.path;
  if (ctx.op !== 'update') return unsupportedOperation();
  const renewPrefix = p.startsWith('sys/leases/renew') ? 'sys/leases/renew' : p.startsWith('sys/renew') ? 'sys/renew' : '';
  const revokePrefix = p.startsWith('sys/leases/revoke') ? 'sys/leases/revoke' : p.startsWith('sys/revoke') ? 'sys/revoke' : '';
  // https://developer.hashicorp.com/vault/api-docs/system/leases#renew-lease
  if (renewPrefix && (p === renewPrefix || p.startsWith(`${renewPrefix}/`))) {
    const id = leaseIdFrom(ctx, renewPrefix);
    if (!id) return badRequest('lease_id must be specified');
    const raw = ctx.body['increment'];
    const inc = raw === undefined ? null : parseDuration(raw);
    if (raw !== undefined && inc === null) return badRequest(`error converting input ${String(raw)} for field "increment"`);
    const r = d.tokens.renewLease(id, inc);
    if (!r.ok) return badRequest(r.error);
    return ok(ctx, {
      lease_id: id,
      renewable: r.lease?.renewable ?? true,
      lease_duration: r.ttl,
      warnings: r.warnings,
      mount_type: 'system',
    });
  }
  // https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-lease
  if (
    revokePrefix &&
    !p.startsWith('sys/leases/revoke-prefix') &&
    !p.startsWith('sys/leases/revoke-force') &&
    (p === revokePrefix || p.startsWith(`${revokePrefix}/`))
  ) {
    const id = leaseIdFrom(ctx, revokePrefix);
    if (!id) return badRequest('lease_id must be specified');
    d.tokens.revokeLease(id);
    return noContent();
  }
  // https://developer.hashicorp.com/vault/api-docs/system/leases#read-lease
  if (p === 'sys/leases/lookup') {
    const id = typeof ctx.body['lease_id'] === 'string' ? ctx.body['lease_id'] : '';
    if (!id) return badRequest('lease_id must be specified');
    const data = d.tokens.leaseLookup(id);
    return data ? ok(ctx, { data, mount_type: 'system' }) : badRequest('invalid lease');
  }
  return unsupportedPath();
}

export function isLeasePath(p: string): boolean {
  return /^sys\/(leases\/(renew|revoke|lookup)|renew|revoke)(\/|$)/.test(p);
}

// https://developer.hashicorp.com/vault/api-docs/system/wrapping-unwrap
// The wrapping token goes in X-Vault-Token (no other token needed) or in the body "token" field
// with any valid client token. Single use; afterwards 400 "wrapping token is not valid or does
// not exist". Sending the same wrapping token in both places spends it on authentication first.
export function handleUnwrap(ctx: Ctx, d: SysDeps): Reply {
  if (ctx.op !== 'update') return unsupportedOperation();
  const invalid = badRequest('wrapping token is not valid or does not exist');
  const bodyToken = typeof ctx.body['token'] === 'string' ? ctx.body['token'] : '';
  let wrapping: string;
  if (bodyToken) {
    if (ctx.token && ctx.token === bodyToken) {
      d.tokens.consumeWrap(bodyToken);
      return invalid;
    }
    if (ctx.token && !d.tokens.active(ctx.token) && !d.tokens.activeWrap(ctx.token)) {
      return errorReply(403, 'permission denied', 'invalid token');
    }
    wrapping = bodyToken;
  } else {
    if (!ctx.token) return errorReply(403, 'missing client token');
    wrapping = ctx.token;
  }
  const response = d.tokens.consumeWrap(wrapping);
  if (!response) return invalid;
  return { status: 200, body: { ...response, request_id: ctx.requestId } };
}

// https://developer.hashicorp.com/vault/api-docs/system/wrapping-lookup
export function handleWrapLookup(ctx: Ctx, d: SysDeps): Reply {
  if (ctx.op !== 'update' && ctx.op !== 'read') return unsupportedOperation();
  const bodyToken = typeof ctx.body['token'] === 'string' ? ctx.body['token'] : '';
  const w = d.tokens.activeWrap(bodyToken || ctx.token);
  if (!w) return badRequest('wrapping token is not valid or does not exist');
  return ok(ctx, {
    data: { creation_path: w.creationPath, creation_time: new Date(w.createdAt).toISOString(), creation_ttl: w.ttl },
    mount_type: 'system',
  });
}

/** Replace a successful response by its wrapped form (X-Vault-Wrap-TTL). */
export function wrapReply(ctx: Ctx, reply: Reply, tokens: TokenStore): Reply {
  const body = reply.body as ReturnType<typeof envelope>;
  const fullPath = ctx.ns ? `${ctx.ns}/${ctx.path}` : ctx.path;
  const w = tokens.wrap(body, ctx.wrapTtl, fullPath);
  const wrappedAccessor = body.auth?.accessor;
  return {
    status: 200,
    body: envelope(ctx.requestId, { wrap_info: tokens.wrapInfo(w, wrappedAccessor) }),
  };
}
