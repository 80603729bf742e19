import { describe, expect, it } from 'vitest';
import { Matcher } from '../../../src/scan/matcher.ts';

/** Every (offset, pattern) where a pattern occurs, by brute force. */
function naive(patterns: Buffer[], text: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = 0; s < text.length; s++) {
    patterns.forEach((p, i) => {
      if (s + p.length <= text.length && text.compare(p, 0, p.length, s, s + p.length) === 0) out.push([s, i]);
    });
  }
  return out;
}

const sorted = (m: Array<[number, number]>): Array<[number, number]> => [...m].sort((a, b) => a[0] - b[0] || a[1] - b[1]);

/** A small deterministic PRNG so failures reproduce. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

function streamed(m: Matcher, text: Buffer, chunkSizes: (i: number) => number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const s = m.stream((o, p) => out.push([o, p]));
  let at = 0;
  for (let i = 0; at < text.length; i++) {
    const n = Math.max(1, chunkSizes(i));
    s.write(text.subarray(at, at + n));
    at += n;
  }
  s.end();
  return out;
}

describe('Matcher', () => {
  it.each([
    [
      'one pattern',
      ['needle'],
      'a needle in a needle stack',
      [
        [2, 0],
        [14, 0],
      ],
    ],
    [
      'overlapping different patterns',
      ['abcdef', 'cdefgh', 'defg'],
      'xxabcdefghxx',
      [
        [2, 0],
        [4, 1],
        [5, 2],
      ],
    ],
    [
      'a pattern inside another',
      ['secret-token', 'token'],
      '..secret-token..',
      [
        [2, 0],
        [9, 1],
      ],
    ],
    [
      'self-overlapping occurrences',
      ['aaaa'],
      'aaaaaa',
      [
        [0, 0],
        [1, 0],
        [2, 0],
      ],
    ],
    [
      'at both ends',
      ['start', 'end!!'],
      'start middle end!!',
      [
        [0, 0],
        [13, 1],
      ],
    ],
    ['binary bytes', ['\x00\x01\x02\xff\xfe'], 'x\x00\x01\x02\xff\xfe\x00', [[1, 0]]],
    ['no match', ['absent-pattern'], 'nothing to see here, nothing at all', []],
  ] as Array<[string, string[], string, Array<[number, number]>]>)('%s', (_label, patterns, text, expected) => {
    const m = new Matcher(patterns.map((p) => Buffer.from(p, 'latin1')));
    expect(m.findAll(Buffer.from(text, 'latin1'))).toEqual(expected);
  });

  it('reports matches in offset order, longer first at one offset', () => {
    const m = new Matcher(['abcdefgh', 'abcdefghijkl', 'abcdefghij'].map((p) => Buffer.from(p)));
    expect(m.findAll(Buffer.from('--abcdefghijkl--'))).toEqual([
      [2, 1],
      [2, 2],
      [2, 0],
    ]);
  });

  it('has no patterns: finds nothing', () => {
    const m = new Matcher([]);
    expect(m.findAll(Buffer.from('anything'))).toEqual([]);
  });

  it('rejects an empty pattern', () => {
    expect(() => new Matcher([Buffer.alloc(0)])).toThrow(/empty pattern/);
  });

  // Random patterns over tiny alphabets make many overlaps; every window/block size is exercised.
  it.each([
    ['ab', 1, 3],
    ['ab', 2, 6],
    ['abc', 3, 12],
    ['abcd', 6, 20],
    ['ab', 8, 40],
  ])('agrees with brute force (alphabet %s, lengths %i..%i), whole and in random chunks', (alphabet, minLen, maxLen) => {
    const rnd = prng(minLen * 1000 + maxLen);
    for (let round = 0; round < 60; round++) {
      const patterns = new Map<string, Buffer>();
      const want = 1 + rnd(12);
      for (let tries = 0; patterns.size < want && tries < 200; tries++) {
        const len = minLen + rnd(maxLen - minLen + 1);
        const p = Array.from({ length: len }, () => alphabet[rnd(alphabet.length)]).join('');
        patterns.set(p, Buffer.from(p));
      }
      const list = [...patterns.values()];
      const text = Buffer.from(Array.from({ length: rnd(600) }, () => alphabet[rnd(alphabet.length)]).join(''));
      const m = new Matcher(list);
      const expected = naive(list, text);
      expect(sorted(m.findAll(text))).toEqual(expected);
      const chunked = streamed(m, text, () => 1 + rnd(maxLen + 3));
      expect(sorted(chunked)).toEqual(expected);
      expect(new Set(chunked.map((x) => x.join())).size).toBe(chunked.length); // never twice
      expect(sorted(streamed(m, text, () => 1))).toEqual(expected);
    }
  });

  it('finds a pattern split across chunk boundaries at every split point', () => {
    const pattern = Buffer.from('ghp_0123456789abcdefghijABCDEFGHIJ');
    const m = new Matcher([pattern, Buffer.from('unrelated-pattern-xyz')]);
    const text = Buffer.concat([Buffer.alloc(1000, 0x2e), pattern, Buffer.alloc(1000, 0x2e)]);
    for (let split = 990; split <= 1040; split++) {
      const out = streamed(m, text, (i) => (i === 0 ? split : 10_000));
      expect(out).toEqual([[1000, 0]]);
    }
  });

  it('carries at most maxLen - 1 bytes between chunks', () => {
    const m = new Matcher([Buffer.from('0123456789'), Buffer.from('abcdefghijklmnopqrst')]);
    expect(m.maxLen).toBe(20);
    const s = m.stream(() => {});
    s.write(Buffer.alloc(100_000, 0x41));
    expect((s as unknown as { pending: Buffer }).pending.length).toBeLessThanOrEqual(19);
  });
});
