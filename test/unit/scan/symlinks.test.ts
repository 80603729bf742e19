// The scanner and symlinks: not followed by default (a symlinked input is reported, never skipped
// silently), followed with followSymlinks, each real file and directory once, loops and bounds
// reported.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { scanAll, type Done, type Finding, type ScanEvent } from '../../../src/scan/scanner.ts';
import { tempDir } from './fixtures.ts';

const SECRET = { name: 'DEPLOY_KEY', value: 'Link-S3cr3t-value-91' };
const patterns = buildPatterns([SECRET]);
const tmp = tempDir();
afterAll(() => tmp.dispose());

const findings = (events: ScanEvent[]): string[] =>
  events.filter((e): e is Finding => e.kind === 'finding' && e.encoding === 'raw').map((f) => f.path);
const others = (events: ScanEvent[]): string[] =>
  events
    .filter((e) => e.kind === 'error' || e.kind === 'limit' || e.kind === 'notice')
    .map((e) => `${e.kind} ${'path' in e ? e.path : ''}: ${'message' in e ? e.message : ''}`);
const done = (events: ScanEvent[]): Done => events.at(-1) as Done;

beforeAll(() => {
  mkdirSync(tmp.file('real/sub'), { recursive: true });
  writeFileSync(tmp.file('real/sub/leak.txt'), `x ${SECRET.value}\n`);
  symlinkSync(tmp.file('real'), tmp.file('to-real'));
  mkdirSync(tmp.file('tree'));
  writeFileSync(tmp.file('tree/plain.txt'), `${SECRET.value}\n`);
  symlinkSync(tmp.file('real'), tmp.file('tree/a-link')); // sorts before everything: followed after
  symlinkSync('..', tmp.file('tree/up'));
  symlinkSync('plain.txt', tmp.file('tree/same-file'));
  symlinkSync(tmp.file('nowhere'), tmp.file('tree/dangling'));
  symlinkSync(tmp.file('loop2'), tmp.file('loop1'));
  symlinkSync(tmp.file('loop1'), tmp.file('loop2'));
  // A fan: each level holds two links to the next; 2^18 paths, 18 real directories.
  for (let i = 0; i <= 18; i++) mkdirSync(tmp.file(`fan/d${i}`), { recursive: true });
  for (let i = 0; i < 18; i++) {
    symlinkSync(tmp.file(`fan/d${i + 1}`), tmp.file(`fan/d${i}/x`));
    symlinkSync(tmp.file(`fan/d${i + 1}`), tmp.file(`fan/d${i}/y`));
  }
  writeFileSync(tmp.file('fan/d18/leak.txt'), `${SECRET.value}\n`);
  mkdirSync(tmp.file('big'));
  writeFileSync(tmp.file('big/one.bin'), Buffer.alloc(3000, 1));
  writeFileSync(tmp.file('big/two.bin'), Buffer.alloc(3000, 2));
  symlinkSync(tmp.file('big'), tmp.file('to-big'));
  symlinkSync('/proc/self', tmp.file('to-proc'));
});

describe('scan: symlinks not followed (default)', () => {
  it('reports a symlink named as an input instead of skipping it silently', async () => {
    const events = await scanAll(['to-real'], patterns, { cwd: tmp.dir });
    expect(others(events)).toEqual(['error to-real: a symlink: not followed, not scanned (name its target instead)']);
    expect(done(events)).toMatchObject({ files: 0, skipped: 1, followed: 0 });
  });

  it('passes each link met while walking to onSkip', async () => {
    const skipped: string[] = [];
    const events = await scanAll(['tree'], patterns, { cwd: tmp.dir, onSkip: (p, what) => skipped.push(`${what} ${p}`) });
    expect(findings(events)).toEqual(['tree/plain.txt']);
    expect(skipped.sort()).toEqual(['symlink tree/a-link', 'symlink tree/dangling', 'symlink tree/same-file', 'symlink tree/up']);
  });

  it('lists globs that matched nothing', async () => {
    const events = await scanAll(['tree/*.none', 'tree/*.txt'], patterns, { cwd: tmp.dir });
    expect(done(events).unmatched).toEqual(['tree/*.none']);
    expect(findings(events)).toEqual(['tree/plain.txt']);
  });
});

describe('scan: followSymlinks', () => {
  it('scans a symlinked input under the path given', async () => {
    const events = await scanAll(['to-real'], patterns, { cwd: tmp.dir, followSymlinks: true });
    expect(findings(events)).toEqual(['to-real/sub/leak.txt']);
    expect(done(events)).toMatchObject({ files: 1, followed: 1 });
  });

  it('follows links after the plain content, each real file once; a loop and a dangling link are notices', async () => {
    const events = await scanAll(['tree'], patterns, { cwd: tmp.dir, followSymlinks: true });
    expect(findings(events)).toEqual(['tree/plain.txt', 'tree/a-link/sub/leak.txt']);
    expect(others(events)).toEqual([
      'notice tree/dangling: dangling symlink: nothing to scan',
      `notice tree/up: symlink loop: points to ${tmp.dir}, which holds the link; not followed again`,
    ]);
  });

  it('reports a link that cannot be resolved (ELOOP) as not scanned', async () => {
    const events = await scanAll(['loop1'], patterns, { cwd: tmp.dir, followSymlinks: true });
    expect(others(events)).toEqual(['error loop1: symlink loop (ELOOP): not scanned']);
  });

  it('walks a fan of links to the same directories once each', async () => {
    const started = Date.now();
    const events = await scanAll(['fan/d0'], patterns, { cwd: tmp.dir, followSymlinks: true });
    expect(findings(events)).toHaveLength(1);
    expect(done(events).followed).toBe(36);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('bounds the links followed and the bytes reached through them, and reports what was not scanned', async () => {
    const few = await scanAll(['fan/d0'], patterns, { cwd: tmp.dir, followSymlinks: true, links: { maxLinks: 3 } });
    expect(findings(few)).toEqual([]);
    expect(others(few)[0]).toMatch(/^limit fan\/d0\/.*: symlink not followed, not scanned: the bound of 3 symlinks was reached$/);
    expect(others(few)[1]).toMatch(/^limit \(symlinks\): \d+ more symlink\(s\) not followed/);
    const bytes = await scanAll(['to-big'], patterns, { cwd: tmp.dir, followSymlinks: true, links: { maxLinkedBytes: 4000 } });
    expect(done(bytes).files).toBe(1);
    expect(others(bytes)).toEqual(['limit to-big/two.bin: not scanned: files reached through symlinks passed the 4000-byte bound']);
  });

  it('never follows a link into /proc, /sys or /dev', async () => {
    const events = await scanAll(['to-proc'], patterns, { cwd: tmp.dir, followSymlinks: true });
    expect(others(events)[0]).toMatch(/^limit to-proc: symlink to \/proc\/\d+: not followed into a system directory, not scanned$/);
    expect(done(events).files).toBe(0);
  });
});
