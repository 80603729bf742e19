// The renewal agent (renew: true), end to end through dist/ and the runner harness against the
// Vault double, and against a real container that reloads on HUP.
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent-launch.ts';
import { assertNoLeak, type Job, type StepResult } from '../harness/index.ts';
import { ensureBaseImage, sharedEngine } from '../services/docker.ts';
import { BASE_PATH } from '../harness/context.ts';
import { VaultDouble } from '../vault-double/index.ts';
import { MAIN, POST, VALUES, newJob } from './setup.ts';

interface Ctx {
  vault: VaultDouble;
  job: Job;
  made: string[];
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
  await ctx?.job.cleanup();
  await ctx?.vault.stop();
  ctx = undefined;
});

function ledgerOf(main: StepResult): { root?: string; secretsDir?: string; agentPid?: number } {
  return JSON.parse(main.state.ledger ?? '{}');
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

async function setup(): Promise<Ctx> {
  const vault = await VaultDouble.start();
  const made: string[] = [];
  vault.enableKv('secret', 2);
  vault.putKv('secret', 'ci/app', { password: VALUES.password });
  vault.enableEngine('database', 'database');
  const make = () => {
    const password = `dyn-pw-${String(made.length).padStart(4, '0')}-${'q'.repeat(20)}`;
    made.push(password);
    return { username: `v-${made.length}`, password };
  };
  vault.addDynamicRole('database', 'short', { ttl: 3, maxTtl: 120, renewable: true, make });
  vault.addDynamicRole('database', 'fixed', { ttl: 3, renewable: false, make });
  vault.addPolicy('ci', [
    { path: 'secret/data/ci/*', capabilities: ['read'] },
    { path: 'database/creds/*', capabilities: ['read'] },
    { path: 'sys/leases/*', capabilities: ['update'] },
  ]);
  vault.addAppRole('approle', 'ci', { roleId: VALUES.roleId, secretId: VALUES.roleSecretId, policies: ['ci'], ttl: 4 });
  ctx = { vault, job: await newJob(), made };
  return ctx;
}

function inputs(c: Ctx, extra: Record<string, string>): Record<string, string> {
  return {
    url: c.vault.url,
    method: 'approle',
    'role-id': VALUES.roleId,
    'secret-id': VALUES.roleSecretId,
    renew: 'true',
    'refresh-interval': '1',
    'agent-max-lifetime': '120',
    ...extra,
  };
}

async function finish(c: Ctx, main: StepResult, steps: StepResult[] = [], env?: Record<string, string>): Promise<StepResult> {
  const ledger = ledgerOf(main);
  const post = await c.job.runPost(POST, main, env ? { env } : {});
  expect(post.exitCode, post.log).toBe(0);
  expect(post.log).toContain('Renewal agent log:');
  expect(alive(ledger.agentPid ?? 0), 'agent still alive after post').toBe(false);
  expect(existsSync(ledger.root ?? '')).toBe(false);
  expect(c.vault.liveTokens()).toEqual([]);
  expect(c.vault.liveLeases()).toEqual([]);
  assertNoLeak(c.job, [main, ...steps, post], [VALUES.password, VALUES.roleSecretId, ...c.made, 'rotated-Pa55-v2', 'rotated-Pa55-v3'], {
    privateDirs: [ledger.root ?? '', ledger.secretsDir ?? ''],
  });
  return post;
}

describe('renewal agent', () => {
  it('keeps a 3 s lease and a 4 s token alive over 10 s by renewing them', async () => {
    const c = await setup();
    const main = await c.job.runMain(MAIN, inputs(c, { secrets: 'database/creds/short password | DB_PASSWORD' }));
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const pid = ledgerOf(main).agentPid ?? 0;
    expect(alive(pid)).toBe(true);
    const lease = c.vault.liveLeases()[0] ?? '';
    const token = c.vault.liveTokens()[0] ?? '';
    await sleep(10_000);
    expect(c.vault.leaseState(lease)).toBe('active');
    expect(c.vault.tokenState(token)).toBe('active');
    const renewals = c.vault.count({ path: /^sys\/leases\/renew/ });
    expect(renewals).toBeGreaterThanOrEqual(3);
    expect(c.vault.count({ path: 'auth/token/renew-self' })).toBeGreaterThanOrEqual(2);
    // Same credential all along: renewal, not replacement.
    expect(c.made).toHaveLength(1);
    console.log(`lease renewals in 10 s: ${renewals}; token renewals: ${c.vault.count({ path: 'auth/token/renew-self' })}`);
    await finish(c, main);
  }, 40_000);

  it('replaces a non-renewable lease atomically: a reader never sees a partial or empty file; on-change runs once per change', async () => {
    const c = await setup();
    const changes = path.join(c.job.runnerTemp, 'changes.log');
    const main = await c.job.runMain(
      MAIN,
      inputs(c, { secrets: 'database/creds/fixed password | DB_PASSWORD', 'on-change': `echo "$PIPELINE_SECRETS_CHANGED" >> ${changes}` }),
    );
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const file = path.join(ledgerOf(main).secretsDir ?? '', 'DB_PASSWORD');
    const seen = new Set<string>();
    const deadline = Date.now() + 7000;
    while (Date.now() < deadline) {
      const value = await fs.readFile(file, 'utf8');
      expect(value, 'a partial or empty read').toMatch(/^dyn-pw-\d{4}-q{20}$/);
      seen.add(value);
      await sleep(5);
    }
    expect(seen.size).toBeGreaterThanOrEqual(2);
    const lines = (await fs.readFile(changes, 'utf8')).trim().split('\n');
    // Once per replacement (the file may be one replacement ahead of the reader's last look).
    expect(lines.length === seen.size - 1 || lines.length === seen.size).toBe(true);
    expect(new Set(lines)).toEqual(new Set(['DB_PASSWORD']));
    // The replaced leases were revoked by the agent as it went.
    expect(c.vault.liveLeases()).toHaveLength(1);
    await finish(c, main);
  }, 40_000);

  it('rewrites a rotated KV secret within one refresh interval and runs on-change once per change', async () => {
    const c = await setup();
    const changes = path.join(c.job.runnerTemp, 'changes.log');
    const main = await c.job.runMain(
      MAIN,
      inputs(c, { secrets: 'secret/ci/app password | APP_PASSWORD', 'on-change': `echo "$PIPELINE_SECRETS_CHANGED" >> ${changes}` }),
    );
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const dir = ledgerOf(main).secretsDir ?? '';
    for (const [n, value] of [
      [2, 'rotated-Pa55-v2'],
      [3, 'rotated-Pa55-v3'],
    ] as const) {
      c.vault.putKv('secret', 'ci/app', { password: value });
      const since = Date.now();
      while ((await fs.readFile(path.join(dir, 'APP_PASSWORD'), 'utf8')) !== value) {
        expect(Date.now() - since, `version ${n} not delivered within one refresh interval`).toBeLessThan(2500);
        await sleep(50);
      }
      expect(await fs.readFile(main.outputs['env-file'] ?? '', 'utf8')).toBe(`APP_PASSWORD=${value}\n`);
      await sleep(300);
      expect((await fs.readFile(changes, 'utf8')).trim().split('\n')).toHaveLength(n - 1);
    }
    await sleep(2500); // more refreshes without a change: no more on-change runs
    expect((await fs.readFile(changes, 'utf8')).trim().split('\n')).toHaveLength(2);
    await finish(c, main);
  }, 40_000);

  it('retries renewals while Vault answers 503, and recovers with the same credential', async () => {
    const c = await setup();
    const main = await c.job.runMain(MAIN, inputs(c, { secrets: 'database/creds/short password | DB_PASSWORD', retries: '0' }));
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const lease = c.vault.liveLeases()[0] ?? '';
    c.vault.inject({ path: /^sys\/leases\/renew/, kind: 'status', status: 503, times: 2 });
    await sleep(6000);
    expect(c.vault.leaseState(lease)).toBe('active');
    expect(c.made).toHaveLength(1);
    const log = await fs.readFile(path.join(ledgerOf(main).root ?? '', 'agent.log'), 'utf8');
    expect(log).toMatch(/renewal failed, will retry/);
    expect(log).toMatch(/lease .* renewed: ttl/);
    await finish(c, main);
  }, 40_000);

  it('keeps the last good file when Vault is gone for good, and exits when its directory disappears', async () => {
    const c = await setup();
    const main = await c.job.runMain(MAIN, inputs(c, { secrets: 'secret/ci/app password | APP_PASSWORD', 'refresh-interval': '1' }));
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const { root = '', secretsDir = '', agentPid = 0 } = ledgerOf(main);
    c.vault.inject({ path: /.*/, kind: 'reset' });
    await sleep(3000);
    expect(await fs.readFile(path.join(secretsDir, 'APP_PASSWORD'), 'utf8')).toBe(VALUES.password);
    expect(await fs.readFile(path.join(root, 'agent.log'), 'utf8')).toMatch(
      /refresh of secret\/data\/ci\/app failed, keeping the current files/,
    );
    await fs.rm(root, { recursive: true, force: true });
    const since = Date.now();
    while (alive(agentPid)) {
      expect(Date.now() - since, 'agent did not exit after its directory disappeared').toBeLessThan(5000);
      await sleep(100);
    }
    c.vault.clearFaults();
    const post = await c.job.runPost(POST, main);
    expect(post.exitCode).toBe(0);
  }, 40_000);

  it('exits by itself when its max lifetime passes', async () => {
    const c = await setup();
    const main = await c.job.runMain(MAIN, inputs(c, { secrets: 'secret/ci/app password | APP_PASSWORD', 'agent-max-lifetime': '2' }));
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const { root = '', agentPid = 0 } = ledgerOf(main);
    const since = Date.now();
    while (alive(agentPid)) {
      expect(Date.now() - since, 'agent outlived its max lifetime').toBeLessThan(5000);
      await sleep(100);
    }
    expect(await fs.readFile(path.join(root, 'agent.log'), 'utf8')).toMatch(/max lifetime reached: exiting/);
    await finish(c, main);
  }, 30_000);

  it('an app in a container reloads on HUP and reports the new byte count after a rotation', async () => {
    const c = await setup();
    const engine = await sharedEngine();
    await ensureBaseImage(engine);
    const name = `ps-reload-${Date.now()}`;
    const env = { ...engine.env, PATH: `${path.dirname(process.execPath)}:${BASE_PATH}` };
    const main = await c.job.runMain(
      MAIN,
      inputs(c, { secrets: 'secret/ci/app password | APP_PASSWORD', 'on-change': `docker kill -s HUP ${name}` }),
      { env },
    );
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
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
      await sleep(500);
      c.vault.putKv('secret', 'ci/app', { password: 'rotated-Pa55-v2' });
      const since = Date.now();
      let logs = '';
      while (!logs.includes(`reloaded ${'rotated-Pa55-v2'.length} bytes`)) {
        expect(Date.now() - since, `no reload seen; container log: ${logs}`).toBeLessThan(8000);
        await sleep(200);
        logs = (await engine.run(['logs', name])).stdout;
      }
      expect(logs).toContain(`started ${VALUES.password.length} bytes`);
      await finish(c, main, [start], env);
    } finally {
      await engine.run(['rm', '-f', name]);
    }
  }, 60_000);
});
