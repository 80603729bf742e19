import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Lines, linesFor, TEXT_SNIFF } from '../../../src/scan/lines.ts';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { scanAll, type Finding } from '../../../src/scan/scanner.ts';
import { tempDir } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.dispose());

// LF, CRLF, a lone CR (not a line end), an empty line, a multi-byte character.
const TEXT = Buffer.from('first\r\nsecond\n\nthird\rstill third ü\nfourth\r\n'.repeat(3) + 'last');
const MAX_LEN = 6; // longest pattern: a match starts at most 5 bytes before the current chunk

/** The 1-based line of a byte offset, counted the slow way. */
const lineOf = (text: Buffer, offset: number): number => 1 + text.subarray(0, offset).filter((c) => c === 10).length;

function chunks(text: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < text.length; at += size) out.push(text.subarray(at, at + size));
  return out;
}

/** Every offset a match ending in the chunk at `start` could start at. */
function window(start: number, chunk: Buffer): number[] {
  const from = Math.max(0, start - (MAX_LEN - 1));
  return Array.from({ length: start + chunk.length - from }, (_, i) => from + i);
}

describe('Lines', () => {
  it.each([1, 2, 3, 5, 7, 16, 1000])(
    'counts LF-ended lines of a stream fed in %i-byte chunks, for offsets in and before the chunk',
    async (size) => {
      const lines = new Lines(MAX_LEN);
      let start = 0;
      for (const chunk of chunks(TEXT, size)) {
        lines.feed(chunk);
        for (const offset of window(start, chunk)) expect(await lines.lineAt(offset), `offset ${offset}`).toBe(lineOf(TEXT, offset));
        start += chunk.length;
      }
    },
  );

  it('counts nothing for a blob on disk until asked, then the bytes before the chunk from the disk, from the blob start', async () => {
    const prefix = Buffer.from('not\nthis\nblob\n');
    writeFileSync(tmp.file('member.bin'), Buffer.concat([prefix, TEXT]));
    for (const size of [1, 4, 9, 1000]) {
      const parts = chunks(TEXT, size);
      for (let first = 0; first < parts.length; first += 1) {
        const lines = new Lines(MAX_LEN, { file: tmp.file('member.bin'), start: prefix.length });
        let start = 0;
        for (const [i, chunk] of parts.entries()) {
          lines.feed(chunk);
          if (i >= first)
            for (const offset of window(start, chunk))
              expect(await lines.lineAt(offset), `${size} ${first} ${offset}`).toBe(lineOf(TEXT, offset));
          start += chunk.length;
        }
      }
    }
  });

  it('tells text from binary by a NUL in the first TEXT_SNIFF bytes', () => {
    expect(TEXT_SNIFF).toBe(8192);
    expect(linesFor(Buffer.from('plain\ntext\n'), MAX_LEN)).toBeInstanceOf(Lines);
    expect(linesFor(Buffer.from([0x41, 0, 0x42]), MAX_LEN)).toBeUndefined();
    expect(linesFor(Buffer.concat([Buffer.alloc(TEXT_SNIFF, 0x41), Buffer.from([0])]), MAX_LEN)).toBeInstanceOf(Lines);
  });
});

describe('line numbers of findings', () => {
  const SECRET = { name: 'K', value: 'line-test-value-7f3a' };
  const patterns = buildPatterns([SECRET]);
  const scanText = async (name: string, data: Buffer | string, chunkSize?: number): Promise<Array<[number, number | undefined]>> => {
    writeFileSync(tmp.file(name), data);
    const events = await scanAll([tmp.file(name)], patterns, chunkSize === undefined ? {} : { chunkSize });
    return events.filter((e): e is Finding => e.kind === 'finding').map((f) => [f.offset, f.line]);
  };

  it('counts CRLF lines as lines and a lone CR as none', async () => {
    const text = `a\r\nb\r\n${SECRET.value}\r\nc\rd ${SECRET.value}\n`;
    expect(await scanText('crlf.txt', text)).toEqual([
      [6, 3],
      [text.lastIndexOf(SECRET.value), 4],
    ]);
  });

  it('gives the line where a value starts when it is split across reads, whatever the read size', async () => {
    const text = `${'short line\n'.repeat(40)}x ${SECRET.value} y\n${'more\n'.repeat(10)}${SECRET.value}`;
    const expected = [
      [text.indexOf(SECRET.value), 41],
      [text.lastIndexOf(SECRET.value), 52],
    ];
    for (const chunkSize of [1, 3, 7, 20, 64, 451, 452, 453, 1 << 20])
      expect(await scanText(`split-${chunkSize}.txt`, text, chunkSize), `${chunkSize}`).toEqual(expected);
  });

  it('counts the lines before a first finding far into a large file (read again from disk)', async () => {
    const filler = Buffer.alloc(6 * 2 ** 20, 'ab\n');
    const text = Buffer.concat([filler, Buffer.from(`${SECRET.value}\n`)]);
    expect(await scanText('large.txt', text)).toEqual([[filler.length, filler.length / 3 + 1]]);
  });

  it('gives no line for binary (a NUL early) and lines for text with a NUL after the first 8 KiB', async () => {
    const late = Buffer.concat([Buffer.alloc(TEXT_SNIFF, 'a'), Buffer.from(`\0\n${SECRET.value}`)]);
    expect(await scanText('late-nul.txt', late)).toEqual([[TEXT_SNIFF + 2, 2]]);
    expect(await scanText('early-nul.bin', `\0\n${SECRET.value}`)).toEqual([[2, undefined]]);
  });
});
