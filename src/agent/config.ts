// What main hands the renewal agent on its stdin (launch.ts agentConfig builds it): where the
// files are, what each came from, the lease ids, the schedule's settings and the token; and the
// Vault client options the agent makes from it.
import type { FileAccess } from '../core/file-access.ts';
import type { VaultSecretLine } from '../inputs/secret-spec.ts';
import type { VaultClientOptions } from '../vault/client.ts';
import type { LeaseSeen } from '../vault/exchange.ts';
import type { TransportOptions } from '../vault/transport.ts';

export interface AgentSource {
  readonly key: string;
  readonly lines: readonly VaultSecretLine[];
  readonly readPath: string;
  readonly kvVersion: 1 | 2 | undefined;
  version: number | undefined;
  lease: { id: string; duration: number; renewable: boolean; obtainedAt: number; expiresAt: number } | undefined;
}

/** A rendered config file (`templates`) the agent renders again when a secret it uses changes. */
export interface AgentTemplate {
  readonly name: string;
  /** The template's text, parsed again by the agent (src/templates/), and where it came from, for messages. */
  readonly text: string;
  readonly source: { readonly file?: string; readonly inputLine?: number };
  /** The rendered file: in the private root's rendered/, or the workspace file `path=` named. */
  readonly path: string;
  readonly mode: number;
  readonly inWorkspace: boolean;
}

export interface AgentConfig {
  readonly url: string;
  readonly namespace: string | undefined;
  readonly tls: NonNullable<TransportOptions['tls']>;
  readonly proxy: string | undefined;
  /** `extra-headers`: the agent's requests carry them too. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly token: string;
  /** Renew the token too: only one this run created (a token the user passed in is theirs). */
  readonly renewToken: boolean;
  /** Revoke the token when the secrets directory vanishes: one this run created, not a batch token. */
  readonly revokeToken?: boolean;
  /** sha256 of the root's marker (private-dir.ts RootMarker): the root is removed only if it still carries it. */
  readonly marker?: string;
  readonly root: string;
  readonly secretsDir: string;
  /** `file-owner` / `file-mode`: a rewritten secret file gets them too, before it replaces the old one. */
  readonly fileAccess?: FileAccess;
  readonly envFile: string;
  /** Every delivered secret: name, env name, and the request key it came from (undefined: env-secrets). */
  readonly secrets: ReadonlyArray<{ name: string; envName: string; key: string | undefined }>;
  readonly sources: AgentSource[];
  /** The rendered files, each re-rendered (atomically, same owner and mode) when a secret it uses changes. */
  readonly templates?: readonly AgentTemplate[];
  readonly refreshMs: number;
  readonly onChange: string | undefined;
  readonly onChangeTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly retries: number;
}

/** The agent's Vault client: `onLease` sees every lease id an answer carries, before anything can drop it. */
export function clientOptions(config: AgentConfig, onLease: (lease: LeaseSeen) => void): VaultClientOptions {
  return {
    url: config.url,
    namespace: config.namespace,
    tls: config.tls,
    ...(config.proxy !== undefined ? { proxy: config.proxy } : {}),
    ...(config.headers !== undefined ? { headers: config.headers } : {}),
    // No overall deadline for a process that runs for hours; each request gets its own.
    deadline: Number.POSITIVE_INFINITY,
    requestTimeoutMs: 10_000,
    retries: config.retries,
    maxSockets: 4,
    onLease,
  };
}
