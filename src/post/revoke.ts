// Post's revocations: every lease this run took, by id, then each certificate a `pki` entry issued
// whose lease was not revoked, by serial, then the token this run created (never a token the user
// passed in). Sent only to the Vault address checkLedger proved main was given.
import { promises as fs } from 'node:fs';
import { errorText, VaultError } from '../core/errors.ts';
import type { Ledger, LedgerCert } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import type { Runner } from '../core/runner.ts';
import type { PostInputs } from '../inputs/post.ts';
import { tlsOptions, type VaultClient, type VaultClientFactory } from '../vault/client.ts';
import type { CleanupReport } from './summary.ts';

export interface RevokeDeps {
  readonly runner: Runner;
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export type RevokePart = Pick<
  CleanupReport,
  'tokenRevoked' | 'tokenBatchExpires' | 'leasesRevoked' | 'leasesWithToken' | 'leasesLeft' | 'problems'
> &
  Required<Pick<CleanupReport, 'certsRevoked' | 'certsExpired' | 'certsLeft'>>;

// The policy line that lets post revoke a lease by id; Vault's default policy lacks it.
const REVOKE_GRANT = 'path "sys/leases/revoke" { capabilities = ["update"] }';
const REVOKE_RETRY_PAUSE_MS = 1000;
// The policy line that lets post revoke a certificate by serial; Vault's default policy lacks it.
const certGrant = (mount: string): string => `path "${mount}/revoke" { capabilities = ["update"] }`;

export async function revokeVault(
  deps: RevokeDeps,
  ledger: Ledger,
  inputs: Pick<PostInputs, 'token' | 'timeoutMs' | 'vault'>,
  masks: MaskRegistry,
): Promise<RevokePart> {
  const problems: string[] = [];
  const out = {
    tokenRevoked: undefined as boolean | undefined,
    leasesRevoked: 0,
    leasesWithToken: 0,
    leasesLeft: [],
    certsRevoked: 0,
    certsExpired: 0,
    certsLeft: (ledger.certs ?? []).map((c) => certLeft(c, 'no Vault token left to revoke it with')),
    problems,
  };
  if (!ledger.vaultUrl) return { ...out, tokenBatchExpires: undefined };
  // A batch token cannot be revoked (Vault answers 400): nothing to do for it, and nothing wrong.
  const tokenBatchExpires = ledger.tokenFile && ledger.tokenBatch ? (ledger.tokenExpires ?? '') : undefined;
  const held = await postToken(ledger, inputs.token, problems);
  // No token: an earlier post run revoked and removed it (post is safe to run twice), or main
  // died before it had one; either way there is nothing post could revoke with, or claim.
  if (!held) return { ...out, tokenBatchExpires };
  masks.add(held.token);
  const tls = tlsOptions(inputs.vault.tls);
  // The client key is a credential like the token.
  if (tls.key !== undefined) masks.add(tls.key);
  for (const value of Object.values(inputs.vault.headers)) masks.add(value);
  const createClient = await deps.loadVaultClient();
  const now = deps.now ?? Date.now;
  const start = now();
  const clientFor = (deadline: number): VaultClient => {
    const c = createClient({
      url: ledger.vaultUrl ?? '',
      namespace: ledger.namespace,
      tls,
      ...(inputs.vault.proxy !== undefined ? { proxy: inputs.vault.proxy } : {}),
      headers: inputs.vault.headers,
      deadline,
      retries: 4,
      maxSockets: 4,
      log: (message) => deps.runner.debug(message),
    });
    c.token = held.token;
    return c;
  };
  // The lease revocations get two thirds of the budget and the token revocation the rest: a lease
  // revoke that hangs must not use up the time of the one request that takes every lease with it.
  const leaseClient = clientFor(start + (inputs.timeoutMs * 2) / 3);
  const tokenClient = clientFor(start + inputs.timeoutMs);
  const notRevoked: Array<{ leaseId: string; reason: string }> = [];
  const certsNotRevoked: Array<{ cert: LedgerCert; reason: string }> = [];
  let certsRevoked = 0;
  let certsExpired = 0;
  let leasesRevoked = 0;
  let tokenRevoked: boolean | undefined;
  try {
    // Leases first, each by id (https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-lease):
    // a user's token is not revoked, and a lease must not outlive the job.
    for (const leaseId of ledger.leases) {
      try {
        await leaseClient.write('sys/leases/revoke', { lease_id: leaseId });
        leasesRevoked++;
      } catch (error) {
        const refused = error instanceof VaultError && error.status === 403;
        const reason = refused
          ? `Vault refused sys/leases/revoke (403; the default policy lacks it); grant ${REVOKE_GRANT} in the token's policy`
          : `not revoked: ${masks.scrub(errorText(error))}`;
        notRevoked.push({ leaseId, reason });
      }
    }
    // A certificate whose lease is revoked is revoked with it; any other (a role without
    // generate_lease, the default, or a lease post could not revoke) is revoked by its serial.
    const leaseGone = new Set(ledger.leases.filter((id) => !notRevoked.some((n) => n.leaseId === id)));
    for (const cert of ledger.certs ?? []) {
      if (cert.leaseId !== undefined && leaseGone.has(cert.leaseId)) continue;
      const outcome = await revokeBySerial(leaseClient, cert, masks);
      if (outcome === 'revoked') certsRevoked++;
      else if (outcome === 'expired') certsExpired++;
      else certsNotRevoked.push({ cert, reason: outcome.reason });
    }
    if (held.created && !ledger.tokenBatch) {
      try {
        await revokeSelfRetried(deps, tokenClient, start + inputs.timeoutMs, masks);
        tokenRevoked = true;
      } catch (error) {
        const uncertain = error instanceof VaultError && error.afterUncertainTry;
        if (uncertain && error.status === 403 && !(await tokenStillValid(tokenClient))) {
          // An earlier try reached Vault and revoked the token (its answer was lost); the retry is
          // refused because the token no longer exists, and so is a lookup with it.
          tokenRevoked = true;
          deps.runner.info('Vault token revoked (by an earlier try whose answer was lost; the retry found it gone)');
        } else {
          tokenRevoked = false;
          problems.push(
            `Vault token ${uncertain ? 'may not have been' : 'not'} revoked: ${masks.scrub(errorText(error))}; it stays alive until it expires by its TTL${ledger.tokenExpires ? ` (${ledger.tokenExpires})` : ''}, nothing renews it any more, and its file goes with the private directory`,
          );
        }
      }
    }
  } finally {
    leaseClient.close();
    tokenClient.close();
  }
  // Revoking the token revokes the leases it holds, and a certificate's lease revokes the certificate.
  const certsLeft = certsNotRevoked
    .filter(({ cert }) => !(tokenRevoked && cert.leaseId !== undefined))
    .map(({ cert, reason }) => certLeft(cert, reason));
  if (tokenRevoked) {
    // Every lease in the ledger was issued to this token (main's reads, the agent's rotations), and
    // revoking a service token revokes its leases with it (checked against OpenBao in
    // test/e2e/leases.test.ts). A batch token's or a user's token's leases outlive it.
    if (notRevoked.length > 0) {
      deps.runner.info(`${notRevoked.length} lease(s) could not be revoked by id; revoking the Vault token revoked them with it`);
    }
    return {
      tokenRevoked,
      tokenBatchExpires,
      leasesRevoked,
      leasesWithToken: notRevoked.length,
      leasesLeft: [],
      certsRevoked,
      certsExpired,
      certsLeft,
      problems,
    };
  }
  const leasesLeft = notRevoked.map((lease) => ({ ...lease, expires: ledger.leaseExpires?.[lease.leaseId] }));
  return {
    tokenRevoked,
    tokenBatchExpires,
    leasesRevoked,
    leasesWithToken: 0,
    leasesLeft,
    certsRevoked,
    certsExpired,
    certsLeft,
    problems,
  };
}

/** A certificate still valid after post, named by name, mount and expiry: its serial is masked. */
function certLeft(cert: LedgerCert, reason: string): { name: string; mount: string; expires: string | undefined; reason: string } {
  return { name: cert.name, mount: cert.mount, expires: cert.expires, reason };
}

/**
 * `<mount>/revoke` with the serial from its 0600 file (masked first: an error must not show it).
 * Vault answers a revoked certificate with its revocation_time and an expired one with no data
 * (204; seen against OpenBao in test/e2e/pki.test.ts): an expired certificate needs no revocation.
 */
async function revokeBySerial(
  client: VaultClient,
  cert: LedgerCert,
  masks: MaskRegistry,
): Promise<'revoked' | 'expired' | { reason: string }> {
  let serial: string;
  try {
    serial = (await fs.readFile(cert.serialFile, 'utf8')).trim();
  } catch (error) {
    return { reason: `its serial file could not be read (${(error as NodeJS.ErrnoException).code ?? 'error'}), so it was not revoked` };
  }
  masks.add(serial);
  try {
    const answer = await client.write(`${cert.mount}/revoke`, { serial_number: serial });
    return answer?.data?.revocation_time !== undefined ? 'revoked' : 'expired';
  } catch (error) {
    if (error instanceof VaultError && error.status === 403)
      return {
        reason: `Vault refused ${cert.mount}/revoke (403; the default policy lacks it); grant ${certGrant(cert.mount)} in the token's policy`,
      };
    return { reason: `not revoked: ${masks.scrub(errorText(error))}` };
  }
}

/** The token post acts with: the one this run created (to revoke), else the user's (for leases only). */
async function postToken(
  ledger: Ledger,
  userToken: string | undefined,
  problems: string[],
): Promise<{ token: string; created: boolean } | undefined> {
  if (ledger.tokenFile) {
    try {
      return { token: await fs.readFile(ledger.tokenFile, 'utf8'), created: true };
    } catch (error) {
      // Already revoked and removed by an earlier post run, or main died before writing it.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') problems.push(`cannot read the token file (${code})`);
      return undefined;
    }
  }
  // A token the user passed in: never revoked, but the leases this run took with it are.
  const toRevoke = ledger.leases.length + (ledger.certs?.length ?? 0);
  return toRevoke > 0 && userToken !== undefined ? { token: userToken, created: false } : undefined;
}

/**
 * revoke-self, tried again after a short pause for as long as it fails on the way (no answer, 429,
 * 5xx, a standby's redirect: the client's own retries were used up) and the budget has room: the
 * token file goes right after, and with it any chance to revoke the token later. A cluster may be
 * without an active node for several seconds (an election, lost quorum), longer than the client's
 * own retries last.
 */
async function revokeSelfRetried(deps: RevokeDeps, client: VaultClient, deadline: number, masks: MaskRegistry): Promise<void> {
  const now = deps.now ?? Date.now;
  // Whether any try may have reached Vault: a refusal later can then mean that it revoked the token.
  let uncertain = false;
  for (let tries = 1; ; tries++) {
    try {
      await client.revokeSelf();
      return;
    } catch (error) {
      if (error instanceof VaultError) {
        if (uncertain) error.afterUncertainTry = true;
        uncertain ||= error.afterUncertainTry;
      }
      const status = error instanceof VaultError ? error.status : undefined;
      const transient = status === undefined || status === 429 || status >= 500;
      if (!transient || deadline - now() < REVOKE_RETRY_PAUSE_MS + 1000) throw error;
      const why = masks.scrub(errorText(error));
      if (tries === 1) deps.runner.info(`Vault token revocation failed (${why}); trying again until the 'timeout' input runs out`);
      else deps.runner.debug(`Vault token revocation try ${tries} failed (${why})`);
      await (deps.sleep ?? pause)(REVOKE_RETRY_PAUSE_MS);
    }
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether Vault still accepts the token (auth/token/lookup-self, in the default policy). */
async function tokenStillValid(client: VaultClient): Promise<boolean> {
  try {
    await client.read('auth/token/lookup-self');
    return true;
  } catch (error) {
    // Only a refusal says the token is gone; an unreachable Vault says nothing either way.
    return !(error instanceof VaultError && error.status === 403);
  }
}
