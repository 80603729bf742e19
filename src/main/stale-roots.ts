// Leftovers of jobs whose post never ran (a crashed or killed runner on a self-hosted machine,
// where /dev/shm outlives the job): each private root's marker says when it expires, and main
// removes the expired roots of this user under the same bases, revoking the token each holds at
// the Vault address its marker names. A root is touched only when it is provably one of ours and
// expired: a directory (not a symlink) named pipeline-secrets-* directly in the base, owned by this
// user, mode 0700, whose marker (a small regular file, not followed through a link) names this
// directory by path and device:inode and an expiry in the past, and whose renewal agent, if it
// had one, no longer runs. The log names counts and paths, never a value.
import { closeSync, constants, fstatSync, lstatSync, openSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileId, ROOT_MARKER, ROOT_PREFIX, type RootLife, type RootMarker } from '../core/private-dir.ts';
import { errorText, VaultError } from '../core/errors.ts';
import type { Env } from '../inputs/common.ts';
import { proxyFor, type Config } from '../inputs/main.ts';
import type { Runner } from '../core/runner.ts';
import { tlsOptions, type VaultClientFactory } from '../vault/client.ts';

/**
 * GitHub's default job timeout (timeout-minutes: 360): a root is not taken for a leftover before
 * then, nor before the renewal agent's max lifetime has passed.
 */
export const DEFAULT_JOB_LIFETIME_MS = 6 * 60 * 60 * 1000;
/** Every revocation of one sweep together. */
const SWEEP_BUDGET_MS = 10_000;
const MARKER_MAX_BYTES = 4096;

/** The marker's end of life for a root main creates now: when a job using it must be over. */
export function rootLife(config: Config, now: number): RootLife {
  const lifetime = Math.max(DEFAULT_JOB_LIFETIME_MS, config.renew?.maxLifetimeMs ?? 0);
  const life: { expires: string; vault?: { url: string; namespace?: string } } = { expires: new Date(now + lifetime).toISOString() };
  if (config.vault) {
    life.vault = { url: config.vault.url, ...(config.vault.namespace !== undefined ? { namespace: config.vault.namespace } : {}) };
  }
  return life;
}

export interface SweepDeps {
  readonly env: Env;
  readonly runner: Runner;
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly now?: () => number;
  readonly shm?: string;
}

export interface SweepResult {
  readonly removed: string[];
  tokensRevoked: number;
  readonly problems: string[];
}

/** Removes expired roots of earlier jobs and says so in the log; never fails main. */
export async function sweepStaleRoots(deps: SweepDeps, config: Config): Promise<SweepResult> {
  const result: SweepResult = { removed: [], tokensRevoked: 0, problems: [] };
  try {
    await sweep(deps, config, result);
  } catch (error) {
    result.problems.push(errorText(error));
  }
  if (result.removed.length > 0) {
    deps.runner.info(
      `Pipeline Secrets: removed ${result.removed.length} expired private director(ies) left by earlier jobs whose post did not run (${result.tokensRevoked} Vault token(s) revoked): ${result.removed.join(', ')}`,
    );
  }
  for (const problem of result.problems) deps.runner.warning(`leftovers of earlier jobs: ${problem}`);
  return result;
}

async function sweep(deps: SweepDeps, config: Config, result: SweepResult): Promise<void> {
  if (process.platform === 'win32' || process.getuid === undefined) return;
  const now = (deps.now ?? Date.now)();
  const bases = [...new Set([deps.shm ?? '/dev/shm', deps.env.RUNNER_TEMP].filter((b): b is string => !!b).map((b) => path.resolve(b)))];
  const expired: Array<{ root: string; marker: RootMarker }> = [];
  for (const base of bases) {
    const names = (await fs.readdir(base).catch(() => [] as string[])).filter((n) => n.startsWith(ROOT_PREFIX));
    const markers = names.map((name) => expiredMarker(path.join(base, name), now));
    markers.forEach((marker, i) => {
      if (marker) expired.push({ root: path.join(base, names[i] ?? ''), marker });
    });
  }
  if (expired.length === 0) return;
  const deadline = now + SWEEP_BUDGET_MS;
  let createClient: VaultClientFactory | undefined;
  for (const { root, marker } of expired) {
    if (await agentRuns(root)) {
      result.problems.push(`${root} is expired but its renewal agent still runs; left in place`);
      continue;
    }
    const token = await readSmall(path.join(root, 'vault-token'));
    if (token !== undefined && token !== '' && marker.vault) {
      try {
        createClient ??= await deps.loadVaultClient();
        if (await revokeToken(createClient, marker.vault, token, config, deps.env, deadline)) result.tokensRevoked++;
      } catch (error) {
        result.problems.push(
          `the Vault token in ${root} was not revoked (it stays alive until its TTL ends): ${errorText(error).split(token).join('***')}`,
        );
      }
    }
    // Still the same directory (a rename in between would swap it): then it goes, token file with it.
    const again = await fs.lstat(root, { bigint: true }).catch(() => undefined);
    if (!again?.isDirectory() || fileId(again) !== marker.rootId) {
      result.problems.push(`${root} changed while it was being removed; left in place`);
      continue;
    }
    await fs.rm(root, { recursive: true, force: true });
    result.removed.push(root);
    if (marker.userSecretsDir)
      result.problems.push(`${root} named the secrets-dir ${marker.secretsDir}, which is the user's: left in place`);
  }
}

/**
 * The marker of `root` when the root is ours and expired; undefined for anything else.
 * Synchronous: it runs for every pipeline-secrets-* directory in the bases, and a busy machine may
 * hold many. An lstat and a small read each cost microseconds on the main thread; through the
 * thread pool they queue ahead of this job's own file work and cost far more (measured on Node 24:
 * 99 roots in /dev/shm added about 20 ms to every main step).
 */
function expiredMarker(root: string, now: number): RootMarker | undefined {
  let stat;
  try {
    stat = lstatSync(root, { bigint: true });
  } catch {
    return undefined;
  }
  if (!stat.isDirectory() || stat.uid !== BigInt(process.getuid?.() ?? -1) || (stat.mode & 0o777n) !== 0o700n) return undefined;
  const text = readSmallSync(path.join(root, ROOT_MARKER));
  if (text === undefined) return undefined;
  let marker: RootMarker;
  try {
    marker = JSON.parse(text) as RootMarker;
  } catch {
    return undefined;
  }
  if (marker === null || typeof marker !== 'object' || marker.v !== 1) return undefined;
  // A copied marker names another directory; one without an expiry (older versions) never expires.
  if (marker.root !== root || marker.rootId !== fileId(stat)) return undefined;
  const expires = typeof marker.expires === 'string' ? Date.parse(marker.expires) : Number.NaN;
  if (!Number.isFinite(expires) || expires > now) return undefined;
  if (marker.vault !== undefined && (typeof marker.vault !== 'object' || typeof marker.vault?.url !== 'string')) return undefined;
  return marker;
}

/** A small regular file's text, never followed through a symlink; undefined otherwise. */
async function readSmall(file: string): Promise<string | undefined> {
  try {
    const handle = await fs.open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size > MARKER_MAX_BYTES) return undefined;
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

/** readSmall, synchronously, for the marker of every root looked at. */
function readSmallSync(file: string): string | undefined {
  let fd: number | undefined;
  try {
    // O_NONBLOCK: a FIFO in the marker's place must not block the open waiting for a writer (the
    // stat then refuses it); it changes nothing for a regular file.
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > MARKER_MAX_BYTES) return undefined;
    return readFileSync(fd, 'utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether the renewal agent started for `root` still runs (its pid file, and /proc says it is ours). */
async function agentRuns(root: string): Promise<boolean> {
  const pid = Number((await readSmall(path.join(root, 'agent.pid')))?.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(root);
}

/** revoke-self with the root's token at the address its marker names; false when there was nothing to revoke. */
async function revokeToken(
  createClient: VaultClientFactory,
  vault: NonNullable<RootMarker['vault']>,
  token: string,
  config: Config,
  env: Env,
  deadline: number,
): Promise<boolean> {
  // This run's TLS settings only for the address this run uses too; any other gets the defaults.
  const same = config.vault?.url === vault.url;
  const proxy = same ? config.vault?.proxy : proxyFor(vault.url, env);
  const client = createClient({
    url: vault.url,
    namespace: vault.namespace,
    tls: same && config.vault ? tlsOptions(config.vault.tls) : {},
    ...(proxy !== undefined ? { proxy } : {}),
    ...(same && config.vault ? { headers: config.vault.headers } : {}),
    deadline,
    retries: 1,
    maxSockets: 1,
  });
  client.token = token;
  try {
    await client.revokeSelf();
    return true;
  } catch (error) {
    // 403: the token is gone already (expired or revoked); 400: a batch token, which ends by its TTL.
    if (error instanceof VaultError && (error.status === 403 || error.status === 400)) return false;
    throw error;
  } finally {
    client.close();
  }
}
