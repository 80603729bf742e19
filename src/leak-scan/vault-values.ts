// The scan's own Vault fetch, for a job that never ran the main action (a check job that downloads
// another job's artifact): the same login and the same `secrets` lines as main, through the same
// engine (vault/auth.ts, vault/fetch.ts), but nothing is delivered: each value is masked the moment
// it arrives and only looked for. Nothing outlives the step: every lease an answer carried is
// revoked, then the token this step logged in for, before the step ends, whatever failed, and
// also when the job is cancelled (the scan action has no post step to do it later).
import { fileContent, isBinary } from '../core/decode.ts';
import { errorText, VaultError } from '../core/errors.ts';
import type { MaskRegistry } from '../core/mask.ts';
import type { Runner } from '../core/runner.ts';
import type { ScanVault } from '../inputs/scan.ts';
import { login, type Session } from '../vault/auth.ts';
import { tlsOptions, type VaultClient, type VaultClientFactory, type VaultClientOptions } from '../vault/client.ts';
import { fetchVaultSecrets } from '../vault/fetch.ts';

export interface VaultValue {
  readonly name: string;
  /** Text, or the decoded bytes of a `?encoding=` value that is not text (searched as bytes). */
  readonly value: string | Buffer;
  /** The `secrets` line it came from. */
  readonly line: number;
}

export interface VaultValuesDeps {
  readonly runner: Runner;
  readonly masks: MaskRegistry;
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly now?: () => number;
  /** Subscribes to the runner's cancellation (SIGINT, then SIGTERM); returns the unsubscribe. */
  readonly onCancel?: ((handler: (signal: string) => void) => () => void) | undefined;
}

/** How long the revocations after a cancellation (or a spent deadline) may take (the runner sends SIGTERM 7.5 s after SIGINT). */
const CANCEL_CLEANUP_MS = 5000;

export async function fetchScanValues(deps: VaultValuesDeps, vault: ScanVault): Promise<VaultValue[]> {
  const { runner, masks } = deps;
  const { config } = vault;
  if (config.tls.skipVerify)
    runner.warning(
      "tls-skip-verify is on: Vault's certificate is not checked, so anyone on the network path can read every secret and token; give 'ca-certificate' instead",
    );
  if (config.tls.key !== undefined) masks.add(config.tls.key);
  const leases: string[] = [];
  const now = deps.now ?? Date.now;
  const createClient = await deps.loadVaultClient();
  const options: VaultClientOptions = {
    url: config.url,
    namespace: config.namespace,
    deadline: now() + vault.timeoutMs,
    retries: vault.retries,
    maxSockets: vault.concurrency,
    tls: tlsOptions(config.tls),
    ...(config.proxy !== undefined ? { proxy: config.proxy } : {}),
    log: (message) => runner.debug(message),
    // Every lease the moment its answer arrives, so it is revoked even if the fetch then fails.
    onLease: (lease) => void (leases.includes(lease.leaseId) || leases.push(lease.leaseId)),
  };
  const client = createClient(options);
  // A cancelled job: nothing new is started, and the revocations run on a fresh client (the
  // cancelled one starts no request), within a bound, before the step ends.
  const cancelled: { signal?: string } = {};
  const stopListening = deps.onCancel?.((signal) => {
    if (cancelled.signal !== undefined) return;
    cancelled.signal = signal;
    client.cancel(signal);
    // Requests in flight get a bounded while to answer (a login that answers is then revoked).
    setTimeout(() => client.close(), CANCEL_CLEANUP_MS).unref();
  });
  let session: Session | undefined;
  let revoked: boolean | undefined;
  try {
    session = await login(client, config.auth, { masks, getIDToken: (aud) => runner.getIDToken(aud) });
    const outcome = await fetchVaultSecrets(client, vault.secrets, vault.concurrency, {
      onValue: (value) => masks.add(value),
      debug: (message) => runner.debug(message),
    });
    if (cancelled.signal === undefined) {
      for (const warning of outcome.warnings) runner.warning(warning);
      // The bytes main would deliver: their base64 and hex forms cover the stored text (scan/patterns.ts).
      return outcome.secrets.map((s) => ({
        name: s.name,
        value: isBinary(s) ? Buffer.from(fileContent(s)) : s.value,
        line: s.source.line,
      }));
    }
  } catch (error) {
    if (cancelled.signal === undefined) throw error;
  } finally {
    // The revocations on a fresh client when this one may start nothing more: cancelled, or its
    // deadline (the fetch's `timeout`) all but spent, which must not keep the token alive.
    let revoker: VaultClient = client;
    if (cancelled.signal !== undefined || now() > options.deadline - CANCEL_CLEANUP_MS) {
      revoker = createClient({ ...options, deadline: now() + CANCEL_CLEANUP_MS });
      revoker.token = session?.token;
    }
    try {
      revoked = await cleanUp(runner, masks, revoker, session, leases);
    } finally {
      stopListening?.();
      client.close();
      revoker.close();
    }
  }
  throw new VaultError(
    config.url,
    `the job was cancelled (${cancelled.signal}) while this step read from Vault; ${revoked ? 'the token it logged in for is revoked' : session?.created ? 'the token it logged in for could not be revoked (see the warning)' : 'it had no token of its own to revoke'}, and nothing was scanned`,
  );
}

/**
 * Leases first (a dynamic secret read now is a fresh credential, useless to anyone), then the token
 * this step created. A token given as `token` is the user's: used, never revoked. What cannot be
 * revoked is a warning naming it (a lease id, never a value); it ends with its TTL.
 */
async function cleanUp(
  runner: Runner,
  masks: MaskRegistry,
  client: { write: (path: string, body: Record<string, unknown>) => Promise<unknown>; revokeSelf: () => Promise<void> },
  session: Session | undefined,
  leases: readonly string[],
): Promise<boolean> {
  if (leases.length > 0)
    runner.warning(
      `${leases.length} answer(s) carried a lease (a dynamic secret): reading one issues a new credential, which no artifact made earlier can hold; revoked now`,
    );
  const revokesLeases = session?.created === true && !session.batch;
  for (const id of leases) {
    try {
      await client.write('sys/leases/revoke', { lease_id: id });
    } catch (error) {
      // Revoking the token this step created revokes its leases with it; only otherwise is this left.
      if (!revokesLeases) runner.warning(`lease ${id} was not revoked (it ends with its TTL): ${masks.scrub(errorText(error))}`);
    }
  }
  if (!session?.created) return false;
  if (session.batch) {
    runner.warning('the Vault login gave a batch token, which cannot be revoked: it ends with its TTL');
    return false;
  }
  try {
    await client.revokeSelf();
    runner.debug('the Vault token this step created is revoked');
    return true;
  } catch (error) {
    runner.warning(`the Vault token this step created was not revoked (it ends with its TTL): ${masks.scrub(errorText(error))}`);
    return false;
  }
}
