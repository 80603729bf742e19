// Post's last phase, its report: what cleanup revoked, logged out, deleted and scrubbed, and how the
// renewal agent ended, as warnings, one log line and the job summary; never a value.
import type { AgentStatus } from '../agent/agent.ts';
import type { Runner } from '../core/runner.ts';
import { cell, code } from '../core/summary-text.ts';

export interface CleanupReport {
  readonly agent: string | undefined;
  /** The agent's agent-status.json as post read it (undefined: none, or not readable). */
  readonly agentStatus?: AgentStatus | undefined;
  readonly scrubbed: ReadonlyArray<{ path: string; findings: number; names: string[]; action: string }> | undefined;
  readonly tokenRevoked: boolean | undefined;
  /** The created token is a batch token (nothing to revoke): when it expires, '' when unknown. */
  readonly tokenBatchExpires: string | undefined;
  /** Revoked by id (sys/leases/revoke). */
  readonly leasesRevoked: number;
  /** Not revocable by id, but children of the token post revoked: Vault revoked them with it. */
  readonly leasesWithToken: number;
  /** Still alive after post: id, when it expires (from its TTL at issue) and why. */
  readonly leasesLeft: ReadonlyArray<{ leaseId: string; expires: string | undefined; reason: string }>;
  /** Certificates of `pki` entries revoked by serial (those revoked with their lease count as leases). */
  readonly certsRevoked?: number;
  /** Certificates Vault found expired when post came to revoke them (nothing left to revoke). */
  readonly certsExpired?: number;
  /** Certificates still valid after post: by name, mount and expiry (the serial is masked), and why. */
  readonly certsLeft?: ReadonlyArray<{ name: string; mount: string; expires: string | undefined; reason: string }>;
  readonly filesRemoved: number;
  /** Rendered files main wrote in the workspace (`templates` with `path=`), deleted. */
  readonly workspaceFilesRemoved?: readonly string[];
  readonly dirsRemoved: readonly string[];
  readonly loggedOut: readonly string[];
  readonly problems: readonly string[];
}
/**
 * How the agent ended, from post's stop (stopAgent: stopped, killed, gone, not ours) and its
 * status: `early` when it was not running any more when post came to stop it, without having
 * exited by itself at its max lifetime (a crash, a kill, an error), with the last reason known.
 */
export function agentEnding(outcome: string, status: AgentStatus | undefined): { text: string; early: boolean } {
  // 'not ours': the pid is no longer our agent (reused, or a zombie nobody reaped yet): it is gone too.
  const gone = outcome === 'gone' || outcome === 'not ours';
  if (gone && status?.state === 'exited')
    return { text: `exited by itself before post: ${status.reason ?? 'no reason recorded'}`, early: false };
  if (gone) {
    const last = [...(status?.failures ?? [])].sort((a, b) => a.last.localeCompare(b.last)).at(-1);
    const reason =
      status?.state === 'failed' && status.reason !== undefined
        ? status.reason
        : last !== undefined
          ? `${last.what}: ${last.reason}`
          : status === undefined
            ? 'it wrote no status'
            : 'none recorded (killed by a signal?)';
    return { text: `died before post stopped it (renewals stopped then); last reason: ${reason}`, early: true };
  }
  if (outcome === 'killed') return { text: 'did not stop within 5 s of SIGTERM and was killed', early: false };
  if (outcome === 'stopped') return { text: 'stopped by post', early: false };
  return { text: outcome, early: false };
}

/** The renewal agent's section: what it did, from agent-status.json (never a value). */
function agentSection(outcome: string, status: AgentStatus | undefined): string[] {
  const ending = agentEnding(outcome, status);
  const lines = ['#### Renewal agent', '', `- ${ending.early ? '⚠️ ' : ''}Agent: ${cell(ending.text)}`];
  if (status === undefined) return [...lines, ''];
  lines.push(`- Renewals: token ${status.renewals.token}, leases ${status.renewals.leases}`);
  const failures = status.failures.reduce((n, f) => n + f.count, 0);
  lines.push(`- Failures: ${failures}`);
  for (const f of status.failures)
    lines.push(`  - ⚠️ ${cell(f.what)} failed ${f.count} time(s), last at ${cell(f.last)}: ${code(f.reason)}`);
  lines.push(`- Credentials replaced: ${status.replaced}`);
  for (const r of status.rendered ?? []) lines.push(`- Rendered again: ${cell(r.name)} ${r.renders} time(s), now ${r.bytes} bytes`);
  lines.push(`- KV versions changed: ${status.kvChangesTotal}`);
  for (const k of status.kvChanges) lines.push(`  - ${code(k.path)}: version ${k.from ?? '?'} → ${k.to ?? '?'} at ${cell(k.at)}`);
  const failedRuns = status.onChange.filter((r) => r.exitCode !== 0).length;
  lines.push(`- on-change runs: ${status.onChangeTotal}${failedRuns > 0 ? ` (${failedRuns} with a non-zero exit code)` : ''}`);
  for (const r of status.onChange)
    lines.push(
      `  - ${r.exitCode !== 0 ? '⚠️ ' : ''}${cell(r.names.join(', '))}${r.rendered?.length ? ` (rendered ${cell(r.rendered.join(', '))})` : ''}: exit code ${r.exitCode} after ${r.ms} ms at ${cell(r.at)}`,
    );
  if (status.secrets.length > 0) {
    lines.push(
      '',
      'The secrets as the agent last delivered them:',
      '',
      '| name | source | version | bytes |',
      '| --- | --- | ---: | ---: |',
    );
    for (const s of status.secrets) lines.push(`| ${cell(s.name)} | ${cell(s.path ?? 'env')} | ${s.version ?? ''} | ${s.bytes} |`);
  }
  return [...lines, ''];
}

/** Each lease left alive and each problem as a warning, one line of counts, and the job summary. */
export async function reportCleanup(runner: Runner, report: CleanupReport): Promise<void> {
  for (const lease of report.leasesLeft) {
    runner.warning(
      `cleanup: lease ${lease.leaseId} left alive${lease.expires !== undefined ? ` until ${lease.expires}` : ''}: ${lease.reason}`,
    );
  }
  for (const cert of report.certsLeft ?? []) runner.warning(`cleanup: ${certLeftText(cert)}`);
  for (const problem of report.problems) runner.warning(`cleanup: ${problem}`);
  const token = report.tokenRevoked ? 'token revoked, ' : report.tokenBatchExpires !== undefined ? 'batch token left to expire, ' : '';
  const left = report.leasesLeft.length > 0 ? `${report.leasesLeft.length} lease(s) left alive, ` : '';
  runner.info(
    `Pipeline Secrets cleanup: ${token}${report.leasesRevoked + report.leasesWithToken} lease(s) revoked, ${left}${report.filesRemoved + (report.workspaceFilesRemoved?.length ?? 0)} file(s) and ${report.dirsRemoved.length} director(ies) removed`,
  );
  await runner.appendSummary(cleanupSummary(report));
}

function certLeftText(c: { name: string; mount: string; expires: string | undefined; reason: string }): string {
  return `certificate ${c.name} from ${c.mount} left valid${c.expires !== undefined ? ` until ${c.expires}` : ''}: ${c.reason}`;
}

export function cleanupSummary(report: CleanupReport): string {
  const lines = ['### Pipeline Secrets cleanup', ''];
  if (report.agent !== undefined) lines.push(`- Renewal agent: ${cell(agentEnding(report.agent, report.agentStatus).text)}`);
  if (report.tokenBatchExpires !== undefined) {
    lines.push(
      `- Vault token: a batch token, which cannot be revoked; it expires by its TTL${report.tokenBatchExpires !== '' ? ` at ${cell(report.tokenBatchExpires)}` : ''}`,
    );
  } else if (report.tokenRevoked !== undefined)
    lines.push(`- Vault token: ${report.tokenRevoked ? 'revoked' : 'NOT revoked (see warnings)'}`);
  if (report.leasesRevoked + report.leasesWithToken + report.leasesLeft.length > 0) {
    const parts = [`${report.leasesRevoked} revoked`];
    if (report.leasesWithToken > 0) parts.push(`${report.leasesWithToken} revoked with the Vault token`);
    parts.push(`${report.leasesLeft.length} left alive`);
    lines.push(`- Leases: ${parts.join(', ')}`);
    for (const l of report.leasesLeft) {
      lines.push(`  - ⚠️ ${code(l.leaseId)} left alive${l.expires !== undefined ? ` until ${cell(l.expires)}` : ''}: ${cell(l.reason)}`);
    }
  }
  const certsLeft = report.certsLeft ?? [];
  const certsExpired = report.certsExpired ?? 0;
  if ((report.certsRevoked ?? 0) + certsExpired + certsLeft.length > 0) {
    const expired = certsExpired > 0 ? `, ${certsExpired} expired already` : '';
    lines.push(`- Certificates: ${report.certsRevoked ?? 0} revoked by serial${expired}, ${certsLeft.length} left valid`);
    for (const c of certsLeft) lines.push(`  - ⚠️ ${cell(certLeftText(c))}`);
  }
  if (report.loggedOut.length > 0) lines.push(`- Logged out of: ${report.loggedOut.map(cell).join(', ')}`);
  lines.push(`- Files removed: ${report.filesRemoved}`);
  const inWorkspace = report.workspaceFilesRemoved ?? [];
  if (inWorkspace.length > 0) {
    lines.push(`- Rendered files removed from the workspace: ${inWorkspace.length}`);
    for (const file of inWorkspace) lines.push(`  - ${code(file)}`);
  }
  if (report.scrubbed !== undefined) {
    lines.push(
      `- Workspace scrub: ${report.scrubbed.length === 0 ? 'no secret value found' : `${report.scrubbed.length} file(s) held a secret value`}`,
    );
    for (const f of report.scrubbed) lines.push(`  - ${code(f.path)}: ${cell(f.names.join(', '))} x${f.findings}, ${cell(f.action)}`);
  }
  for (const dir of report.dirsRemoved) lines.push(`- Directory removed: ${code(dir)}`);
  for (const problem of report.problems) lines.push(`- ⚠️ ${cell(problem)}`);
  lines.push('');
  if (report.agent !== undefined) lines.push(...agentSection(report.agent, report.agentStatus));
  return lines.join('\n');
}
