// 100 secrets at 100 paths, 20 ms latency per request injected in the Vault double: wall time of
// the main step (whole process) and the number of requests it makes, side by side with a serial
// reader (one request in flight, as hashicorp/vault-action reads) against the same double.
// Aim (issue 2): under 300 ms and at most 102 requests.
//   node bench/fetch-100.ts [runs] [failRate]
import * as http from 'node:http';
import * as path from 'node:path';
import { VaultDouble } from '../test/vault-double/index.ts';
import { fmt, median, node, repo, stepEnv, timed } from './lib.ts';

const runs = Number(process.argv[2] ?? 5);
const failRate = Number(process.argv[3] ?? 0); // share of reads that fail once with 503
const N = 100;
const LATENCY = 20;

const vault = await VaultDouble.start({ latencyMs: LATENCY });
vault.enableKv('secret', 2);
for (let i = 0; i < N; i++) vault.putKv('secret', `app/s${i}`, { value: `bench-value-${i}-${'x'.repeat(24)}` });
vault.addPolicy('bench', [{ path: 'secret/*', capabilities: ['read'] }]);
vault.addAppRole('approle', 'bench', { roleId: 'bench-role', secretId: 'bench-secret-id', policies: ['bench'], ttl: 600 });
const lines = Array.from({ length: N }, (_, i) => `secret/data/app/s${i} value | S${i}`).join('\n');

function injectFailures(): number {
  let failed = 0;
  for (let i = 0; i < N; i++) {
    if (failRate > 0 && i % Math.round(1 / failRate) === 0) {
      vault.inject({ method: 'GET', path: `secret/data/app/s${i}`, kind: 'status', status: 503, times: 1 });
      failed++;
    }
  }
  return failed;
}

/** The baseline: login, then each path read one after another, as vault-action does. */
function serialReader(): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const call = (method: string, p: string, token?: string, body?: object): Promise<{ auth: { client_token: string } }> =>
    new Promise((resolve, reject) => {
      const req = http.request(`${vault.url}/v1/${p}`, { method, agent, headers: token ? { 'X-Vault-Token': token } : {} }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text ? JSON.parse(text) : undefined));
      });
      req.on('error', reject);
      req.end(body ? JSON.stringify(body) : undefined);
    });
  return (async () => {
    const login = await call('POST', 'auth/approle/login', undefined, { role_id: 'bench-role', secret_id: 'bench-secret-id' });
    const token = login.auth.client_token;
    for (let i = 0; i < N; i++) await call('GET', `secret/data/app/s${i}`, token);
    agent.destroy();
  })();
}

const main = path.join(repo, 'dist/main.js');
const post = path.join(repo, 'dist/post.js');
const ours: number[] = [];
const serial: number[] = [];
const requests: number[] = [];
let failures = 0;
for (let i = 0; i < runs + 1; i++) {
  vault.clearFaults();
  failures = injectFailures();
  const before = vault.requests.length;
  const step = stepEnv({ URL: vault.url, METHOD: 'approle', 'ROLE-ID': 'bench-role', 'SECRET-ID': 'bench-secret-id', SECRETS: lines });
  const m = await timed(node, [main], step.env);
  if (m.code !== 0)
    throw new Error(
      `main failed:\n${m.stdout
        .split('\n')
        .filter((l) => l.startsWith('::error'))
        .join('\n')}`,
    );
  const count = vault.requests.length - before;
  const state = (await import('node:fs')).readFileSync(step.env.GITHUB_STATE as string, 'utf8');
  const ledger =
    state
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop() ?? '';
  await timed(node, [post], { ...step.env, STATE_ledger: ledger, INPUT_TIMEOUT: '30' });
  step.dispose();
  vault.clearFaults();
  const t0 = performance.now();
  await serialReader();
  const s = performance.now() - t0;
  if (i === 0) continue; // warm-up
  ours.push(m.ms);
  serial.push(s);
  requests.push(count);
}
await vault.stop();
console.log(
  `node ${process.version}, ${N} secrets at ${N} paths, ${LATENCY} ms latency per request${failRate ? `, ${failures} reads failing once with 503` : ''}; medians of ${runs}:`,
);
console.log(`  main step, whole process        ${fmt(median(ours))}   ${median(requests)} requests (login, mount lookup, reads)`);
console.log(`  serial reader (in-process)      ${fmt(median(serial))}   ${N + 1} requests`);
console.log(`  ratio                           ${(median(serial) / median(ours)).toFixed(1)}x faster`);
