// A VaultClient (src/vault/client.ts) for unit tests, answering from tables: mounts for the mount
// lookup, answers by API path, and how many turns of the event loop each takes (an order of
// answers no clock can upset: nothing here waits on wall-clock time). It records every call with the token it
// carried, the most reads and lookups in flight at once, and each lease id the moment its answer
// arrives, as the transport's onLease does.
import type { VaultError } from '../../../src/core/errors.ts';
import { toVaultError, type VaultClient, type VaultResponse } from '../../../src/vault/client.ts';

/** A Vault error as the client makes it from an answer: status, Vault's error strings, body. */
export function vaultError(method: string, path: string, status: number, body: Record<string, unknown> = {}): VaultError {
  return toVaultError(method, path, Object.assign(new Error('answered'), { response: { statusCode: status, body } }));
}

export type Answer = VaultResponse | VaultError | (() => VaultResponse | VaultError);

export interface FakeVaultOptions {
  /** Mounts by path with a trailing slash: what sys/internal/ui/mounts/... names. */
  readonly mounts?: Record<string, { type: string; version?: string }>;
  /** Answers by API path (with `?version=N` when pinned); a path with no answer is a 404. */
  readonly answers?: Record<string, Answer>;
  /**
   * Turns of the event loop before the answer to a path arrives, counted from its request
   * (default 0: the next turn). An answer with fewer turns arrives first, whatever the machine's load.
   */
  readonly delays?: Record<string, number>;
}

export interface FakeCall {
  readonly op: 'read' | 'write' | 'revoke-self';
  readonly path: string;
  readonly token: string | undefined;
  readonly body?: Record<string, unknown>;
  readonly retrySafe?: boolean | (() => Promise<boolean>) | undefined;
}

export interface FakeVault extends VaultClient {
  readonly calls: FakeCall[];
  readonly leasesSeen: string[];
  /** The most reads (not mount lookups) and mount lookups in flight at once. */
  readonly peak: { reads: number; lookups: number };
}

export function fakeVault(options: FakeVaultOptions = {}): FakeVault {
  const calls: FakeCall[] = [];
  const leasesSeen: string[] = [];
  const peak = { reads: 0, lookups: 0 };
  const now = { reads: 0, lookups: 0 };

  async function answer(kind: 'reads' | 'lookups', method: string, path: string, own: () => Answer | undefined): Promise<VaultResponse> {
    now[kind]++;
    peak[kind] = Math.max(peak[kind], now[kind]);
    try {
      for (let turn = 0; turn <= (options.delays?.[path] ?? 0); turn++) await new Promise((resolve) => setImmediate(resolve));
      let result = own() ?? vaultError(method, path, 404);
      if (typeof result === 'function') result = result();
      if (result instanceof Error) throw result;
      if (typeof result.lease_id === 'string' && result.lease_id !== '') leasesSeen.push(result.lease_id);
      return result;
    } finally {
      now[kind]--;
    }
  }

  function mountOf(path: string): VaultResponse | VaultError {
    const mount = Object.keys(options.mounts ?? {})
      .filter((m) => `${path}/`.startsWith(m))
      .sort((a, b) => b.length - a.length)[0];
    const info = mount !== undefined ? options.mounts?.[mount] : undefined;
    if (mount === undefined || info === undefined) return vaultError('GET', `sys/internal/ui/mounts/${path}`, 403);
    return { data: { path: mount, type: info.type, options: info.version !== undefined ? { version: info.version } : null } };
  }

  const client: FakeVault = {
    token: undefined,
    calls,
    leasesSeen,
    peak,
    read(path, query, retrySafe) {
      const full = query?.version !== undefined ? `${path}?version=${query.version}` : path;
      calls.push({ op: 'read', path: full, token: client.token, retrySafe });
      const lookup = /^sys\/internal\/ui\/mounts\/(.*)$/.exec(path)?.[1];
      if (lookup !== undefined) return answer('lookups', 'GET', full, () => options.answers?.[full] ?? mountOf(lookup));
      return answer('reads', 'GET', full, () => options.answers?.[full]);
    },
    async write(path, body) {
      calls.push({ op: 'write', path, token: client.token, body });
      return answer('reads', 'POST', path, () => options.answers?.[path]);
    },
    async revokeSelf() {
      calls.push({ op: 'revoke-self', path: 'auth/token/revoke-self', token: client.token });
      await answer('reads', 'POST', 'auth/token/revoke-self', () => options.answers?.['auth/token/revoke-self'] ?? {});
    },
    cancel: () => {},
    close: () => {},
  };
  return client;
}
