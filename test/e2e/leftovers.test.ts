// Leftovers when post never runs (a crashed or killed runner on a self-hosted machine, where
// /dev/shm outlives the job), end to end through dist/ and the runner harness against a real
// OpenBao: the agent carries the job's RUNNER_TRACKING_ID (the runner kills such processes at job
// end); an agent whose secrets directory vanished revokes its token and removes its whole private
// root; post retries a failed token revocation and says honestly when it stays alive; a later main
// removes expired roots of earlier jobs and revokes their tokens, and leaves every other one alone.
import { randomUUID } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent/launch.ts';
import type { RootMarker } from '../../src/core/private-dir.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, VALUES, ledgerOf, mode, newJob } from './setup.ts';

interface Ctx {
  bao: OpenBao;
  proxy: FaultProxy | undefined;
  job: Job;
  url: string;
}
let ctx: Ctx | undefined;
const mains: StepResult[] = [];
const planted: string[] = [];

afterEach(async () => {
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
    if (ledger.root) await fs.rm(ledger.root, { recursive: true, force: true });
  }
  for (const p of planted.splice(0)) await fs.rm(p, { recursive: true, force: true });
  const c = ctx;
  ctx = undefined;
  await c?.job.cleanup();
  await c?.proxy?.stop();
  await c?.bao.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  detail?: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `: ${await detail()}` : ''}`);
    await sleep(100);
  }
}

async function setup(opts: { proxy?: boolean } = {}): Promise<Ctx> {
  const bao = await OpenBao.start();
  let proxy: FaultProxy | undefined;
  let job: Job | undefined;
  try {
    await bao.enableKv('secret', 2);
    await bao.putKv('secret', 'ci/app', { password: VALUES.password });
    await bao.addPolicy('ci', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
    // A long TTL: a token found dead afterwards was revoked, not expired.
    await bao.addAppRole('approle', 'ci', { roleId: VALUES.roleId, secretId: VALUES.roleSecretId, policies: ['ci'], ttl: '600s' });
    proxy = opts.proxy ? await startFaultProxy(bao.url) : undefined;
    job = await newJob();
  } catch (error) {
    await proxy?.stop();
    await bao.stop();
    throw error;
  }
  ctx = { bao, proxy, job, url: proxy?.url ?? bao.url };
  return ctx;
}

function inputs(c: Ctx, extra: Record<string, string> = {}): Record<string, string> {
  return {
    url: c.url,
    method: 'approle',
    'role-id': VALUES.roleId,
    'secret-id': VALUES.roleSecretId,
    secrets: 'secret/data/ci/app password | DB_PASSWORD',
    ...extra,
  };
}

async function runMain(
  c: Ctx,
  extra: Record<string, string> = {},
  env?: Record<string, string>,
): Promise<{ main: StepResult; token: string }> {
  const main = await c.job.runMain(MAIN, inputs(c, extra), env ? { env } : {});
  mains.push(main);
  expect(main.exitCode, main.log).toBe(0);
  const token = (await fs.readFile(ledgerOf(main).tokenFile ?? '', 'utf8').catch(() => '')).trim();
  expect(token, 'no token file').not.toBe('');
  expect(await c.bao.tokenAlive(token)).toBe(true);
  return { main, token };
}

const RENEW = { renew: 'true', 'refresh-interval': '1', 'agent-max-lifetime': '120' };

describe('leftovers when post never runs (OpenBao)', () => {
  it("the agent keeps the job's RUNNER_TRACKING_ID, so the runner's orphan cleanup finds it", async () => {
    const c = await setup();
    const tracking = `github_${randomUUID()}`;
    const { main, token } = await runMain(c, RENEW, { RUNNER_TRACKING_ID: tracking });
    const pid = ledgerOf(main).agentPid ?? 0;
    expect(alive(pid)).toBe(true);
    const environ = (await fs.readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
    expect(environ).toContain(`RUNNER_TRACKING_ID=${tracking}`);
    // Still an allow-list: no input reaches it.
    expect(environ.filter((e) => e.startsWith('INPUT_'))).toEqual([]);
    const post = await c.job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(await c.bao.tokenAlive(token)).toBe(false);
    assertNoLeak(c.job, [main, post], [VALUES.password, VALUES.roleSecretId, token], {
      privateDirs: [ledgerOf(main).root, ledgerOf(main).secretsDir],
    });
  });

  it('an agent whose secrets directory vanished revokes its token and removes its whole private root', async () => {
    const c = await setup();
    const { main, token } = await runMain(c, RENEW);
    const ledger = ledgerOf(main);
    const pid = ledger.agentPid ?? 0;
    expect(alive(pid)).toBe(true);
    expect(existsSync(path.join(ledger.root, 'vault-token'))).toBe(true);
    // What a host cleanup of a crashed job might do: the secrets go, the rest of the root stays.
    await fs.rm(ledger.secretsDir, { recursive: true, force: true });
    await waitFor(
      'the agent to exit and the private root to be gone',
      () => !alive(pid) && !existsSync(ledger.root),
      20_000,
      async () => `agent alive ${alive(pid)}, root ${existsSync(ledger.root) ? (await fs.readdir(ledger.root)).join(',') : 'gone'}`,
    );
    expect(await c.bao.tokenAlive(token), 'token alive after the agent exited').toBe(false);
    expect(await c.bao.liveAccessors()).toEqual([]);
    // A post that does run later finds nothing left and does not fail.
    const post = await c.job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    assertNoLeak(c.job, [main, post], [VALUES.password, VALUES.roleSecretId, token], { privateDirs: [ledger.root, ledger.secretsDir] });
  });

  it('post retries a token revocation that failed transiently, before the token file goes', async () => {
    const c = await setup({ proxy: true });
    const proxy = c.proxy as FaultProxy;
    const { main, token } = await runMain(c);
    // Five 503s: every try of the client's first call (one and its 4 retries) fails.
    proxy.inject({ path: 'auth/token/revoke-self', kind: 'status', status: 503, times: 5 });
    const post = await c.job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(proxy.count('POST', 'auth/token/revoke-self')).toBe(6);
    expect(post.log).toMatch(/trying again until the .timeout. input runs out/);
    expect(post.log).toMatch(/Pipeline Secrets cleanup: token revoked/);
    expect(await c.bao.tokenAlive(token)).toBe(false);
    expect(existsSync(ledgerOf(main).root)).toBe(false);
    assertNoLeak(c.job, [main, post], [VALUES.password, VALUES.roleSecretId, token], {
      privateDirs: [ledgerOf(main).root, ledgerOf(main).secretsDir],
    });
  });

  it('post says the token stays alive until it expires when Vault is gone for good', async () => {
    const c = await setup({ proxy: true });
    const { main, token } = await runMain(c);
    await c.proxy?.stop();
    const post = await c.job.runPost(POST, main, { timeoutMs: 120_000 });
    expect(post.exitCode, post.log).toBe(0);
    expect(post.summary).toMatch(/Vault token: NOT revoked/);
    expect(post.summary).toMatch(/stays alive until it expires by its TTL/);
    expect(post.log).toMatch(/stays alive until it expires by its TTL/);
    // Honest: it is alive on the server; its file went with the private directory.
    expect(await c.bao.tokenAlive(token)).toBe(true);
    expect(existsSync(ledgerOf(main).root)).toBe(false);
    assertNoLeak(c.job, [main, post], [VALUES.password, VALUES.roleSecretId, token], {
      privateDirs: [ledgerOf(main).root, ledgerOf(main).secretsDir],
    });
  });

  it('a later main removes an expired root of an earlier job and revokes its token; it leaves every other root alone', async () => {
    const c = await setup();
    // Two earlier "jobs" whose post never ran: A's root is planted expired, B's is still running.
    const a = await runMain(c);
    const b = await runMain(c);
    const rootA = ledgerOf(a.main).root;
    const rootB = ledgerOf(b.main).root;
    const markerA = JSON.parse(await fs.readFile(path.join(rootA, '.pipeline-secrets'), 'utf8')) as RootMarker;
    expect(mode(path.join(rootA, '.pipeline-secrets'))).toBe('600');
    expect(Date.parse(markerA.expires ?? '')).toBeGreaterThan(Date.now() + 5 * 3600_000);
    expect(markerA.vault?.url).toBe(c.url);

    // A's root as a crashed job on this machine left it, moved into this job's RUNNER_TEMP (so no
    // other test's main on the machine sweeps it first) and its expiry in the past.
    const temp = c.job.runnerTemp;
    const plant = async (expires: string, tweak: (m: Record<string, unknown>) => void = () => {}): Promise<string> => {
      const root = await fs.mkdtemp(path.join(temp, 'pipeline-secrets-'));
      planted.push(root);
      await fs.chmod(root, 0o700);
      await fs.cp(rootA, root, { recursive: true });
      const id = await fs.lstat(root, { bigint: true });
      const marker: Record<string, unknown> = { ...markerA, root, rootId: `${id.dev}:${id.ino}`, expires };
      tweak(marker);
      await fs.rm(path.join(root, '.pipeline-secrets'));
      await fs.writeFile(path.join(root, '.pipeline-secrets'), `${JSON.stringify(marker)}\n`, { mode: 0o600 });
      return root;
    };
    const past = new Date(Date.now() - 60_000).toISOString();
    const expired = await plant(past);
    // Never touched: not expired; a marker copied from another directory; no expiry (an older
    // version); not mode 0700; a symlink to an expired root.
    const notExpired = await plant(new Date(Date.now() + 3600_000).toISOString());
    const copied = await plant(past, (m) => (m.rootId = '1:1'));
    const noExpiry = await plant(past, (m) => delete m.expires);
    const open = await plant(past);
    await fs.chmod(open, 0o755);
    // A symlink named like a root, to a directory holding A's files and an expired marker naming
    // the link: only the link itself is looked at, and a link is never a root.
    const link = path.join(temp, `pipeline-secrets-link${randomUUID().slice(0, 6)}`);
    planted.push(link);
    const elsewhere = await fs.mkdtemp(path.join(os.tmpdir(), 'pipeline-secrets-elsewhere-'));
    planted.push(elsewhere);
    await fs.chmod(elsewhere, 0o700);
    await fs.cp(rootA, elsewhere, { recursive: true });
    const real = await fs.lstat(elsewhere, { bigint: true });
    await fs.rm(path.join(elsewhere, '.pipeline-secrets'));
    await fs.writeFile(
      path.join(elsewhere, '.pipeline-secrets'),
      `${JSON.stringify({ ...markerA, root: link, rootId: `${real.dev}:${real.ino}`, expires: past })}\n`,
      { mode: 0o600 },
    );
    await fs.symlink(elsewhere, link);

    const { main: later, token: laterToken } = await runMain(c);
    expect(later.log).toMatch(
      /removed 1 expired private director\(ies\) left by earlier jobs whose post did not run \(1 Vault token\(s\) revoked\)/,
    );
    expect(later.log).toContain(expired);
    expect(existsSync(expired)).toBe(false);
    expect(await c.bao.tokenAlive(a.token), "the expired root's token is still alive").toBe(false);
    for (const kept of [notExpired, copied, noExpiry, open, elsewhere]) expect(existsSync(path.join(kept, 'vault-token')), kept).toBe(true);
    // B, a job still running (not expired), keeps its root and token; so does A's own root in
    // /dev/shm, which is not expired either (only its planted copy was).
    expect(existsSync(path.join(rootB, 'vault-token'))).toBe(true);
    expect(existsSync(path.join(rootA, 'vault-token'))).toBe(true);
    expect(await c.bao.tokenAlive(b.token)).toBe(true);

    const posts: StepResult[] = [];
    for (const m of [b.main, later]) {
      const post = await c.job.runPost(POST, m);
      expect(post.exitCode, post.log).toBe(0);
      posts.push(post);
    }
    expect(await c.bao.tokenAlive(laterToken)).toBe(false);
    assertNoLeak(c.job, [a.main, b.main, later, ...posts], [VALUES.password, VALUES.roleSecretId, a.token, b.token, laterToken], {
      privateDirs: [...[a.main, b.main, later].flatMap((m) => [ledgerOf(m).root, ledgerOf(m).secretsDir]), ...planted],
    });
  });
});
