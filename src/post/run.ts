// The post step (post-if: always()): revoke leases, revoke the token this run created, delete every
// file and directory main wrote. It cleans up whatever main got as far as, is safe to run twice,
// and warns rather than fails so it never hides the main step's own outcome.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ROOT_MARKER, ROOT_PREFIX } from '../core/private-dir.ts';
import { errorText, VaultError } from '../core/errors.ts';
import { getInput, type Env } from '../inputs/common.ts';
import { parseTls, proxyFor, SCRUB_MODES, type ScrubMode } from '../inputs/main.ts';
import { checkLedger, loadLedger, type Ledger } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import { runStep } from '../core/run-step.ts';
import type { Runner } from '../core/runner.ts';
import { dockerLogout } from '../docker/login.ts';
import { AGENT_LEASES, AGENT_LOG, AGENT_STATUS, type AgentStatus } from '../agent/agent.ts';
import { stopAgent } from '../agent/launch.ts';
import { expectedFromDir, verifyContainer, verifySummary } from '../verify/container.ts';
import { scrubWorkspace } from './scrub.ts';
import type { Exec } from '../core/exec.ts';
import { agentEnding, cleanupSummary, type CleanupReport } from './summary.ts';
import { tlsOptions, type VaultClientFactory } from '../vault/client.ts';

export interface PostDeps {
  readonly env: Env;
  readonly runner: Runner;
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly exec: Exec;
  readonly now?: () => number;
}

export async function runPost(deps: PostDeps): Promise<void> {
  // Post warns: a cleanup problem must be visible but must not hide main's outcome.
  await runStep(deps.runner, { warn: 'cleanup' }, (masks) => post(deps, masks));
}

async function post(deps: PostDeps, masks: MaskRegistry): Promise<void> {
  const { runner } = deps;
  let ledger: Ledger | undefined;
  try {
    ledger = loadLedger(runner);
  } catch {
    runner.warning('cleanup: the saved state is not readable; nothing can be cleaned up safely');
    return;
  }
  if (!ledger) {
    runner.info('Pipeline Secrets cleanup: main created nothing; nothing to do');
    return;
  }
  // State is untrusted input: post acts only on the paths under the private root it can prove main
  // created, and sends a token only to the Vault address main was given (ledger.ts checkLedger).
  const checked = await checkLedger(ledger, deps.env);
  for (const refusal of checked.refused) runner.warning(`cleanup: refused from the saved state: ${masks.scrub(refusal)}`);
  ledger = checked.ledger;
  const problems: string[] = [];
  const dirsRemoved: string[] = [];
  const loggedOut: string[] = [];
  const leasesLeft: Array<CleanupReport['leasesLeft'][number]> = [];
  const report: { -readonly [K in keyof CleanupReport]: CleanupReport[K] } = {
    agent: undefined,
    scrubbed: undefined,
    tokenRevoked: undefined,
    tokenBatchExpires: undefined,
    leasesRevoked: 0,
    leasesWithToken: 0,
    leasesLeft,
    filesRemoved: 0,
    dirsRemoved,
    loggedOut,
    problems,
  };

  // The agent first: it must not renew or rewrite anything while post revokes and deletes.
  if (ledger.agentPid !== undefined && ledger.root) {
    const outcome = await stopAgent(ledger.agentPid, ledger.root).catch((error: unknown) => `error: ${errorText(error)}`);
    report.agent = outcome;
    await showAgentLog(deps.runner, ledger.root);
    report.agentStatus = await readAgentStatus(ledger.root);
    agentWarnings(deps.runner, outcome, report.agentStatus);
    ledger.leases = await currentLeases(ledger);
  }
  await revoke(deps, ledger, masks, report, leasesLeft, problems);
  await verifyBeforeCleanup(deps, ledger, masks, problems);
  await scrub(deps, ledger, report, problems);

  // Log out of every registry a login was attempted for; deleting the directory would drop the
  // credentials anyway, but logout also tells any credential helper in the config.
  if (ledger.dockerConfig) {
    for (const registry of ledger.registries ?? []) {
      const problem = await dockerLogout(deps.exec, ledger.dockerConfig, registry).catch(
        (error: unknown) => `docker logout ${registry}: ${errorText(error)}`,
      );
      if (problem) problems.push(problem);
      else loggedOut.push(registry);
    }
    // The directory itself lives in the private root and goes with it below.
  }

  for (const file of ledger.files) {
    if (await removeFile(file, problems)) report.filesRemoved++;
  }
  if (ledger.tokenFile && (await removeFile(ledger.tokenFile, problems))) report.filesRemoved++;
  if (ledger.userSecretsDir && ledger.secretsDir) {
    // A directory the user named: remove only what we wrote, then the directory if it is empty.
    try {
      await fs.rmdir(ledger.secretsDir);
      dirsRemoved.push(ledger.secretsDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        const left = await fs.readdir(ledger.secretsDir).catch(() => []);
        problems.push(`${ledger.secretsDir} still holds files this action did not write (${left.join(', ')}); left in place`);
      } else if (code !== 'ENOENT') problems.push(`cannot remove ${ledger.secretsDir} (${code})`);
    }
  }
  if (ledger.root) {
    if (await removeRoot(ledger.root, problems)) dirsRemoved.push(ledger.root);
  }

  for (const lease of leasesLeft) {
    runner.warning(
      `cleanup: lease ${lease.leaseId} left alive${lease.expires !== undefined ? ` until ${lease.expires}` : ''}: ${lease.reason}`,
    );
  }
  for (const problem of problems) runner.warning(`cleanup: ${problem}`);
  const token = report.tokenRevoked ? 'token revoked, ' : report.tokenBatchExpires !== undefined ? 'batch token left to expire, ' : '';
  const left = leasesLeft.length > 0 ? `${leasesLeft.length} lease(s) left alive, ` : '';
  runner.info(
    `Pipeline Secrets cleanup: ${token}${report.leasesRevoked + report.leasesWithToken} lease(s) revoked, ${left}${report.filesRemoved} file(s) and ${report.dirsRemoved.length} director(ies) removed`,
  );
  await runner.appendSummary(cleanupSummary(report));
}

/** The token post acts with: the one this run created (to revoke), else the user's (for leases only). */
async function postToken(deps: PostDeps, ledger: Ledger, problems: string[]): Promise<{ token: string; created: boolean } | undefined> {
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
  const token = getInput(deps.env, 'token');
  return ledger.leases.length > 0 && token !== '' ? { token, created: false } : undefined;
}

// The policy line that lets post revoke a lease by id; Vault's default policy lacks it.
const REVOKE_GRANT = 'path "sys/leases/revoke" { capabilities = ["update"] }';

async function revoke(
  deps: PostDeps,
  ledger: Ledger,
  masks: MaskRegistry,
  report: {
    tokenRevoked: boolean | undefined;
    tokenBatchExpires: string | undefined;
    leasesRevoked: number;
    leasesWithToken: number;
  },
  leasesLeft: Array<CleanupReport['leasesLeft'][number]>,
  problems: string[],
): Promise<void> {
  if (!ledger.vaultUrl) return;
  // A batch token cannot be revoked (Vault answers 400): nothing to do for it, and nothing wrong.
  if (ledger.tokenFile && ledger.tokenBatch) report.tokenBatchExpires = ledger.tokenExpires ?? '';
  const expires = (leaseId: string): string | undefined => ledger.leaseExpires?.[leaseId];
  const held = await postToken(deps, ledger, problems);
  // No token: an earlier post run revoked and removed it (post is safe to run twice), or main
  // died before it had one; either way there is nothing post could revoke with, or claim.
  if (!held) return;
  masks.add(held.token);
  const timeoutSeconds = Number(getInput(deps.env, 'timeout')) || 30;
  // The same TLS and proxy settings as main (inputs reach post too); if they no longer parse,
  // try with defaults rather than give up on revoking.
  let tls: ReturnType<typeof tlsOptions> = {};
  let proxy: string | undefined;
  try {
    tls = tlsOptions(parseTls(deps.env));
    if (tls.key !== undefined) masks.add(tls.key);
    proxy = proxyFor(ledger.vaultUrl, deps.env);
  } catch (error) {
    problems.push(`TLS or proxy settings unusable (${errorText(error)}); trying without them`);
  }
  const createClient = await deps.loadVaultClient();
  const start = (deps.now ?? Date.now)();
  const clientFor = (deadline: number): ReturnType<typeof createClient> => {
    const c = createClient({
      url: ledger.vaultUrl ?? '',
      namespace: ledger.namespace,
      tls,
      ...(proxy !== undefined ? { proxy } : {}),
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
  const leaseClient = clientFor(start + (timeoutSeconds * 1000 * 2) / 3);
  const tokenClient = clientFor(start + timeoutSeconds * 1000);
  const notRevoked: Array<{ leaseId: string; reason: string }> = [];
  try {
    // Leases first, each by id (https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-lease):
    // a user's token is not revoked, and a lease must not outlive the job.
    for (const leaseId of ledger.leases) {
      try {
        await leaseClient.write('sys/leases/revoke', { lease_id: leaseId });
        report.leasesRevoked++;
      } catch (error) {
        const refused = error instanceof VaultError && error.status === 403;
        const reason = refused
          ? `Vault refused sys/leases/revoke (403; the default policy lacks it); grant ${REVOKE_GRANT} in the token's policy`
          : `not revoked: ${masks.scrub(errorText(error))}`;
        notRevoked.push({ leaseId, reason });
      }
    }
    if (held.created && !ledger.tokenBatch) {
      try {
        await revokeSelfRetried(deps, tokenClient, start + timeoutSeconds * 1000, masks);
        report.tokenRevoked = true;
      } catch (error) {
        const uncertain = error instanceof VaultError && error.afterUncertainTry;
        if (uncertain && error.status === 403 && !(await tokenStillValid(tokenClient))) {
          // An earlier try reached Vault and revoked the token (its answer was lost); the retry is
          // refused because the token no longer exists, and so is a lookup with it.
          report.tokenRevoked = true;
          deps.runner.info('Vault token revoked (by an earlier try whose answer was lost; the retry found it gone)');
        } else {
          report.tokenRevoked = false;
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
  if (report.tokenRevoked) {
    // Every lease in the ledger was issued to this token (main's reads, the agent's rotations), and
    // revoking a service token revokes its leases with it (checked against OpenBao in
    // test/e2e/leases.test.ts). A batch token's or a user's token's leases outlive it.
    report.leasesWithToken += notRevoked.length;
    if (notRevoked.length > 0) {
      deps.runner.info(`${notRevoked.length} lease(s) could not be revoked by id; revoking the Vault token revoked them with it`);
    }
  } else {
    for (const lease of notRevoked) leasesLeft.push({ ...lease, expires: expires(lease.leaseId) });
  }
}

const REVOKE_RETRY_PAUSE_MS = 1000;

/**
 * revoke-self, and once more after a short pause when it failed on the way (no answer, 429, 5xx:
 * the client's own retries were used up) and the budget still has room: the token file goes right
 * after, and with it any chance to revoke the token later.
 */
async function revokeSelfRetried(
  deps: PostDeps,
  client: { revokeSelf: () => Promise<void> },
  deadline: number,
  masks: MaskRegistry,
): Promise<void> {
  const now = deps.now ?? Date.now;
  try {
    await client.revokeSelf();
  } catch (error) {
    const status = error instanceof VaultError ? error.status : undefined;
    const transient = status === undefined || status === 429 || status >= 500;
    if (!transient || deadline - now() < REVOKE_RETRY_PAUSE_MS + 1000) throw error;
    deps.runner.info(`Vault token revocation failed (${masks.scrub(errorText(error))}); trying once more`);
    await new Promise((resolve) => setTimeout(resolve, REVOKE_RETRY_PAUSE_MS));
    try {
      await client.revokeSelf();
    } catch (again) {
      // The first try may have reached Vault: a refusal now can mean that it revoked the token.
      if (again instanceof VaultError && error instanceof VaultError && error.afterUncertainTry) again.afterUncertainTry = true;
      throw again;
    }
  }
}

/** Whether Vault still accepts the token (auth/token/lookup-self, in the default policy). */
async function tokenStillValid(client: { read: (path: string) => Promise<unknown> }): Promise<boolean> {
  try {
    await client.read('auth/token/lookup-self');
    return true;
  } catch (error) {
    // Only a refusal says the token is gone; an unreachable Vault says nothing either way.
    return !(error instanceof VaultError && error.status === 403);
  }
}

/** What the agent did, for the user: it holds names, versions, byte counts and exit codes only. */
async function showAgentLog(runner: Runner, root: string): Promise<void> {
  const text = await fs.readFile(path.join(root, AGENT_LOG), 'utf8').catch(() => '');
  if (text.trim() === '') return;
  runner.info('Renewal agent log:');
  for (const line of text.trimEnd().split('\n')) runner.info(`  ${line}`);
}

/**
 * The agent's agent-status.json (agent.ts AgentStatus), checked field by field: a file in our
 * private root, but read as untrusted input (no symlink, bounded size, only the fields known).
 */
async function readAgentStatus(root: string): Promise<AgentStatus | undefined> {
  let raw: unknown;
  try {
    const handle = await fs.open(path.join(root, AGENT_STATUS), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size > 1024 * 1024) return undefined;
      raw = JSON.parse(await handle.readFile('utf8'));
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
  const o = (v: unknown): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const nn = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const t = (v: unknown): string => (typeof v === 'string' ? v : '');
  const list = (v: unknown): Array<Record<string, unknown>> => (Array.isArray(v) ? v.map(o) : []);
  const s = o(raw);
  if (s.format !== 1) return undefined;
  const states = ['running', 'stopped', 'exited', 'failed'] as const;
  const state = states.find((x) => x === s.state) ?? 'running';
  return {
    format: 1,
    pid: n(s.pid),
    started: t(s.started),
    updated: t(s.updated),
    state,
    ...(typeof s.reason === 'string' ? { reason: s.reason } : {}),
    renewals: { token: n(o(s.renewals).token), leases: n(o(s.renewals).leases) },
    failures: list(s.failures).map((f) => ({ what: t(f.what), reason: t(f.reason), count: n(f.count), last: t(f.last) })),
    replaced: n(s.replaced),
    kvChanges: list(s.kvChanges).map((k) => ({ path: t(k.path), from: nn(k.from), to: nn(k.to), at: t(k.at) })),
    kvChangesTotal: n(s.kvChangesTotal),
    onChange: list(s.onChange).map((r) => ({
      names: Array.isArray(r.names) ? r.names.map(t) : [],
      exitCode: n(r.exitCode),
      ms: n(r.ms),
      at: t(r.at),
    })),
    onChangeTotal: n(s.onChangeTotal),
    secrets: list(s.secrets).map((x) => ({
      name: t(x.name),
      path: typeof x.path === 'string' ? x.path : null,
      version: nn(x.version),
      bytes: n(x.bytes),
    })),
  };
}

/** The agent's problems as warnings: each failure with its reason, each on-change that did not exit 0, an early death. */
function agentWarnings(runner: Runner, outcome: string, status: AgentStatus | undefined): void {
  const ending = agentEnding(outcome, status);
  if (ending.early) runner.warning(`renewal agent: ${ending.text}`);
  else if (status?.state === 'failed') runner.warning(`renewal agent: failed: ${status.reason ?? 'no reason recorded'}`);
  for (const f of status?.failures ?? [])
    runner.warning(`renewal agent: ${f.what} failed ${f.count} time(s), last at ${f.last}: ${f.reason}`);
  for (const r of status?.onChange ?? []) {
    if (r.exitCode !== 0) runner.warning(`renewal agent: on-change for ${r.names.join(', ')} exited with code ${r.exitCode} (at ${r.at})`);
  }
}

/** Leases to revoke: main's, plus those the agent took when it replaced a credential. */
async function currentLeases(ledger: Ledger): Promise<string[]> {
  const all = new Set(ledger.leases);
  try {
    const saved = JSON.parse(await fs.readFile(path.join(ledger.root ?? '', AGENT_LEASES), 'utf8')) as {
      leases?: string[];
      revoked?: string[];
    };
    for (const id of saved.leases ?? []) all.add(id);
    for (const id of saved.revoked ?? []) all.delete(id);
  } catch {
    // No agent lease file: main's leases stand.
  }
  return [...all];
}

/** Values to scrub for: the delivered files and the token, read before they are deleted. */
async function scrub(deps: PostDeps, ledger: Ledger, report: { scrubbed: CleanupReport['scrubbed'] }, problems: string[]): Promise<void> {
  const mode = (getInput(deps.env, 'scrub') || 'redact') as ScrubMode;
  const workspace = deps.env.GITHUB_WORKSPACE;
  if (mode === 'off' || !workspace || !SCRUB_MODES.includes(mode)) {
    if (!SCRUB_MODES.includes(mode))
      problems.push(`input 'scrub': '${mode}' is not one of ${SCRUB_MODES.join(', ')}; the workspace was not scrubbed`);
    return;
  }
  const values: Array<{ name: string; value: string }> = [];
  for (const file of ledger.files) {
    if (!ledger.secretsDir || path.dirname(file) !== ledger.secretsDir) continue;
    const value = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (value !== undefined) values.push({ name: path.basename(file), value });
  }
  if (ledger.tokenFile) {
    const token = await fs.readFile(ledger.tokenFile, 'utf8').catch(() => undefined);
    if (token !== undefined) values.push({ name: 'vault-token', value: token });
  }
  if (values.length === 0) return;
  try {
    const result = await scrubWorkspace(workspace, values, mode);
    // "no secret value found" only when everything was scanned; otherwise the problems say what was not.
    report.scrubbed = result.files.length === 0 && result.notScanned > 0 ? undefined : result.files;
    for (const file of result.files) {
      const message = `scrub: ${file.names.join(', ')} found ${file.findings} time(s) in ${path.relative(workspace, file.path) || file.path}: ${file.action}`;
      if (mode === 'report' || !file.scrubbed) deps.runner.warning(message);
      else deps.runner.info(message);
    }
    problems.push(...result.problems.map((p) => `scrub: ${p}`));
    if (result.notScanned > 0)
      problems.push(`scrub: the workspace was not scanned completely: ${result.notScanned} path(s) not scanned (listed above)`);
  } catch (error) {
    problems.push(`scrub: ${errorText(error)}`);
  }
}

/** `verify-container`: the last look before the files go, by presence and byte count only. */
async function verifyBeforeCleanup(deps: PostDeps, ledger: Ledger, masks: MaskRegistry, problems: string[]): Promise<void> {
  const container = getInput(deps.env, 'verify-container');
  if (container === '' || !ledger.secretsDir) return;
  const mountPath = getInput(deps.env, 'verify-path') || '/run/secrets';
  try {
    const results = await verifyContainer(deps.exec, container, mountPath, await expectedFromDir(ledger.secretsDir), {
      input: 'verify-container',
      scrub: (text) => masks.scrub(text),
    });
    await deps.runner.appendSummary(verifySummary(container, mountPath, results));
    const bad = results.filter((r) => r.seen !== r.expected).map((r) => r.name);
    if (bad.length > 0) problems.push(`verify-container '${container}': missing or of another size at ${mountPath}: ${bad.join(', ')}`);
  } catch (error) {
    problems.push(errorText(error));
  }
}

async function removeFile(file: string, problems: string[]): Promise<boolean> {
  try {
    // unlink removes a symlink itself, never its target.
    await fs.unlink(file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') problems.push(`cannot remove ${file} (${code})`);
    return false;
  }
}

/** Removes the private root only if it is ours: our name prefix and our marker file inside. */
async function removeRoot(root: string, problems: string[]): Promise<boolean> {
  if (!path.basename(root).startsWith(ROOT_PREFIX)) {
    problems.push(`${root} is not a Pipeline Secrets directory; left in place`);
    return false;
  }
  try {
    const stat = await fs.lstat(root);
    if (!stat.isDirectory()) {
      problems.push(`${root} is not a directory; left in place`);
      return false;
    }
    await fs.access(path.join(root, ROOT_MARKER));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // Gone already (second run), or main died before writing its marker: remove it if empty.
      await fs.rmdir(path.join(root, 'secrets')).catch(() => {});
      const removed = await fs.rmdir(root).then(
        () => true,
        () => false,
      );
      return removed;
    }
    problems.push(`cannot inspect ${root} (${code})`);
    return false;
  }
  await fs.rm(root, { recursive: true, force: true });
  return true;
}
