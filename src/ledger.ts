// The ledger: what main created, saved as step state for post. State is a plaintext file the runner
// also debug-logs, so it holds paths, lease ids and flags, never a value; the Vault token post must
// revoke waits in a 0600 file of the private directory instead.
import type { Runner } from './runner.ts';

export interface Ledger {
  root?: string;
  secretsDir?: string;
  userSecretsDir?: boolean;
  /** Every file main wrote or was about to write. */
  files: string[];
  /** File holding a token this run created; post revokes it (unless it is a batch token). */
  tokenFile?: string;
  /** The created token is a batch token: not revocable, it ends at tokenExpires. */
  tokenBatch?: boolean;
  tokenExpires?: string;
  vaultUrl?: string;
  namespace?: string;
  /** Every lease id Vault issued to this run, recorded as each answer arrived. */
  leases: string[];
  /** When each lease ends unless renewed (ISO time, from its TTL at issue): what post reports for one it cannot revoke. */
  leaseExpires?: Record<string, string>;
  /** The per-job DOCKER_CONFIG directory, and the registries a login was attempted for. */
  dockerConfig?: string;
  registries?: string[];
  /** The renewal agent's pid (post stops it first). */
  agentPid?: number;
}

const KEY = 'ledger';

export function emptyLedger(): Ledger {
  return { files: [], leases: [] };
}

export class LedgerWriter {
  readonly ledger: Ledger = emptyLedger();
  private readonly runner: Runner;
  constructor(runner: Runner) {
    this.runner = runner;
  }
  /** Saves after every change, so a main step that dies half-way still tells post what to remove. */
  update(change: (ledger: Ledger) => void): void {
    change(this.ledger);
    this.runner.saveState(KEY, JSON.stringify(this.ledger));
  }
}

export function loadLedger(runner: Runner): Ledger | undefined {
  const raw = runner.getState(KEY);
  if (raw === '') return undefined;
  const parsed = JSON.parse(raw) as Partial<Ledger>;
  return { ...parsed, files: parsed.files ?? [], leases: parsed.leases ?? [] };
}
