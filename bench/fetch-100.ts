// 100 secrets at 100 KV v2 paths on a real OpenBao, with 20 ms added to every request by the fault
// proxy in front of it: wall time of the main step (whole process) and the requests it makes, side
// by side with hashicorp/vault-action (whole process, same server, same proxy, same secrets),
// interleaved, medians. With a fail rate, that share of reads first gets a 503 (the server never
// sees it) and must be retried.
//   node bench/fetch-100.ts [runs] [failRate]
import { startFaultProxy } from '../test/support/services/fault-proxy.ts';
import { OpenBao } from '../test/support/services/openbao.ts';
import { fmt, mainThenPost, median } from './lib.ts';
import { runVaultAction, vaultAction } from './vault-action.ts';

const runs = Number(process.argv[2] ?? 5);
const failRate = Number(process.argv[3] ?? 0);
const N = 100;
const LATENCY = 20;

const baseline = vaultAction();
const bao = await OpenBao.start();
const proxy = await startFaultProxy(bao.url);
try {
  for (let i = 0; i < N; i++) await bao.putKv('secret', `app/s${i}`, { value: `bench-value-${i}-${'x'.repeat(24)}` });
  await bao.addPolicy('bench', [{ path: 'secret/data/app/*', capabilities: ['read'] }]);
  await bao.addAppRole('approle', 'bench', { roleId: 'bench-role', secretId: 'bench-secret-id', policies: ['bench'], ttl: '10m' });
  // vault-action separates entries with ';' (a newline alone is not a separator there); ours accepts both.
  const lines = Array.from({ length: N }, (_, i) => `secret/data/app/s${i} value | S${i}`).join(';\n');
  proxy.latencyMs = LATENCY;

  const injectFailures = (): number => {
    let failed = 0;
    for (let i = 0; failRate > 0 && i < N; i += Math.round(1 / failRate)) {
      proxy.inject({ method: 'GET', path: `secret/data/app/s${i}`, kind: 'status', status: 503, times: 1 });
      failed++;
    }
    return failed;
  };

  const ours: number[] = [];
  const theirs: number[] = [];
  const ourRequests: number[] = [];
  const theirRequests: number[] = [];
  let failures = 0;
  for (let i = 0; i < runs + 1; i++) {
    // ours: main (timed), then post, which revokes the token
    proxy.clearFaults();
    failures = injectFailures();
    let from = proxy.requests.length;
    let mainCount = 0;
    const { main: m } = await mainThenPost(
      { URL: proxy.url, METHOD: 'approle', 'ROLE-ID': 'bench-role', 'SECRET-ID': 'bench-secret-id', SECRETS: lines },
      { postEnv: { INPUT_TIMEOUT: '30' }, afterMain: () => (mainCount = proxy.requests.length - from) },
    );

    // vault-action: the same secrets, its own input names and defaults
    proxy.clearFaults();
    injectFailures();
    from = proxy.requests.length;
    const t = await runVaultAction(baseline, {
      URL: proxy.url,
      METHOD: 'approle',
      ROLEID: 'bench-role',
      SECRETID: 'bench-secret-id',
      SECRETS: lines,
    });
    const theirCount = proxy.requests.length - from;
    if (i === 0) continue; // warm-up
    ours.push(m.ms);
    theirs.push(t.ms);
    ourRequests.push(mainCount);
    theirRequests.push(theirCount);
  }
  console.log(
    `node ${process.version}, OpenBao ${(await bao.call('GET', 'sys/health')).version}, ${N} secrets at ${N} paths, ${LATENCY} ms added per request${failRate ? `, ${failures} reads answered 503 once` : ''}; medians of ${runs}:`,
  );
  console.log(`  Pipeline Secrets main, whole process      ${fmt(median(ours))}   ${median(ourRequests)} requests`);
  console.log(`  hashicorp/vault-action ${baseline.version}, whole process  ${fmt(median(theirs))}   ${median(theirRequests)} requests`);
  console.log(`  ratio                                     ${(median(theirs) / median(ours)).toFixed(1)}x faster`);
} finally {
  await proxy.stop();
  await bao.stop();
}
