// Post's first phase: stop the renewal agent, so it renews or rewrites nothing while post revokes
// and deletes; show what it did (its log and agent-status.json, which hold names, versions, byte
// counts and exit codes, never a value), and collect the leases it took.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AGENT_LEASES, AGENT_LOG, AGENT_STATUS, type AgentStatus } from '../agent/agent.ts';
import { stopAgent } from '../agent/launch.ts';
import { errorText } from '../core/errors.ts';
import type { Ledger } from '../core/ledger.ts';
import type { Runner } from '../core/runner.ts';
import { agentEnding, type CleanupReport } from './summary.ts';

export interface AgentPart extends Pick<CleanupReport, 'agent' | 'agentStatus' | 'problems'> {
  /** Leases to revoke: main's, plus those the agent took when it replaced a credential, less those it revoked. */
  readonly leases: readonly string[];
}

/** Stops the agent main started, if it started one; the agent's own problems are warned about here, as they are read. */
export async function stopRenewalAgent(runner: Runner, ledger: Ledger): Promise<AgentPart> {
  if (ledger.agentPid === undefined || !ledger.root)
    return { agent: undefined, agentStatus: undefined, leases: ledger.leases, problems: [] };
  const outcome = await stopAgent(ledger.agentPid, ledger.root).catch((error: unknown) => `error: ${errorText(error)}`);
  await showAgentLog(runner, ledger.root);
  const agentStatus = await readAgentStatus(ledger.root);
  agentWarnings(runner, outcome, agentStatus);
  return { agent: outcome, agentStatus, leases: await currentLeases(ledger.root, ledger.leases), problems: [] };
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
      ...(Array.isArray(r.rendered) ? { rendered: r.rendered.map(t) } : {}),
      exitCode: n(r.exitCode),
      ms: n(r.ms),
      at: t(r.at),
    })),
    onChangeTotal: n(s.onChangeTotal),
    ...(Array.isArray(s.rendered)
      ? {
          rendered: list(s.rendered).map((r) => ({
            name: t(r.name),
            path: t(r.path),
            bytes: n(r.bytes),
            renders: n(r.renders),
            id: t(r.id),
          })),
        }
      : {}),
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
async function currentLeases(root: string, leases: readonly string[]): Promise<string[]> {
  const all = new Set(leases);
  try {
    const saved = JSON.parse(await fs.readFile(path.join(root, AGENT_LEASES), 'utf8')) as {
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
