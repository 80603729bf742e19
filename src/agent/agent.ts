// The renewal agent (a sidecar, `renew: true`): a detached process started by main
// that keeps a long job's credentials alive and its files current until post stops it. It renews
// the token it was given (when this run created it) and every renewable lease at about two thirds
// of their TTL, replaces a credential whose lease cannot be renewed any more, re-reads KV secrets
// every refresh interval, rewrites changed files atomically, and runs `on-change`.
// Its config, token included, arrives on stdin: nothing with a value is in its argv or env.
// Its log (agent.log in the private root) holds names, paths, versions, byte counts and exit codes
// only; post prints it.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText, VaultError } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import { envFileText, markerHash, ROOT_MARKER } from '../core/private-dir.ts';
import { accessHandle, aclFiles, type FileAccess } from '../core/file-access.ts';
import { select, type Secret } from '../vault/fetch.ts';
import type { VaultSecretLine } from '../inputs/secret-spec.ts';
import type { VaultClient, VaultClientFactory } from '../vault/client.ts';
import type { TransportOptions } from '../vault/transport.ts';
import { interpret, readRaw, type MountInfo } from '../vault/kv.ts';

export interface AgentSource {
  readonly key: string;
  readonly lines: readonly VaultSecretLine[];
  readonly readPath: string;
  readonly kvVersion: 1 | 2 | undefined;
  version: number | undefined;
  lease: { id: string; duration: number; renewable: boolean; obtainedAt: number; expiresAt: number } | undefined;
}

export interface AgentConfig {
  readonly url: string;
  readonly namespace: string | undefined;
  readonly tls: NonNullable<TransportOptions['tls']>;
  readonly proxy: string | undefined;
  readonly token: string;
  /** Renew the token too: only one this run created (a token the user passed in is theirs). */
  readonly renewToken: boolean;
  /** Revoke the token when the secrets directory vanishes: one this run created, not a batch token. */
  readonly revokeToken?: boolean;
  /** sha256 of the root's marker (deliver.ts RootMarker): the root is removed only if it still carries it. */
  readonly marker?: string;
  readonly root: string;
  readonly secretsDir: string;
  /** `file-owner` / `file-mode`: a rewritten secret file gets them too, before it replaces the old one. */
  readonly fileAccess?: FileAccess;
  readonly envFile: string;
  /** Every delivered secret: name, env name, and the request key it came from (undefined: env-secrets). */
  readonly secrets: ReadonlyArray<{ name: string; envName: string; key: string | undefined }>;
  readonly sources: AgentSource[];
  readonly refreshMs: number;
  readonly onChange: string | undefined;
  readonly onChangeTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly retries: number;
}

export interface AgentDeps {
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly exec: Exec;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

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
    readonly exitCode: number;
    readonly ms: number;
    readonly at: string;
  }>;
  readonly onChangeTotal: number;
  /** Every delivered secret as it is now: the version it came from (null: none) and its byte count. */
  readonly secrets: ReadonlyArray<{
    readonly name: string;
    readonly path: string | null;
    readonly version: number | null;
    readonly bytes: number;
  }>;
}

const STATUS_KEEP = 20;

const UNKNOWN: MountInfo = { mount: undefined, type: undefined, kvVersion: undefined };

export class Agent {
  private readonly config: AgentConfig;
  private readonly deps: AgentDeps;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private client: VaultClient | undefined;
  private stopping = false;
  private readonly started: number;
  private tokenDue: number | undefined;
  private readonly leaseDue = new Map<string, number>();
  private nextRefresh: number;
  /** Current values by secret name: the agent compares, it never logs them. */
  private readonly values = new Map<string, string>();
  private failures = 0;
  private revoked: string[] = [];
  /** Every lease an answer carried, even one whose response was then discarded: post revokes them. */
  private readonly seen = new Set<string>();
  /** What agent-status.json says (AgentStatus), kept up to date as the agent goes. */
  private readonly status = {
    state: 'running' as AgentStatus['state'],
    reason: undefined as string | undefined,
    renewals: { token: 0, leases: 0 },
    failures: [] as Array<{ what: string; reason: string; count: number; last: string }>,
    replaced: 0,
    kvChanges: [] as Array<AgentStatus['kvChanges'][number]>,
    kvChangesTotal: 0,
    onChange: [] as Array<AgentStatus['onChange'][number]>,
    onChangeTotal: 0,
  };
  private statusDirty = true;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = deps.random ?? Math.random;
    this.started = this.now();
    this.nextRefresh = this.started + config.refreshMs;
  }

  stop(): void {
    this.stopping = true;
  }

  async log(message: string): Promise<void> {
    await fs.appendFile(path.join(this.config.root, AGENT_LOG), `${new Date(this.now()).toISOString()} ${message}\n`, { mode: 0o600 });
  }

  /** About two thirds of a TTL, with jitter so many jobs do not renew in the same second. */
  private dueIn(ttlSeconds: number): number {
    return Math.max(500, ttlSeconds * 1000 * (0.6 + this.random() * 0.1));
  }

  private async vault(): Promise<VaultClient> {
    if (!this.client) {
      const create = await this.deps.loadVaultClient();
      this.client = create({
        url: this.config.url,
        namespace: this.config.namespace,
        tls: this.config.tls,
        ...(this.config.proxy !== undefined ? { proxy: this.config.proxy } : {}),
        // No overall deadline for a process that runs for hours; each request gets its own.
        deadline: Number.POSITIVE_INFINITY,
        requestTimeoutMs: 10_000,
        retries: this.config.retries,
        maxSockets: 4,
        onLease: (lease) => this.seen.add(lease.leaseId),
      });
      this.client.token = this.config.token;
    }
    return this.client;
  }

  async run(): Promise<void> {
    try {
      await this.work();
    } catch (error) {
      // agent-main logs it; the status says it too, for post.
      this.status.state = 'failed';
      this.status.reason = errorText(error);
      await this.saveStatus();
      throw error;
    }
  }

  private async work(): Promise<void> {
    for (const s of this.config.secrets) {
      this.values.set(s.name, await fs.readFile(path.join(this.config.secretsDir, s.name), 'utf8').catch(() => ''));
    }
    await fs.writeFile(path.join(this.config.root, 'agent.pid'), `${process.pid}\n`, { mode: 0o600 });
    await this.log(
      `agent started (pid ${process.pid}): ${this.config.sources.length} source(s), refresh every ${this.config.refreshMs / 1000} s, max lifetime ${Math.round(this.config.maxLifetimeMs / 1000)} s`,
    );
    if (this.config.renewToken) await this.lookupToken();
    for (const source of this.config.sources)
      if (source.lease) this.leaseDue.set(source.key, source.lease.obtainedAt + this.dueIn(source.lease.duration));
    await this.saveLeases();
    await this.saveStatus();

    while (!this.stopping) {
      if (!(await exists(this.config.root)) || !(await exists(this.config.secretsDir))) {
        await this.log('private directory is gone: exiting').catch(() => {});
        await this.leftBehind();
        break;
      }
      if (this.now() - this.started >= this.config.maxLifetimeMs) {
        await this.log('max lifetime reached: exiting');
        this.status.state = 'exited';
        this.status.reason = 'max lifetime reached';
        break;
      }
      const ok = await this.round();
      if (this.statusDirty) await this.saveStatus();
      this.failures = ok ? 0 : this.failures + 1;
      // After a failure, try again sooner, backing off, but never slower than the next due task.
      const wait = ok ? 250 : Math.min(200 * 2 ** Math.min(this.failures - 1, 5), 5000);
      await this.sleep(wait);
    }
    this.client?.close();
    if (this.status.state === 'running' && this.stopping) this.status.state = 'stopped';
    await this.saveStatus();
    await this.log('agent stopped').catch(() => {});
  }

  /** A failed task for the status: counted per task and reason, the latest kept. */
  private failed(what: string, error: unknown): void {
    const reason = errorText(error);
    const at = new Date(this.now()).toISOString();
    const list = this.status.failures;
    const index = list.findIndex((f) => f.what === what && f.reason === reason);
    const entry = index >= 0 ? list.splice(index, 1)[0] : undefined;
    list.push({ what, reason, count: (entry?.count ?? 0) + 1, last: at });
    if (list.length > STATUS_KEEP) list.shift();
    this.statusDirty = true;
  }

  /** agent-status.json, rewritten atomically; a failed write is retried after the next round. */
  private async saveStatus(): Promise<void> {
    const byKey = new Map(this.config.sources.map((s) => [s.key, s]));
    const { reason, ...status } = this.status;
    const text: AgentStatus = {
      format: 1,
      pid: process.pid,
      started: new Date(this.started).toISOString(),
      updated: new Date(this.now()).toISOString(),
      ...status,
      ...(reason !== undefined ? { reason } : {}),
      secrets: this.config.secrets.map((s) => {
        const source = s.key !== undefined ? byKey.get(s.key) : undefined;
        return {
          name: s.name,
          path: source?.readPath ?? null,
          version: source?.version ?? null,
          bytes: Buffer.byteLength(this.values.get(s.name) ?? ''),
        };
      }),
    };
    try {
      await writeAtomic(path.join(this.config.root, AGENT_STATUS), `${JSON.stringify(text)}\n`);
      this.statusDirty = false;
    } catch {
      this.statusDirty = true;
    }
  }

  /**
   * The secrets directory vanished: the job is over and its post will not run (or the user removed
   * it). What post would do is done here: the token this run created is revoked (its leases with
   * it) and the whole private root removed, only the root this agent was started for and only
   * while it still carries the marker main wrote there.
   */
  private async leftBehind(): Promise<void> {
    if (this.config.revokeToken) {
      try {
        await (await this.vault()).revokeSelf();
        await this.log('token revoked');
      } catch (error) {
        await this.log(`token not revoked (it stays alive until its TTL ends): ${errorText(error)}`).catch(() => {});
      }
    }
    const root = this.config.root;
    if (this.config.marker === undefined || !(await carriesMarker(root, this.config.marker))) return;
    await fs.rm(root, { recursive: true, force: true }).catch(() => {});
  }

  /** One pass over what is due. Returns false when something failed and must be retried. */
  private async round(): Promise<boolean> {
    let ok = true;
    const now = this.now();
    try {
      if (this.tokenDue !== undefined && now >= this.tokenDue) ok = (await this.renewToken()) && ok;
      for (const source of this.config.sources) {
        const due = this.leaseDue.get(source.key);
        if (due !== undefined && now >= due) ok = (await this.renewLease(source)) && ok;
      }
      if (now >= this.nextRefresh) {
        let refreshed = true;
        for (const source of this.config.sources) {
          if (source.lease || source.lines.some((l) => l.version !== undefined || l.body !== undefined)) continue;
          refreshed = (await this.refresh(source)) && refreshed;
        }
        if (refreshed) this.nextRefresh = now + this.config.refreshMs;
        ok = refreshed && ok;
      }
    } catch (error) {
      await this.log(`error: ${errorText(error)}`);
      this.failed('agent round', error);
      return false;
    }
    return ok;
  }

  private async lookupToken(): Promise<void> {
    try {
      const response = await (await this.vault()).read('auth/token/lookup-self');
      const ttl = Number(response.data?.ttl ?? 0);
      if (response.data?.renewable === true && ttl > 0) this.tokenDue = this.now() + this.dueIn(ttl);
      await this.log(`token ttl ${ttl} s, ${response.data?.renewable === true ? 'renewable' : 'not renewable'}`);
    } catch (error) {
      await this.log(`token lookup failed: ${errorText(error)}`);
      this.failed('token lookup', error);
    }
  }

  private async renewToken(): Promise<boolean> {
    try {
      // https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token-self
      const response = await (await this.vault()).write('auth/token/renew-self', {});
      const ttl = Number(response?.auth?.lease_duration ?? 0);
      this.tokenDue = response?.auth?.renewable && ttl > 1 ? this.now() + this.dueIn(ttl) : undefined;
      this.status.renewals.token++;
      this.statusDirty = true;
      await this.log(`token renewed: ttl ${ttl} s${this.tokenDue === undefined ? ' (max TTL reached, not renewing further)' : ''}`);
      return true;
    } catch (error) {
      this.failed('token renewal', error);
      await this.log(`token renewal failed, will retry: ${errorText(error)}`);
      return false;
    }
  }

  private async renewLease(source: AgentSource): Promise<boolean> {
    const lease = source.lease;
    if (!lease) return true;
    if (lease.renewable) {
      try {
        // https://developer.hashicorp.com/vault/api-docs/system/leases#renew-lease
        const response = await (await this.vault()).write('sys/leases/renew', { lease_id: lease.id, increment: lease.duration });
        const ttl = Number(response?.lease_duration ?? 0);
        this.status.renewals.leases++;
        this.statusDirty = true;
        // Vault caps a renewal at the lease's max TTL: a short answer means the end is near, so
        // the next step is a fresh credential rather than another renewal.
        if (ttl >= lease.duration / 3 && response?.renewable !== false) {
          lease.expiresAt = this.now() + ttl * 1000;
          this.leaseDue.set(source.key, this.now() + this.dueIn(ttl));
          await this.log(`lease ${lease.id} renewed: ttl ${ttl} s`);
          return true;
        }
        lease.expiresAt = this.now() + ttl * 1000;
        await this.log(`lease ${lease.id} renewed only to ${ttl} s (max TTL): replacing the credential`);
      } catch (error) {
        const gone = error instanceof VaultError && error.status !== undefined && error.status >= 400 && error.status < 500;
        this.failed(`lease renewal (${source.readPath})`, error);
        if (!gone && this.now() < lease.expiresAt - 200) {
          // Vault unavailable for now: try again (the round backs off) while the lease still runs.
          await this.log(`lease ${lease.id} renewal failed, will retry: ${errorText(error)}`);
          return false;
        }
        await this.log(`lease ${lease.id} cannot be renewed (${errorText(error)}): replacing the credential`);
      }
    }
    return this.rotate(source);
  }

  /** A fresh credential from the same path, files rewritten, the old lease revoked. */
  private async rotate(source: AgentSource): Promise<boolean> {
    const old = source.lease;
    const client = await this.vault();
    let result;
    try {
      const body = source.lines[0]?.body;
      const raw =
        body !== undefined ? ((await client.write(source.readPath, body)) ?? {}) : await readRaw(client, source.readPath, undefined);
      result = interpret(source.lines[0] ?? { path: source.readPath, version: undefined, line: 0 }, source.readPath, raw, UNKNOWN);
    } catch (error) {
      await this.saveLeases();
      this.failed(`fresh credential (${source.readPath})`, error);
      await this.log(`cannot get a fresh credential from ${source.readPath}, keeping the last one until it expires: ${errorText(error)}`);
      return false;
    }
    const obtainedAt = this.now();
    const duration = result.leaseDuration ?? 0;
    source.lease = result.leaseId
      ? { id: result.leaseId, duration, renewable: result.renewable, obtainedAt, expiresAt: obtainedAt + duration * 1000 }
      : undefined;
    if (source.lease) this.leaseDue.set(source.key, this.now() + this.dueIn(source.lease.duration));
    else this.leaseDue.delete(source.key);
    this.status.replaced++;
    this.statusDirty = true;
    await this.saveLeases();
    await this.apply(
      source,
      result,
      `new credential from ${source.readPath}${source.lease ? ` (lease ${source.lease.id}, ttl ${source.lease.duration} s)` : ''}`,
    );
    if (old) {
      try {
        await client.write('sys/leases/revoke', { lease_id: old.id });
        this.revoked.push(old.id);
        await this.log(`old lease ${old.id} revoked`);
      } catch (error) {
        this.failed('old lease revocation', error);
        await this.log(`old lease ${old.id} not revoked (post revokes the token it belongs to): ${errorText(error)}`);
      }
    }
    return true;
  }

  private async refresh(source: AgentSource): Promise<boolean> {
    let result;
    try {
      // A KV re-read may be retried after a reset; refresh skips leased sources.
      const raw = await readRaw(await this.vault(), source.readPath, undefined, source.kvVersion !== undefined);
      result = interpret(source.lines[0] ?? { path: source.readPath, version: undefined, line: 0 }, source.readPath, raw, {
        ...UNKNOWN,
        kvVersion: source.kvVersion,
      });
    } catch (error) {
      this.failed(`KV refresh (${source.readPath})`, error);
      await this.log(`refresh of ${source.readPath} failed, keeping the current files: ${errorText(error)}`);
      return false;
    }
    if (result.version !== undefined && result.version === source.version) return true;
    const before = source.version;
    source.version = result.version;
    this.status.kvChanges.push({
      path: source.readPath,
      from: before ?? null,
      to: result.version ?? null,
      at: new Date(this.now()).toISOString(),
    });
    if (this.status.kvChanges.length > STATUS_KEEP) this.status.kvChanges.shift();
    this.status.kvChangesTotal++;
    this.statusDirty = true;
    await this.apply(
      source,
      result,
      `${source.readPath} changed${before !== undefined ? ` (version ${before} -> ${result.version})` : ''}`,
    );
    return true;
  }

  /** Rewrites the files whose value changed, then the env-file, then runs on-change once. */
  private async apply(source: AgentSource, result: Parameters<typeof select>[1], what: string): Promise<void> {
    const fresh: Secret[] = [];
    const warnings: string[] = [];
    for (const line of source.lines) fresh.push(...select(line, result, warnings));
    const changed: Secret[] = [];
    for (const secret of fresh) {
      if (!this.values.has(secret.name) || this.values.get(secret.name) === secret.value) continue;
      await writeAtomic(path.join(this.config.secretsDir, secret.name), secret.value, this.config.fileAccess);
      this.values.set(secret.name, secret.value);
      changed.push(secret);
    }
    for (const warning of warnings) await this.log(`warning: ${warning}`);
    if (changed.length === 0) {
      await this.log(`${what}: no delivered value changed`);
      return;
    }
    await writeAtomic(
      this.config.envFile,
      envFileText(this.config.secrets.map((s) => ({ envName: s.envName, value: this.values.get(s.name) ?? '' }))).text,
    );
    await this.log(`${what}: rewrote ${changed.map((s) => `${s.name} (${Buffer.byteLength(s.value)} bytes)`).join(', ')}`);
    await this.runOnChange(changed.map((s) => s.name));
  }

  private async runOnChange(names: string[]): Promise<void> {
    if (!this.config.onChange) return;
    const started = this.now();
    // The user's own command, run by a shell (it may be `kill -HUP $(cat app.pid)`); it learns what
    // changed through names in env, never values.
    const result = await this.deps
      .exec('sh', ['-c', this.config.onChange], {
        env: { PIPELINE_SECRETS_DIR: this.config.secretsDir, PIPELINE_SECRETS_CHANGED: names.join(',') },
        timeoutMs: this.config.onChangeTimeoutMs,
      })
      .catch((error: unknown) => ({ exitCode: -1, stdout: '', stderr: errorText(error) }));
    const ms = this.now() - started;
    this.status.onChange.push({ names, exitCode: result.exitCode, ms, at: new Date(this.now()).toISOString() });
    if (this.status.onChange.length > STATUS_KEEP) this.status.onChange.shift();
    this.status.onChangeTotal++;
    this.statusDirty = true;
    await this.log(`on-change ran for ${names.join(', ')}: exit code ${result.exitCode} after ${ms} ms`);
  }

  private async saveLeases(): Promise<void> {
    const leases = [...new Set([...this.config.sources.flatMap((s) => (s.lease ? [s.lease.id] : [])), ...this.seen])];
    await writeAtomic(path.join(this.config.root, AGENT_LEASES), `${JSON.stringify({ leases, revoked: this.revoked })}\n`);
  }
}

/** Whether `root` is a directory of this user (not a symlink) whose marker's sha256 is `hash`. */
async function carriesMarker(root: string, hash: string): Promise<boolean> {
  try {
    const stat = await fs.lstat(root);
    if (!stat.isDirectory() || (process.getuid !== undefined && stat.uid !== process.getuid())) return false;
    const handle = await fs.open(path.join(root, ROOT_MARKER), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      const markerStat = await handle.stat();
      if (!markerStat.isFile() || markerStat.size > 4096) return false;
      return markerHash(await handle.readFile()) === hash;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/**
 * Write to a new 0600 file beside the target, then rename over it: a reader (an app in a
 * container) sees the old value or the new one, never a partial or empty file.
 */
export async function writeAtomic(file: string, content: string, access?: FileAccess): Promise<void> {
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
