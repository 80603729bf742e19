// Docker login cost, side by side in one run: the action's main step (bundle load included) doing
// one `docker login --password-stdin` with a workflow-secret password, and its post step (logout
// and cleanup), against the bare CLI (`docker login` / `docker logout`) plus bare `node -e 0`.
// Aim: main under 1.5x (bare docker login + bare node start-up).
//   node bench/docker-login.ts [runs]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensurePackages, sharedEngine, startRegistry } from '../test/support/services/docker.ts';
import { fmt, median, node, repo, stepEnv, timed, savedLedger } from './lib.ts';

const runs = Number(process.argv[2] ?? 10);
await ensurePackages();
const engine = await sharedEngine();
const registry = await startRegistry({ password: 'bench-registry-pw-123' });
const PATH = `/usr/bin:/bin:/usr/sbin:/sbin`; // the engine package's CLI (20.10) for both sides
const base = { PATH, DOCKER_HOST: engine.host };
const bare: number[] = [];
const bareLogout: number[] = [];
const nodeStart: number[] = [];
const main: number[] = [];
const post: number[] = [];
try {
  for (let i = 0; i < runs + 1; i++) {
    const n = await timed(node, ['-e', '0'], { PATH });
    const cfg = mkdtempSync(path.join(os.tmpdir(), 'ps-bench-cfg-'));
    const b = await timed(
      'docker',
      ['login', registry.host, '--username', registry.username, '--password-stdin'],
      { ...base, DOCKER_CONFIG: cfg },
      registry.password,
    );
    const bl = await timed('docker', ['logout', registry.host], { ...base, DOCKER_CONFIG: cfg });
    rmSync(cfg, { recursive: true, force: true });
    if (b.code !== 0) throw new Error('bare docker login failed');
    const step = stepEnv({ REGISTRY: registry.host, 'REGISTRY-USERNAME': registry.username, 'REGISTRY-PASSWORD': registry.password }, base);
    const m = await timed(node, [path.join(repo, 'dist/main.js')], step.env);
    if (m.code !== 0) throw new Error(`main failed: ${m.stdout}`);
    const ledger = savedLedger(step.env);
    const p = await timed(node, [path.join(repo, 'dist/post.js')], { ...step.env, STATE_ledger: ledger });
    step.dispose();
    if (i === 0) continue;
    nodeStart.push(n.ms);
    bare.push(b.ms);
    bareLogout.push(bl.ms);
    main.push(m.ms);
    post.push(p.ms);
  }
} finally {
  await registry.stop();
  await engine.stop();
}
const budget = 1.5 * (median(bare) + median(nodeStart));
console.log(`node ${process.version}, docker CLI 20.10 against a loopback docker-registry, medians of ${runs} interleaved runs:`);
console.log(`  node -e 0                            ${fmt(median(nodeStart))}`);
console.log(`  bare docker login --password-stdin   ${fmt(median(bare))}`);
console.log(
  `  action main (1 login)                ${fmt(median(main))}   aim < ${fmt(budget)} (1.5 x (login + node)) -> ${(median(main) / (median(bare) + median(nodeStart))).toFixed(2)}x`,
);
console.log(`  bare docker logout                   ${fmt(median(bareLogout))}`);
console.log(
  `  action post (logout + cleanup)       ${fmt(median(post))}   ${(median(post) / (median(bareLogout) + median(nodeStart))).toFixed(2)}x (logout + node)`,
);
