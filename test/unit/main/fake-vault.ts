// An in-memory Vault behind the VaultClientFactory seam (src/vault/client.ts), for unit tests of
// main: AppRole login issuing a token, KV v2 reads (with the mount lookup the fetch makes first), and
// dynamic secrets that issue a lease on every read, announced through `onLease` before the answer
// returns, as the real transport does. A request can be held (to cancel a job mid-fetch) or failed.
import { VaultError } from '../../../src/core/errors.ts';
import type { VaultClient, VaultClientFactory, VaultClientOptions, VaultResponse } from '../../../src/vault/client.ts';

export interface FakeVaultOptions {
  readonly roleId?: string;
  readonly secretId?: string;
  /** The token an AppRole login returns. */
  readonly token?: string;
  readonly tokenType?: 'service' | 'batch';
  readonly tokenTtl?: number;
  /** KV v2 secrets on the `secret/` mount, by path under it (`app` for secret/data/app). */
  readonly kv?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Dynamic secrets on the `database/` mount, by API path (`database/creds/app`): a fresh value and lease per read. */
  readonly dynamic?: Readonly<Record<string, (n: number) => Readonly<Record<string, string>>>>;
  readonly leaseTtl?: number;
  /** Called before a request is answered: a promise holds it; a throw fails it. */
  readonly before?: (method: 'GET' | 'POST', path: string) => Promise<void> | void;
}

export interface FakeVault {
  readonly factory: VaultClientFactory;
  /** The options each client was created with. */
  readonly clients: VaultClientOptions[];
  /** Every request, in order, as `GET path` / `POST path`. */
  readonly requests: string[];
  /** Lease ids issued, in order. */
  readonly leases: string[];
  readonly cancelled: string[];
  /** Tokens revoked with revoke-self. */
  readonly revoked: string[];
  closed: number;
}

const NOT_FOUND = (path: string): VaultError => new VaultError(path, `GET ${path}: Vault answered 404 not found`, 404);

export function fakeVault(options: FakeVaultOptions = {}): FakeVault {
  const token = options.token ?? 'hvs.fake-vault-token-0123456789';
  let issued = 0;

  function create(clientOptions: VaultClientOptions): VaultClient {
    vault.clients.push(clientOptions);
    let current: string | undefined;
    let cancelled = false;
    const answer = async (method: 'GET' | 'POST', path: string, respond: () => VaultResponse): Promise<VaultResponse> => {
      // The transport's contract: nothing new starts after cancel().
      if (cancelled) throw new VaultError(path, `${method} ${path}: cancelled`);
      vault.requests.push(`${method} ${path}`);
      await options.before?.(method, path);
      const response = respond();
      if (response.lease_id !== undefined) {
        clientOptions.onLease?.({
          leaseId: response.lease_id,
          path,
          duration: response.lease_duration,
          renewable: response.renewable === true,
        });
      }
      return response;
    };
    const authorised = (path: string): void => {
      if (current !== token) throw new VaultError(path, `GET ${path}: Vault answered 403 permission denied`, 403);
    };
    return {
      get token() {
        return current;
      },
      set token(value) {
        current = value;
      },
      read: (path) =>
        answer('GET', path, () => {
          authorised(path);
          const mount = /^sys\/internal\/ui\/mounts\/([^/]+)/.exec(path)?.[1];
          if (mount === 'secret') return { data: { path: 'secret/', type: 'kv', options: { version: '2' } } };
          if (mount === 'database') return { data: { path: 'database/', type: 'database', options: null } };
          if (mount !== undefined) throw NOT_FOUND(path);
          if (path === 'auth/token/lookup-self') return { data: { ttl: 3600 } };
          const kv = /^secret\/data\/(.+)$/.exec(path)?.[1];
          if (kv !== undefined) {
            const data = options.kv?.[kv];
            if (!data) throw NOT_FOUND(path);
            return { data: { data: { ...data }, metadata: { version: 3 } } };
          }
          const issue = options.dynamic?.[path];
          if (!issue) throw NOT_FOUND(path);
          issued++;
          const leaseId = `${path}/lease-${issued}`;
          vault.leases.push(leaseId);
          return { data: { ...issue(issued) }, lease_id: leaseId, lease_duration: options.leaseTtl ?? 600, renewable: true };
        }),
      write: (path, body) =>
        answer('POST', path, () => {
          if (path !== 'auth/approle/login') throw new VaultError(path, `POST ${path}: Vault answered 404 not found`, 404);
          if (body.role_id !== (options.roleId ?? 'role-1') || body.secret_id !== (options.secretId ?? 'fake-secret-id-0123456789'))
            throw new VaultError(path, `POST ${path}: Vault answered 400 invalid role or secret ID`, 400);
          return { auth: { client_token: token, lease_duration: options.tokenTtl ?? 3600, token_type: options.tokenType ?? 'service' } };
        }),
      revokeSelf: async () => {
        await answer('POST', 'auth/token/revoke-self', () => {
          if (current === undefined) throw new VaultError('auth/token/revoke-self', 'POST auth/token/revoke-self: Vault answered 403', 403);
          vault.revoked.push(current);
          return {};
        });
      },
      cancel: (reason) => {
        cancelled = true;
        vault.cancelled.push(reason);
      },
      close: () => {
        vault.closed++;
      },
    };
  }
  const vault: FakeVault = { factory: create, clients: [], requests: [], leases: [], cancelled: [], revoked: [], closed: 0 };
  return vault;
}
