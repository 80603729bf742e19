// What post reports of the renewal agent, end to end through dist/ and the runner harness against
// a real OpenBao dev server behind the fault proxy: the agent keeps agent-status.json (names,
// versions, byte counts, counts, exit codes, reasons; never a value) and post turns its problems
// into warning annotations and a summary section with the secrets as they are after the agent's
// rotations, not as main delivered them.
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent/launch.ts';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, VALUES, ledgerOf, newJob } from './setup.ts';

interface Ctx {
  bao: OpenBao;
  proxy: FaultProxy;
  job: Job;
  delivered: Set<string>;
}
let ctx: Ctx | undefined;
const mains: StepResult[] = [];

afterEach(async () => {
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
    if (ledger.root) await fs.rm(ledger.root, { recursive: true, force: true });
  }
  const c = ctx;
  ctx = undefined;
  await c?.job.cleanup();
  await c?.proxy.stop();
  await c?.bao.stop();
});

const ROTATED = 'rotated-Pa55-v2';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
const readText = (file: string): Promise<string> => fs.readFile(file, 'utf8').catch(() => '');
const agentLog = (main: StepResult): Promise<string> => readText(path.join(ledgerOf(main).root, 'agent.log'));
const statusFile = (main: StepResult): string => path.join(ledgerOf(main).root, 'agent-status.json');
const status = async (main: StepResult): Promise<AgentStatus | undefined> => {
  const text = await readText(statusFile(main));
  return text === '' ? undefined : (JSON.parse(text) as AgentStatus);
};

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  describeIt: () => Promise<string>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${await describeIt()}`);
    await sleep(50);
  }
}

async function setup(): Promise<Ctx> {
  const bao = await OpenBao.start();
  let proxy: FaultProxy | undefined;
  try {
    await bao.enableKv('secret', 2);
    await bao.putKv('secret', 'ci/app', { password: VALUES.password });
    await bao.addPolicy('ci', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
    // A 4 s token: the agent renews it every ~2.5 s.
    await bao.addAppRole('approle', 'ci', {
      roleId: VALUES.roleId,
      secretId: VALUES.roleSecretId,
      policies: ['ci'],
      ttl: '4s',
      maxTtl: '300s',
    });
    proxy = await startFaultProxy(bao.url);
    ctx = { bao, proxy, job: await newJob(), delivered: new Set() };
    return ctx;
  } catch (error) {
    await proxy?.stop();
    await bao.stop();
    throw error;
  }
}

async function runMain(c: Ctx, extra: Record<string, string>): Promise<{ main: StepResult; token: string }> {
  const main = await c.job.runMain(MAIN, {
    url: c.proxy.url,
    method: 'approle',
    'role-id': VALUES.roleId,
    'secret-id': VALUES.roleSecretId,
    renew: 'true',
    'refresh-interval': '1',
    'agent-max-lifetime': '120',
    secrets: 'secret/ci/app password | APP_PASSWORD',
    ...extra,
  });
  mains.push(main);
  expect(main.exitCode, main.log).toBe(0);
  expect(alive(ledgerOf(main).agentPid ?? 0), 'agent not running after main').toBe(true);
  const token = (await readText(ledgerOf(main).tokenFile ?? '')).trim();
  expect(token).not.toBe('');
  return { main, token };
}

const warnings = (step: StepResult): string[] => step.annotations.filter((a) => a.level === 'warning').map((a) => a.message);

describe('renewal agent report (OpenBao, fault proxy)', () => {
  it('post warns of a 403 on token renewal and an on-change that exits 3, and its summary shows renewals, failures and the rotated version and size', async () => {
    const c = await setup();
    const { main, token } = await runMain(c, { 'on-change': 'exit 3' });
    const file = path.join(ledgerOf(main).secretsDir, 'APP_PASSWORD');
    // The next two token renewals are refused as a policy change would refuse them; the third goes through.
    c.proxy.inject({ path: /^auth\/token\/renew-self/, kind: 'status', status: 403, times: 2 });
    expect(await c.bao.putKv('secret', 'ci/app', { password: ROTATED })).toBe(2);
    await waitFor(
      'the rotated value in the file',
      async () => (await readText(file)) === ROTATED,
      () => agentLog(main),
    );
    c.delivered.add(ROTATED);
    const seen = await waitFor(
      'a refused and then a successful token renewal, and on-change run, in agent-status.json',
      async () => {
        const s = await status(main);
        const refused = s?.failures.find((f) => f.what === 'token renewal' && f.count >= 2);
        return s !== undefined && refused !== undefined && s.renewals.token >= 1 && s.onChange.length >= 1 && s;
      },
      async () => `${await readText(statusFile(main))}\n${await agentLog(main)}`,
    );
    // The status file: 0600, current versions and byte counts, never a value.
    expect((statSync(statusFile(main)).mode & 0o777).toString(8)).toBe('600');
    expect(seen.secrets).toEqual([{ name: 'APP_PASSWORD', path: 'secret/data/ci/app', version: 2, bytes: ROTATED.length }]);
    expect(seen.kvChanges.map((k) => [k.path, k.from, k.to])).toEqual([['secret/data/ci/app', 1, 2]]);
    expect(seen.onChange[0]?.exitCode).toBe(3);
    const raw = await readText(statusFile(main));
    for (const value of [VALUES.password, ROTATED, token]) expect(raw).not.toContain(value);
    const reason = seen.failures.find((f) => f.what === 'token renewal')?.reason ?? '';
    expect(reason).toMatch(/403/);

    const post = await c.job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(post.log).toContain('Renewal agent log:');
    expect(post.log).toMatch(/Pipeline Secrets cleanup: token revoked/);
    const warned = warnings(post);
    expect(warned, post.log).toContainEqual(expect.stringMatching(/^renewal agent: on-change for APP_PASSWORD exited with code 3/));
    const refusal = warned.find((w) => w.startsWith('renewal agent: token renewal failed 2 time(s)'));
    expect(refusal, post.log).toBeDefined();
    expect(refusal).toContain(reason);
    expect(warned.some((w) => w.includes('died before post'))).toBe(false);

    const summary = post.summary;
    expect(summary).toContain('#### Renewal agent');
    expect(summary).toContain('- Agent: stopped by post');
    expect(summary).toMatch(/- Renewals: token [1-9]\d*, leases 0/);
    expect(summary).toContain('- Failures: 2');
    expect(summary).toMatch(/⚠️ token renewal failed 2 time\(s\), last at .*: `[^`]*403[^`]*`/);
    expect(summary).toContain('- KV versions changed: 1');
    expect(summary).toContain('`secret/data/ci/app`: version 1 → 2');
    expect(summary).toMatch(/- on-change runs: 1 \(1 with a non-zero exit code\)/);
    expect(summary).toMatch(/⚠️ APP\\_PASSWORD: exit code 3/);
    expect(summary).toContain(`| APP\\_PASSWORD | secret/data/ci/app | 2 | ${ROTATED.length} |`);
    // Main's summary still tells what main delivered; post's tells what is there now.
    expect(main.summary).toContain(`| ${Buffer.byteLength(VALUES.password)} |`);

    expect(await c.bao.tokenAlive(token), 'token alive after post').toBe(false);
    expect(existsSync(ledgerOf(main).root)).toBe(false);
    assertNoLeak(c.job, [main, post], [VALUES.password, VALUES.roleSecretId, token, ROTATED, ...c.delivered], {
      privateDirs: [ledgerOf(main).root, ledgerOf(main).secretsDir],
    });
  }, 60_000);

  it('post says the agent died early, with its last reason', async () => {
    const c = await setup();
    const { main, token } = await runMain(c, {});
    const pid = ledgerOf(main).agentPid ?? 0;
    c.proxy.inject({ path: /^auth\/token\/renew-self/, kind: 'status', status: 403, times: 1000 });
    await waitFor(
      'a refused token renewal in agent-status.json',
      async () => (await status(main))?.failures.some((f) => f.what === 'token renewal'),
      async () => `${await readText(statusFile(main))}\n${await agentLog(main)}`,
    );
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'the agent to die',
      async () => !alive(pid),
      async () => 'still alive',
      5000,
    );

    const post = await c.job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    const early = warnings(post).find((w) => w.startsWith('renewal agent: died before post stopped it'));
    expect(early, post.log).toBeDefined();
    expect(early).toMatch(/last reason: token renewal: .*403/);
    expect(post.summary).toMatch(/⚠️ Agent: died before post stopped it \(renewals stopped then\); last reason: token renewal: .*403/);
    assertNoLeak(c.job, [main, post], [VALUES.password, VALUES.roleSecretId, token], {
      privateDirs: [ledgerOf(main).root, ledgerOf(main).secretsDir],
    });
  }, 60_000);
});
