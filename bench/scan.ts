// Leak-scan engine throughput and correctness, side by side with ripgrep and GNU grep.
//   node bench/scan.ts [--size MiB (1024)] [--runs 3] [--no-grep] [--no-pin]
//
// Builds under bench/.out/scan-<size>/ (reused when the parameters are the same):
//   clean/    ~size MiB of log lines, minified-JS-like text and random bytes, no secrets
//   planted/  the same files with 50 secrets (16-64 bytes) planted in every encoding, plus each
//             secret inside base64("user:" + value) as in a docker config.json, at recorded offsets
//   part.tar.gz  planted/ files 0-3;  big.tar.gz  planted/ + clean/ (2 x size uncompressed)
//   patterns.txt  the patterns as lines for `rg -F -f` / `grep -F -f`: patterns containing a newline,
//             CR or NUL (multi-line raw values, UTF-16LE) cannot be given to them and are left out.
// Then, medians of --runs runs each, interleaved, every process pinned to one CPU (taskset -c 1):
// our scanner (one JS thread) vs `rg -j1 -F -f PATTERNS --count-matches -a` vs
// `grep -F -a -c -f PATTERNS` over planted/ (wall time of the whole process); correctness (every
// planted value found at its offset in its encoding, nothing else; zero findings in clean/; the same
// inside part.tar.gz and big.tar.gz) and the peak RSS (VmHWM) of the scanner on big.tar.gz.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  copyFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { repo, median, node } from './lib.ts';
import { base64Embedded } from '../src/core/encodings.ts';
import { buildPatterns, type Pattern } from '../src/scan/patterns.ts';
import { scan } from '../src/scan/scanner.ts';

const MiB = 2 ** 20;

interface Secret {
  name: string;
  value: string;
}
interface Plant {
  file: string; // relative to the corpus dir (planted/...)
  offset: number;
  name: string;
  encoding: string;
}
interface WorkerResult {
  findings: Array<[string, number, string, string]>;
  errors: string[];
  bytes: number;
  scanMs: number;
  hwmKiB: number;
}

// ---------------------------------------------------------------------------------------------
// worker mode: node bench/scan.ts --worker secrets.json result.json inputs...
if (process.argv[2] === '--worker') {
  const [secretsFile, resultFile, ...inputs] = process.argv.slice(3) as [string, string, ...string[]];
  const secrets = JSON.parse(readFileSync(secretsFile, 'utf8')) as Secret[];
  const patterns = buildPatterns(secrets);
  const result: WorkerResult = { findings: [], errors: [], bytes: 0, scanMs: 0, hwmKiB: 0 };
  for await (const e of scan(inputs, patterns)) {
    if (e.kind === 'finding') result.findings.push([e.path, e.offset, e.name, e.encoding]);
    else if (e.kind === 'done') {
      result.bytes = e.bytes;
      result.scanMs = e.elapsedMs;
    } else result.errors.push(`${e.kind} ${e.path}: ${e.message}`);
  }
  result.hwmKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  writeFileSync(resultFile, JSON.stringify(result));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const size = opt('size', 1024);
const runs = opt('runs', 3);
const withGrep = !args.includes('--no-grep');
const pin = !args.includes('--no-pin') && spawnSync('taskset', ['-c', '1', 'true']).status === 0;
const FILES = 16;
const PARAMS = { version: 4, size, files: FILES };
const out = path.join(repo, 'bench/.out', `scan-${size}`);

// --- a fast deterministic PRNG (xorshift32) for text ---
let seed = 0x9e3779b9;
const rnd = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
const int = (n: number): number => Math.floor(rnd() * n);

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const WORDS =
  'the request failed user login cache miss retry connection timeout worker started job finished build step install compiled successfully warning deprecated upload artifact layer digest pushed pulled manifest config token refresh scheduled'.split(
    ' ',
  );

/** 50 secrets of 16-64 bytes (UTF-8): tokens, passwords with specials, non-ASCII, two-line keys. */
function makeSecrets(): Secret[] {
  const secrets: Secret[] = [];
  const str = (alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
  for (let i = 0; i < 50; i++) {
    const len = 16 + int(49);
    let value: string;
    if (i < 30) value = str(ALNUM, len);
    else if (i < 40) value = str(`${ALNUM}+/=:@"\\ !&%?#`, len);
    else if (i < 45) {
      value = '';
      while (Buffer.byteLength(value) < Math.min(Math.max(len, 19), 62) - 3) value += str(`${ALNUM}éüßøЖ漢`, 1);
    } else value = `${str(ALNUM, 16 + int(9))}\n  ${str(ALNUM, 16 + int(9))}\n`;
    secrets.push({ name: `SECRET_${String(i).padStart(2, '0')}`, value });
  }
  return secrets;
}

function logPool(): string[] {
  const levels = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
  return Array.from({ length: 50_000 }, () => {
    const hex = randomBytes(8).toString('hex');
    const words = Array.from({ length: 5 + int(12) }, () => pick(WORDS)).join(' ');
    return `2026-04-${String(1 + int(28)).padStart(2, '0')}T${String(int(24)).padStart(2, '0')}:${String(int(60)).padStart(2, '0')}:${String(int(60)).padStart(2, '0')}.${String(int(1000)).padStart(3, '0')}Z ${pick(levels)} [svc-${int(20)}] req=${hex} ${words} took=${int(5000)}ms\n`;
  });
}

function jsPool(): string[] {
  const id = (): string => pick([...'abcdefghijklmnopqrstuvwxyz_$']) + (int(2) ? pick([...ALNUM]) : '');
  const forms = [
    (): string => `function ${id()}(${id()},${id()}){return ${id()}+${id()}}`,
    (): string => `var ${id()}=${int(100000)},${id()}="${pick(WORDS)}";`,
    (): string => `${id()}.${pick(WORDS)}(${id()},{${id()}:${int(100)},${id()}:!0});`,
    (): string => `if(${id()}&&${id()}.length>${int(64)}){${id()}=${id()}[${int(9)}]}`,
    (): string => `"${pick(WORDS)} ${pick(WORDS)}"`,
    (): string => `return ${id()}?${id()}:void 0}`,
  ];
  return Array.from({ length: 20_000 }, () => pick(forms)());
}

function writeCorpus(dir: string, fileSize: number): string[] {
  mkdirSync(dir, { recursive: true });
  const logs = logPool();
  const js = jsPool();
  const names: string[] = [];
  for (let f = 0; f < FILES; f++) {
    const kind = f % 5 === 4 ? 'bin' : f % 2 === 0 ? 'log' : 'js';
    const name = `${String(f).padStart(2, '0')}-${kind}.${kind === 'log' ? 'log' : kind === 'js' ? 'min.js' : 'bin'}`;
    names.push(name);
    const fd = openSync(path.join(dir, name), 'w');
    let written = 0;
    while (written < fileSize) {
      const want = Math.min(MiB, fileSize - written);
      let block: Buffer;
      if (kind === 'bin') block = randomBytes(want);
      else {
        const parts: string[] = [];
        let n = 0;
        while (n < want) {
          const piece = kind === 'log' ? pick(logs) : int(400) === 0 ? '\n' : pick(js);
          parts.push(piece);
          n += piece.length;
        }
        block = Buffer.from(parts.join(''), 'latin1').subarray(0, want);
      }
      writeSync(fd, block);
      written += block.length;
    }
    closeSync(fd);
  }
  return names;
}

/** The plants: every pattern of every secret once, plus base64("user:" + value) per secret. */
function plan(
  secrets: Secret[],
  patterns: Pattern[],
  names: string[],
  fileSize: number,
): Array<{ file: string; offset: number; bytes: Buffer; expect: Plant }> {
  const used = new Map<string, number[]>();
  const place = (len: number): { file: string; offset: number } => {
    for (;;) {
      const file = pick(names);
      const offset = 8192 + int(fileSize - 8192 - len - 2);
      const taken = used.get(file) ?? [];
      if (taken.some((o) => Math.abs(o - offset) < 1024)) continue;
      taken.push(offset);
      used.set(file, taken);
      return { file, offset };
    }
  };
  const byBytes = new Map(patterns.map((p) => [p.bytes.toString('latin1'), p]));
  const plants: Array<{ file: string; offset: number; bytes: Buffer; expect: Plant }> = [];
  for (const p of patterns) {
    const { file, offset } = place(p.bytes.length + 2);
    const bytes = Buffer.concat([Buffer.from('\n'), p.bytes, Buffer.from('\n')]);
    plants.push({ file, offset, bytes, expect: { file: `planted/${file}`, offset: offset + 1, name: p.name, encoding: p.encoding } });
  }
  for (const s of secrets) {
    const auth = Buffer.from(`user:${s.value}`, 'utf8').toString('base64');
    const bytes = Buffer.from(`{"auths":{"registry.example.com":{"auth":"${auth}"}}}`, 'latin1');
    const core = base64Embedded(Buffer.from(s.value, 'utf8'), 2);
    const pattern = byBytes.get(core);
    if (!pattern) continue;
    const { file, offset } = place(bytes.length);
    plants.push({
      file,
      offset,
      bytes,
      expect: { file: `planted/${file}`, offset: offset + bytes.indexOf(auth) + 7, name: pattern.name, encoding: pattern.encoding },
    });
  }
  return plants;
}

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`failed: ${cmd}`);
}

function ensureCorpus(): { names: string[]; plants: Plant[] } {
  const paramsFile = path.join(out, 'params.json');
  if (existsSync(paramsFile) && readFileSync(paramsFile, 'utf8') === JSON.stringify(PARAMS)) {
    return JSON.parse(readFileSync(path.join(out, 'plants.json'), 'utf8')) as { names: string[]; plants: Plant[] };
  }
  const t0 = performance.now();
  const phase = (label: string): void => console.log(`  ${label}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`building ${out}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const fileSize = Math.floor((size * MiB) / FILES / 512) * 512;
  const secrets = makeSecrets();
  const patterns = buildPatterns(secrets);
  const names = writeCorpus(path.join(out, 'clean'), fileSize);
  phase('clean/ written');
  mkdirSync(path.join(out, 'planted'));
  for (const n of names) copyFileSync(path.join(out, 'clean', n), path.join(out, 'planted', n));
  const plants = plan(secrets, patterns, names, fileSize);
  for (const p of plants) {
    const fd = openSync(path.join(out, 'planted', p.file), 'r+');
    writeSync(fd, p.bytes, 0, p.bytes.length, p.offset);
    closeSync(fd);
  }
  phase('planted/ written');
  writeFileSync(path.join(out, 'secrets.json'), JSON.stringify(secrets));
  const lines = patterns.map((p) => p.bytes).filter((b) => !b.includes(0x0a) && !b.includes(0x0d) && !b.includes(0));
  writeFileSync(path.join(out, 'patterns.txt'), Buffer.concat(lines.flatMap((b) => [b, Buffer.from('\n')])));
  // big.tar.gz = one tar of planted/ then clean/, gzipped as two members in parallel (2 cores): the
  // first member is the tar of planted/ cut before its end-of-archive blocks (a directory header,
  // then 512-byte header + data per file, sizes are multiples of 512).
  const plantedPart = 512 + FILES * (512 + fileSize);
  const partNames = names
    .slice(0, 4)
    .map((n) => `planted/${n}`)
    .join(' ');
  sh(
    `cd '${out}' && (tar --format=ustar -cf - planted | head -c ${plantedPart} | gzip -1 > big.1.gz) & ` +
      `(cd '${out}' && tar --format=ustar -cf - clean | gzip -1 > big.2.gz) & ` +
      `(cd '${out}' && tar --format=ustar -cf - ${partNames} | gzip -1 > part.tar.gz) & wait; ` +
      `cd '${out}' && cat big.2.gz >> big.1.gz && mv big.1.gz big.tar.gz && rm big.2.gz`,
  );
  phase('part.tar.gz and big.tar.gz written');
  const data = { names, plants: plants.map((p) => p.expect), patterns: patterns.length, rgPatterns: lines.length };
  writeFileSync(path.join(out, 'plants.json'), JSON.stringify(data));
  writeFileSync(paramsFile, JSON.stringify(PARAMS));
  console.log(`corpus built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return data;
}

// ---------------------------------------------------------------------------------------------
function run(cmd: string, cmdArgs: string[], keepStdout = true): Promise<{ ms: number; code: number | null; stdout: string }> {
  const full = pin ? (['taskset', ['-c', '1', cmd, ...cmdArgs]] as const) : ([cmd, cmdArgs] as const);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(full[0], [...full[1]], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      if (keepStdout) stdout += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - start, code, stdout }));
  });
}

async function ours(inputs: string[]): Promise<WorkerResult & { ms: number }> {
  const resultFile = path.join(out, `result-${process.pid}.json`);
  const r = await run(node, [path.join(repo, 'bench/scan.ts'), '--worker', path.join(out, 'secrets.json'), resultFile, ...inputs]);
  if (r.code !== 0) throw new Error('scanner worker failed');
  const result = JSON.parse(readFileSync(resultFile, 'utf8')) as WorkerResult;
  rmSync(resultFile);
  return { ...result, ms: r.ms };
}

function check(
  found: WorkerResult['findings'],
  expected: Plant[],
  prefix: (file: string) => string,
): { hit: number; missing: number; extra: number } {
  const want = new Set(expected.map((p) => JSON.stringify([prefix(p.file), p.offset, p.name, p.encoding])));
  const got = new Set(found.map((f) => JSON.stringify(f)));
  let hit = 0;
  for (const w of want) if (got.has(w)) hit++;
  return { hit, missing: want.size - hit, extra: got.size - hit };
}

const { names, plants } = ensureCorpus();
const meta = JSON.parse(readFileSync(path.join(out, 'plants.json'), 'utf8')) as { patterns: number; rgPatterns: number };
const planted = names.map((n) => path.join(out, 'planted', n));
const plainBytes = planted.reduce((a, f) => a + statSync(f).size, 0);
const patternsTxt = path.join(out, 'patterns.txt');
const rgVersion = spawnSync('rg', ['--version']).stdout.toString().split('\n')[0];
const grepVersion = spawnSync('grep', ['--version']).stdout.toString().split('\n')[0];
console.log(
  `corpus ${out}: ${FILES} files, ${(plainBytes / MiB).toFixed(0)} MiB; ${meta.patterns} patterns from 50 secrets (${meta.rgPatterns} usable by rg/grep: ${meta.patterns - meta.rgPatterns} with NUL, CR or LF cannot be lines of -f PATTERNS); ${plants.length} plants`,
);
console.log(
  `node ${process.version}, ${rgVersion}, ${grepVersion}; ${pin ? 'each process pinned to CPU 1 (taskset -c 1)' : 'not pinned'}; medians of ${runs} interleaved runs, warm page cache`,
);

// warm the cache
await run('cat', [...planted], false);
const cleanFiles = names.map((n) => path.join(out, 'clean', n));
await run('cat', cleanFiles, false);
const rgArgs = ['-j1', '-F', '-f', patternsTxt, '--count-matches', '-a', '--no-filename'];
const t = { ours: [] as number[], rg: [] as number[], grep: [] as number[], oursClean: [] as number[], rgClean: [] as number[] };
let last: (WorkerResult & { ms: number }) | undefined;
let clean: (WorkerResult & { ms: number }) | undefined;
let rgCount = 0;
for (let i = 0; i < runs; i++) {
  last = await ours(planted);
  t.ours.push(last.ms);
  const rg = await run('rg', [...rgArgs, ...planted]);
  t.rg.push(rg.ms);
  rgCount = rg.stdout
    .split('\n')
    .filter(Boolean)
    .reduce((a, l) => a + Number(l), 0);
  if (withGrep) t.grep.push((await run('grep', ['-F', '-a', '-c', '-f', patternsTxt, ...planted])).ms);
  clean = await ours(cleanFiles);
  t.oursClean.push(clean.ms);
  t.rgClean.push((await run('rg', [...rgArgs, ...cleanFiles])).ms);
}
const mbs = (ms: number): number => plainBytes / 1e6 / (ms / 1000);
const row = (label: string, times: number[], rgTimes: number[]): string =>
  `  ${label.padEnd(44)} ${median(times).toFixed(0).padStart(7)} ms ${mbs(median(times)).toFixed(0).padStart(6)} MB/s  x${(median(rgTimes) / median(times)).toFixed(2)} of rg`;
console.log(`\nthroughput over planted/ (${(plainBytes / 1e6).toFixed(0)} MB, plain files, ${plants.length} findings), whole processes:`);
console.log(row('ours  scan() 1 JS thread', t.ours, t.rg));
console.log(row('rg -j1 -F -f PATTERNS --count-matches -a', t.rg, t.rg));
if (withGrep) console.log(row('grep -F -a -c -f PATTERNS', t.grep, t.rg));
console.log(`throughput over clean/ (same files without plants, no findings):`);
console.log(row('ours  scan() 1 JS thread', t.oursClean, t.rgClean));
console.log(row('rg -j1 -F -f PATTERNS --count-matches -a', t.rgClean, t.rgClean));
if (last)
  console.log(
    `  (ours inside the process: ${mbs(last.scanMs).toFixed(0)} MB/s over ${(last.bytes / 1e6).toFixed(0)} MB; rg counted ${rgCount} matches of its ${meta.rgPatterns} patterns)`,
  );

console.log('\ncorrectness:');
if (last) {
  const c = check(last.findings, plants, (f) => path.join(out, f));
  console.log(
    `  planted/: ${c.hit}/${plants.length} plants found at their offset in their encoding; ${c.missing} missing; ${c.extra} other findings; errors ${last.errors.length}`,
  );
}
if (clean) console.log(`  clean/: ${clean.findings.length} findings (expected 0), errors ${clean.errors.length}`);
const partFiles = new Set(names.slice(0, 4).map((n) => `planted/${n}`));
const part = await ours([path.join(out, 'part.tar.gz')]);
const pc = check(
  part.findings,
  plants.filter((p) => partFiles.has(p.file)),
  (f) => `${path.join(out, 'part.tar.gz')}!${f}`,
);
console.log(
  `  part.tar.gz (${(statSync(path.join(out, 'part.tar.gz')).size / MiB).toFixed(0)} MiB, ${(part.bytes / MiB).toFixed(0)} MiB inside): ${pc.hit}/${pc.hit + pc.missing} plants found, ${pc.extra} other findings, errors ${part.errors.length}; ${(part.bytes / 1e6 / (part.ms / 1000)).toFixed(0)} MB/s decompressed`,
);

const bigPath = path.join(out, 'big.tar.gz');
const big = await ours([bigPath]);
const gunzipOnly = `const z=require('zlib'),fs=require('fs');fs.createReadStream(process.argv[1]).pipe(z.createGunzip()).resume()`;
const inflate = await run(node, ['-e', gunzipOnly, bigPath], false);
const bc = check(big.findings, plants, (f) => `${bigPath}!${f}`);
console.log(
  `  big.tar.gz (${(statSync(bigPath).size / MiB).toFixed(0)} MiB, ${(big.bytes / MiB).toFixed(0)} MiB inside): ${bc.hit}/${plants.length} plants found, ${bc.extra} other findings, errors ${big.errors.length}; ${(big.bytes / 1e6 / (big.ms / 1000)).toFixed(0)} MB/s decompressed, ${(big.ms / 1000).toFixed(1)} s ` +
    `(node's gunzip alone, same pinning: ${(inflate.ms / 1000).toFixed(1)} s)`,
);
writeFileSync(path.join(out, 'tiny.txt'), 'tiny\n');
const idle = await ours([path.join(out, 'tiny.txt')]);
const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
console.log(
  `\npeak RSS (VmHWM) of the scanner process: big.tar.gz ${mib(big.hwmKiB)}; planted/ ${mib(last?.hwmKiB ?? 0)}; ` +
    `a 5-byte file ${mib(idle.hwmKiB)} (node running the .ts worker: type stripping, modules, patterns)`,
);
for (const e of [...(last?.errors ?? []), ...(clean?.errors ?? []), ...part.errors, ...big.errors].slice(0, 10)) console.log(`  ! ${e}`);
