// What the renewal agent leaves in the private root for post: agent-status.json (what it did,
// machine-readable), agent-leases.json (every lease id it holds or has seen), the names of those
// files and its log, and the atomic write that every file the agent rewrites goes through.
// Names, paths, versions, byte counts, counts, exit codes and error reasons only, never a value.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText } from '../core/errors.ts';
import { accessHandle, aclFiles, type FileAccess } from '../core/file-access.ts';
import type { AgentConfig } from './config.ts';

/** Files in the private root the agent keeps for post: names and ids only. */
export const AGENT_LOG = 'agent.log';
export const AGENT_LEASES = 'agent-leases.json';
export const AGENT_STATUS = 'agent-status.json';

/**
 * agent-status.json (0600, rewritten atomically after every round that changed something): what
 * the agent did, machine-readable, for post's annotations and job summary. Names, paths, versions,
 * byte counts, counts, exit codes and error reasons only, never a value; the human log stays as it is.
 */
export interface AgentStatus {
  readonly format: 1;
  readonly pid: number;
  readonly started: string;
  readonly updated: string;
  /** running; stopped (asked to, by post); exited (by itself: max lifetime); failed (an error ended it). */
  readonly state: 'running' | 'stopped' | 'exited' | 'failed';
  /** Why it exited or failed. */
  readonly reason?: string | undefined;
  /** Successful renewals. */
  readonly renewals: { readonly token: number; readonly leases: number };
  /** One entry per task and reason, counted (the latest STATUS_KEEP). */
  readonly failures: ReadonlyArray<{ readonly what: string; readonly reason: string; readonly count: number; readonly last: string }>;
  /** Credentials replaced by a fresh one (a lease that could not be renewed further). */
  readonly replaced: number;
  /** KV versions that changed, in order (the latest STATUS_KEEP; kvChangesTotal counts all). */
  readonly kvChanges: ReadonlyArray<{
    readonly path: string;
    readonly from: number | null;
    readonly to: number | null;
    readonly at: string;
  }>;
  readonly kvChangesTotal: number;
  /** on-change runs (the latest STATUS_KEEP; onChangeTotal counts all): exit code -1 when it could not run. */
  readonly onChange: ReadonlyArray<{
    readonly names: readonly string[];
    /** The rendered files (`templates`) that changed with them: PIPELINE_SECRETS_RENDERED. */
    readonly rendered?: readonly string[];
    readonly exitCode: number;
    readonly ms: number;
    readonly at: string;
  }>;
  readonly onChangeTotal: number;
  /**
   * Each rendered file the agent wrote again: where, its byte count, how often, and its device:inode
   * now (post proves a workspace file by it before deleting it).
   */
  readonly rendered?: ReadonlyArray<{
    readonly name: string;
    readonly path: string;
    readonly bytes: number;
    readonly renders: number;
    readonly id: string;
  }>;
  /** Every delivered secret as it is now: the version it came from (null: none) and its byte count. */
  readonly secrets: ReadonlyArray<{
    readonly name: string;
    readonly path: string | null;
    readonly version: number | null;
    readonly bytes: number;
  }>;
}

/** How many failures, KV changes and on-change runs the status keeps: the latest. */
export const STATUS_KEEP = 20;

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends ReadonlyArray<infer E> ? E[] : T[K] };
type Kept = Mutable<Pick<AgentStatus, 'failures' | 'kvChanges' | 'onChange'>>;

function keep<T>(list: T[], entry: T): void {
  list.push(entry);
  if (list.length > STATUS_KEEP) list.shift();
}

/** agent-status.json as the agent goes: each record marks it dirty; save() writes it. */
export class StatusBook {
  private readonly config: Pick<AgentConfig, 'root' | 'secrets' | 'sources'>;
  private readonly started: number;
  private readonly bytes: (name: string) => number;
  private state: AgentStatus['state'] = 'running';
  private reason: string | undefined;
  private readonly renewals = { token: 0, leases: 0 };
  private readonly kept: Kept = { failures: [], kvChanges: [], onChange: [] };
  private replaced = 0;
  private kvChangesTotal = 0;
  private onChangeTotal = 0;
  private readonly rendered = new Map<string, { name: string; path: string; bytes: number; renders: number; id: string }>();
  /** Something changed since the last successful save. */
  dirty = true;

  /** `bytes`: the byte count of a delivered secret's current value. */
  constructor(config: Pick<AgentConfig, 'root' | 'secrets' | 'sources'>, started: number, bytes: (name: string) => number) {
    this.config = config;
    this.started = started;
    this.bytes = bytes;
  }

  get current(): AgentStatus['state'] {
    return this.state;
  }

  /** How the agent ended (or failed). */
  end(state: Exclude<AgentStatus['state'], 'running'>, reason?: string): void {
    this.state = state;
    if (reason !== undefined) this.reason = reason;
    this.dirty = true;
  }

  /** A failed task: counted per task and reason, the latest kept. */
  failed(what: string, error: unknown, at: number): void {
    const reason = errorText(error);
    const list = this.kept.failures;
    const index = list.findIndex((f) => f.what === what && f.reason === reason);
    const entry = index >= 0 ? list.splice(index, 1)[0] : undefined;
    keep(list, { what, reason, count: (entry?.count ?? 0) + 1, last: new Date(at).toISOString() });
    this.dirty = true;
  }

  renewed(what: 'token' | 'leases'): void {
    this.renewals[what]++;
    this.dirty = true;
  }

  replacedOne(): void {
    this.replaced++;
    this.dirty = true;
  }

  kvChanged(readPath: string, from: number | undefined, to: number | undefined, at: number): void {
    keep(this.kept.kvChanges, { path: readPath, from: from ?? null, to: to ?? null, at: new Date(at).toISOString() });
    this.kvChangesTotal++;
    this.dirty = true;
  }

  onChangeRan(names: readonly string[], exitCode: number, ms: number, at: number, rendered: readonly string[] = []): void {
    keep(this.kept.onChange, { names, ...(rendered.length > 0 ? { rendered } : {}), exitCode, ms, at: new Date(at).toISOString() });
    this.onChangeTotal++;
    this.dirty = true;
  }

  renderedAgain(name: string, file: string, bytes: number, id: string): void {
    const renders = (this.rendered.get(name)?.renders ?? 0) + 1;
    this.rendered.set(name, { name, path: file, bytes, renders, id });
    this.dirty = true;
  }

  /** Written atomically; a failed write leaves it dirty, to be retried after the next round. */
  async save(now: number): Promise<void> {
    const byKey = new Map(this.config.sources.map((s) => [s.key, s]));
    const status: AgentStatus = {
      format: 1,
      pid: process.pid,
      started: new Date(this.started).toISOString(),
      updated: new Date(now).toISOString(),
      state: this.state,
      renewals: { ...this.renewals },
      failures: this.kept.failures,
      replaced: this.replaced,
      kvChanges: this.kept.kvChanges,
      kvChangesTotal: this.kvChangesTotal,
      onChange: this.kept.onChange,
      onChangeTotal: this.onChangeTotal,
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
      ...(this.rendered.size > 0 ? { rendered: [...this.rendered.values()] } : {}),
      // Each secret as it is now: the version of the source it came from, its current size.
      secrets: this.config.secrets.map((s) => {
        const source = s.key !== undefined ? byKey.get(s.key) : undefined;
        return { name: s.name, path: source?.readPath ?? null, version: source?.version ?? null, bytes: this.bytes(s.name) };
      }),
    };
    try {
      await writeAtomic(path.join(this.config.root, AGENT_STATUS), `${JSON.stringify(status)}\n`);
      this.dirty = false;
    } catch {
      this.dirty = true;
    }
  }
}

/** agent-leases.json: every lease the agent holds or has seen, and those it revoked; post revokes the rest. */
export async function saveLeases(root: string, leases: readonly string[], revoked: readonly string[]): Promise<void> {
  await writeAtomic(path.join(root, AGENT_LEASES), `${JSON.stringify({ leases: [...new Set(leases)], revoked })}\n`);
}

/**
 * Write to a new 0600 file beside the target, then rename over it: a reader (an app in a
 * container) sees the old value or the new one, never a partial or empty file.
 */
export async function writeAtomic(file: string, content: string | Buffer, access?: FileAccess): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(content);
    // The same owner, mode and ACL as main gave the file it replaces (file-access.ts).
    if (access) await accessHandle(handle, access);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (access) await aclFiles([temp], access);
    await fs.rename(temp, file);
  } catch (error) {
    await fs.unlink(temp).catch(() => {});
    throw error;
  }
}
