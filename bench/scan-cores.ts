// The leak scan on every core, side by side with ripgrep in one run:
//   node bench/scan-cores.ts [--runs 5] [--size MiB (1024)]
//
// On the corpus `node bench/scan.ts` builds (built first when missing): planted/ (16 files, 1 GiB,
// 50 secrets x all encodings planted) and image.tar (planted/ as one uncompressed tar, as
// `docker save -o` writes an image: members of 64 MiB), medians of --runs interleaved runs, warm
// page cache, whole processes (spawn to exit):
//   ours with a worker per core (os.availableParallelism())  vs  `rg -F -f PATTERNS` (its default threads)
//   ours in one thread, pinned to CPU 1 (taskset -c 1)        vs  `rg -j1 -F -f PATTERNS`, pinned the same
// and whether ours finds the same (every plant at its offset, the same findings with and without
// workers). rg reads -f PATTERNS as lines: the patterns holding a NUL, CR or LF are left out for it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median, node, repo } from './lib.ts';
import { buildPatterns } from '../src/scan/patterns.ts';
import { scan } from '../src/scan/scanner.ts';

interface Result {
  findings: string[];
  errors: string[];
  bytes: number;
  hwmKiB: number;
}

// child mode: node bench/scan-cores.ts --child WORKERS secrets.json result.json inputs...
if (process.argv[2] === '--child') {
  const [workers, secretsFile, resultFile, ...inputs] = process.argv.slice(3) as [string, string, string, ...string[]];
  const patterns = buildPatterns(JSON.parse(readFileSync(secretsFile, 'utf8')) as Array<{ name: string; value: string }>);
  const result: Result = { findings: [], errors: [], bytes: 0, hwmKiB: 0 };
  for await (const e of scan(inputs, patterns, { workers: Number(workers) })) {
    if (e.kind === 'finding') result.findings.push(JSON.stringify([e.path, e.offset, e.line, e.name, e.encoding]));
    else if (e.kind === 'done') result.bytes = e.bytes;
    else result.errors.push(`${e.kind} ${e.path}: ${e.message}`);
  }
  result.hwmKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  writeFileSync(resultFile, JSON.stringify(result));
  process.exit(0);
}

const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const runs = opt('runs', 5);
const size = opt('size', 1024);
const out = path.join(repo, 'bench/.out', `scan-${size}`);
if (!existsSync(path.join(out, 'plants.json'))) {
  const built = spawnSync(node, [path.join(repo, 'bench/scan.ts'), '--size', String(size), '--runs', '1', '--no-grep'], {
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error('bench/scan.ts failed to build the corpus');
}
const { names, plants } = JSON.parse(readFileSync(path.join(out, 'plants.json'), 'utf8')) as {
  names: string[];
  plants: Array<{ file: string; offset: number; name: string; encoding: string }>;
};
const planted = names.map((n) => path.join(out, 'planted', n));
const image = path.join(out, 'image.tar');
if (!existsSync(image)) {
  const r = spawnSync('tar', ['--format=ustar', '-cf', image, '-C', out, 'planted'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('tar failed');
}
const secrets = path.join(out, 'secrets.json');
const patternsTxt = path.join(out, 'patterns.txt');
const cores = os.availableParallelism();
const pin = spawnSync('taskset', ['-c', '1', 'true']).status === 0;
if (spawnSync('rg', ['--version']).status !== 0) throw new Error('ripgrep (rg) is missing: apt-get install -y ripgrep');

function run(cmd: string, cmdArgs: string[], pinned: boolean, keep = true): Promise<{ ms: number; code: number | null; stdout: string }> {
  const [c, a] = pinned && pin ? ['taskset', ['-c', '1', cmd, ...cmdArgs]] : [cmd, cmdArgs];
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      if (keep) stdout += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - start, code, stdout }));
  });
}

async function ours(workers: number, inputs: string[], pinned: boolean): Promise<Result & { ms: number }> {
  const file = path.join(out, `cores-${process.pid}.json`);
  const r = await run(node, [path.join(repo, 'bench/scan-cores.ts'), '--child', String(workers), secrets, file, ...inputs], pinned);
  if (r.code !== 0) throw new Error('scanner child failed');
  const result = JSON.parse(readFileSync(file, 'utf8')) as Result;
  rmSync(file);
  return { ...result, ms: r.ms };
}

const rg = async (threads: string[], inputs: string[], pinned: boolean): Promise<{ ms: number; count: number }> => {
  const r = await run('rg', [...threads, '-F', '-f', patternsTxt, '--count-matches', '-a', '--no-filename', ...inputs], pinned);
  return {
    ms: r.ms,
    count: r.stdout
      .split('\n')
      .filter(Boolean)
      .reduce((a, l) => a + Number(l), 0),
  };
};

const corpora = [
  { label: `planted/ (${names.length} files)`, inputs: planted, prefix: (f: string) => path.join(out, f) },
  { label: 'image.tar (the same files as one uncompressed tar)', inputs: [image], prefix: (f: string) => `${image}!${f}` },
];
await run('cat', [...planted, image], false, false); // warm the page cache
const rgVersion = spawnSync('rg', ['--version']).stdout.toString().split('\n')[0];
console.log(
  `node ${process.version}, ${rgVersion}; ${cores} core(s) available; medians of ${runs} interleaved runs, warm page cache, whole processes`,
);
for (const corpus of corpora) {
  const bytes = corpus.inputs.reduce((a, f) => a + statSync(f).size, 0);
  const t = { all: [] as number[], rgAll: [] as number[], one: [] as number[], rg1: [] as number[] };
  let all: (Result & { ms: number }) | undefined;
  let one: (Result & { ms: number }) | undefined;
  let rgCount = 0;
  for (let i = 0; i < runs; i++) {
    all = await ours(cores, corpus.inputs, false);
    t.all.push(all.ms);
    const r = await rg([], corpus.inputs, false);
    t.rgAll.push(r.ms);
    rgCount = r.count;
    one = await ours(0, corpus.inputs, true);
    t.one.push(one.ms);
    t.rg1.push((await rg(['-j1'], corpus.inputs, true)).ms);
  }
  const mbs = (times: number[]): string => `${(bytes / 1e6 / (median(times) / 1000)).toFixed(0).padStart(5)} MB/s`;
  const ms = (times: number[]): string => `${median(times).toFixed(0).padStart(6)} ms`;
  console.log(`\n${corpus.label}, ${(bytes / 1e6).toFixed(0)} MB:`);
  console.log(
    `  ours, ${cores} worker threads        ${ms(t.all)} ${mbs(t.all)}   rg -F -f (default threads)     ${ms(t.rgAll)} ${mbs(t.rgAll)}   x${(median(t.rgAll) / median(t.all)).toFixed(2)} of rg`,
  );
  console.log(
    `  ours, 1 thread${pin ? ' (taskset -c 1)' : ''}     ${ms(t.one)} ${mbs(t.one)}   rg -j1 -F -f${pin ? ' (taskset -c 1)' : ''}         ${ms(t.rg1)} ${mbs(t.rg1)}   x${(median(t.rg1) / median(t.one)).toFixed(2)} of rg -j1`,
  );
  console.log(`  ours on ${cores} threads vs ours on 1: x${(median(t.one) / median(t.all)).toFixed(2)}`);
  if (all && one) {
    const want = new Set(plants.map((p) => JSON.stringify([corpus.prefix(p.file), p.offset, p.name, p.encoding])));
    const got = new Set(all.findings.map((f) => JSON.stringify((JSON.parse(f) as unknown[]).filter((_, k) => k !== 2))));
    const hit = [...want].filter((w) => got.has(w)).length;
    const same = JSON.stringify(all.findings) === JSON.stringify(one.findings);
    console.log(
      `  correctness: ${hit}/${want.size} plants found at their offset in their encoding, ${got.size - hit} other findings, errors ${all.errors.length + one.errors.length}; ` +
        `${same ? 'the same findings in the same order' : 'DIFFERENT findings'} with ${cores} workers and in one thread; rg counted ${rgCount} matches of its patterns`,
    );
    console.log(
      `  peak RSS (VmHWM): ${cores} workers ${(all.hwmKiB / 1024).toFixed(0)} MiB, 1 thread ${(one.hwmKiB / 1024).toFixed(0)} MiB`,
    );
  }
}
