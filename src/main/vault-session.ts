// Main's time with Vault: one client, a login, the concurrent fetch, and the ledger writes around
// them. Every lease and the token this run creates reach the ledger (state) the moment they exist,
// so post can revoke them whatever fails or is cancelled afterwards.
import * as path from 'node:path';
import { VaultError } from '../core/errors.ts';
import { appendSideValues } from '../core/job-values.ts';
import type { LedgerWriter } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import { writeExclusive } from '../core/private-dir.ts';
import type { Runner } from '../core/runner.ts';
import type { Config, VaultConfig } from '../inputs/main.ts';
import { givenTokenExpiryWarning, login, type Session } from '../vault/auth.ts';
import { tlsOptions, type VaultClient, type VaultClientFactory } from '../vault/client.ts';
import { fetchVaultSecrets, type Lease, type Secret, type SourceState } from '../vault/fetch.ts';
import type { LeaseSeen } from '../vault/exchange.ts';
import { issuePki } from './certificates.ts';

/** How long requests in flight at a cancellation may still answer (the runner sends SIGTERM 7.5 s after SIGINT). */
export const CANCEL_GRACE_MS = 5000;

/** Subscribes to the runner's cancellation (SIGINT, then SIGTERM); returns the unsubscribe. */
export type OnCancel = (handler: (signal: string) => void) => () => void;

export interface VaultSessionDeps {
  readonly runner: Runner;
  readonly masks: MaskRegistry;
  readonly ledger: LedgerWriter;
  readonly now: () => number;
  readonly onCancel?: OnCancel | undefined;
}

/** What this run logged in as: what post may revoke, and what the summary says about the token. */
export interface Authenticated {
  readonly session: Session;
  /** This run created the token and it is not a batch token: post revokes it. */
  readonly tokenRevocable: boolean;
  /** Set when this run logged in and got a batch token: when it ends (it cannot be revoked). */
  readonly batchTokenExpires: string | undefined;
}

export interface Fetched {
  readonly secrets: readonly Secret[];
  readonly leases: readonly Lease[];
  readonly sources: readonly SourceState[];
  readonly warnings: readonly string[];
}

export interface VaultSecrets extends Fetched {
  /** Undefined when the run uses no Vault. */
  readonly auth: Authenticated | undefined;
}

/** A run without Vault `secrets` entries. */
export const NO_VAULT: VaultSecrets = { secrets: [], leases: [], sources: [], warnings: [], auth: undefined };

/**
 * Logs in and fetches every Vault secret of `config`. All or nothing: it returns only once every
 * required secret has arrived, each value masked as it arrived (never later).
 */
export async function vaultSecrets(
  deps: VaultSessionDeps,
  config: Config,
  vault: VaultConfig,
  options: { readonly root: string; readonly deadline: number; readonly createClient: Promise<VaultClientFactory> },
): Promise<VaultSecrets> {
  const { runner, masks } = deps;
  if (vault.tls.skipVerify) {
    runner.warning(
      "tls-skip-verify is on: Vault's certificate is not checked, so anyone on the network path can read every secret and token; give 'ca-certificate' instead",
    );
  }
  // The client key is a credential like the others.
  if (vault.tls.key !== undefined) masks.add(vault.tls.key);
  // So are the extra headers' values (a gateway's key, a bearer token).
  for (const value of Object.values(vault.headers)) masks.add(value);
  const createClient = await options.createClient;
  const recordLease = leaseRecorder(deps.ledger, deps.now);
  const client = createClient({
    url: vault.url,
    namespace: vault.namespace,
    deadline: options.deadline,
    retries: config.retries,
    maxSockets: config.concurrency,
    tls: tlsOptions(vault.tls),
    ...(vault.proxy !== undefined ? { proxy: vault.proxy } : {}),
    headers: vault.headers,
    log: (message) => runner.debug(message),
    onLease: recordLease,
  });
  return untilCancelled(client, vault.url, deps, async () => {
    deps.ledger.update((l) => {
      l.vaultUrl = vault.url;
      if (vault.namespace !== undefined) l.namespace = vault.namespace;
    });
    const auth = await authenticate(client, vault, options.root, deps);
    // Both to the end, whichever fails first: a certificate Vault is issuing must reach the ledger.
    const [fetched, certificates] = await Promise.allSettled([
      fetchSecrets(client, config, auth.session, { ...deps, recordLease }),
      issuePki(client, config, options.root, deps),
    ]);
    if (fetched.status === 'rejected') throw fetched.reason;
    if (certificates.status === 'rejected') throw certificates.reason;
    const { secrets, leases } = certificates.value;
    return { ...fetched.value, secrets: [...fetched.value.secrets, ...secrets], leases: [...fetched.value.leases, ...leases], auth };
  });
}

/**
 * Each lease goes to the ledger the moment its answer arrives (the client calls this for every
 * answer carrying a lease id), once per id, with when it ends unless renewed.
 */
export function leaseRecorder(ledger: LedgerWriter, now: () => number): (lease: LeaseSeen) => void {
  return (lease) => {
    if (ledger.ledger.leases.includes(lease.leaseId)) return;
    ledger.update((l) => {
      l.leases.push(lease.leaseId);
      if (lease.duration !== undefined) {
        (l.leaseExpires ??= {})[lease.leaseId] = new Date(now() + lease.duration * 1000).toISOString();
      }
    });
  };
}

/**
 * Runs `body` with the client, then closes it. A cancelled job: start nothing new, but give the
 * requests in flight a bounded while to answer, so a lease Vault has already issued reaches the
 * ledger; a second signal cuts them. A cancelled run fails naming how many leases were recorded,
 * whether `body` finished or not.
 */
async function untilCancelled<T>(client: VaultClient, url: string, deps: VaultSessionDeps, body: () => Promise<T>): Promise<T> {
  const cancel: { signal?: string } = {};
  const stopListening = deps.onCancel?.((signal) => {
    if (cancel.signal !== undefined) return client.close();
    cancel.signal = signal;
    client.cancel(signal);
    setTimeout(() => client.close(), CANCEL_GRACE_MS).unref();
  });
  try {
    const result = await body();
    if (cancel.signal === undefined) return result;
  } catch (error) {
    if (cancel.signal === undefined) throw error;
  } finally {
    stopListening?.();
    client.close();
  }
  const certs = deps.ledger.ledger.certs?.length ?? 0;
  throw new VaultError(
    url,
    `the job was cancelled (${cancel.signal}) while talking to Vault; ${deps.ledger.ledger.leases.length} lease(s)${certs > 0 ? ` and ${certs} certificate(s)` : ''} issued so far are recorded for post to revoke`,
  );
}

/** Logs in with the configured method; a token this run creates is recorded before it is used. */
export async function authenticate(
  client: VaultClient,
  vault: VaultConfig,
  root: string,
  deps: Pick<VaultSessionDeps, 'runner' | 'masks' | 'ledger' | 'now'>,
): Promise<Authenticated> {
  const { runner, ledger } = deps;
  const session = await login(client, vault.auth, { masks: deps.masks, getIDToken: (aud) => runner.getIDToken(aud) });
  const batchTokenExpires =
    session.created && session.batch && session.ttlSeconds !== undefined
      ? new Date(deps.now() + session.ttlSeconds * 1000).toISOString()
      : undefined;
  if (session.created) {
    // Post revokes the token this run created; it waits in a 0600 file, never in state or env.
    // A batch token cannot be revoked, but post still needs it to revoke the leases.
    const tokenFile = path.join(root, 'vault-token');
    ledger.update((l) => {
      l.tokenFile = tokenFile;
      if (session.batch) l.tokenBatch = true;
      if (batchTokenExpires !== undefined) l.tokenExpires = batchTokenExpires;
    });
    await writeExclusive(tokenFile, session.token);
  }
  // The token (created or given) is a value of this job too: the leak scan looks for it.
  await appendSideValues(root, [{ name: 'vault-token', source: 'vault-token', value: session.token }]);
  runner.debug(`logged in to Vault with method ${session.method}${vault.proxy ? ' through the proxy' : ''}`);
  return { session, tokenRevocable: session.created && !session.batch, batchTokenExpires };
}

/** Fetches every Vault secret line concurrently; each value is masked the moment it is read. */
export async function fetchSecrets(
  client: VaultClient,
  config: Config,
  session: Session,
  deps: Pick<VaultSessionDeps, 'runner' | 'masks'> & { readonly recordLease: (lease: LeaseSeen) => void },
): Promise<Fetched> {
  const outcome = await fetchVaultSecrets(client, config.secrets, config.concurrency, {
    onValue: (value) => deps.masks.add(value),
    debug: (message) => deps.runner.debug(message),
  });
  // The client has recorded these as they arrived; recorded again (a no-op then) in case a lease
  // came some other way.
  for (const lease of outcome.leases) deps.recordLease(lease);
  const warnings = [...outcome.warnings];
  if (config.renew && session.method === 'token') {
    const warning = await givenTokenExpiryWarning(client, config.renew.maxLifetimeMs);
    if (warning !== undefined) warnings.push(warning);
  }
  return { secrets: outcome.secrets, leases: outcome.leases, sources: outcome.sources, warnings };
}
