// One input scanned by the code both the scan's thread and its workers run: a file, a byte range of
// one (a handed-off tar member: its own path, offsets and lines, not counted as a file), a stream,
// and what cannot be opened.
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../src/scan/containers/index.ts';
import { InputScanner, type Range, type ScanEvent } from '../../../src/scan/input-scan.ts';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { tar, tempDir } from './fixtures.ts';

const value = 'in-put-sc4n-s3cret-v4lue';
const patterns = buildPatterns([{ name: 'V', value }]);
const tmp = tempDir();
afterAll(() => tmp.dispose());

async function collect(events: AsyncIterable<ScanEvent>): Promise<ScanEvent[]> {
  const out: ScanEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('InputScanner', () => {
  it('file: findings with offsets and lines, counted as a file; one that cannot be opened is an error', async () => {
    writeFileSync(tmp.file('a.txt'), `one\ntwo ${value}\n`);
    const s = new InputScanner(patterns, { limits: { ...DEFAULT_LIMITS }, chunkSize: 1024 });
    expect(await collect(s.file(tmp.file('a.txt'), 'a.txt'))).toEqual([
      { kind: 'finding', path: 'a.txt', offset: 8, line: 2, name: 'V', encoding: 'raw' },
    ]);
    expect(await collect(s.file(tmp.file('gone'), 'gone'))).toEqual([{ kind: 'error', path: 'gone', message: 'cannot open (ENOENT)' }]);
    expect(s.counters).toEqual({ files: 1, bytes: 4 + 4 + value.length + 1, members: 0 });
  });

  it('range: a tar member on disk as the walk of its archive would report it', async () => {
    const member = `x\ny\n${value}\n`;
    const archive = tar([
      { name: 'first', data: 'nothing here\n' },
      { name: 'dir/member', data: member },
    ]);
    writeFileSync(tmp.file('b.tar'), archive);
    const offered: Range[] = [];
    const walker = new InputScanner(patterns, {
      limits: { ...DEFAULT_LIMITS },
      chunkSize: 7,
      handOff: (r) => (r.path.endsWith('member') ? offered.push(r) > 0 : false),
    });
    // The member handed off is not scanned by the archive's walk.
    expect(await collect(walker.file(tmp.file('b.tar'), 'b.tar'))).toEqual([]);
    expect(offered).toEqual([
      { file: tmp.file('b.tar'), display: 'b.tar', start: 3 * 512, size: member.length, path: 'b.tar!dir/member', depth: 1 },
    ]);
    const s = new InputScanner(patterns, { limits: { ...DEFAULT_LIMITS }, chunkSize: 5 });
    expect(await collect(s.range(offered[0] as Range))).toEqual([
      { kind: 'finding', path: 'b.tar!dir/member', offset: 4, line: 3, name: 'V', encoding: 'raw' },
    ]);
    expect(s.counters).toEqual({ files: 0, bytes: member.length, members: 1 });
    const missing = { ...(offered[0] as Range), file: tmp.file('nope') };
    expect(await collect(s.range(missing))).toEqual([{ kind: 'error', path: 'b.tar', message: 'cannot open (ENOENT)' }]);
  });

  it('stream: scanned as it is read; a failing stream is an error under its name', async () => {
    const s = new InputScanner(patterns, { limits: { ...DEFAULT_LIMITS }, chunkSize: 1024 });
    const ok = async function* (): AsyncGenerator<Buffer> {
      yield Buffer.from(`ENV A=${value.slice(0, 5)}`);
      yield Buffer.from(`${value.slice(5)}\n`);
    };
    expect(await collect(s.stream('image:x', ok))).toEqual([
      { kind: 'finding', path: 'image:x', offset: 6, line: 1, name: 'V', encoding: 'raw' },
    ]);
    const bad = async function* (): AsyncGenerator<Buffer> {
      yield Buffer.from('abc');
      throw new Error('docker save x failed: no such image');
    };
    expect(await collect(s.stream('image:y', bad))).toEqual([
      { kind: 'error', path: 'image:y', message: 'read failed (docker save x failed: no such image)' },
    ]);
    expect(s.counters.files).toBe(2);
  });
});
