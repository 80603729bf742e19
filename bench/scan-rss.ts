// Peak memory of the bundled leak-scan sub-action (dist/scan.js), as a whole process, scanning the
// 2 GiB-inside big.tar.gz that `node bench/scan.ts` builds, for 50 secrets of 16 to 64 bytes in all
// encodings; side by side with bare `node -e 0` and a bare node gunzip of the same file. The
// sub-action scans with a worker thread per core (one input here: one worker), and in this thread
// when pinned to one CPU (taskset -c 1): both are measured. Aim: under 150 MB RSS whatever the size.
//   node bench/scan-rss.ts [bench/.out/scan-1024]
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { node, repo } from './lib.ts';

const out = path.resolve(process.argv[2] ?? path.join(repo, 'bench/.out/scan-1024'));
const big = path.join(out, 'big.tar.gz');
if (!existsSync(big)) throw new Error(`${big} is missing: run \`node bench/scan.ts\` first`);

const secrets = mkdtempSync(path.join(os.tmpdir(), 'ps-rss-secrets-'));
const workspace = mkdtempSync(path.join(os.tmpdir(), 'ps-rss-ws-'));
try {
  for (let i = 0; i < 50; i++) writeFileSync(path.join(secrets, `S${i}`), randomBytes(8 + (i % 25)).toString('hex'));
  const env = {
    PATH: process.env.PATH ?? '',
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: workspace,
    INPUT_PATHS: big,
    'INPUT_SECRETS-DIR': secrets,
  };
  // GNU time reports the child's peak RSS (the scan exits 1 when it finds a leak: that is fine here).
  // Run directly, not through /bin/sh: dash drops environment names with a '-' (INPUT_SECRETS-DIR).
  const run = (args: string[]): { mib: number; seconds: number } => {
    const started = performance.now();
    const result = spawnSync('/usr/bin/time', ['-v', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const seconds = (performance.now() - started) / 1000;
    const kib = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr.toString())?.[1];
    if (kib === undefined) throw new Error(`/usr/bin/time -v ${args.join(' ')} failed: ${result.stderr.toString().slice(0, 500)}`);
    return { mib: Number(kib) / 1024, seconds };
  };
  const bare = run([node, '-e', '0']);
  const gunzip = run([
    node,
    '-e',
    `require('fs').createReadStream(${JSON.stringify(big)}).pipe(require('zlib').createGunzip()).on('data',()=>{})`,
  ]);
  const scan = run([node, path.join(repo, 'dist/scan.js')]);
  const pinned = run(['taskset', '-c', '1', node, path.join(repo, 'dist/scan.js')]);
  console.log(`${big}: ${(statSync(big).size / 2 ** 20).toFixed(0)} MiB compressed`);
  console.log(`  node -e 0                         peak RSS ${bare.mib.toFixed(0)} MiB`);
  console.log(`  node gunzip stream only           peak RSS ${gunzip.mib.toFixed(0)} MiB   ${gunzip.seconds.toFixed(1)} s`);
  console.log(
    `  dist/scan.js (50 secrets), ${String(os.availableParallelism())} cores  peak RSS ${scan.mib.toFixed(0)} MiB   ${scan.seconds.toFixed(1)} s`,
  );
  console.log(`  the same, taskset -c 1 (1 thread) peak RSS ${pinned.mib.toFixed(0)} MiB   ${pinned.seconds.toFixed(1)} s`);
} finally {
  rmSync(secrets, { recursive: true, force: true });
  rmSync(workspace, { recursive: true, force: true });
}
