// Many jobs at once under a rate-limit quota: one real OpenBao with a quota on every path
// (sys/quotas/rate-limit, Retry-After headers on), 20 KV v2 secrets, N jobs started together, first
// ours (main then post, as the runner runs them, default inputs), then hashicorp/vault-action the
// same way on the same server with the quota's bucket refilled in between. Per tool: jobs that
// succeeded or failed (with the failures' first lines), requests per job, p50/p95 job time,
// the requests the server got (counted by the fault proxy in front, which only records), the
// requests it refused with 429, and how the requests after the first refusal spread over time
// (the busiest 100 ms, and a histogram of 100 ms buckets, one row per second).
//   node bench/quota.ts [jobs=50] [rate=100 per second] [retries: our 'retries' input, '' for its default 4] [headers: on|off] [baseline-dist-dir]
// With a second dist directory (e.g. `git archive <commit> dist | tar -x -C /tmp/old`, then
// /tmp/old/dist), that build's jobs run the same way too, between ours and vault-action's.
import { startFaultProxy, type RecordedRequest } from '../test/support/services/fault-proxy.ts';
import { OpenBao } from '../test/support/services/openbao.ts';
import * as path from 'node:path';
import { node, repo, savedLedger, stepEnv, timed } from './lib.ts';
import { runVaultAction, vaultAction } from './vault-action.ts';

const JOBS = Number(process.argv[2] ?? 50);
const RATE = Number(process.argv[3] ?? 100);
const RETRIES = process.argv[4] === '' ? undefined : process.argv[4];
/** 'off': the quota sends no Retry-After (OpenBao's default, sys/quotas/config). */
const HEADERS = process.argv[5] !== 'off';
const SECRETS = 20;
const BASELINE_DIST = process.argv[6];

interface JobResult {
  ms: number;
  ok: boolean;
  /** The first line of the failure, when it failed. */
  error?: string;
}

function firstError(stdout: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith('::error'));
  return (line ?? '(no ::error line)').replace(/^::error[^:]*::/, '').slice(0, 300);
}

/** Our main, then post with main's ledger (post runs whatever main did: post-if always()). */
async function ours(inputs: Record<string, string>, dist = path.join(repo, 'dist')): Promise<JobResult> {
  const step = stepEnv(inputs);
  try {
    const main = await timed(node, [path.join(dist, 'main.js')], step.env);
    const post = await timed(node, [path.join(dist, 'post.js')], { ...step.env, STATE_ledger: savedLedger(step.env) });
    const ok = main.code === 0 && post.code === 0;
    return { ms: main.ms + post.ms, ok, ...(ok ? {} : { error: firstError(main.code !== 0 ? main.stdout : post.stdout) }) };
  } finally {
    step.dispose();
  }
}

async function theirs(baseline: ReturnType<typeof vaultAction>, inputs: Record<string, string>): Promise<JobResult> {
  const start = Date.now();
  try {
    const t = await runVaultAction(baseline, inputs);
    return { ms: t.ms, ok: true };
  } catch (error) {
    const lines = (error as Error).message.split('\n');
    return { ms: Date.now() - start, ok: false, error: (lines[1] ?? lines[0] ?? '').replace(/^::error[^:]*::/, '').slice(0, 300) };
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** Request start times after the first 429, in 100 ms buckets. */
function spread(requests: readonly RecordedRequest[]): { busiest: number; rows: string[] } {
  const first = requests.find((r) => r.status === 429);
  if (first === undefined) return { busiest: 0, rows: [] };
  const after = requests.filter((r) => r.at >= first.at);
  const buckets: number[] = [];
  for (const r of after) {
    const i = Math.floor((r.at - first.at) / 100);
    buckets[i] = (buckets[i] ?? 0) + 1;
  }
  const sorted = after.map((r) => r.at).sort((a, b) => a - b);
  let busiest = 0;
  for (let lo = 0, hi = 0; hi < sorted.length; hi++) {
    while ((sorted[hi] as number) - (sorted[lo] as number) >= 100) lo++;
    busiest = Math.max(busiest, hi - lo + 1);
  }
  const rows: string[] = [];
  for (let s = 0; s * 10 < buckets.length; s++) {
    const row = Array.from({ length: 10 }, (_, k) => String(buckets[s * 10 + k] ?? 0).padStart(4)).join('');
    rows.push(`      ${String(s).padStart(3)} s: ${row}`);
  }
  return { busiest, rows };
}

const baseline = vaultAction();
const bao = await OpenBao.start();
const proxy = await startFaultProxy(bao.url);
try {
  for (let i = 0; i < SECRETS; i++) await bao.putKv('secret', `bench/s${i}`, { value: `bench-value-${i}-${'x'.repeat(24)}` });
  await bao.addPolicy('bench', [{ path: 'secret/data/bench/*', capabilities: ['read'] }]);
  await bao.addAppRole('approle', 'bench', { roleId: 'bench-role', secretId: 'bench-secret-id', policies: ['bench'], ttl: '10m' });
  // vault-action separates entries with ';' (a newline alone is not a separator there); ours accepts both.
  const lines = Array.from({ length: SECRETS }, (_, i) => `secret/data/bench/s${i} value | S${i}`).join(';\n');
  const version = (await bao.call('GET', 'sys/health')).version;

  const ourInputs = {
    URL: proxy.url,
    METHOD: 'approle',
    'ROLE-ID': 'bench-role',
    'SECRET-ID': 'bench-secret-id',
    SECRETS: lines,
    ...(RETRIES !== undefined ? { RETRIES } : {}),
  };
  const runs: Array<{ name: string; run: () => Promise<JobResult> }> = [
    { name: 'Pipeline Secrets (main + post)', run: () => ours(ourInputs) },
    ...(BASELINE_DIST !== undefined ? [{ name: `baseline build (${BASELINE_DIST})`, run: () => ours(ourInputs, BASELINE_DIST) }] : []),
    {
      name: `hashicorp/vault-action ${baseline.version}`,
      run: () => theirs(baseline, { URL: proxy.url, METHOD: 'approle', ROLEID: 'bench-role', SECRETID: 'bench-secret-id', SECRETS: lines }),
    },
  ];
  console.log(
    `node ${process.version}, OpenBao ${version}, ${JOBS} jobs at once x ${SECRETS} secrets, rate-limit quota ${RATE}/s on every path (Retry-After ${HEADERS ? 'on' : 'off'})${RETRIES !== undefined ? `, our retries=${RETRIES}` : ', default inputs'}:`,
  );
  for (const { name, run } of runs) {
    // A fresh quota each time: the bucket starts full for both tools.
    await bao.addRateLimitQuota('bench', { rate: RATE, interval: '1s', headers: HEADERS });
    await new Promise((r) => setTimeout(r, 1100));
    const from = proxy.requests.length;
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: JOBS }, () => run()));
    const wall = Date.now() - started;
    await bao.removeRateLimitQuota('bench');
    const requests = proxy.requests.slice(from);
    const refused = requests.filter((r) => r.status === 429).length;
    const ok = results.filter((r) => r.ok);
    const failures = new Map<string, number>();
    // Failures alike but for the secret's path count as one line.
    const alike = (line: string): string => line.replace(/secret\/data\/bench\/s\d+/g, 'secret/data/bench/sN');
    for (const r of results) if (!r.ok) failures.set(alike(r.error ?? ''), (failures.get(alike(r.error ?? '')) ?? 0) + 1);
    const times = results.map((r) => r.ms);
    const { busiest, rows } = spread(requests);
    console.log(`  ${name}`);
    console.log(`    jobs: ${ok.length} succeeded, ${JOBS - ok.length} failed; all done in ${(wall / 1000).toFixed(1)} s`);
    for (const [line, n] of failures) console.log(`      ${n} x ${line}`);
    console.log(
      `    requests: ${requests.length} at the server (${(requests.length / JOBS).toFixed(1)} per job), ${refused} refused with 429 (${(refused / JOBS).toFixed(1)} per job)`,
    );
    console.log(`    job time: p50 ${(percentile(times, 50) / 1000).toFixed(2)} s, p95 ${(percentile(times, 95) / 1000).toFixed(2)} s`);
    console.log(`    after the first 429: busiest 100 ms held ${busiest} requests; requests per 100 ms:`);
    for (const row of rows) console.log(row);
    // Let the server settle (its token revocations) before the next tool's run.
    await new Promise((r) => setTimeout(r, 1000));
  }
} finally {
  await proxy.stop();
  await bao.stop();
}
