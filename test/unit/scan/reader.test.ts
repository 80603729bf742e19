import { describe, expect, it } from 'vitest';
import { Reader, ScanStop } from '../../../src/scan/reader.ts';

/** A Reader over the given chunks (empty ones included), then `fail` thrown if given. */
function readerOf(chunks: string[], fail?: Error): { reader: Reader; pulls: () => number } {
  let i = 0;
  let pulls = 0;
  const reader = new Reader(async () => {
    pulls += 1;
    if (i < chunks.length) return Buffer.from(chunks[i++] as string);
    if (fail !== undefined) throw fail;
    return null;
  });
  return { reader, pulls: () => pulls };
}

async function all(r: Reader, max?: number): Promise<string[]> {
  const out: string[] = [];
  for (let c = await r.next(max); c !== null; c = await r.next(max)) out.push(c.toString());
  return out;
}

describe('Reader', () => {
  it('hands out chunks in order, at most `max` bytes each, skipping empty ones; pos counts them', async () => {
    const { reader } = readerOf(['abcde', '', 'fg']);
    expect(await all(reader, 2)).toEqual(['ab', 'cd', 'e', 'fg']);
    expect(reader.pos).toBe(7);
  });

  it('stops pulling at the end', async () => {
    const { reader, pulls } = readerOf(['a']);
    await all(reader);
    expect(await reader.next()).toBeNull();
    expect(pulls()).toBe(2);
  });

  it('gives unread bytes back first, and pos goes back with them', async () => {
    const { reader } = readerOf(['abcdef']);
    const first = (await reader.next()) as Buffer;
    reader.unread(first.subarray(4));
    reader.unread(Buffer.alloc(0));
    expect(reader.pos).toBe(4);
    expect(await all(reader)).toEqual(['ef']);
  });

  it('exact: gathers n bytes over chunks into a copy, or fewer at the end', async () => {
    const { reader } = readerOf(['ab', 'cd', 'ef']);
    expect((await reader.exact(5)).toString()).toBe('abcde');
    expect((await reader.exact(5)).toString()).toBe('f');
    expect((await reader.exact(5)).length).toBe(0);
  });

  it('exact: keeps the bytes read before a failure and throws it on the next read', async () => {
    const boom = new ScanStop('error', 'f', 0, 'read failed (EIO)');
    const { reader } = readerOf(['ab', 'cd'], boom);
    expect((await reader.exact(10)).toString()).toBe('abcd');
    await expect(reader.next()).rejects.toBe(boom);
    await expect(reader.next()).rejects.toBe(boom);
  });

  it('peek looks without consuming; skip and drain discard', async () => {
    const { reader } = readerOf(['abc', 'def', 'ghi']);
    expect((await reader.peek(4)).toString()).toBe('abcd');
    expect(reader.pos).toBe(0);
    expect(await reader.skip(5)).toBe(5);
    expect((await reader.next())?.toString()).toBe('f');
    await reader.drain();
    expect(reader.pos).toBe(9);
    expect(await reader.skip(3)).toBe(0);
  });

  it('sub: the next n bytes as a reader, leaving the rest to the parent; short() when they are missing', async () => {
    const { reader } = readerOf(['abc', 'defgh']);
    const sub = reader.sub(4, () => new Error('short'));
    expect(await all(sub)).toEqual(['abc', 'd']);
    expect(await all(reader)).toEqual(['efgh']);
    const cut = readerOf(['ab']).reader.sub(4, () => new ScanStop('error', 'x', 1, 'truncated member'));
    await expect(all(cut)).rejects.toThrow('truncated member');
  });

  it('skip seeks the source past bytes it has not handed out (unread bytes first), through sub readers too', async () => {
    const data = Buffer.from('0123456789abcdefghij');
    let at = 0;
    const reads: number[] = [];
    const seeks: number[] = [];
    const source = new Reader(
      async () => {
        if (at >= data.length) return null;
        reads.push(at);
        const chunk = data.subarray(at, at + 4);
        at += chunk.length;
        return chunk;
      },
      async (n) => {
        const passed = Math.min(n, data.length - at);
        seeks.push(passed);
        at += passed;
        return passed;
      },
    );
    expect((await source.next(2))?.toString()).toBe('01'); // '23' stays unread
    const sub = source.sub(12, () => new Error('short'));
    expect(await sub.skip(9)).toBe(9); // '23' from the stack, then 7 bytes seeked
    expect(seeks).toEqual([7]);
    expect(await all(sub)).toEqual(['bcd']);
    expect(await all(source)).toEqual(['e', 'fghi', 'j']); // 'e' was read with 'bcd' and given back
    expect(reads).toEqual([0, 11, 15, 19]);
    expect(source.pos).toBe(20);
    // A member longer than what is left: short(), as when it is read.
    const rest = new Reader(
      async () => null,
      async () => 0,
    ).sub(5, () => new Error('truncated member'));
    await expect(rest.drain()).rejects.toThrow('truncated member');
  });

  it('ScanStop carries its kind, path and archive level', () => {
    const stop = new ScanStop('limit', 'a.tar!b', 1, 'more than 10 members (max members)');
    expect(stop).toBeInstanceOf(Error);
    expect([stop.name, stop.kind, stop.path, stop.level, stop.message]).toEqual([
      'ScanStop',
      'limit',
      'a.tar!b',
      1,
      'more than 10 members (max members)',
    ]);
  });
});
