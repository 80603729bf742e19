// Token store, lease manager and response-wrapping tokens of the Vault double.
// Expiry is by wall clock (Date.now()), so vitest fake timers that mock Date also age tokens.
import type { AuthBlock, Envelope, WrapInfo } from './reply.ts';
import { base62, goDuration, newServiceToken, rfc3339, sortedUnique, uuid } from './util.ts';

export type State = 'active' | 'revoked' | 'expired' | 'unknown';

/** Vault's default system max_lease_ttl: 768h (32 days). */
export const SYSTEM_MAX_TTL = 768 * 3600;

export interface TokenEntry {
  id: string;
  accessor: string;
  /** Sorted policies, "default" included for non-root tokens. */
  policies: string[];
  /** Namespace the token was created in ('' = root). */
  ns: string;
  issuedAt: number;
  creationTtl: number;
  /** TTL a renewal without increment asks for. */
  defaultTtl: number;
  expireAt: number | null;
  maxExpireAt: number | null;
  lastRenewal: number | null;
  /** TTL granted by the last login/creation or renewal (auth.lease_duration). */
  grantedTtl: number;
  renewable: boolean;
  /** Remaining uses; 0 = unlimited. */
  numUses: number;
  /** Set when the last use was spent: the token is revoked once the request finishes. */
  revokeAfterRequest: boolean;
  revoked: boolean;
  root: boolean;
  path: string;
  displayName: string;
  meta: Record<string, string> | null;
  entityId: string;
  orphan: boolean;
  /** Type of the auth mount that issued it, for mount_type. */
  mountType: string;
  /** Counts for liveTokens(): created by a login or createToken. */
  tracked: boolean;
}

export interface LeaseEntry {
  id: string;
  issuedAt: number;
  lastRenewal: number | null;
  expireAt: number;
  maxExpireAt: number;
  renewable: boolean;
  defaultTtl: number;
  /** Token that read the secret; revoking (or expiry of) that token revokes the lease. */
  token: string;
  revoked: boolean;
}

export interface WrapEntry {
  token: string;
  accessor: string;
  createdAt: number;
  ttl: number;
  creationPath: string;
  response: Envelope;
  used: boolean;
}

export interface TokenOptions {
  policies: string[];
  ttl?: number | undefined;
  maxTtl?: number | undefined;
  renewable?: boolean | undefined;
  numUses?: number | undefined;
  ns?: string | undefined;
  path: string;
  displayName: string;
  meta?: Record<string, string> | null | undefined;
  orphan?: boolean | undefined;
  mountType: string;
}

export type RenewResult = { ok: true; ttl: number; warnings: string[] } | { ok: false; error: string };

function cappedWarning(requested: number, max: number): string {
  // vault/expiration.go / framework.CalculateTTL wording.
  return `TTL of "${goDuration(requested)}" exceeded the effective max_ttl of "${goDuration(max)}"; TTL value is capped accordingly`;
}

export class TokenStore {
  readonly tokens = new Map<string, TokenEntry>();
  readonly leases = new Map<string, LeaseEntry>();
  readonly wraps = new Map<string, WrapEntry>();

  now(): number {
    return Date.now();
  }

  createRoot(): TokenEntry {
    const now = this.now();
    const e: TokenEntry = {
      id: newServiceToken(),
      accessor: base62(24),
      policies: ['root'],
      ns: '',
      issuedAt: now,
      creationTtl: 0,
      defaultTtl: 0,
      expireAt: null,
      maxExpireAt: null,
      lastRenewal: null,
      grantedTtl: 0,
      renewable: false,
      numUses: 0,
      revokeAfterRequest: false,
      revoked: false,
      root: true,
      path: 'auth/token/root',
      displayName: 'root',
      meta: null,
      entityId: '',
      orphan: true,
      mountType: 'token',
      tracked: false,
    };
    this.tokens.set(e.id, e);
    return e;
  }

  issue(o: TokenOptions): TokenEntry {
    const now = this.now();
    const max = Math.min(o.maxTtl ?? SYSTEM_MAX_TTL, SYSTEM_MAX_TTL);
    const ttl = Math.min(o.ttl && o.ttl > 0 ? o.ttl : SYSTEM_MAX_TTL, max);
    const isRoot = o.policies.includes('root');
    const e: TokenEntry = {
      id: newServiceToken(),
      accessor: base62(24),
      policies: isRoot ? ['root'] : sortedUnique(['default', ...o.policies]),
      ns: o.ns ?? '',
      issuedAt: now,
      creationTtl: ttl,
      defaultTtl: ttl,
      expireAt: now + ttl * 1000,
      maxExpireAt: now + max * 1000,
      lastRenewal: null,
      grantedTtl: ttl,
      renewable: o.renewable ?? true,
      numUses: o.numUses ?? 0,
      revokeAfterRequest: false,
      revoked: false,
      root: false,
      path: o.path,
      displayName: o.displayName,
      meta: o.meta ?? null,
      entityId: uuid(),
      orphan: o.orphan ?? true,
      mountType: o.mountType,
      tracked: true,
    };
    this.tokens.set(e.id, e);
    return e;
  }

  tokenStateOf(e: TokenEntry): State {
    if (e.revoked) return 'revoked';
    if (e.expireAt !== null && this.now() >= e.expireAt) return 'expired';
    return 'active';
  }

  state(id: string): State {
    const e = this.tokens.get(id);
    if (e) return this.tokenStateOf(e);
    const w = this.wraps.get(id);
    if (w) return this.wrapStateOf(w);
    return 'unknown';
  }

  /** The token if it can be used right now. */
  active(id: string | undefined): TokenEntry | undefined {
    if (id === undefined) return undefined;
    const e = this.tokens.get(id);
    return e && this.tokenStateOf(e) === 'active' ? e : undefined;
  }

  /** Spend one use of a limited-use token (after the ACL check passed, as Vault does). */
  use(e: TokenEntry): void {
    if (e.numUses > 0) {
      e.numUses -= 1;
      if (e.numUses === 0) e.revokeAfterRequest = true;
    }
  }

  // https://developer.hashicorp.com/vault/docs/concepts/tokens#token-hierarchies-and-orphan-tokens
  // https://developer.hashicorp.com/vault/docs/concepts/lease#revocation
  // Revoking a token revokes every lease obtained with it.
  revoke(id: string): void {
    const e = this.tokens.get(id);
    if (!e || e.revoked) return;
    e.revoked = true;
    for (const l of this.leases.values()) if (l.token === id) l.revoked = true;
  }

  liveTokens(): string[] {
    return [...this.tokens.values()].filter((e) => e.tracked && this.tokenStateOf(e) === 'active').map((e) => e.id);
  }

  authBlock(e: TokenEntry): AuthBlock {
    return {
      client_token: e.id,
      accessor: e.accessor,
      policies: [...e.policies],
      token_policies: [...e.policies],
      metadata: e.meta,
      lease_duration: e.grantedTtl,
      renewable: e.renewable,
      entity_id: e.entityId,
      token_type: 'service',
      orphan: e.orphan,
      mfa_requirement: null,
      num_uses: e.numUses,
    };
  }

  remainingTtl(e: TokenEntry): number {
    if (e.expireAt === null) return 0;
    return Math.max(0, Math.floor((e.expireAt - this.now()) / 1000));
  }

  // https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self
  lookupData(e: TokenEntry): Record<string, unknown> {
    const d: Record<string, unknown> = {
      accessor: e.accessor,
      creation_time: Math.floor(e.issuedAt / 1000),
      creation_ttl: e.creationTtl,
      display_name: e.displayName,
      entity_id: e.entityId,
      expire_time: e.expireAt === null ? null : rfc3339(e.expireAt),
      explicit_max_ttl: 0,
      id: e.id,
      issue_time: rfc3339(e.issuedAt),
      meta: e.meta,
      num_uses: e.numUses,
      orphan: e.orphan,
      path: e.path,
      policies: [...e.policies],
      renewable: e.renewable,
      ttl: this.remainingTtl(e),
      type: 'service',
    };
    if (e.lastRenewal !== null) {
      d['last_renewal'] = rfc3339(e.lastRenewal);
      d['last_renewal_time'] = Math.floor(e.lastRenewal / 1000);
    }
    return d;
  }

  // https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token-self
  // New TTL = increment (or the token's default TTL) from now, capped by its max TTL.
  renewToken(e: TokenEntry, increment: number | null): RenewResult {
    if (e.root || !e.renewable || e.expireAt === null || e.maxExpireAt === null) {
      return { ok: false, error: 'lease is not renewable' };
    }
    const now = this.now();
    const wanted = increment && increment > 0 ? increment : e.defaultTtl;
    const maxLeft = Math.max(0, Math.floor((e.maxExpireAt - now) / 1000));
    const warnings: string[] = [];
    let ttl = wanted;
    if (ttl > maxLeft) {
      warnings.push(cappedWarning(wanted, maxLeft));
      ttl = maxLeft;
    }
    e.expireAt = now + ttl * 1000;
    e.lastRenewal = now;
    e.grantedTtl = ttl;
    return { ok: true, ttl, warnings };
  }

  // ---- leases ----------------------------------------------------------------------------

  createLease(o: { path: string; ttl: number; maxTtl?: number | undefined; renewable?: boolean | undefined; token: string }): LeaseEntry {
    const now = this.now();
    const max = o.maxTtl && o.maxTtl > 0 ? o.maxTtl : SYSTEM_MAX_TTL;
    const ttl = Math.min(o.ttl, max);
    const l: LeaseEntry = {
      id: `${o.path}/${base62(24)}`,
      issuedAt: now,
      lastRenewal: null,
      expireAt: now + ttl * 1000,
      maxExpireAt: now + max * 1000,
      renewable: o.renewable ?? true,
      defaultTtl: ttl,
      token: o.token,
      revoked: false,
    };
    this.leases.set(l.id, l);
    return l;
  }

  leaseStateOf(l: LeaseEntry): State {
    if (l.revoked) return 'revoked';
    const now = this.now();
    const owner = this.tokens.get(l.token);
    // The owning token ended (revoked or expired): Vault revokes its leases with it.
    if (owner && !owner.root) {
      if (owner.revoked) return 'revoked';
      if (owner.expireAt !== null && now >= owner.expireAt) {
        return owner.expireAt < l.expireAt ? 'revoked' : 'expired';
      }
    }
    if (now >= l.expireAt) return 'expired';
    return 'active';
  }

  leaseState(id: string): State {
    const l = this.leases.get(id);
    return l ? this.leaseStateOf(l) : 'unknown';
  }

  liveLeases(): string[] {
    return [...this.leases.values()].filter((l) => this.leaseStateOf(l) === 'active').map((l) => l.id);
  }

  // https://developer.hashicorp.com/vault/api-docs/system/leases#renew-lease
  // Errors follow vault/expiration.go leaseEntry.renewable().
  renewLease(id: string, increment: number | null): RenewResult & { lease?: LeaseEntry } {
    const l = this.leases.get(id);
    const st = l ? this.leaseStateOf(l) : 'unknown';
    if (!l || st === 'unknown' || st === 'revoked') return { ok: false, error: 'lease not found' };
    if (st === 'expired') return { ok: false, error: 'lease expired' };
    if (!l.renewable) return { ok: false, error: 'lease is not renewable' };
    const now = this.now();
    const wanted = increment && increment > 0 ? increment : l.defaultTtl;
    const maxLeft = Math.max(0, Math.floor((l.maxExpireAt - now) / 1000));
    const warnings: string[] = [];
    let ttl = wanted;
    if (ttl > maxLeft) {
      warnings.push(cappedWarning(wanted, maxLeft));
      ttl = maxLeft;
    }
    l.expireAt = now + ttl * 1000;
    l.lastRenewal = now;
    return { ok: true, ttl, warnings, lease: l };
  }

  // https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-lease
  // Revoking an unknown lease is not an error (nothing to revoke → 204).
  revokeLease(id: string): void {
    const l = this.leases.get(id);
    if (l) l.revoked = true;
  }

  // https://developer.hashicorp.com/vault/api-docs/system/leases#read-lease
  leaseLookup(id: string): Record<string, unknown> | null {
    const l = this.leases.get(id);
    if (!l || this.leaseStateOf(l) === 'revoked') return null;
    return {
      id: l.id,
      issue_time: rfc3339(l.issuedAt),
      expire_time: rfc3339(l.expireAt),
      last_renewal: l.lastRenewal === null ? null : rfc3339(l.lastRenewal),
      renewable: l.renewable,
      ttl: Math.max(0, Math.floor((l.expireAt - this.now()) / 1000)),
    };
  }

  // ---- response wrapping -----------------------------------------------------------------

  // https://developer.hashicorp.com/vault/docs/concepts/response-wrapping
  // The response goes into the cubbyhole of a single-use token; the client gets wrap_info only.
  wrap(response: Envelope, ttl: number, creationPath: string, tokenId?: string): WrapEntry {
    const id = tokenId ?? newServiceToken();
    if (this.wraps.has(id) || this.tokens.has(id)) throw new Error(`token ${id} already exists`);
    const w: WrapEntry = {
      token: id,
      accessor: base62(24),
      createdAt: this.now(),
      ttl,
      creationPath,
      response,
      used: false,
    };
    this.wraps.set(id, w);
    return w;
  }

  wrapInfo(w: WrapEntry, wrappedAccessor?: string): WrapInfo {
    const info: WrapInfo = {
      token: w.token,
      accessor: w.accessor,
      ttl: w.ttl,
      creation_time: rfc3339(w.createdAt),
      creation_path: w.creationPath,
    };
    if (wrappedAccessor) info.wrapped_accessor = wrappedAccessor;
    return info;
  }

  wrapStateOf(w: WrapEntry): State {
    if (w.used) return 'revoked';
    if (this.now() >= w.createdAt + w.ttl * 1000) return 'expired';
    return 'active';
  }

  activeWrap(id: string | undefined): WrapEntry | undefined {
    if (id === undefined) return undefined;
    const w = this.wraps.get(id);
    return w && this.wrapStateOf(w) === 'active' ? w : undefined;
  }

  /** Single use: the first unwrap returns the response, later ones get nothing. */
  consumeWrap(id: string): Envelope | null {
    const w = this.activeWrap(id);
    if (!w) return null;
    w.used = true;
    return w.response;
  }
}
