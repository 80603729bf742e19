// An in-memory Vault for post's unit tests, behind the VaultClientFactory post is given: tokens
// and the leases issued to each, auth/token/revoke-self (which takes the token's leases with it, as
// Vault does for a service token), auth/token/lookup-self, sys/leases/revoke and a PKI mount's
// revoke by serial (pki/revoke, which records the serial in `serialsRevoked`). It can refuse a
// path (403) and fail a call once with a given error; every call is recorded with the token it
// carried and the client options it went through.
import { VaultError } from '../../../src/core/errors.ts';
import type { VaultClient, VaultClientFactory, VaultClientOptions, VaultResponse } from '../../../src/vault/client.ts';

export const REVOKE_SELF = 'auth/token/revoke-self';
export const LOOKUP_SELF = 'auth/token/lookup-self';
export const LEASE_REVOKE = 'sys/leases/revoke';
export const PKI_REVOKE = 'pki/revoke';

export interface FakeVaultCall {
  readonly path: string;
  readonly token: string | undefined;
  readonly leaseId?: string;
  readonly serial?: string;
  readonly options: VaultClientOptions;
}

export interface FakeVault {
  readonly load: () => Promise<VaultClientFactory>;
  readonly calls: FakeVaultCall[];
  /** The options of every client post made. */
  readonly clients: VaultClientOptions[];
  /** Tokens alive, each with the leases issued to it and still alive. */
  readonly tokens: Map<string, Set<string>>;
  /** Paths Vault refuses with 403 (the default policy lacks sys/leases/revoke). */
  readonly refuse: Set<string>;
  /**
   * Errors to answer a path with, once each, before acting; `acted` when Vault revoked (the
   * answer was lost on the way back).
   */
  readonly failures: Map<string, Array<{ error: VaultError; acted?: boolean }>>;
  /** How many clients were closed. */
  closed: number;
  /** Serials revoked through pki/revoke. */
  readonly serialsRevoked: string[];
  /** Serials of certificates that have expired: pki/revoke answers them with no data. */
  readonly expiredSerials: Set<string>;
  /** Whether a lease is still alive (issued to a token still alive, not revoked). */
  leaseAlive(leaseId: string): boolean;
}

export function vaultError(path: string, status: number | undefined, uncertain = false): VaultError {
  const error = new VaultError(path, `POST ${path}: ${status === undefined ? 'socket hang up' : `Vault answered ${status} error`}`, status);
  error.afterUncertainTry = uncertain;
  return error;
}

export function fakeVault(tokens: Record<string, readonly string[]> = {}): FakeVault {
  const vault: FakeVault = {
    load: async () => factory,
    calls: [],
    clients: [],
    tokens: new Map(Object.entries(tokens).map(([token, leases]) => [token, new Set(leases)])),
    refuse: new Set(),
    failures: new Map(),
    closed: 0,
    serialsRevoked: [],
    expiredSerials: new Set(),
    leaseAlive: (leaseId) => [...vault.tokens.values()].some((leases) => leases.has(leaseId)),
  };
  const factory: VaultClientFactory = (options) => {
    vault.clients.push(options);
    const client: VaultClient = {
      token: undefined,
      async read(path) {
        act(path, client.token, options);
        return { data: {} };
      },
      async write(path, body) {
        const leaseId = typeof body.lease_id === 'string' ? body.lease_id : undefined;
        const serial = typeof body.serial_number === 'string' ? body.serial_number : undefined;
        act(path, client.token, options, leaseId, serial);
        // An expired certificate is answered 204 (no data), a revoked one with its revocation time.
        if (path === PKI_REVOKE) return vault.expiredSerials.has(serial ?? '') ? undefined : { data: { revocation_time: 1 } };
        return undefined as VaultResponse | undefined;
      },
      async revokeSelf() {
        act(REVOKE_SELF, client.token, options);
      },
      cancel: () => {},
      close: () => void (vault.closed += 1),
    };
    return client;
  };

  /** One request: recorded, then failed, refused or done as Vault would. */
  function act(path: string, token: string | undefined, options: VaultClientOptions, leaseId?: string, serial?: string): void {
    vault.calls.push({ path, token, ...(leaseId !== undefined ? { leaseId } : {}), ...(serial !== undefined ? { serial } : {}), options });
    const failure = vault.failures.get(path)?.shift();
    if (failure !== undefined && failure.acted !== true) throw failure.error;
    const leases = token === undefined ? undefined : vault.tokens.get(token);
    if (leases === undefined || vault.refuse.has(path)) throw vaultError(path, 403);
    if (path === REVOKE_SELF) vault.tokens.delete(token ?? '');
    else if (path === LEASE_REVOKE) for (const held of vault.tokens.values()) held.delete(leaseId ?? '');
    else if (path === PKI_REVOKE) vault.serialsRevoked.push(serial ?? '');
    else if (path !== LOOKUP_SELF) throw vaultError(path, 404);
    if (failure !== undefined) throw failure.error;
  }
  return vault;
}
