// End to end through dist/, against a real three-node OpenBao raft cluster behind a TCP front
// (the load balancer's stand-in): what a job meets when the active node dies. The active node is
// SIGKILLed in the middle of a 100-secret fetch; post runs while no node is active (no quorum for
// 6 s) and must keep trying within its timeout. What stays alive is asked of the cluster's active
// node afterwards: none of the job's tokens or leases may survive post. (Post giving up and naming
// what stayed alive is test/unit/post/revoke.test.ts and test/e2e/leftovers.test.ts.)
// Seen here: a failover takes 3 to 6 s; standbys go on serving reads, and answer a write 307 until
// a node is active again, so a job with the default retries may fail (in one line) while one with
// retries: 10 rides the election out.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { OpenBaoCluster } from '../support/services/openbao-cluster.ts';
import { startTcpFront, type TcpFront } from '../support/services/tcp-front.ts';
import { MAIN, POST, ledgerOf, newJob, privateDirsOf } from './setup.ts';

const COUNT = 100;
const ROLE_ID = 'ha-role-id-6d2c';
const SECRET_ID = 'ha-secret-id-91fe';
const value = (i: number): string => `ha-value-${String(i).padStart(3, '0')}-c0ffee`;
const ALL = [...Array.from({ length: COUNT }, (_, i) => value(i)), SECRET_ID];

let cluster: OpenBaoCluster;
let front: TcpFront;
let job: Job | undefined;

beforeAll(async () => {
  cluster = await OpenBaoCluster.start();
  // Each chunk a client sends is held 15 ms: the 100 reads take long enough to be interrupted.
  front = await startTcpFront(cluster.ports, { delayMs: 15 });
  const api = await cluster.api();
  await api.enableKv('secret', 2);
  for (let i = 0; i < COUNT; i++) await api.putKv('secret', `ha/s${i}`, { value: value(i) });
  await api.addPkiRole('pki', 'ci');
  await api.addPolicy('ha', [
    { path: 'secret/data/ha/*', capabilities: ['read'] },
    { path: 'pki/issue/ci', capabilities: ['update'] },
    { path: 'sys/leases/revoke', capabilities: ['update'] },
  ]);
  await api.addAppRole('approle', 'ha', { roleId: ROLE_ID, secretId: SECRET_ID, policies: ['ha'], ttl: '10m' });
}, 120_000);
afterAll(async () => {
  await front?.stop();
  await cluster?.stop();
});
afterEach(async () => {
  await job?.cleanup();
  job = undefined;
  // Every node back, so the next test starts from a whole cluster.
  for (const url of cluster.urls) await cluster.restart(url);
  // Every node agreeing on the active one: a standby that has not learnt of it yet fails a login.
  await cluster.waitForSettled(30_000);
}, 60_000);

const kvOnly = Array.from({ length: COUNT }, (_, i) => `secret/ha/s${i} value | S${i}`).join('\n');

const inputs = (extra: Record<string, string> = {}): Record<string, string> => ({
  url: front.url,
  method: 'approle',
  'role-id': ROLE_ID,
  'secret-id': SECRET_ID,
  secrets: [
    ...Array.from({ length: COUNT - 2 }, (_, i) => `secret/ha/s${i} value | S${i}`),
    'write pki/issue/ci {"common_name": "a.ha.test"} serial_number | SERIAL_A',
    'write pki/issue/ci {"common_name": "b.ha.test"} serial_number | SERIAL_B',
  ].join('\n'),
  ...extra,
});

function errors(step: StepResult): string[] {
  return step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
}
function warnings(step: StepResult): string[] {
  return step.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
}

/** Accessors of live service tokens (root's aside) and live pki leases, asked of the active node. */
async function alive(): Promise<{ accessors: string[]; leases: string[] }> {
  const api = await cluster.api();
  return { accessors: await api.liveAccessors(), leases: await api.settledLeases('pki/', 5000) };
}

/** Runs main, SIGKILLs the active node once ~30 requests (of about 110) went through the front, then runs post. */
async function killedMidFetch(extra: Record<string, string>): Promise<{ main: StepResult; post: StepResult; note: string }> {
  expect(await alive()).toEqual({ accessors: [], leases: [] });
  const leader = await cluster.waitForLeader(5000);
  job = await newJob();
  const from = front.chunks();
  const t0 = Date.now();
  const running = job.runMain(MAIN, inputs(extra));
  const until = Date.now() + 20_000;
  while (front.chunks() - from < 30 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  await cluster.kill(leader);
  const killedAt = Date.now() - t0;
  const atKill = front.chunks();
  const main = await running;
  const note = `main exit ${main.exitCode} after ${Date.now() - t0} ms (active node killed at ${killedAt} ms, ${atKill - from} requests before, ${front.chunks() - atKill} after)`;
  await cluster.waitForLeader(30_000);
  const post = await job.runPost(POST, main);
  expect(post.exitCode, post.log).toBe(0);
  return { main, post, note };
}

describe('the active node dies mid-fetch of 100 secrets', () => {
  it('default retries, dynamic secrets among them: the job succeeds or fails in one clear line; after post none of its tokens or leases is alive', async () => {
    const { main, post, note } = await killedMidFetch({ timeout: '60' });
    const failures = errors(main);
    console.info(`ha: ${note}: ${failures.join(' | ')}`);
    if (main.exitCode === 0) {
      expect(failures).toEqual([]);
    } else {
      expect(failures, main.log).toHaveLength(1);
      expect(failures[0]).not.toContain('\n');
      expect(failures[0]).not.toMatch(/\bat .*\.js:\d+/);
    }
    expect(await alive(), post.log).toEqual({ accessors: [], leases: [] });
    assertNoLeak(job as Job, [main, post], ALL, { privateDirs: privateDirsOf([main, post]) });
  }, 90_000);

  it('retries 10, KV reads only: the reads go on through the election (standbys serve reads; one cut off by the kill is tried again) and the job succeeds; post revokes its token', async () => {
    const { main, post, note } = await killedMidFetch({ timeout: '60', retries: '10', concurrency: '4', secrets: kvOnly });
    console.info(`ha: ${note}`);
    expect(main.exitCode, main.log).toBe(0);
    // One file per secret, and the token file.
    expect(ledgerOf(main).files).toHaveLength(COUNT + 1);
    expect(post.summary).toContain('- Vault token: revoked');
    expect(await alive(), post.log).toEqual({ accessors: [], leases: [] });
    assertNoLeak(job as Job, [main, post], ALL, { privateDirs: privateDirsOf([main, post]) });
  }, 90_000);
});

describe('post while no node is active', () => {
  it('retries within its deadline and revokes once a leader returns', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, inputs({ timeout: '40' }));
    expect(main.exitCode, main.log).toBe(0);
    expect(ledgerOf(main).leases).toHaveLength(2);
    const leader = await cluster.waitForLeader(5000);
    const [standby] = await cluster.standbys();
    // Two of three gone: the last node cannot win an election until one comes back.
    await cluster.kill(leader);
    await cluster.kill(standby ?? '');
    expect(await cluster.leader()).toBeUndefined();
    const t0 = Date.now();
    const posting = job.runPost(POST, main);
    await new Promise((r) => setTimeout(r, 6000));
    await cluster.restart(standby ?? '');
    const post = await posting;
    console.info(`ha: post took ${Date.now() - t0} ms with no leader for the first 6 s\n${post.summary}`);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post), post.log).toEqual([]);
    // It got there by trying again, not because the first try landed after the election.
    expect(post.log).toContain("trying again until the 'timeout' input runs out");
    expect(post.summary).toContain('- Vault token: revoked');
    expect(post.summary).toContain('2 revoked with the Vault token, 0 left alive');
    expect(await alive()).toEqual({ accessors: [], leases: [] });
    assertNoLeak(job, [main, post], ALL, { privateDirs: privateDirsOf([main, post]) });
  }, 90_000);
});
