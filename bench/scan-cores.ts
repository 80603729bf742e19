// The leak scan on every core, side by side with ripgrep in one run:
//   node bench/scan-cores.ts [--runs 5] [--size MiB (1024)]
//
// On the corpus `node bench/scan.ts` builds (built first when missing): planted/ (16 files, 1 GiB,
// 50 secrets x all encodings planted) and image.tar (planted/ as one uncompressed tar, as
// `docker save -o` writes an image: members of 64 MiB), medians of --runs interleaved runs, warm
// page cache, whole processes (spawn to exit). Ours is the bundled sub-action (dist/scan.js) as a
// step runs it, the 50 secrets in a secrets directory, reports written:
//   ours on every core (a worker thread per core)      vs  `rg -F -f PATTERNS` (its default threads)
//   ours pinned to CPU 1 (taskset -c 1: one thread)    vs  `rg -j1 -F -f PATTERNS`, pinned the same
// and whether ours finds the same (every plant at its offset, the same findings with and without
// workers), and its peak RSS. rg reads -f PATTERNS as lines: the patterns holding a NUL, CR or LF
// are left out for it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median, node, repo, stepEnv } from './lib.ts';

interface Result {
  findings: string[];
  problems: unknown[];
  rssMiB: number;
  /** CPU time of the step (user + system), seconds. */
  cpu: number;
}

/** Idle share of all CPUs since `from` (/proc/stat): a shared machine with no idle core cannot show scaling. */
function cpuTicks(): { idle: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
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
  return runEnv(c, a, process.env as Record<string, string>, keep);
}

function runEnv(
  c: string,
  a: string[],
  env: Record<string, string>,
  keep = false,
): Promise<{ ms: number; code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      if (keep) stdout += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - start, code, stdout }));
  });
}

// The secrets as a secrets directory (one file per secret, as the main action writes it).
const secretsDir = mkdtempSync(path.join(os.tmpdir(), 'ps-cores-secrets-'));
for (const { name, value } of JSON.parse(readFileSync(secrets, 'utf8')) as Array<{ name: string; value: string }>)
  writeFileSync(path.join(secretsDir, name), value);
process.on('exit', () => rmSync(secretsDir, { recursive: true, force: true }));

async function ours(inputs: string[], pinned: boolean): Promise<Result & { ms: number }> {
  const { env, dispose } = stepEnv({ paths: inputs.join('\n'), 'secrets-dir': secretsDir });
  try {
    const rss = path.join(env.RUNNER_TEMP as string, 'rss');
    const workspace = path.join(env.RUNNER_TEMP as string, 'ws');
    mkdirSync(workspace);
    env.GITHUB_WORKSPACE = workspace;
    const r = await runEnv(
      '/usr/bin/time',
      ['-f', '%M %U %S', '-o', rss, ...(pinned && pin ? ['taskset', '-c', '1'] : []), node, path.join(repo, 'dist/scan.js')],
      env,
    );
    if (r.code !== 1) throw new Error(`dist/scan.js exited ${r.code} (expected 1: leaks found)`);
    const temp = env.RUNNER_TEMP as string;
    const report = readdirSync(temp).find((f) => /^pipeline-secrets-scan-.*\.json$/.test(f));
    const json = JSON.parse(readFileSync(path.join(temp, report ?? 'missing'), 'utf8')) as {
      findings: Array<{ path: string; offset: number; line?: number; name: string; encoding: string }>;
      problems: unknown[];
    };
    const findings = json.findings.map((f) => JSON.stringify([f.path, f.offset, f.line, f.name, f.encoding]));
    const [kib, user, sys] = (readFileSync(rss, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
    return { findings, problems: json.problems, rssMiB: (kib ?? NaN) / 1024, cpu: (user ?? NaN) + (sys ?? NaN), ms: r.ms };
  } finally {
    dispose();
  }
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
  const cpu = { all: [] as number[], one: [] as number[] };
  const ticks = cpuTicks();
  for (let i = 0; i < runs; i++) {
    all = await ours(corpus.inputs, false);
    t.all.push(all.ms);
    cpu.all.push(all.cpu);
    const r = await rg([], corpus.inputs, false);
    t.rgAll.push(r.ms);
    rgCount = r.count;
    one = await ours(corpus.inputs, true);
    t.one.push(one.ms);
    cpu.one.push(one.cpu);
    t.rg1.push((await rg(['-j1'], corpus.inputs, true)).ms);
  }
  const mbs = (times: number[]): string => `${(bytes / 1e6 / (median(times) / 1000)).toFixed(0).padStart(5)} MB/s`;
  const ms = (times: number[]): string => `${median(times).toFixed(0).padStart(6)} ms`;
  console.log(`\n${corpus.label}, ${(bytes / 1e6).toFixed(0)} MB:`);
  console.log(
    `  ours, ${cores} cores (dist/scan.js)   ${ms(t.all)} ${mbs(t.all)}   rg -F -f (default threads)     ${ms(t.rgAll)} ${mbs(t.rgAll)}   x${(median(t.rgAll) / median(t.all)).toFixed(2)} of rg`,
  );
  console.log(
    `  ours, 1 thread${pin ? ' (taskset -c 1)' : ''}     ${ms(t.one)} ${mbs(t.one)}   rg -j1 -F -f${pin ? ' (taskset -c 1)' : ''}         ${ms(t.rg1)} ${mbs(t.rg1)}   x${(median(t.rg1) / median(t.one)).toFixed(2)} of rg -j1`,
  );
  const after = cpuTicks();
  const idle = (100 * (after.idle - ticks.idle)) / Math.max(1, after.total - ticks.total);
  console.log(
    `  ours on ${cores} cores vs ours on 1: x${(median(t.one) / median(t.all)).toFixed(2)} wall time; CPU time of the step ${median(cpu.all).toFixed(2)} s vs ${median(cpu.one).toFixed(2)} s; the machine's CPUs were ${idle.toFixed(0)}% idle during these runs; rg on ${cores} cores vs rg -j1: x${(median(t.rg1) / median(t.rgAll)).toFixed(2)}`,
  );
  if (all && one) {
    const want = new Set(plants.map((p) => JSON.stringify([corpus.prefix(p.file), p.offset, p.name, p.encoding])));
    const got = new Set(all.findings.map((f) => JSON.stringify((JSON.parse(f) as unknown[]).filter((_, k) => k !== 2))));
    const hit = [...want].filter((w) => got.has(w)).length;
    const same = JSON.stringify(all.findings) === JSON.stringify(one.findings);
    console.log(
      `  correctness: ${hit}/${want.size} plants found at their offset in their encoding, ${got.size - hit} other findings, problems ${all.problems.length + one.problems.length}; ` +
        `${same ? 'the same findings in the same order' : 'DIFFERENT findings'} with ${cores} workers and in one thread; rg counted ${rgCount} matches of its patterns`,
    );
    console.log(`  peak RSS of the step: ${cores} cores ${all.rssMiB.toFixed(0)} MiB, 1 thread ${one.rssMiB.toFixed(0)} MiB`);
  }
}
