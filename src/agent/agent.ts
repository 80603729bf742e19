// The renewal agent (a sidecar, `renew: true`): a detached process started by main
// that keeps a long job's credentials alive and its files current until post stops it. It renews
// the token it was given (when this run created it) and every renewable lease at about two thirds
// of their TTL, replaces a credential whose lease cannot be renewed any more, re-reads KV secrets
// every refresh interval, rewrites changed files atomically, renders again the config files
// (`templates`) that use a changed secret, and runs `on-change` once per round.
// Its config, token included, arrives on stdin: nothing with a value is in its argv or env.
// Its log (agent.log in the private root) holds names, paths, versions, byte counts and exit codes
// only; post prints it. Its config is config.ts; when things are due, schedule.ts; the files it
// leaves for post, status.ts; the delivered files it rewrites, files.ts.
// About 320 lines: the loop and the Vault tasks it runs share the agent's state (the token, the
// leases, the last versions), and read best together.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText, VaultError } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { VaultClient, VaultClientFactory } from '../vault/client.ts';
import { interpret, readRaw, type MountInfo } from '../vault/kv.ts';
import { clientOptions, type AgentConfig, type AgentSource } from './config.ts';
import { exists, removeRootIfOurs, SecretFiles } from './files.ts';
import { nearMaxTtl, realClock, Schedule, type Clock } from './schedule.ts';
import { AGENT_LOG, saveLeases, StatusBook } from './status.ts';

// main, post and the tests import the agent's config, its files and their format from here.
export type { AgentConfig, AgentSource } from './config.ts';
export { AGENT_LEASES, AGENT_LOG, AGENT_STATUS, writeAtomic, type AgentStatus } from './status.ts';

export interface AgentDeps {
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly exec: Exec;
  /** now, sleep and the jitter's random (schedule.ts); the real clock by default. */
  readonly clock?: Clock;
}

const UNKNOWN: MountInfo = { mount: undefined, type: undefined, kvVersion: undefined };

export class Agent {
  private readonly config: AgentConfig;
  private readonly deps: AgentDeps;
  private readonly clock: Clock;
  private readonly schedule: Schedule;
  private readonly status: StatusBook;
  private readonly files: SecretFiles;
  private readonly stopped = new AbortController();
  private client: VaultClient | undefined;
  private readonly revoked: string[] = [];
  /** Leases of credentials replaced this round: revoked after the round's files and on-change. */
  private readonly replaced: string[] = [];
  /** Every lease an answer carried, even one whose response was then discarded: post revokes them. */
  private readonly seen = new Set<string>();

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.deps = deps;
    this.clock = deps.clock ?? realClock;
    this.schedule = new Schedule(this.clock, config.refreshMs, config.maxLifetimeMs);
    // The status reads the files' byte counts only when it is saved, after both exist.
    this.status = new StatusBook(config, this.schedule.started, (name) => this.files.bytes(name));
    this.files = new SecretFiles(config, { exec: deps.exec, now: this.clock.now, log: (m) => this.log(m), status: this.status });
  }

  /** Ends the loop after the round in progress, without waiting out a pause or back-off. */
  stop(): void {
    this.stopped.abort();
  }

  async log(message: string): Promise<void> {
    await fs.appendFile(path.join(this.config.root, AGENT_LOG), `${new Date(this.clock.now()).toISOString()} ${message}\n`, {
      mode: 0o600,
    });
  }

  private async vault(): Promise<VaultClient> {
    if (!this.client) {
      const create = await this.deps.loadVaultClient();
      this.client = create(clientOptions(this.config, (lease) => this.seen.add(lease.leaseId)));
      this.client.token = this.config.token;
    }
    return this.client;
  }

  async run(): Promise<void> {
    try {
      await this.work();
    } catch (error) {
      // entry.ts logs it; the status says it too, for post.
      this.status.end('failed', errorText(error));
      await this.saveStatus();
      throw error;
    }
  }

  private async work(): Promise<void> {
    await this.files.load();
    await fs.writeFile(path.join(this.config.root, 'agent.pid'), `${process.pid}\n`, { mode: 0o600 });
    await this.log(
      `agent started (pid ${process.pid}): ${this.config.sources.length} source(s), refresh every ${this.config.refreshMs / 1000} s, max lifetime ${Math.round(this.config.maxLifetimeMs / 1000)} s`,
    );
    if (this.config.renewToken) await this.lookupToken();
    for (const source of this.config.sources)
      if (source.lease) this.schedule.lease(source.key, source.lease.duration, source.lease.obtainedAt);
    await this.saveLeases();
    await this.saveStatus();

    while (!this.stopped.signal.aborted) {
      if (!(await exists(this.config.root)) || !(await exists(this.config.secretsDir))) {
        await this.log('private directory is gone: exiting').catch(() => {});
        await this.leftBehind();
        break;
      }
      if (this.schedule.lifetimeOver(this.clock.now())) {
        await this.log('max lifetime reached: exiting');
        this.status.end('exited', 'max lifetime reached');
        break;
      }
      const ok = await this.round();
      if (this.status.dirty) await this.saveStatus();
      await this.clock.sleep(this.schedule.afterRound(ok, this.clock.now()), this.stopped.signal);
    }
    this.client?.close();
    if (this.status.current === 'running' && this.stopped.signal.aborted) this.status.end('stopped');
    await this.saveStatus();
    await this.log('agent stopped').catch(() => {});
  }

  private failed(what: string, error: unknown): void {
    this.status.failed(what, error, this.clock.now());
  }

  private async saveStatus(): Promise<void> {
    await this.status.save(this.clock.now());
  }

  private async saveLeases(): Promise<void> {
    await saveLeases(this.config.root, [...this.config.sources.flatMap((s) => (s.lease ? [s.lease.id] : [])), ...this.seen], this.revoked);
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
    await removeRootIfOurs(this.config.root, this.config.marker);
  }

  /** One pass over what is due. Returns false when something failed and must be retried. */
  private async round(): Promise<boolean> {
    let ok = true;
    const now = this.clock.now();
    try {
      if (this.schedule.tokenDue(now)) ok = (await this.renewToken()) && ok;
      for (const source of this.config.sources) if (this.schedule.leaseDue(source.key, now)) ok = (await this.renewLease(source)) && ok;
      if (this.schedule.refreshDue(now)) {
        let refreshed = true;
        for (const source of this.config.sources) {
          // Leased sources are renewed or replaced above; a pinned version or a write never changes.
          if (source.lease || source.lines.some((l) => l.version !== undefined || l.body !== undefined)) continue;
          refreshed = (await this.refresh(source)) && refreshed;
        }
        if (refreshed) this.schedule.refreshed(now);
        ok = refreshed && ok;
      }
    } catch (error) {
      await this.log(`error: ${errorText(error)}`);
      this.failed('agent round', error);
      ok = false;
    }
    try {
      // Once per round, after every file of the round is written: the env-file, the rendered files
      // and on-change; only then are the credentials replaced this round revoked (the app has reloaded).
      await this.files.flush();
      await this.revokeReplaced();
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
      const renewable = response.data?.renewable === true;
      this.schedule.token(renewable && ttl > 0 ? ttl : undefined);
      await this.log(`token ttl ${ttl} s, ${renewable ? 'renewable' : 'not renewable'}`);
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
      const again = response?.auth?.renewable === true && ttl > 1;
      this.schedule.token(again ? ttl : undefined);
      this.status.renewed('token');
      await this.log(`token renewed: ttl ${ttl} s${again ? '' : ' (max TTL reached, not renewing further)'}`);
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
        this.status.renewed('leases');
        lease.expiresAt = this.clock.now() + ttl * 1000;
        if (!nearMaxTtl(ttl, lease.duration) && response?.renewable !== false) {
          this.schedule.lease(source.key, ttl);
          await this.log(`lease ${lease.id} renewed: ttl ${ttl} s`);
          return true;
        }
        await this.log(`lease ${lease.id} renewed only to ${ttl} s (max TTL): replacing the credential`);
      } catch (error) {
        const gone = error instanceof VaultError && error.status !== undefined && error.status >= 400 && error.status < 500;
        this.failed(`lease renewal (${source.readPath})`, error);
        if (!gone && this.clock.now() < lease.expiresAt - 200) {
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
    const obtainedAt = this.clock.now();
    const duration = result.leaseDuration ?? 0;
    source.lease = result.leaseId
      ? { id: result.leaseId, duration, renewable: result.renewable, obtainedAt, expiresAt: obtainedAt + duration * 1000 }
      : undefined;
    this.schedule.lease(source.key, source.lease?.duration);
    this.status.replacedOne();
    await this.saveLeases();
    await this.files.apply(
      source.lines,
      result,
      `new credential from ${source.readPath}${source.lease ? ` (lease ${source.lease.id}, ttl ${source.lease.duration} s)` : ''}`,
    );
    if (old) this.replaced.push(old.id);
    return true;
  }

  /** The leases of credentials replaced this round, revoked once the round's files and on-change are done. */
  private async revokeReplaced(): Promise<void> {
    for (const id of this.replaced.splice(0)) {
      try {
        await (await this.vault()).write('sys/leases/revoke', { lease_id: id });
        this.revoked.push(id);
        // Saved at once: post revokes what the file lists as not revoked, and counts it.
        await this.saveLeases();
        await this.log(`old lease ${id} revoked`);
      } catch (error) {
        this.failed('old lease revocation', error);
        await this.log(`old lease ${id} not revoked (post revokes the token it belongs to): ${errorText(error)}`);
      }
    }
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
    this.status.kvChanged(source.readPath, before, result.version, this.clock.now());
    await this.files.apply(
      source.lines,
      result,
      `${source.readPath} changed${before !== undefined ? ` (version ${before} -> ${result.version})` : ''}`,
    );
    return true;
  }
}
