import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LINK_LIMITS, expand, globToRegExp, type ExpandState, type LinkLimits, type WalkOptions } from '../../../src/scan/walk.ts';
import { tempDir } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.dispose());

/** What expand yields (files as paths, events as one line each), what it counted and skipped. */
async function walked(
  inputs: string[],
  opts: WalkOptions = {},
  limits: LinkLimits = DEFAULT_LINK_LIMITS,
): Promise<{ out: string[]; state: ExpandState; skips: string[] }> {
  const state: ExpandState = { skipped: 0, followed: 0, linkedBytes: 0, unmatched: [] };
  const skips: string[] = [];
  const out: string[] = [];
  const onSkip = (p: string, what: string): number => skips.push(`${what} ${p}`);
  for await (const item of expand(inputs, tmp.dir, state, { ...opts, onSkip }, limits))
    out.push(typeof item === 'string' ? item : `${item.kind} ${item.path}: ${item.message}`);
  return { out, state, skips };
}

beforeAll(() => {
  mkdirSync(tmp.file('tree/a'), { recursive: true });
  mkdirSync(tmp.file('tree/c'));
  for (const f of ['tree/b.txt', 'tree/A.txt', 'tree/a/z.log', 'tree/a/y.log', 'tree/a/x.cfg']) writeFileSync(tmp.file(f), 'x');
  execFileSync('mkfifo', [tmp.file('tree/pipe')]);
  symlinkSync('b.txt', tmp.file('tree/link.txt'));
  // Two directories linking to each other, and one linking to itself.
  mkdirSync(tmp.file('loops/a'), { recursive: true });
  mkdirSync(tmp.file('loops/b'));
  writeFileSync(tmp.file('loops/a/f.txt'), 'x');
  writeFileSync(tmp.file('loops/b/g.txt'), 'x');
  symlinkSync('../b', tmp.file('loops/a/to-b'));
  symlinkSync('../a', tmp.file('loops/b/to-a'));
  symlinkSync('.', tmp.file('loops/a/self'));
  // A chain of 30 directories, each linking to the next.
  for (let i = 0; i < 30; i++) {
    mkdirSync(tmp.file(`chain/d${i}`), { recursive: true });
    writeFileSync(tmp.file(`chain/d${i}/f.txt`), 'x');
    if (i > 0) symlinkSync(`../d${i}`, tmp.file(`chain/d${i - 1}/next`));
  }
});

describe('walk: inputs', () => {
  it('walks a directory in byte order of names, skips symlinks and special files (a fifo would block a read)', async () => {
    const { out, state, skips } = await walked(['tree']);
    expect(out).toEqual(['tree/A.txt', 'tree/a/x.cfg', 'tree/a/y.log', 'tree/a/z.log', 'tree/b.txt']);
    expect(skips).toEqual(['symlink tree/link.txt', 'special tree/pipe']);
    expect(state.skipped).toBe(2);
  });

  it('yields each file once however many inputs name it, in the order first named', async () => {
    const { out } = await walked(['tree/b.txt', 'tree/a', 'tree/**/*.log', 'tree', './tree/b.txt']);
    expect(out).toEqual(['tree/b.txt', 'tree/a/x.cfg', 'tree/a/y.log', 'tree/a/z.log', 'tree/A.txt']);
  });

  it('reports an input that does not exist and one named through a symlink (not followed), and goes on', async () => {
    const { out, state } = await walked(['missing.txt', 'tree/link.txt', 'tree/b.txt']);
    expect(out).toEqual([
      'error missing.txt: no such file or directory',
      'error tree/link.txt: a symlink: not followed, not scanned (name its target instead)',
      'tree/b.txt',
    ]);
    expect(state.skipped).toBe(1);
  });

  it.each([
    ['tree/**/*.log', ['tree/a/y.log', 'tree/a/z.log']],
    ['tree/?.txt', ['tree/A.txt', 'tree/b.txt']],
    ['tree/[ab].txt', ['tree/b.txt']],
    ['tree/a/*.{cfg,log}', ['tree/a/x.cfg', 'tree/a/y.log', 'tree/a/z.log']],
  ])('expands the glob %s relative to cwd, matches sorted', async (glob, files) => {
    const { out, state } = await walked([glob]);
    expect(out).toEqual(files);
    expect(state.unmatched).toEqual([]);
  });

  it('takes what a glob matches as named inputs: directories walked, a symlink reported, a fifo skipped', async () => {
    const { out, skips } = await walked(['tree/*']);
    expect(out).toEqual([
      'tree/A.txt',
      'tree/a/x.cfg',
      'tree/a/y.log',
      'tree/a/z.log',
      'tree/b.txt',
      'error tree/link.txt: a symlink: not followed, not scanned (name its target instead)',
    ]);
    expect(skips).toEqual(['special tree/pipe']);
  });

  it('lists a glob that matches nothing, without an error', async () => {
    const { out, state } = await walked(['tree/*.none', 'nowhere/**']);
    expect(out).toEqual([]);
    expect(state.unmatched).toEqual(['tree/*.none', 'nowhere/**']);
  });
});

describe('walk: followed symlinks are bounded', () => {
  it('walks two directories linking to each other once each, and reports a link to its own directory', async () => {
    const { out, state } = await walked(['loops/a'], { followSymlinks: true });
    expect(out).toEqual([
      'loops/a/f.txt',
      `notice loops/a/self: symlink loop: points to ${tmp.file('loops/a')}, which holds the link; not followed again`,
      'loops/a/to-b/g.txt',
    ]);
    expect(state.followed).toBe(3);
  });

  it('stops following at the bound on links and says how many were left', async () => {
    const { out, state } = await walked(['chain/d0'], { followSymlinks: true }, { ...DEFAULT_LINK_LIMITS, maxLinks: 5 });
    expect(out.filter((l) => l.endsWith('f.txt'))).toHaveLength(6);
    expect(out.at(-1)).toBe(
      'limit chain/d0/next/next/next/next/next/next: symlink not followed, not scanned: the bound of 5 symlinks was reached',
    );
    expect(state.followed).toBe(5);
  });

  it('does not walk a directory again through a link to it', async () => {
    const { out } = await walked(['chain'], { followSymlinks: true });
    expect(out).toEqual(Array.from({ length: 30 }, (_, i) => `chain/d${i}/f.txt`).sort());
  });
});

describe('globToRegExp (used where fs.glob is missing)', () => {
  it.each([
    ['**/*.tgz', ['a.tgz', 'x/y/a.tgz'], ['a.tgz.txt', 'x/a.tar']],
    ['dist/*.{zip,jar}', ['dist/a.zip', 'dist/b.jar'], ['dist/x/a.zip', 'dist/a.whl']],
    ['a?c/[!x]*.log', ['abc/y.log'], ['abc/x.log', 'ac/y.log']],
    ['**', ['a', 'a/b/c'], []],
    ['src/**', ['src/a', 'src/a/b'], ['srcx', 'lib/src/a']],
    ['a/**/b', ['a/b', 'a/x/y/b'], ['a/xb', 'b']],
    ['*.log', ['x.log'], ['x/y.log', 'x.logs']],
    ['a?b', ['axb'], ['a/b', 'ab']],
    ['[a-c]x.[!t]xt', ['bx.sxt'], ['dx.sxt', 'ax.txt']],
    ['{a,{b,c}}.txt', ['a.txt', 'b.txt', 'c.txt'], ['d.txt', '{a,b}.txt']],
    ['a.b+(c)|$^', ['a.b+(c)|$^'], ['axb+(c)|$^', 'a.bb(c)|$^']],
    ['a[b', ['a[b'], ['ab']],
    ['x,y}', ['x,y}'], ['x']],
  ])('globToRegExp(%s)', (glob, yes, no) => {
    const re = globToRegExp(glob);
    for (const p of yes) expect(re.test(p), p).toBe(true);
    for (const p of no) expect(re.test(p), p).toBe(false);
  });
});
