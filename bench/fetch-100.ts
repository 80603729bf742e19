// 100 secrets at 100 KV v2 paths on a real OpenBao, with 20 ms added to every request by the fault
// proxy in front of it: wall time of the main step (whole process) and the requests it makes, side
// by side with hashicorp/vault-action (whole process, same server, same proxy, same secrets),
// interleaved, medians. With a fail rate, that share of reads first gets a 503 (the server never
// sees it) and must be retried. The same run also measures the lower bound: bare `node -e 0`, plus
// (1 login + 1 mount lookup + ceil(100/concurrency) reads) round trips through the proxy, one round
// trip being a sys/health GET on a kept-alive connection.
//   node bench/fetch-100.ts [runs] [failRate] [baseline-dist-dir]
// With a second dist directory (e.g. `git archive <commit> dist | tar -x -C /tmp/old`, then
// /tmp/old/dist), its main runs interleaved with ours too: a before/after of a change.
import http from 'node:http';
import { startFaultProxy } from '../test/support/services/fault-proxy.ts';
import { OpenBao } from '../test/support/services/openbao.ts';
import { fmt, mainThenPost, median, node, timed, type Timed } from './lib.ts';
import { runVaultAction, vaultAction } from './vault-action.ts';

const runs = Number(process.argv[2] ?? 5);
const failRate = Number(process.argv[3] ?? 0);
const baselineDist = process.argv[4];
const N = 100;
const LATENCY = 20;
// The action's default `concurrency`.
const CONCURRENCY = 16;

/** One GET of sys/health through the proxy, on `agent`'s kept-alive socket: one round trip, in ms. */
function roundTrip(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    http
      .get(`${url}/v1/sys/health`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(Number(process.hrtime.bigint() - start) / 1e6));
      })
      .on('error', reject);
  });
}

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

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await roundTrip(proxy.url, agent); // opens the socket the round trips below reuse
  const bare: number[] = [];
  const rtts: number[] = [];
  const ours: number[] = [];
  const before: number[] = [];
  const theirs: number[] = [];
  const ourRequests: number[] = [];
  const theirRequests: number[] = [];
  let failures = 0;
  for (let i = 0; i < runs + 1; i++) {
    // ours: main (timed), then post, which revokes the token; and the baseline build, when given,
    // with the same inputs. Which of the two goes first alternates, so neither always follows
    // vault-action (or the other's post) and the order cannot favour one of them.
    const inputs = { URL: proxy.url, METHOD: 'approle', 'ROLE-ID': 'bench-role', 'SECRET-ID': 'bench-secret-id', SECRETS: lines };
    let mainCount = 0;
    let m: Timed | undefined;
    let b4: number | undefined;
    const runOurs = async (): Promise<void> => {
      proxy.clearFaults();
      failures = injectFailures();
      const from = proxy.requests.length;
      m = (await mainThenPost(inputs, { postEnv: { INPUT_TIMEOUT: '30' }, afterMain: () => (mainCount = proxy.requests.length - from) }))
        .main;
    };
    const runBaseline = async (): Promise<void> => {
      if (baselineDist === undefined) return;
      proxy.clearFaults();
      injectFailures();
      b4 = (await mainThenPost(inputs, { postEnv: { INPUT_TIMEOUT: '30' }, dist: baselineDist })).main.ms;
    };
    for (const run of i % 2 === 0 ? [runOurs, runBaseline] : [runBaseline, runOurs]) await run();

    // vault-action: the same secrets, its own input names and defaults
    proxy.clearFaults();
    injectFailures();
    const from = proxy.requests.length;
    const t = await runVaultAction(baseline, {
      URL: proxy.url,
      METHOD: 'approle',
      ROLEID: 'bench-role',
      SECRETID: 'bench-secret-id',
      SECRETS: lines,
    });
    const theirCount = proxy.requests.length - from;

    // the lower bound's parts: bare node's start, and round trips through the same proxy
    const b = await timed(node, ['-e', '0'], { PATH: process.env.PATH ?? '' });
    const r: number[] = [];
    for (let k = 0; k < 5; k++) r.push(await roundTrip(proxy.url, agent));
    if (i === 0) continue; // warm-up
    bare.push(b.ms);
    rtts.push(median(r));
    ours.push((m as Timed).ms);
    if (b4 !== undefined) before.push(b4);
    theirs.push(t.ms);
    ourRequests.push(mainCount);
    theirRequests.push(theirCount);
  }
  console.log(
    `node ${process.version}, OpenBao ${(await bao.call('GET', 'sys/health')).version}, ${N} secrets at ${N} paths, ${LATENCY} ms added per request${failRate ? `, ${failures} reads answered 503 once` : ''}; medians of ${runs}:`,
  );
  const rounds = 2 + Math.ceil(N / CONCURRENCY);
  const rtt = median(rtts);
  const bound = median(bare) + rounds * rtt;
  const ourMs = median(ours);
  const theirMs = median(theirs);
  console.log(`  Pipeline Secrets main, whole process      ${fmt(ourMs)}   ${median(ourRequests)} requests`);
  if (before.length > 0) console.log(`  baseline main (${baselineDist})  ${fmt(median(before))}`);
  console.log(`  hashicorp/vault-action ${baseline.version}, whole process  ${fmt(theirMs)}   ${median(theirRequests)} requests`);
  console.log(
    `  lower bound${failRate ? ' (no failures)' : '              '}                ${fmt(bound)}   node -e 0 ${fmt(median(bare))} + ${rounds} round trips (1 login, 1 mount lookup, ceil(${N}/${CONCURRENCY}) reads) x ${fmt(rtt)}`,
  );
  console.log(`  ours / vault-action                       ${(ourMs / theirMs).toFixed(3)}x (${(theirMs / ourMs).toFixed(1)}x faster)`);
  console.log(`  ours / lower bound                        ${(ourMs / bound).toFixed(2)}x`);
  agent.destroy();
} finally {
  await proxy.stop();
  await bao.stop();
}
