// The renewal agent (renew: true), end to end through dist/ and the runner harness against a real
// OpenBao dev server: an AppRole token with a 4 s TTL, database credentials for a real PostgreSQL
// under a renewable 3 s lease, PKI certificates under a non-renewable lease, KV v2 rotated with new
// versions; a fault proxy in front of OpenBao where a test injects faults or counts requests; and a
// real container that reloads on HUP. What is alive after post is asked of the servers themselves.
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { stopAgent } from '../../src/agent/launch.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { BASE_PATH } from '../support/harness/context.ts';
import { ensureBaseImage, sharedEngine } from '../support/services/docker.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { startPostgres, type Postgres } from '../support/services/postgres.ts';
import { MAIN, POST, VALUES, ledgerOf, newJob } from './setup.ts';

interface Ctx {
  bao: OpenBao;
  proxy: FaultProxy | undefined;
  pg: Postgres | undefined;
  job: Job;
  /** What the action talks to: the proxy when there is one, else OpenBao itself. */
  url: string;
  /** Every value delivered (main's and the agent's), collected from the files as the test went. */
  delivered: Set<string>;
  /** The database login delivered (DB_USER, DB_PASSWORD), checked against PostgreSQL itself. */
  dbLogin?: { user: string; password: string };
}
let ctx: Ctx | undefined;
const mains: StepResult[] = [];

afterEach(async () => {
  // Never leave an agent running: stop any a failed test left, then tear down.
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
    if (ledger.root) await fs.rm(ledger.root, { recursive: true, force: true });
  }
  const c = ctx;
  ctx = undefined;
  await c?.job.cleanup();
  await c?.proxy?.stop();
  await c?.bao.stop();
  await c?.pg?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const readText = (file: string): Promise<string> => fs.readFile(file, 'utf8').catch(() => '');
const linesOf = async (file: string): Promise<string[]> => (await readText(file)).split('\n').filter((l) => l !== '');

/**
 * Polls `probe` every `pollMs` until it returns something other than undefined or false, and
 * returns that; fails after `timeoutMs` with `what` and the last thing `describe` says. Deadlines
 * are generous (a shared, loaded 2-core machine); a passing wait returns as soon as it holds.
 */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; pollMs?: number; describe?: () => Promise<string> | string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${opts.describe ? `: ${await opts.describe()}` : ''}`);
    await sleep(opts.pollMs ?? 50);
  }
}

/** The roles in PostgreSQL besides the admin: the credentials the database engine made and has not dropped. */
async function dbRoles(c: Ctx): Promise<string[]> {
  return c.pg ? c.pg.roles() : [];
}

async function setup(opts: { database?: boolean; pki?: boolean; proxy?: boolean; tokenTtl?: string } = {}): Promise<Ctx> {
  const [bao, pg] = await Promise.all([OpenBao.start(), opts.database ? startPostgres() : Promise.resolve(undefined)]);
  let proxy: FaultProxy | undefined;
  let job: Job | undefined;
  try {
    await bao.enableKv('secret', 2);
    await bao.putKv('secret', 'ci/app', { password: VALUES.password });
    // Certificates under a lease the server will not renew (checked in the test that uses it).
    if (opts.pki) await bao.addPkiRole('pki', 'fixed', { ttl: '3s', maxTtl: '60s' });
    if (pg) {
      await bao.addPostgresRole('database', 'short', {
        port: pg.port,
        adminUser: pg.adminUser,
        adminPassword: pg.adminPassword,
        ttl: '3s',
        maxTtl: '120s',
      });
    }
    await bao.addPolicy('ci', [
      { path: 'secret/data/ci/*', capabilities: ['read'] },
      { path: 'database/creds/*', capabilities: ['read'] },
      { path: 'pki/issue/*', capabilities: ['update'] },
      { path: 'sys/leases/renew', capabilities: ['update'] },
      { path: 'sys/leases/revoke', capabilities: ['update'] },
    ]);
    await bao.addAppRole('approle', 'ci', {
      roleId: VALUES.roleId,
      secretId: VALUES.roleSecretId,
      policies: ['ci'],
      ttl: opts.tokenTtl ?? '4s',
      maxTtl: '300s',
    });
    proxy = opts.proxy ? await startFaultProxy(bao.url) : undefined;
    job = await newJob();
  } catch (error) {
    await proxy?.stop();
    await bao.stop();
    await pg?.stop();
    throw error;
  }
  ctx = { bao, proxy, pg, job, url: proxy?.url ?? bao.url, delivered: new Set() };
  return ctx;
}

/** Requests through the proxy that the real server answered with 200. */
function answered(proxy: FaultProxy, path: RegExp): number {
  return proxy.requests.filter((r) => path.test(r.path) && r.upstreamStatus === 200 && r.status === 200).length;
}

function proxyOf(c: Ctx): FaultProxy {
  if (!c.proxy) throw new Error('this test needs setup({ proxy: true })');
  return c.proxy;
}

function inputs(c: Ctx, extra: Record<string, string>): Record<string, string> {
  return {
    url: c.url,
    method: 'approle',
    'role-id': VALUES.roleId,
    'secret-id': VALUES.roleSecretId,
    renew: 'true',
    'refresh-interval': '1',
    'agent-max-lifetime': '120',
    ...extra,
  };
}

/** Runs main, which must succeed and leave an agent running; returns it with the token it made. */
async function runMain(c: Ctx, extra: Record<string, string>, env?: Record<string, string>): Promise<{ main: StepResult; token: string }> {
  const main = await c.job.runMain(MAIN, inputs(c, extra), env ? { env } : {});
  mains.push(main);
  expect(main.exitCode, main.log).toBe(0);
  const ledger = ledgerOf(main);
  expect(alive(ledger.agentPid ?? 0), 'agent not running after main').toBe(true);
  const token = (await readText(ledger.tokenFile ?? '')).trim();
  expect(token, 'no token file').not.toBe('');
  await collect(c, main);
  return { main, token };
}

/** Adds every value now in the secrets directory to `c.delivered`; returns them by file name. */
async function collect(c: Ctx, main: StepResult): Promise<Map<string, string>> {
  const dir = ledgerOf(main).secretsDir;
  const out = new Map<string, string>();
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith('.')) continue; // an agent's temp file, renamed over the target a moment later
    const value = await fs.readFile(path.join(dir, name), 'utf8').catch(() => undefined);
    if (value === undefined) continue;
    out.set(name, value);
    c.delivered.add(value);
  }
  return out;
}

/** The delivered database login, which must log in to PostgreSQL (and is remembered for after post). */
async function dbLogin(c: Ctx, main: StepResult): Promise<{ user: string; password: string }> {
  const files = await collect(c, main);
  const login = { user: files.get('DB_USER') ?? '', password: files.get('DB_PASSWORD') ?? '' };
  expect(await c.pg?.queryAs(login.user, login.password, 'SELECT 1'), 'the delivered login does not work').toEqual([['1']]);
  c.dbLogin = login;
  return login;
}

const agentLog = (main: StepResult): Promise<string> => readText(path.join(ledgerOf(main).root, 'agent.log'));
/** The agent's agent-status.json now (undefined before it wrote one). */
const statusOf = async (main: StepResult): Promise<AgentStatus | undefined> => {
  const text = await readText(path.join(ledgerOf(main).root, 'agent-status.json'));
  return text === '' ? undefined : (JSON.parse(text) as AgentStatus);
};
const failuresOf = (status: AgentStatus | undefined, what: string): number => status?.failures.find((f) => f.what === what)?.count ?? 0;

/**
 * Post, then what must hold after it: no agent, no private dir, and on the real servers the token
 * and every lease revoked and the database roles dropped, asked at once (a short lease left alone
 * would soon expire by itself), and no planted, fetched or token value anywhere it must not be.
 */
async function finish(
  c: Ctx,
  main: StepResult,
  token: string,
  steps: StepResult[] = [],
  env?: Record<string, string>,
): Promise<StepResult> {
  const ledger = ledgerOf(main);
  await collect(c, main);
  const post = await c.job.runPost(POST, main, env ? { env } : {});
  expect(post.exitCode, post.log).toBe(0);
  expect(post.log).toContain('Renewal agent log:');
  expect(post.log).toMatch(/Pipeline Secrets cleanup: token revoked/);
  expect(alive(ledger.agentPid ?? 0), 'agent still alive after post').toBe(false);
  expect(existsSync(ledger.root)).toBe(false);
  expect(await c.bao.tokenAlive(token), 'token alive after post').toBe(false);
  expect(await c.bao.liveAccessors(), 'service tokens alive after post').toEqual([]);
  for (const prefix of ['auth/approle/', 'database/', 'pki/'])
    expect(await c.bao.settledLeases(prefix), `${prefix} leases after post`).toEqual([]);
  expect(await dbRoles(c), 'database roles left after post').toEqual([]);
  if (c.dbLogin) {
    const { user, password } = c.dbLogin;
    await expect(c.pg?.queryAs(user, password, 'SELECT 1'), 'the database login still works after post').rejects.toThrow();
  }
  assertNoLeak(
    c.job,
    [main, ...steps, post],
    [VALUES.password, VALUES.roleSecretId, token, ...c.delivered, 'rotated-Pa55-v2', 'rotated-Pa55-v3'],
    { privateDirs: [ledger.root, ledger.secretsDir] },
  );
  return post;
}

describe('renewal agent (OpenBao, PostgreSQL)', () => {
  it('keeps a 3 s database lease and a 4 s token alive past their TTLs by renewing them', async () => {
    const c = await setup({ database: true, proxy: true });
    const proxy = proxyOf(c);
    const { main, token } = await runMain(c, {
      secrets: 'database/creds/short username | DB_USER\ndatabase/creds/short password | DB_PASSWORD',
    });
    // The token and the lease were made before main returned: older than this, on any clock.
    const made = Date.now();
    const leases = await c.bao.liveLeases('database/');
    expect(leases).toHaveLength(1);
    const lease = leases[0] ?? '';
    const issued = await c.bao.leaseInfo(lease);
    expect(issued?.renewable, 'the database lease is renewable').toBe(true);
    expect(issued?.ttl).toBeLessThanOrEqual(3);
    const created = await c.bao.tokenInfo(token);
    expect(created?.creation_ttl).toBe(4);
    const roles = await dbRoles(c);
    expect(roles).toHaveLength(1);
    const login = await dbLogin(c, main);
    expect(roles).toEqual([login.user]);

    // Two lease renewals (at ~2/3 of 3 s each) and a token renewal (~2/3 of 4 s), once both are
    // more than 4 s old, take both past their first TTL: alive now means renewed, on the server's
    // own clock. When in its TTL each renewal falls is for the unit tests (test/unit/agent).
    const renewals = () => answered(proxy, /^sys\/leases\/renew$/);
    const tokenRenewals = () => answered(proxy, /^auth\/token\/renew-self$/);
    await waitFor(
      '2 lease renewals and a token renewal, 4 s on',
      () => renewals() >= 2 && tokenRenewals() >= 1 && Date.now() - made > 4000,
      {
        timeoutMs: 30_000,
        describe: async () => `lease ${renewals()}, token ${tokenRenewals()}; agent log:\n${await agentLog(main)}`,
      },
    );
    const lease2 = await c.bao.leaseInfo(lease);
    expect(lease2, 'lease gone').toBeDefined();
    expect(lease2?.last_renewal).not.toBeNull();
    expect(Date.now() - Date.parse(lease2?.issue_time ?? '')).toBeGreaterThan(3000);
    const token2 = await c.bao.tokenInfo(token);
    expect(token2, 'token gone').toBeDefined();
    expect(Date.now() / 1000 - (token2?.creation_time ?? 0)).toBeGreaterThan(4);
    expect(token2?.last_renewal_time ?? 0).toBeGreaterThan(token2?.creation_time ?? 0);
    // Same credential all along: renewal, not replacement.
    expect(await c.bao.liveLeases('database/')).toEqual([lease]);
    expect(await dbRoles(c)).toEqual(roles);
    expect(await dbLogin(c, main)).toEqual(login);
    console.log(`lease renewals: ${renewals()}; token renewals: ${tokenRenewals()}`);
    await finish(c, main, token);
  }, 60_000);

  it('replaces a non-renewable PKI lease atomically: a reader never sees a partial or empty file; on-change runs once per change', async () => {
    const c = await setup({ pki: true, proxy: true });
    const proxy = proxyOf(c);
    const changes = path.join(c.job.runnerTemp, 'changes.log');
    const { main, token } = await runMain(c, {
      secrets: 'write pki/issue/fixed {"common_name": "ci.test"} private_key | TLS_KEY',
      'on-change': `echo "$PIPELINE_SECRETS_CHANGED" >> ${changes}`,
    });
    const first = (await c.bao.liveLeases('pki/'))[0] ?? '';
    expect((await c.bao.leaseInfo(first))?.renewable, 'a PKI lease is not renewable').toBe(false);
    const file = path.join(ledgerOf(main).secretsDir, 'TLS_KEY');
    const pem = /^-----BEGIN ([A-Z ]+) PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END \1 PRIVATE KEY-----\n?$/;
    const seen = new Set<string>();
    // Read as fast as a busy app would, until the key has been replaced twice.
    await waitFor(
      'two replacements of the key',
      async () => {
        const value = await fs.readFile(file, 'utf8');
        expect(value, 'a partial or empty read').toMatch(pem);
        seen.add(value);
        c.delivered.add(value);
        return seen.size >= 3;
      },
      { timeoutMs: 30_000, pollMs: 5, describe: () => agentLog(main) },
    );
    // Each replaced lease was revoked by the agent as it went (asked of the server).
    await waitFor(
      'the replaced leases revoked',
      async () => {
        const saved = JSON.parse(await readText(path.join(ledgerOf(main).root, 'agent-leases.json'))) as {
          leases: string[];
          revoked: string[];
        };
        const live = await c.bao.liveLeases('pki/');
        const revokedGone = (await Promise.all(saved.revoked.map((id) => c.bao.leaseAlive(id)))).every((a) => !a);
        return saved.revoked.length >= 2 && saved.revoked.includes(first) && revokedGone && live.every((id) => saved.leases.includes(id));
      },
      { describe: () => agentLog(main) },
    );
    expect(proxy.count(undefined, /^sys\/leases\/revoke/)).toBeGreaterThanOrEqual(2);
    const post = await finish(c, main, token);
    // The agent is stopped now: every replacement it made is in its log, and on-change ran once for each.
    const replacements = post.log.split('\n').filter((l) => /new credential from pki\/issue\/fixed .*rewrote TLS_KEY/.test(l)).length;
    expect(replacements).toBeGreaterThanOrEqual(seen.size - 1);
    const lines = await linesOf(changes);
    console.log(`distinct keys seen by the reader: ${seen.size}; replacements: ${replacements}; on-change runs: ${lines.length}`);
    expect(lines).toHaveLength(replacements);
    expect(new Set(lines)).toEqual(new Set(['TLS_KEY']));
  }, 60_000);

  it('rewrites a rotated KV secret within one refresh interval and runs on-change once per change, after the env-file', async () => {
    const c = await setup({ proxy: true });
    const proxy = proxyOf(c);
    const changes = path.join(c.job.runnerTemp, 'changes.log');
    // on-change records what it saw: the file and the env-file must both be new by then (as
    // sha256, so no value lands in the job's files).
    const onChange = `echo "$PIPELINE_SECRETS_CHANGED $(sha256sum < "$PIPELINE_SECRETS_DIR/APP_PASSWORD" | cut -c1-64) $(sha256sum < "$PIPELINE_SECRETS_DIR/../secrets.env" | cut -c1-64)" >> ${changes}`;
    const { main, token } = await runMain(c, { secrets: 'secret/ci/app password | APP_PASSWORD', 'on-change': onChange });
    const file = path.join(ledgerOf(main).secretsDir, 'APP_PASSWORD');
    const envFile = main.outputs['env-file'] ?? '';
    expect(envFile).toBe(path.join(ledgerOf(main).root, 'secrets.env'));
    const reads = () => proxy.count('GET', 'secret/data/ci/app');
    for (const [n, value] of [
      [2, 'rotated-Pa55-v2'],
      [3, 'rotated-Pa55-v3'],
    ] as const) {
      expect(await c.bao.putKv('secret', 'ci/app', { password: value })).toBe(n);
      const since = Date.now();
      // The agent writes the file, then the env-file, then runs on-change: wait for the last of them.
      await waitFor(
        `version ${n} in the file and the env-file`,
        async () => (await readText(file)) === value && (await readText(envFile)) === `APP_PASSWORD=${value}\n`,
        {
          timeoutMs: 15_000,
          describe: () => agentLog(main),
        },
      );
      // One refresh interval (1 s) plus slack for a loaded machine.
      console.log(`version ${n} delivered (file and env-file) ${Date.now() - since} ms after the write`);
      expect(Date.now() - since, `version ${n} not delivered within one refresh interval`).toBeLessThan(4000);
      const lines = await waitFor(`on-change for version ${n}`, async () => {
        const l = await linesOf(changes);
        return l.length >= n - 1 && l;
      });
      expect(lines).toHaveLength(n - 1);
      expect(lines[n - 2]).toBe(`APP_PASSWORD ${sha256(value)} ${sha256(`APP_PASSWORD=${value}\n`)}`);
    }
    // Two more refreshes without a change (two more reads, the second begun after the first
    // finished): no more on-change runs.
    const before = reads();
    await waitFor('two more refreshes', () => reads() >= before + 2, { timeoutMs: 15_000 });
    expect(await linesOf(changes)).toHaveLength(2);
    await finish(c, main, token);
  }, 60_000);

  it('retries renewals while Vault answers 503, and recovers with the same credential', async () => {
    const c = await setup({ database: true, proxy: true });
    const proxy = proxyOf(c);
    const { main, token } = await runMain(c, {
      secrets: 'database/creds/short username | DB_USER\ndatabase/creds/short password | DB_PASSWORD',
      retries: '0',
    });
    const lease = (await c.bao.liveLeases('database/'))[0] ?? '';
    const roles = await dbRoles(c);
    const login = await dbLogin(c, main);
    proxy.inject({ path: /^sys\/leases\/renew/, kind: 'status', status: 503, times: 2 });
    // Both refusals, then a renewal that went through (the agent tries in that order).
    const status = await waitFor(
      'two failed renewals, then a successful one',
      async () => {
        const now = await statusOf(main);
        return failuresOf(now, 'lease renewal (database/creds/short)') >= 2 && (now?.renewals.leases ?? 0) >= 1 && now;
      },
      { timeoutMs: 20_000, describe: () => agentLog(main) },
    );
    expect(await c.bao.leaseAlive(lease)).toBe(true);
    expect(await c.bao.liveLeases('database/')).toEqual([lease]);
    expect(await dbRoles(c)).toEqual(roles);
    expect(await dbLogin(c, main)).toEqual(login);
    expect(status.replaced).toBe(0);
    await finish(c, main, token);
  }, 60_000);

  it('keeps the last good file when Vault is gone for good, and exits when its directory disappears', async () => {
    const c = await setup({ proxy: true });
    const proxy = proxyOf(c);
    const { main, token } = await runMain(c, { secrets: 'secret/ci/app password | APP_PASSWORD' });
    const { root, secretsDir, agentPid = 0 } = ledgerOf(main);
    // Gone for good: nothing listens at the address the agent was given any more.
    await proxy.stop();
    await waitFor('two failed refreshes', async () => failuresOf(await statusOf(main), 'KV refresh (secret/data/ci/app)') >= 2, {
      describe: () => agentLog(main),
    });
    expect(await fs.readFile(path.join(secretsDir, 'APP_PASSWORD'), 'utf8')).toBe(VALUES.password);
    const log = await agentLog(main);
    await fs.rm(root, { recursive: true, force: true });
    await waitFor('the agent to exit after its directory disappeared', () => !alive(agentPid), { timeoutMs: 10_000 });
    // Post still succeeds. The token file went with the directory (and Vault is unreachable), so
    // post cannot revoke the token: with no agent renewing it, the server lets it expire within its 4 s TTL.
    const post = await c.job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    await waitFor('the unrenewed token to expire on the server', async () => !(await c.bao.tokenAlive(token)), {
      timeoutMs: 10_000,
      pollMs: 200,
    });
    expect(await c.bao.liveAccessors()).toEqual([]);
    expect(await c.bao.settledLeases('auth/approle/')).toEqual([]);
    expect(log).not.toContain(VALUES.password);
    assertNoLeak(c.job, [main, post], [VALUES.password, VALUES.roleSecretId, token], { privateDirs: [root, secretsDir] });
  }, 60_000);

  it('exits by itself when its max lifetime passes', async () => {
    // A token that outlives the agent: once it exits nothing renews the token, and post must still
    // find it alive to revoke it (with a 4 s TTL that is a race with post starting).
    const c = await setup({ tokenTtl: '60s' });
    const { main, token } = await runMain(c, { secrets: 'secret/ci/app password | APP_PASSWORD', 'agent-max-lifetime': '1' });
    const { agentPid = 0 } = ledgerOf(main);
    await waitFor('the agent to exit at its max lifetime', () => !alive(agentPid), { timeoutMs: 10_000 });
    const status = await statusOf(main);
    expect([status?.state, status?.reason]).toEqual(['exited', 'max lifetime reached']);
    await finish(c, main, token);
  }, 60_000);

  it('an app in a container reloads on HUP and reports the new byte count after a rotation', async () => {
    const c = await setup();
    const engine = await sharedEngine();
    await ensureBaseImage(engine);
    const name = `ps-reload-${Date.now()}`;
    const env = { ...engine.env, PATH: `${path.dirname(process.execPath)}:${BASE_PATH}` };
    const { main, token } = await runMain(
      c,
      { secrets: 'secret/ci/app password | APP_PASSWORD', 'on-change': `docker kill -s HUP ${name}` },
      env,
    );
    // The app: reads its secret at start and again on HUP, printing only the byte count.
    const script = path.join(c.job.workspace, 'app.sh');
    await fs.writeFile(
      script,
      'trap \'echo "reloaded $(wc -c < /run/secrets/APP_PASSWORD) bytes"\' HUP\necho "started $(wc -c < /run/secrets/APP_PASSWORD) bytes"\nwhile true; do sleep 1 & wait $!; done\n',
    );
    const start = await c.job.runShell(
      `docker run -d --name ${name} --network none -v "$PIPELINE_SECRETS_DIR:/run/secrets:ro" -v "${script}:/app.sh:ro" ps-busybox:latest sh /app.sh`,
      { env },
    );
    expect(start.exitCode, start.log).toBe(0);
    try {
      const logs = async () => (await engine.run(['logs', name])).stdout;
      // The trap is set before the first echo: once it printed, a HUP reaches the handler.
      await waitFor('the app to start', async () => (await logs()).includes(`started ${VALUES.password.length} bytes`), {
        timeoutMs: 20_000,
        pollMs: 100,
        describe: logs,
      });
      await c.bao.putKv('secret', 'ci/app', { password: 'rotated-Pa55-v2' });
      await waitFor('the app to reload', async () => (await logs()).includes(`reloaded ${'rotated-Pa55-v2'.length} bytes`), {
        timeoutMs: 15_000,
        pollMs: 100,
        describe: async () => `container log: ${await logs()}; agent log:\n${await agentLog(main)}`,
      });
      await finish(c, main, token, [start], env);
    } finally {
      await engine.run(['rm', '-f', name]);
    }
  }, 90_000);
});
