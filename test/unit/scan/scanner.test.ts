import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { scanAll, type Finding, type ScanEvent } from '../../../src/scan/scanner.ts';
import { tempDir } from './fixtures.ts';

const SECRET = { name: 'DEPLOY_KEY', value: 'S3cr3t/V+lue ü"x>?y=1??>' };
const patterns = buildPatterns([SECRET]);
const tmp = tempDir();

/** Pseudo-random but fixed filler text (log-like) and binary. */
function filler(n: number, seed: number, binary = false): Buffer {
  let x = seed;
  const out = Buffer.alloc(n);
  const words = 'the quick brown fox jumps over lazy dogs request failed retry ok '.split('');
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = binary ? x >>> 24 : (words[(x >>> 16) % words.length] as string).charCodeAt(0);
    if (!binary && (x >>> 8) % 61 === 0) out[i] = 10;
  }
  return out;
}

interface Plant {
  offset: number;
  line: number;
  encoding: string;
}

/** Each pattern of the secret planted once, on its own line, between filler lines. */
function planted(binary: boolean): { data: Buffer; plants: Plant[] } {
  const parts: Buffer[] = [];
  const plants: Plant[] = [];
  let offset = 0;
  let lines = 1;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
    for (const c of b) if (c === 10) lines += 1;
  };
  // Text: no NUL in the first 8 KiB (the UTF-16LE plant has NULs), so a long text header first.
  push(binary ? Buffer.from([0, 1, 2, 3]) : Buffer.concat([Buffer.from('header line\n'), filler(9000, 5)]));
  patterns.forEach((p, i) => {
    push(filler(300 + i * 37, i + 1, binary));
    push(Buffer.from('\n'));
    plants.push({ offset, line: lines, encoding: p.encoding });
    push(p.bytes);
    push(Buffer.from('\n'));
  });
  push(filler(5000, 99, binary));
  return { data: Buffer.concat(parts), plants };
}

const findings = (events: ScanEvent[]): Finding[] => events.filter((e): e is Finding => e.kind === 'finding');
const others = (events: ScanEvent[]): ScanEvent[] => events.filter((e) => e.kind === 'error' || e.kind === 'limit');

beforeAll(() => {
  writeFileSync(tmp.file('planted.txt'), planted(false).data);
  writeFileSync(tmp.file('planted.bin'), planted(true).data);
  // The tree the input and stream tests share (any describe may run first).
  mkdirSync(tmp.file('tree/a/b'), { recursive: true });
  writeFileSync(tmp.file('tree/a/b/deep.log'), `x ${SECRET.value} y\n`);
  writeFileSync(tmp.file('tree/a/top.cfg'), `token=${SECRET.value}\n`);
  writeFileSync(tmp.file('tree/skip.tgz.txt'), 'nothing\n');
  symlinkSync(tmp.file('planted.txt'), tmp.file('tree/link-to-planted'));
  symlinkSync(tmp.file('tree/a'), tmp.file('tree/link-to-dir'));
  writeFileSync(tmp.file('clean.txt'), filler(200_000, 7));
  writeFileSync(tmp.file('clean.bin'), filler(200_000, 8, true));
});
afterAll(() => tmp.dispose());

describe('scan: every encoding, exact offsets', () => {
  it('has a pattern per encoding of the test secret', () => {
    expect(patterns.length).toBe(18); // every base encoding differs for this value
  });

  it.each([
    ['text file, with line numbers', 'planted.txt', false],
    ['binary file, no line numbers', 'planted.bin', true],
  ])('%s', async (_label, file, binary) => {
    const { plants } = planted(binary);
    const events = await scanAll([tmp.file(file)], patterns);
    expect(others(events)).toEqual([]);
    const got = findings(events).map((f) => ({ offset: f.offset, line: f.line, encoding: f.encoding, name: f.name, path: f.path }));
    expect(got).toEqual(
      plants.map((p) => ({
        offset: p.offset,
        line: binary ? undefined : p.line,
        encoding: p.encoding,
        name: 'DEPLOY_KEY',
        path: tmp.file(file),
      })),
    );
  });

  it.each([1, 7, 64, 333, 4096])('finds the same with %i-byte reads (values split across read buffers)', async (chunkSize) => {
    const whole = await scanAll([tmp.file('planted.txt'), tmp.file('planted.bin')], patterns);
    const small = await scanAll([tmp.file('planted.txt'), tmp.file('planted.bin')], patterns, { chunkSize });
    expect(findings(small)).toEqual(findings(whole));
    expect(findings(small)).toHaveLength(2 * patterns.length);
  });

  it('finds nothing in the unplanted corpus', async () => {
    const events = await scanAll([tmp.file('clean.txt'), tmp.file('clean.bin')], patterns);
    expect(events).toEqual([expect.objectContaining({ kind: 'done', files: 2, bytes: 400_000 })]);
  });

  it('reports the enclosing match only: whole value over its lines, full base64 over its cores', async () => {
    const value = 'first-line-of-key\nsecond-line-of-key';
    const pats = buildPatterns([{ name: 'K', value }]);
    const b64 = Buffer.from(value).toString('base64');
    writeFileSync(tmp.file('enclosing.txt'), `a ${value} b\nc ${b64} d\ne second-line-of-key f\n`);
    const got = findings(await scanAll([tmp.file('enclosing.txt')], pats)).map((f) => [f.offset, f.line, f.encoding]);
    const at = (s: string): number => Buffer.from(`a ${value} b\nc ${b64} d\ne second-line-of-key f\n`).indexOf(s);
    expect(got).toEqual([
      [2, 1, 'raw'],
      [at(b64), 3, 'base64'],
      [at('second-line-of-key f'), 4, 'line:raw'],
    ]);
  });

  it('never puts a value (or an encoding of it) in an event', async () => {
    const events = await scanAll([tmp.file('planted.txt'), tmp.file('nope'), tmp.file('planted.bin')], patterns);
    const text = JSON.stringify(events);
    for (const p of patterns) expect(text).not.toContain(p.bytes.toString('latin1'));
    expect(text).not.toContain('S3cr3t');
    expect(text).not.toContain('lue ü');
  });
});

describe('scan: inputs', () => {
  it('walks directories recursively in name order, never follows symlinks, counts them', async () => {
    const events = await scanAll(['tree'], patterns, { cwd: tmp.dir });
    expect(findings(events).map((f) => [f.path, f.offset, f.line])).toEqual([
      ['tree/a/b/deep.log', 2, 1],
      ['tree/a/top.cfg', 6, 1],
    ]);
    expect(events.at(-1)).toMatchObject({ kind: 'done', files: 3, skipped: 2 });
  });

  it('reports a path that does not exist and goes on', async () => {
    const events = await scanAll(['missing.txt', 'tree/a/top.cfg'], patterns, { cwd: tmp.dir });
    expect(events[0]).toEqual({ kind: 'error', path: 'missing.txt', message: 'no such file or directory' });
    expect(findings(events)).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ kind: 'done', files: 1 });
  });

  it('expands globs (relative to cwd), each file once', async () => {
    const events = await scanAll(['tree/**/*.log', 'tree/a/*.cfg', 'tree/a/b/deep.log', 'tree/**/*.none'], patterns, { cwd: tmp.dir });
    expect(findings(events).map((f) => f.path)).toEqual(['tree/a/b/deep.log', 'tree/a/top.cfg']);
    expect(others(events)).toEqual([]);
  });

  it('reports progress at most once per interval', async () => {
    const seen: Array<{ files: number; bytes: number }> = [];
    await scanAll([tmp.file('planted.txt'), tmp.file('clean.txt')], patterns, {
      chunkSize: 1000,
      progressIntervalMs: 0,
      onProgress: (p) => seen.push(p),
    });
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.at(-1)).toMatchObject({ files: 2 });
    const none: unknown[] = [];
    await scanAll([tmp.file('clean.txt')], patterns, { progressIntervalMs: 60_000, onProgress: (p) => none.push(p) });
    expect(none).toEqual([]);
  });

  it('reports an unreadable file and goes on', async () => {
    // As root (CI) no mode bit stops a read, so use a file whose read fails for anyone:
    // /proc/self/mem has no mapping at offset 0 (EIO). Otherwise a file with mode 000 (EACCES).
    let locked = '/proc/self/mem';
    if (process.getuid?.() !== 0) {
      const { chmodSync } = await import('node:fs');
      locked = tmp.file('locked.txt');
      writeFileSync(locked, SECRET.value);
      chmodSync(locked, 0);
    }
    const events = await scanAll([locked, tmp.file('tree/a/top.cfg')], patterns);
    expect(events[0]).toMatchObject({ kind: 'error', path: locked });
    expect((events[0] as { message: string }).message).toMatch(/^(cannot open|read failed) \((EACCES|EIO)\)$/);
    expect(findings(events)).toHaveLength(1);
  });
});

describe('scan: byte streams', () => {
  const stream = (path: string, ...chunks: Array<Buffer | Error>): { path: string; open: () => AsyncIterable<Buffer> } => ({
    path,
    open: async function* () {
      for (const c of chunks) {
        if (c instanceof Error) throw c;
        yield c;
      }
    },
  });

  it('scans streams after the paths, under the name given, and reports one that fails after what it held', async () => {
    const text = Buffer.from(`a ${SECRET.value}\n`);
    const events = await scanAll([tmp.file('tree/a/top.cfg')], patterns, {
      streams: [
        stream('image:app', text.subarray(0, 5), text.subarray(5)),
        stream('image:broken', Buffer.concat([text, Buffer.alloc(1000, 0x20)]), new Error('docker save app failed: no such image')),
        stream('image:next', text),
      ],
    });
    expect(events.filter((e) => e.kind !== 'done' && (e.kind !== 'finding' || e.encoding === 'raw'))).toEqual([
      { kind: 'finding', path: tmp.file('tree/a/top.cfg'), offset: 6, line: 1, name: 'DEPLOY_KEY', encoding: 'raw' },
      { kind: 'finding', path: 'image:app', offset: 2, line: 1, name: 'DEPLOY_KEY', encoding: 'raw' },
      { kind: 'finding', path: 'image:broken', offset: 2, line: 1, name: 'DEPLOY_KEY', encoding: 'raw' },
      { kind: 'error', path: 'image:broken', message: 'read failed (docker save app failed: no such image)' },
      { kind: 'finding', path: 'image:next', offset: 2, line: 1, name: 'DEPLOY_KEY', encoding: 'raw' },
    ]);
    expect(events.at(-1)).toMatchObject({ kind: 'done', files: 4 });
  });

  it('reports anything else that stops an input as an internal error under its path, and goes on', async () => {
    const notBytes = {
      path: 'image:odd',
      open: async function* () {
        yield 'not a buffer' as unknown as Buffer;
      },
    };
    const events = await scanAll([], patterns, { streams: [notBytes, stream('image:next', Buffer.from(SECRET.value))] });
    expect(events[0]).toEqual({ kind: 'error', path: 'image:odd', message: expect.stringMatching(/^internal error \(TypeError: /) });
    expect(findings(events).map((f) => f.path)).toContain('image:next');
  });

  it('closes a stream it gives up on (a bomb stopped by the ratio bound)', async () => {
    let closed = false;
    const bomb = gzipSync(Buffer.alloc(64 * 2 ** 20));
    const endless = {
      path: 'image:bomb',
      open: async function* () {
        try {
          for (let at = 0; at < bomb.length; at += 4096) yield bomb.subarray(at, at + 4096);
        } finally {
          closed = true;
        }
      },
    };
    const events = await scanAll([], patterns, { streams: [endless] });
    expect(events[0]).toEqual({ kind: 'limit', path: 'image:bomb', message: 'gzip decompression ratio above 200:1 (max ratio)' });
    expect(closed).toBe(true);
  });
});
