// Job summary: where each secret went and how many bytes it has; never a value. Verification by
// presence and byte count only.
import type { AgentStatus } from '../agent/agent.ts';
import type { Lease, Secret } from '../vault/fetch.ts';
import { inert } from './log-safe.ts';

export interface DeliveryReport {
  readonly secrets: readonly Secret[];
  readonly secretsDir: string;
  /** Whether the secrets directory itself is on tmpfs (deliver.ts looks; a user's `secrets-dir` too). */
  readonly onTmpfs: boolean;
  /** The secrets directory is the user's `secrets-dir`, not one made under /dev/shm or RUNNER_TEMP. */
  readonly userSecretsDir?: boolean;
  readonly exportEnv: boolean;
  readonly exportOutputs: boolean;
  readonly envFileSkipped: readonly string[];
  readonly leases: readonly Lease[];
  readonly tokenRevocable: boolean;
  /** Set when this run logged in and got a batch token: when it ends (it cannot be revoked). */
  readonly batchTokenExpires?: string | undefined;
  readonly registries: readonly string[];
  readonly dockerConfig: string | undefined;
  readonly buildSecrets: readonly string[];
}

/**
 * Escapes outside text (names, paths, messages) for the job summary, in a table cell or anywhere in
 * a line: one line with controls rendered visibly (log-safe.ts), then no markdown or HTML of its own
 * (no cell break, link, image, tag, entity or emphasis). Every outside string in a summary goes here.
 */
export function cell(text: string): string {
  return inert(text)
    .replace(/[|\\`*_<>[\]]/g, (c) => `\\${c}`)
    .replaceAll('&', '&amp;');
}

/**
 * Outside text as an inline code span, outside a table: one line with controls rendered visibly; a
 * fence longer than any run of backticks in it, so nothing inside can close it (inside a code span
 * there is no markdown or HTML, and backslash escapes would show).
 */
export function code(text: string): string {
  const safe = inert(text);
  const fence = '`'.repeat(Math.max(0, ...(safe.match(/`+/g) ?? []).map((run) => run.length)) + 1);
  const pad = safe.startsWith('`') || safe.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${safe}${pad}${fence}`;
}

export function deliverySummary(report: DeliveryReport): string {
  const rows = report.secrets.map((s) => {
    const source = s.source.kind === 'vault' ? `${s.source.readPath} → ${s.source.key}` : `env ${s.source.envVar}`;
    const version =
      s.source.kind === 'vault'
        ? [
            s.source.kvVersion ? `kv v${s.source.kvVersion}` : 'engine',
            s.source.version !== undefined ? `version ${s.source.version}` : '',
            s.source.leaseId ? 'lease' : '',
          ]
            .filter(Boolean)
            .join(', ')
        : 'workflow secret';
    const delivery = [
      'file',
      report.envFileSkipped.includes(s.envName) ? '' : 'env-file',
      report.exportEnv ? `env ${s.envName}` : '',
      report.exportOutputs ? 'output' : '',
    ]
      .filter(Boolean)
      .join(', ');
    const bytes = Buffer.byteLength(s.value, 'utf8');
    return `| ${cell(s.name)} | ${cell(source)} | ${cell(version)} | ${cell(delivery)} | ${bytes} |`;
  });
  const place = report.userSecretsDir
    ? report.onTmpfs
      ? 'the secrets-dir you gave, in memory (its file system is a tmpfs)'
      : 'the secrets-dir you gave, on disk (its file system does not keep files in memory only)'
    : report.onTmpfs
      ? 'in memory (tmpfs /dev/shm)'
      : 'under RUNNER_TEMP on disk (no usable /dev/shm)';
  return [
    '### Pipeline Secrets',
    '',
    `${report.secrets.length} secret(s) delivered as 0600 files in ${code(report.secretsDir)}, ${place}.`,
    '',
    '| name | source | kind | delivered to | bytes |',
    '| --- | --- | --- | --- | ---: |',
    ...rows,
    '',
    report.envFileSkipped.length > 0 ? `Left out of the env-file (multi-line): ${report.envFileSkipped.map(cell).join(', ')}.\n` : '',
    ...(report.leases.length > 0
      ? [
          '| lease id | path | ttl (s) | renewable |',
          '| --- | --- | ---: | --- |',
          // Lease ids are not secret (they cannot be used without a token); values are.
          ...report.leases.map((l) => `| ${cell(l.leaseId)} | ${cell(l.path)} | ${l.duration ?? ''} | ${l.renewable ? 'yes' : 'no'} |`),
          '',
        ]
      : []),
    ...(report.registries.length > 0
      ? [
          `Logged in to ${report.registries.map((r) => code(r)).join(', ')} with the per-job DOCKER_CONFIG ${code(report.dockerConfig ?? '')} (nothing written to ~/.docker).`,
          '',
        ]
      : []),
    ...(report.buildSecrets.length > 0
      ? [
          `BuildKit secrets ready: ${report.buildSecrets.map((id) => code(id)).join(', ')} (outputs build-secret-files, build-secret-args).`,
          '',
        ]
      : []),
    `Post will ${report.registries.length > 0 ? 'log out of the registries, ' : ''}${report.tokenRevocable ? 'revoke the Vault token, ' : ''}${report.leases.length > 0 ? `revoke ${report.leases.length} lease(s), ` : ''}delete these files and the directory.`,
    '',
    ...(report.batchTokenExpires !== undefined
      ? [`The Vault token is a batch token: it cannot be revoked and expires by its TTL at ${cell(report.batchTokenExpires)}.`, '']
      : []),
  ].join('\n');
}

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
  readonly filesRemoved: number;
  readonly dirsRemoved: readonly string[];
  readonly loggedOut: readonly string[];
  readonly problems: readonly string[];
}

/** A failed step's reason, the same text as its error annotation (a code span: shown verbatim, never markup). */
export function failureSummary(what: string, message: string): string {
  return [`### ${what}: failed`, '', code(message), ''].join('\n');
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
  lines.push(`- KV versions changed: ${status.kvChangesTotal}`);
  for (const k of status.kvChanges) lines.push(`  - ${code(k.path)}: version ${k.from ?? '?'} → ${k.to ?? '?'} at ${cell(k.at)}`);
  const failedRuns = status.onChange.filter((r) => r.exitCode !== 0).length;
  lines.push(`- on-change runs: ${status.onChangeTotal}${failedRuns > 0 ? ` (${failedRuns} with a non-zero exit code)` : ''}`);
  for (const r of status.onChange)
    lines.push(
      `  - ${r.exitCode !== 0 ? '⚠️ ' : ''}${cell(r.names.join(', '))}: exit code ${r.exitCode} after ${r.ms} ms at ${cell(r.at)}`,
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
  if (report.loggedOut.length > 0) lines.push(`- Logged out of: ${report.loggedOut.map(cell).join(', ')}`);
  lines.push(`- Files removed: ${report.filesRemoved}`);
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
