// Cold start of the main step with no Vault (one workflow secret), as a whole process, against bare
// `node -e 0`, runs interleaved. Aim: within +30 ms of bare node.
//   node bench/cold-start.ts [runs] [baseline-dist-dir]
// With a second dist directory (e.g. `git archive <commit> dist | tar -x -C /tmp/old`, then
// /tmp/old/dist), its main and post run interleaved with ours: a before/after of a change.
import * as path from 'node:path';
import { fmt, median, node, repo, stepEnv, timed, savedLedger } from './lib.ts';

const runs = Number(process.argv[2] ?? 20);
const main = path.join(repo, 'dist/main.js');
const post = path.join(repo, 'dist/post.js');
const baselineDist = process.argv[3];
const bare: number[] = [];
const before: number[] = [];
const beforePost: number[] = [];
const ours: number[] = [];
const cleanup: number[] = [];
for (let i = 0; i < runs + 2; i++) {
  const b = await timed(node, ['-e', '0'], { PATH: process.env.PATH ?? '' });
  const step = stepEnv({ 'ENV-SECRETS': 'TOKEN' }, { TOKEN: 'bench-secret-value-123' });
  const m = await timed(node, [main], step.env);
  if (m.code !== 0) throw new Error(`main failed: ${m.stdout}`);
  const ledger = savedLedger(step.env);
  const p = await timed(node, [post], { ...step.env, STATE_ledger: ledger });
  step.dispose();
  if (baselineDist !== undefined) {
    const old = stepEnv({ 'ENV-SECRETS': 'TOKEN' }, { TOKEN: 'bench-secret-value-123' });
    const om = await timed(node, [path.join(baselineDist, 'main.js')], old.env);
    if (om.code !== 0) throw new Error(`baseline main failed: ${om.stdout}`);
    const oldLedger = savedLedger(old.env);
    const op = await timed(node, [path.join(baselineDist, 'post.js')], { ...old.env, STATE_ledger: oldLedger });
    old.dispose();
    if (i >= 2) {
      before.push(om.ms);
      beforePost.push(op.ms);
    }
  }
  if (i < 2) continue; // warm the page cache first
  bare.push(b.ms);
  ours.push(m.ms);
  cleanup.push(p.ms);
}
const mb = median(bare);
const mm = median(ours);
console.log(`node ${process.version}, ${runs} interleaved runs, medians:`);
console.log(`  node -e 0                         ${fmt(mb)}`);
console.log(`  main (1 env secret, no Vault)     ${fmt(mm)}   (+${(mm - mb).toFixed(1)} ms, ${(mm / mb).toFixed(2)}x bare node)`);
console.log(`  post (cleanup)                    ${fmt(median(cleanup))}   (+${(median(cleanup) - mb).toFixed(1)} ms)`);
if (baselineDist !== undefined) {
  const ob = median(before);
  console.log(`  baseline main (${baselineDist})   ${fmt(ob)}   (+${(ob - mb).toFixed(1)} ms)`);
  console.log(`  baseline post                     ${fmt(median(beforePost))}   (+${(median(beforePost) - mb).toFixed(1)} ms)`);
}
