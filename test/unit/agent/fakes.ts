// Fakes for the renewal agent's unit tests: a clock whose sleep resolves only when the test moves
// time on, an in-memory Vault that answers what the agent asks (token lookup and renew-self,
// sys/leases/renew and revoke, KV v2 reads, credential-minting reads and writes) and records every
// call, a recording exec for on-change, and a private root in a temp dir laid out as main leaves it.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VaultError } from '../../../src/core/errors.ts';
import type { Exec, ExecOptions, ExecResult } from '../../../src/core/exec.ts';
import { markerHash, ROOT_MARKER } from '../../../src/core/private-dir.ts';
import type { VaultSecretLine } from '../../../src/inputs/secret-spec.ts';
import { Agent, type AgentConfig, type AgentSource, type AgentStatus } from '../../../src/agent/agent.ts';
import type { Clock } from '../../../src/agent/schedule.ts';
import type { VaultClient, VaultClientFactory, VaultClientOptions, VaultResponse } from '../../../src/vault/client.ts';
import { readKey } from '../../../src/vault/fetch.ts';

export const T0 = Date.parse('2030-01-01T00:00:00.000Z');

/** A clock that stands still until the test wakes the agent from its sleep. */
export class FakeClock implements Clock {
  private t = T0;
  private pending: { until: number; wake: () => void } | undefined;
  private waiter: (() => void) | undefined;
  /** Every pause the agent asked for, in ms, in order. */
  readonly sleeps: number[] = [];
  /** What random() returns: the jitter. */
  rand = 0.5;

  readonly now = (): number => this.t;
  readonly random = (): number => this.rand;
  readonly sleep = (ms: number, signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      this.sleeps.push(ms);
      if (signal.aborted) return resolve();
      const abort = (): void => {
        if (this.pending === entry) this.pending = undefined;
        resolve();
      };
      const entry = {
        until: this.t + ms,
        wake: () => {
          signal.removeEventListener('abort', abort);
          resolve();
        },
      };
      signal.addEventListener('abort', abort, { once: true });
      this.pending = entry;
      this.waiter?.();
    });

  get asleep(): boolean {
    return this.pending !== undefined;
  }

  /** Resolves once the agent sleeps (between rounds). */
  untilAsleep(): Promise<void> {
    if (this.pending) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = () => {
        this.waiter = undefined;
        resolve();
      };
    });
  }

  /** Moves time to when the sleeping agent asked to wake, and wakes it. */
  wake(): void {
    const pending = this.pending;
    if (!pending) throw new Error('the agent is not asleep');
    this.pending = undefined;
    this.t = pending.until;
    pending.wake();
  }

  /** Time passing while the agent works (a slow command). */
  pass(ms: number): void {
    this.t += ms;
  }
}

export interface Call {
  readonly at: number;
  readonly op: 'read' | 'write' | 'revoke-self';
  readonly path: string;
  readonly body?: Record<string, unknown> | undefined;
  readonly token: string | undefined;
}

interface Engine {
  readonly ttl: number;
  readonly renewable: boolean;
  readonly maxTtl: number;
  readonly data: (n: number) => Record<string, unknown>;
}

interface FakeLease {
  readonly path: string;
  expiresAt: number;
  readonly maxAt: number;
  readonly renewable: boolean;
  revoked: boolean;
}

/** An in-memory Vault: what the agent asked (calls) and what the server now holds (leases, token). */
export class FakeVault {
  readonly calls: Call[] = [];
  /** The options of every client the agent made. */
  readonly clients: VaultClientOptions[] = [];
  readonly leases = new Map<string, FakeLease>();
  tokenTtl = 10;
  /** The token's max TTL from T0: renewals are capped to what is left of it. */
  tokenMaxTtl = Number.POSITIVE_INFINITY;
  tokenRenewable = true;
  tokenRevoked = false;
  private readonly kv = new Map<string, { version: number; data: Record<string, unknown> }>();
  private readonly engines = new Map<string, Engine>();
  private readonly faults: Array<{ path: RegExp; status: number | undefined; times: number }> = [];
  private issued = 0;
  private readonly clock: FakeClock;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  /** A KV v2 secret at its API path (`secret/data/app`); each put is a new version. */
  putKv(apiPath: string, data: Record<string, unknown>): number {
    const version = (this.kv.get(apiPath)?.version ?? 0) + 1;
    this.kv.set(apiPath, { version, data });
    return version;
  }

  /** A secrets engine path that issues a fresh credential under a new lease on each read or write. */
  engine(apiPath: string, engine: Engine): void {
    this.engines.set(apiPath, engine);
  }

  /** A lease that main obtained (so the agent starts with it). */
  issue(apiPath: string): { id: string; data: Record<string, unknown>; ttl: number; renewable: boolean } {
    const engine = this.engines.get(apiPath);
    if (!engine) throw new Error(`no engine at ${apiPath}`);
    const n = ++this.issued;
    const id = `${apiPath}/lease-${n}`;
    const now = this.clock.now();
    this.leases.set(id, {
      path: apiPath,
      expiresAt: now + engine.ttl * 1000,
      maxAt: now + engine.maxTtl * 1000,
      renewable: engine.renewable,
      revoked: false,
    });
    return { id, data: engine.data(n), ttl: engine.ttl, renewable: engine.renewable };
  }

  /** The next `times` requests to a matching path fail: with `status`, or unreachable when undefined. */
  fail(pathPattern: RegExp, status: number | undefined, times = Number.POSITIVE_INFINITY): void {
    this.faults.push({ path: pathPattern, status, times });
  }

  heal(): void {
    this.faults.length = 0;
  }

  leaseAlive(id: string): boolean {
    const lease = this.leases.get(id);
    return lease !== undefined && !lease.revoked && this.clock.now() < lease.expiresAt;
  }

  callsTo(op: Call['op'], apiPath: string): Call[] {
    return this.calls.filter((c) => c.op === op && c.path === apiPath);
  }

  readonly factory: VaultClientFactory = (options) => {
    this.clients.push(options);
    const call = (op: Call['op'], apiPath: string, body?: Record<string, unknown>): VaultResponse =>
      this.answer({ at: this.clock.now(), op, path: apiPath, body, token: client.token }, options);
    const client: VaultClient = {
      token: undefined,
      read: async (apiPath) => call('read', apiPath),
      write: async (apiPath, body) => call('write', apiPath, body),
      revokeSelf: async () => void call('revoke-self', 'auth/token/revoke-self'),
      cancel: () => {},
      close: () => {},
    };
    return client;
  };

  private answer(call: Call, options: VaultClientOptions): VaultResponse {
    this.calls.push(call);
    const method = call.op === 'read' ? 'GET' : 'POST';
    const fault = this.faults.find((f) => f.times > 0 && f.path.test(call.path));
    if (fault) {
      fault.times--;
      if (fault.status === undefined)
        throw new VaultError(call.path, `${method} ${call.path}: cannot reach Vault at vault.test:8200: connection refused`);
      throw new VaultError(call.path, `${method} ${call.path}: Vault answered ${fault.status} error`, fault.status);
    }
    const refuse = (status: number, text: string): never => {
      throw new VaultError(call.path, `${method} ${call.path}: Vault answered ${status} ${text}`, status);
    };
    const now = this.clock.now();
    if (call.op === 'revoke-self') {
      this.tokenRevoked = true;
      return {};
    }
    const tokenTtl = Math.max(0, Math.min(this.tokenTtl, Math.floor((T0 + this.tokenMaxTtl * 1000 - now) / 1000)));
    if (call.path === 'auth/token/lookup-self') return { data: { ttl: tokenTtl, renewable: this.tokenRenewable } };
    if (call.path === 'auth/token/renew-self') {
      if (!this.tokenRenewable) return refuse(400, 'lease is not renewable');
      return { auth: { lease_duration: tokenTtl, renewable: true } };
    }
    if (call.path === 'sys/leases/renew') {
      const id = String(call.body?.lease_id);
      const lease = this.leases.get(id);
      if (!lease || lease.revoked || now >= lease.expiresAt) return refuse(400, 'lease not found');
      if (!lease.renewable) return refuse(400, 'lease is not renewable');
      const ttl = Math.max(0, Math.min(Number(call.body?.increment), Math.floor((lease.maxAt - now) / 1000)));
      lease.expiresAt = now + ttl * 1000;
      return { lease_id: id, lease_duration: ttl, renewable: true };
    }
    if (call.path === 'sys/leases/revoke') {
      const lease = this.leases.get(String(call.body?.lease_id));
      if (lease) lease.revoked = true;
      return {};
    }
    const kv = this.kv.get(call.path);
    if (kv && call.op === 'read') return { data: { data: kv.data, metadata: { version: kv.version } } };
    if (this.engines.has(call.path)) {
      const issued = this.issue(call.path);
      // As the transport does: every lease an answer carries is reported the moment it arrives.
      options.onLease?.({ leaseId: issued.id, path: call.path, duration: issued.ttl, renewable: issued.renewable });
      return { lease_id: issued.id, lease_duration: issued.ttl, renewable: issued.renewable, data: issued.data };
    }
    return refuse(404, 'not found');
  }
}

export interface ExecCall {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The secret files and the env-file as the command found them. */
  readonly files: Record<string, string>;
}

/** Records each on-change run (and what it found on disk); answers `result`, or fails. */
export function fakeExec(
  dir: TempRoot,
  result: (call: ExecCall) => ExecResult | Promise<ExecResult> = () => ({ exitCode: 0, stdout: '', stderr: '' }),
): Exec & { calls: ExecCall[] } {
  const calls: ExecCall[] = [];
  const exec = async (file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> => {
    const files = await dir.snapshot();
    const call = { file, args, env: options.env ?? {}, files };
    calls.push(call);
    return result(call);
  };
  return Object.assign(exec, { calls });
}

/** The private root as main leaves it: marker, secrets directory, one file per secret, env-file. */
export interface TempRoot {
  readonly root: string;
  readonly secretsDir: string;
  readonly envFile: string;
  readonly marker: string;
  /** Every file in the secrets directory and the env-file, by name ('secrets.env' for the latter). */
  snapshot(): Promise<Record<string, string>>;
  status(): Promise<AgentStatus>;
  leasesFile(): Promise<{ leases: string[]; revoked: string[] }>;
  log(): Promise<string>;
  remove(): Promise<void>;
}

const BASE = await fs
  .stat('/dev/shm')
  .then(() => '/dev/shm')
  .catch(() => os.tmpdir());

export async function tempRoot(values: Record<string, string>): Promise<TempRoot> {
  const root = await fs.mkdtemp(path.join(BASE, 'pipeline-secrets-unit-'));
  const secretsDir = path.join(root, 'secrets');
  await fs.mkdir(secretsDir, { mode: 0o700 });
  const markerText = JSON.stringify({ v: 1, root, secretsDir });
  await fs.writeFile(path.join(root, ROOT_MARKER), markerText, { mode: 0o600 });
  for (const [name, value] of Object.entries(values)) await fs.writeFile(path.join(secretsDir, name), value, { mode: 0o600 });
  const envFile = path.join(root, 'secrets.env');
  await fs.writeFile(
    envFile,
    Object.entries(values)
      .map(([name, value]) => `${name}=${value}\n`)
      .join(''),
    { mode: 0o600 },
  );
  const read = (file: string): Promise<string> => fs.readFile(file, 'utf8');
  return {
    root,
    secretsDir,
    envFile,
    marker: markerHash(markerText),
    async snapshot() {
      const out: Record<string, string> = {};
      for (const name of await fs.readdir(secretsDir).catch(() => [] as string[])) out[name] = await read(path.join(secretsDir, name));
      out['secrets.env'] = await read(envFile).catch(() => '');
      return out;
    },
    status: async () => JSON.parse(await read(path.join(root, 'agent-status.json'))) as AgentStatus,
    leasesFile: async () => JSON.parse(await read(path.join(root, 'agent-leases.json'))) as { leases: string[]; revoked: string[] },
    log: () => read(path.join(root, 'agent.log')).catch(() => ''),
    remove: () => fs.rm(root, { recursive: true, force: true }),
  };
}

/** A secrets line as parse would give it: `<path> <key> | <name>` (or a `write` line with a body). */
export function line(
  apiPath: string,
  key: string,
  name: string,
  body?: Record<string, unknown>,
  encoding: VaultSecretLine['encoding'] = 'utf8',
): VaultSecretLine {
  return { line: 1, path: apiPath, version: undefined, selector: { kind: 'key', key }, optional: false, name, body, encoding };
}

export const TOKEN = 'hvs.unit-test-token';

/** The agent's config for `dir` and the given sources (one secret per line), as launch.ts would build it. */
export function config(dir: TempRoot, sources: AgentSource[], extra: Partial<AgentConfig> = {}): AgentConfig {
  return {
    url: 'https://vault.test:8200',
    namespace: undefined,
    tls: {},
    proxy: undefined,
    token: TOKEN,
    renewToken: true,
    revokeToken: true,
    marker: dir.marker,
    root: dir.root,
    secretsDir: dir.secretsDir,
    envFile: dir.envFile,
    secrets: sources.flatMap((s) => s.lines.map((l) => ({ name: l.name ?? '', envName: l.name ?? '', key: s.key }))),
    sources,
    refreshMs: 3_600_000,
    onChange: undefined,
    onChangeTimeoutMs: 30_000,
    maxLifetimeMs: 86_400_000,
    retries: 2,
    ...extra,
  };
}

/** A KV v2 source at version `version`, no lease. */
export function kvSource(lines: [VaultSecretLine, ...VaultSecretLine[]], apiPath: string, version: number): AgentSource {
  return { key: readKey(lines[0]), lines, readPath: apiPath, kvVersion: 2, version, lease: undefined };
}

/** A leased source as main obtained it at `obtainedAt`. */
export function leasedSource(
  lines: [VaultSecretLine, ...VaultSecretLine[]],
  apiPath: string,
  lease: { id: string; ttl: number; renewable: boolean },
  obtainedAt: number,
): AgentSource {
  return {
    key: readKey(lines[0]),
    lines,
    readPath: apiPath,
    kvVersion: undefined,
    version: undefined,
    lease: { id: lease.id, duration: lease.ttl, renewable: lease.renewable, obtainedAt, expiresAt: obtainedAt + lease.ttl * 1000 },
  };
}

/** An agent running against the fakes, and a way to move its time on. */
export interface Running {
  readonly agent: Agent;
  readonly clock: FakeClock;
  /** Settles when run() does; rejects with what it threw. */
  readonly done: Promise<void>;
  /** Whether run() has settled. */
  ended(): boolean;
  /**
   * Wakes the agent round after round until `probe` holds (checked each time it sleeps) or it
   * ends; fails when `limitMs` of fake time pass first. Returns the fake time taken.
   */
  until(what: string, probe: () => boolean | Promise<boolean>, limitMs: number): Promise<number>;
  /** Wakes it until run() ends by itself, within `limitMs` of fake time. */
  toEnd(limitMs: number): Promise<number>;
}

const noExec: Exec = async () => Promise.reject(new Error('no on-change in this test'));

export async function start(agentConfig: AgentConfig, vault: FakeVault, clock: FakeClock, exec: Exec = noExec): Promise<Running> {
  const agent = new Agent(agentConfig, { loadVaultClient: async () => vault.factory, exec, clock });
  let settled = false;
  const done = agent.run().finally(() => {
    settled = true;
  });
  done.catch(() => {});
  const from = clock.now();
  const running: Running = {
    agent,
    clock,
    done,
    ended: () => settled,
    async until(what, probe, limitMs) {
      const began = clock.now();
      for (;;) {
        await Promise.race([clock.untilAsleep(), done.catch(() => {})]);
        if (await probe()) return clock.now() - began;
        if (settled) throw new Error(`the agent ended before ${what}`);
        if (clock.now() - began > limitMs) throw new Error(`${what}: not within ${limitMs} ms of fake time`);
        clock.wake();
      }
    },
    async toEnd(limitMs) {
      await running.until('it ended', () => settled, limitMs);
      await done;
      return clock.now() - from;
    },
  };
  await running.until('it started', () => true, 0);
  return running;
}
