// The fault matrix, against a real OpenBao with a fault proxy in front (test/support/services/fault-proxy.ts):
// every fault kind at every request position of a job (login, mount detection, a KV read, a
// dynamic-credential read, lease revoke, token revoke), once (transient) and for good (persistent).
// A retried request is answered by the real server, and what the server did (tokens, leases,
// PostgreSQL users) is asked of the server, not of a model of it.
//
// Each case runs main and post (dist/, through the runner harness) and asserts: success after a
// retry, or one clean error line naming the path; nothing partially delivered; every lease Vault
// issued to the run is in the ledger unless its answer never reached the action; after post no
// file left, and on the server exactly what the code promises (see `leftAfterPost`); and no value
// in any log line outside ::add-mask::.
//
// Kinds fall in three classes, which is what the expectations are made of:
// - before the server: 'status' (503, 500, 429, 412), 'reset', 'hang'. The server never acts.
// - after the server: 'reset-after', 'malformed', 'status-after' (504, as a load balancer whose
//   upstream answered too late). The server acted: a login minted a token, a database/creds read
//   minted a PostgreSQL user, a revoke revoked.
// - 'latency': only slower.
// The transport (src/vault/transport.ts) retries any call after a 503/429/412 JSON answer (Vault
// refuses those before acting); after anything else (500, 504, a reset, a malformed body) only
// idempotent calls: mount lookups (READ_ONLY_GET), KV reads (retrySafe from the mount lookup),
// lease and token revocation. A login and a GET of database/creds are not retried then, since the
// server may have acted. A hang in main spends the whole 'timeout' budget (it is the per-request
// timeout); in post, lease revocations get two thirds of it and the token revocation the rest.
//
// Main's outcome by position (after the first hit; "for good" fails wherever a fault is not latency):
//                     503/429/412   500, reset   reset-after, malformed, 504-after   hang   latency
//   login             retry, ok     fail         fail, 1 orphan token                fail   ok
//   mount detection   retry, ok     retry, ok    retry, ok                           fail   ok
//   kv read           retry, ok     retry, ok    retry, ok                           fail   ok
//   dynamic read      retry, ok     fail         fail, 1 user (revoked by post)      fail   ok
//   lease revoke      (post) retried, ok; for good (hang too): the lease goes with the token
//   token revoke      (post) retried, ok; for good: token left, warned (after-kinds: 'may not have been')
//
// One OpenBao and one PostgreSQL serve the file; cases run concurrently, so each has its own fault
// proxy (an in-process server, cheap) and its own AppRole role and database role, named cN: what is
// alive on the server is looked up per case (token meta role_name, lease prefix, PostgreSQL user
// prefix), and whatever a case leaves alive on purpose is revoked by root after it was asserted.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { assertNoLeak, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy, type ProxyFaultSpec } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { startPostgres, type Postgres } from '../support/services/postgres.ts';
import { MAIN, POST, VALUES, createdToken, ledgerOf, newJob } from './setup.ts';

type Kind =
  'status-503' | 'status-500' | 'status-429' | 'status-412' | 'reset' | 'hang' | 'reset-after' | 'malformed' | 'status-after' | 'latency';
const KINDS: Kind[] = [
  'status-503',
  'status-500',
  'status-429',
  'status-412',
  'reset',
  'hang',
  'reset-after',
  'malformed',
  'status-after',
  'latency',
];

/** The server acted on the request before the client lost (or got a broken) answer. */
const afterServer = (kind: Kind): boolean => kind === 'reset-after' || kind === 'malformed' || kind === 'status-after';
/** Answers that prove Vault did not act (refused before routing): any call is retried after them. */
const provablyNotProcessed = (kind: Kind): boolean => kind === 'status-503' || kind === 'status-429' || kind === 'status-412';

type PositionName = 'login' | 'mount detection' | 'kv read' | 'dynamic read' | 'lease revoke' | 'token revoke';
interface Position {
  name: PositionName;
  method: string;
  /** The request's path for case `role`. */
  path: (role: string) => string;
  /** Seen by post rather than main. */
  inPost: boolean;
  /** Retried after a failure that leaves open whether Vault acted (idempotent, or a KV read). */
  idempotent: boolean;
}
const POSITIONS: Position[] = [
  { name: 'login', method: 'POST', path: () => 'auth/approle/login', inPost: false, idempotent: false },
  { name: 'mount detection', method: 'GET', path: () => 'sys/internal/ui/mounts/secret/data/ci/app', inPost: false, idempotent: true },
  { name: 'kv read', method: 'GET', path: () => 'secret/data/ci/app', inPost: false, idempotent: true },
  { name: 'dynamic read', method: 'GET', path: (role) => `database/creds/${role}`, inPost: false, idempotent: false },
  { name: 'lease revoke', method: 'POST', path: () => 'sys/leases/revoke', inPost: true, idempotent: true },
  { name: 'token revoke', method: 'POST', path: () => 'auth/token/revoke-self', inPost: true, idempotent: true },
];

function positionNamed(name: PositionName): Position {
  const p = POSITIONS.find((q) => q.name === name);
  if (!p) throw new Error(`no position ${name}`);
  return p;
}

interface Case {
  position: Position;
  kind: Kind;
  persistent: boolean;
}

function fault(c: Case, role: string): ProxyFaultSpec {
  const where = { method: c.position.method, path: c.position.path(role), ...(c.persistent ? {} : { times: 1 }) };
  switch (c.kind) {
    case 'status-503':
      return { ...where, kind: 'status', status: 503 };
    case 'status-500':
      return { ...where, kind: 'status', status: 500 };
    case 'status-429':
      return { ...where, kind: 'status', status: 429, retryAfter: 0 };
    case 'status-412':
      return { ...where, kind: 'status', status: 412 };
    case 'status-after':
      return { ...where, kind: 'status-after', status: 504 };
    case 'latency':
      return { ...where, kind: 'latency', latencyMs: 300 };
    default:
      return { ...where, kind: c.kind };
  }
}

/** Whether the transport tries the request again after the first fault. */
function retried(c: Case): boolean {
  if (c.kind === 'latency') return false; // nothing to retry
  if (c.kind === 'hang') return false; // the hang spends the 'timeout' budget
  return provablyNotProcessed(c.kind) || c.position.idempotent;
}

/** Whether the step holding the faulted request gets through it. */
function recovers(c: Case): boolean {
  if (c.kind === 'latency') return true;
  return !c.persistent && retried(c);
}

/**
 * How many times the real server acts on a non-idempotent request (login, database/creds read): so
 * many tokens, or PostgreSQL users, it mints. Never more than one: a request that may have been
 * acted on is not sent again.
 */
function serverActs(c: Case): number {
  if (c.kind === 'latency' || afterServer(c.kind)) return 1; // the first (and only) try reached the server
  // Before the server: only a retry reaches it, and only a provable refusal is retried.
  return !c.persistent && provablyNotProcessed(c.kind) ? 1 : 0;
}

const cases: Case[] = POSITIONS.flatMap((position) =>
  KINDS.flatMap((kind) =>
    // A hang spends the whole budget on its first hit: once or for good is the same case.
    [false, true].filter((persistent) => !(kind === 'hang' && !persistent)).map((persistent) => ({ position, kind, persistent })),
  ),
);

let vault: OpenBao;
let pg: Postgres;
let roleCount = 0;

beforeAll(async () => {
  [vault, pg] = await Promise.all([OpenBao.start(), startPostgres()]);
  await vault.enableKv('secret', 2);
  await vault.putKv('secret', 'ci/app', { password: VALUES.password });
  await vault.enableEngine('database', 'database');
  // One connection for every case's role (addPostgresRole makes one per role; here roles are many).
  await vault.call('POST', 'database/config/pg', {
    body: {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
      username: pg.adminUser,
      password: pg.adminPassword,
      allowed_roles: ['*'],
      verify_connection: true,
    },
  });
  await vault.addPolicy('ci', [
    { path: 'secret/data/ci/*', capabilities: ['read'] },
    { path: 'database/creds/*', capabilities: ['read'] },
    // So post revokes the lease by id and the 'lease revoke' position is a real request.
    { path: 'sys/leases/revoke', capabilities: ['update'] },
  ]);
  await vault.enableAuth('approle', 'approle');
}, 120_000);

afterAll(async () => {
  await Promise.all([vault?.stop(), pg?.stop()]);
});

/** A fresh AppRole role and database role for one case, both named `role`. */
async function addCaseRoles(role: string): Promise<void> {
  await vault.call('POST', `database/roles/${role}`, {
    body: {
      db_name: 'pg',
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
      default_ttl: '10m',
      max_ttl: '1h',
    },
  });
  await vault.addAppRole('approle', role, {
    roleId: `${VALUES.roleId}-${role}`,
    secretId: VALUES.roleSecretId,
    policies: ['ci'],
    ttl: '10m',
  });
}

/** Accessors of the live tokens an AppRole login as `role` made (their meta names the role). */
async function tokensOf(role: string): Promise<string[]> {
  const res = await vault.request('LIST', 'auth/token/accessors');
  const keys: string[] = res.status === 200 ? (res.body.data.keys ?? []) : [];
  const out: string[] = [];
  for (const accessor of keys) {
    const info = await vault.request('POST', 'auth/token/lookup-accessor', { body: { accessor } });
    if (info.status === 200 && info.body.data.meta?.role_name === role) out.push(accessor);
  }
  return out.sort();
}

/** PostgreSQL users the database role `role` created (default username template v-<display>-<role>-...). */
async function pgUsersOf(role: string): Promise<string[]> {
  return (await pg.roles()).filter((r) => r.startsWith(`v-approle-${role}-`));
}

/** What is alive on the server for a case: its tokens, its leases, its PostgreSQL users. */
async function aliveOf(role: string): Promise<{ tokens: string[]; leases: string[]; users: string[] }> {
  const [tokens, leases, users] = await Promise.all([tokensOf(role), vault.liveLeases(`database/creds/${role}/`), pgUsersOf(role)]);
  return { tokens, leases: leases.sort(), users };
}

const SECRETS = (role: string): string => `secret/data/ci/app password | DB_PASSWORD\ndatabase/creds/${role} password | DYN_PASSWORD`;

function messages(step: StepResult, level: 'error' | 'warning'): string[] {
  return step.annotations.filter((a) => a.level === level).map((a) => a.message);
}

async function runCase(c: Case, opts: { retries?: string } = {}) {
  const role = `c${++roleCount}`;
  await addCaseRoles(role);
  const proxy: FaultProxy = await startFaultProxy(vault.url);
  const job = await newJob();
  try {
    proxy.inject(fault(c, role));
    const main = await job.runMain(MAIN, {
      url: proxy.url,
      method: 'approle',
      'role-id': `${VALUES.roleId}-${role}`,
      'secret-id': VALUES.roleSecretId,
      // A hang costs the whole budget; the rest get room for a loaded machine.
      timeout: c.kind === 'hang' ? '3' : '15',
      ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
      secrets: SECRETS(role),
    });
    const ledger = ledgerOf(main);
    const token = createdToken(main);
    const tokenAccessor = token !== '' ? (await vault.tokenInfo(token))?.accessor : undefined;
    const dynamic = await fs.readFile(path.join(ledger.secretsDir ?? '', 'DYN_PASSWORD'), 'utf8').catch(() => undefined);
    const beforePost = await aliveOf(role);
    return { role, proxy, job, main, ledger, token, tokenAccessor, dynamic, beforePost };
  } catch (e) {
    await job.cleanup();
    await proxy.stop();
    throw e;
  }
}

/** Revokes what a case left alive on purpose, so the server stays small for the lookups of the others. */
async function revokeLeftovers(role: string): Promise<void> {
  for (const accessor of await tokensOf(role)) await vault.call('POST', 'auth/token/revoke-accessor', { body: { accessor } });
  await vault.call('PUT', `sys/leases/revoke-prefix/database/creds/${role}`, { body: {} });
}

describe.concurrent('fault matrix', () => {
  // it.for hands each case its own `expect`: expect.poll needs it in concurrent tests.
  it.for(cases.map((c) => ({ name: `${c.kind} ${c.persistent ? 'for good' : 'once'} at ${c.position.name}`, ...c })))(
    '$name',
    { timeout: 60_000 },
    async (c, { expect }) => {
      const run = await runCase(c);
      const { role, proxy, job, main, ledger } = run;
      try {
        const at = c.position.path(role);
        const upstream = proxy.requests.filter((r) => r.method === c.position.method && r.path === at && r.upstreamStatus !== undefined);

        // ---- main ----------------------------------------------------------------------------
        const mainRecovers = c.position.inPost || recovers(c);
        if (mainRecovers) {
          expect(main.exitCode, main.log).toBe(0);
          expect((await fs.readdir(ledger.secretsDir)).sort()).toEqual(['DB_PASSWORD', 'DYN_PASSWORD']);
        } else {
          expect(main.exitCode, main.log).toBe(1);
          const errors = messages(main, 'error');
          expect(errors).toHaveLength(1);
          // One line, no stack, naming the request that failed.
          expect(errors[0]).not.toMatch(/\n|\bat .*:\d+:\d+\)/);
          expect(errors[0]).toContain(`${c.position.method} ${at}`);
          // Nothing partially delivered: no secret file, no output, no env.
          expect(await fs.readdir(ledger.secretsDir)).toEqual([]);
          expect(main.outputs['secrets-dir']).toBeUndefined();
          expect(Object.keys(main.env)).toEqual([]);
        }

        // What the server did for the requests that create something: never twice.
        if (c.position.name === 'login' || c.position.name === 'dynamic read') {
          expect(upstream.length, 'times the server acted on the faulted request').toBe(serverActs(c));
        }
        if (c.position.name === 'login') {
          // The one token minted is the action's when its answer arrived, an orphan otherwise.
          expect(run.beforePost.tokens).toHaveLength(serverActs(c));
          if (afterServer(c.kind)) {
            expect(upstream[0]?.upstreamStatus).toBe(200);
            expect(ledger.tokenFile).toBeUndefined();
            expect(run.tokenAccessor).toBeUndefined();
          } else if (serverActs(c) === 1) {
            expect(run.beforePost.tokens).toEqual([run.tokenAccessor]);
          }
        }
        // Every lease the server holds for this run is in the ledger (recorded the moment its answer
        // arrived, even one on a malformed answer), unless that answer was lost on the way.
        const lost = c.position.name === 'dynamic read' && (c.kind === 'reset-after' || c.kind === 'status-after');
        expect(run.beforePost.users).toHaveLength(run.beforePost.leases.length);
        if (lost) {
          expect(run.beforePost.leases).toHaveLength(1);
          expect(ledger.leases).toEqual([]);
        } else {
          expect([...ledger.leases].sort()).toEqual(run.beforePost.leases);
        }
        if (c.position.name === 'dynamic read') expect(run.beforePost.leases).toHaveLength(serverActs(c));

        // ---- post ----------------------------------------------------------------------------
        const post = await job.runPost(POST, main);
        expect(post.exitCode, post.log).toBe(0);
        // The fault hit its request (a path that matched nothing would make a case pass for free).
        const first = proxy.requests.find((r) => r.method === c.position.method && r.path === at);
        expect(first?.faults, `${c.position.method} ${at} never sent`).toContain(fault(c, role).kind);
        const warnings = messages(post, 'warning');
        // FAULT_MATRIX_DUMP=1 prints every case's error line and post warnings, to review the wording.
        if (process.env.FAULT_MATRIX_DUMP)
          console.log(`${c.name}\n  main: ${messages(main, 'error').join(' | ')}\n  post: ${warnings.join(' | ')}`);
        const expected = leftAfterPost(c, run.tokenAccessor);
        expect(warnings, post.log).toHaveLength(expected.warnings.length);
        expected.warnings.forEach((re, i) => expect(warnings[i], post.log).toMatch(re));
        // Revocation of a token revokes its leases lazily (the expiration manager): poll a moment.
        await expect
          .poll(
            async () => {
              const alive = await aliveOf(role);
              return { tokens: alive.tokens.length, leases: alive.leases.length, users: alive.users.length };
            },
            { timeout: 5000, interval: 100 },
          )
          .toEqual({ tokens: expected.tokens.length, leases: expected.leases, users: expected.leases });
        const alive = await aliveOf(role);
        for (const [i, accessor] of expected.tokens.entries()) {
          if (accessor === 'orphan') {
            // The token the failed login minted, untouched by post: the action never had it to
            // record (no token file), so it is not, and cannot be, the action's token.
            expect(alive.tokens[i]).not.toBe(run.tokenAccessor);
            expect(alive.tokens).toEqual(run.beforePost.tokens);
          } else expect(alive.tokens[i]).toBe(accessor);
        }

        for (const dir of [ledger.root, ledger.secretsDir]) await expect(fs.lstat(dir)).rejects.toThrow();
        assertNoLeak(
          job,
          [main, post],
          [VALUES.password, VALUES.roleSecretId, ...(run.token ? [run.token] : []), ...(run.dynamic ? [run.dynamic] : [])],
          {
            privateDirs: [ledger.root, ledger.secretsDir],
          },
        );
      } finally {
        await job.cleanup();
        await proxy.stop();
        await revokeLeftovers(role);
      }
    },
  );
});

/**
 * What the server still holds for a case after post, and the warnings post gives for it:
 * - a login the server acted on whose answer was lost (reset-after, malformed, status-after): the
 *   token it minted, which the action never learned (no token file, nothing to revoke it with, and
 *   the login is not retried, so there is only the one): an orphan, alive until its TTL (10m).
 *   (On 'malformed' the truncated body does hold auth.client_token, at offset ~170 of ~500 bytes,
 *   but src does not take it out as it takes lease ids out: the token stays unknown to it);
 * - a token revoke the server never saw (a refusal, a reset before forwarding, a hang), for good:
 *   the action's own token, with a warning saying so; its lease was revoked by id before;
 * - nothing in every other case: a lease whose answer was lost (or malformed, or whose revoke by
 *   id failed) was issued to the action's token and went with it when post revoked the token.
 */
function leftAfterPost(c: Case, tokenAccessor: string | undefined): { tokens: string[]; leases: number; warnings: RegExp[] } {
  const notRevoked = /^cleanup: Vault token not revoked: POST auth\/token\/revoke-self: /;
  const mayNotBeRevoked = /^cleanup: Vault token may not have been revoked: POST auth\/token\/revoke-self: /;
  if (c.position.name === 'login' && afterServer(c.kind)) return { tokens: ['orphan'], leases: 0, warnings: [] };
  if (c.position.name === 'token revoke' && c.persistent && !afterServer(c.kind) && c.kind !== 'latency') {
    // A 503/429/412 proves Vault did not act: "not revoked". A 500, a reset or a hang leave it open
    // from where post stands (the proxy decided before forwarding, but post cannot see that).
    const refusedBeforeActing = c.kind === 'status-503' || c.kind === 'status-429' || c.kind === 'status-412';
    return { tokens: [tokenAccessor ?? 'missing'], leases: 0, warnings: [refusedBeforeActing ? notRevoked : mayNotBeRevoked] };
  }
  if (c.position.name === 'token revoke' && afterServer(c.kind)) {
    // The server revoked the token on the first try and its answer was lost or broken. Once: the
    // retry's 403, confirmed by a refused lookup-self, proves the token gone: no warning. For good:
    // post cannot know, and says it may not have been revoked.
    return {
      tokens: [],
      leases: 0,
      warnings: c.persistent ? [mayNotBeRevoked] : [],
    };
  }
  if (c.position.name === 'lease revoke' && c.kind === 'hang') {
    // The hung lease revoke spends only the lease share of post's budget: revoke-self still goes
    // out in the time kept for it, and takes the lease (and its PostgreSQL user) with the token.
    return { tokens: [], leases: 0, warnings: [] };
  }
  return { tokens: [], leases: 0, warnings: [] };
}

describe.concurrent('the matrix can fail', () => {
  // With retries off, cases the matrix expects to recover (by a retry the real server answers) fail:
  // their success above is the retry's doing, not a fault that did not happen.
  it.for([
    { position: 'login' as const, kind: 'status-503' as const },
    { position: 'kv read' as const, kind: 'reset-after' as const },
    { position: 'mount detection' as const, kind: 'malformed' as const },
    { position: 'dynamic read' as const, kind: 'status-429' as const },
  ])('retries 0: $kind once at $position fails main', async ({ position, kind }, { expect }) => {
    const c: Case = { position: positionNamed(position), kind, persistent: false };
    expect(recovers(c)).toBe(true);
    const { role, proxy, job, main, ledger } = await runCase(c, { retries: '0' });
    try {
      expect(main.exitCode, main.log).toBe(1);
      expect(messages(main, 'error')).toHaveLength(1);
      const post = await job.runPost(POST, main);
      expect(post.exitCode, post.log).toBe(0);
      await expect.poll(async () => (await vault.liveLeases(`database/creds/${role}/`)).length).toBe(0);
      for (const dir of [ledger.root, ledger.secretsDir]) await expect(fs.lstat(dir)).rejects.toThrow();
    } finally {
      await job.cleanup();
      await proxy.stop();
      await revokeLeftovers(role);
    }
  });
});
