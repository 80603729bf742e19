// The encodings masking and the leak scan share, checked against Node's own base64 and base64url of
// random streams: what they produce must be exactly what appears inside an encoded stream.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base64Embedded, toUrlAlphabet } from '../../../src/core/encodings.ts';

const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

/** Where the characters that carry only the bits of `length` bytes after `offset` bytes start and end. */
function span(offset: number, length: number): { start: number; end: number } {
  const start = Math.ceil((offset * 8) / 6);
  return { start, end: Math.max(start, Math.floor(((offset + length) * 8) / 6)) };
}

describe('base64Embedded', () => {
  it('is exactly the characters of base64(prefix + value + suffix) that depend only on the value', () => {
    fc.assert(
      fc.property(bytes(48), bytes(10), bytes(4), (value, prefix, suffix) => {
        const stream = Buffer.concat([prefix, value, suffix]);
        const { start, end } = span(prefix.length, value.length);
        const k = (prefix.length % 3) as 0 | 1 | 2;
        // The same characters whatever the prefix and suffix hold, for the standard and URL alphabets.
        expect(base64Embedded(value, k)).toBe(stream.toString('base64').slice(start, end));
        expect(toUrlAlphabet(base64Embedded(value, k))).toBe(stream.toString('base64url').slice(start, end));
      }),
      { numRuns: 500 },
    );
  });

  it('at offset 0 is the padded base64 without its last, bit-sharing character', () => {
    expect(base64Embedded(Buffer.from('abc'), 0)).toBe('YWJj');
    expect(base64Embedded(Buffer.from('abcd'), 0)).toBe('YWJj' + 'Z');
    expect(Buffer.from('abcd').toString('base64')).toBe('YWJjZA==');
  });

  it('is empty when no character depends on the value alone', () => {
    expect(base64Embedded(Buffer.alloc(0), 0)).toBe('');
    // One byte at offset 1 shares both its characters with neighbours; at offset 2 its low six bits
    // make a character of their own.
    expect(base64Embedded(Buffer.from('a'), 1)).toBe('');
    expect(base64Embedded(Buffer.from('a'), 2)).toBe('h');
  });

  it('covers a password inside a docker config auth (base64 of "user:password")', () => {
    const password = Buffer.from('Sup3r-S3cret-T0ken');
    const auth = Buffer.from(`octocat:${password.toString()}`).toString('base64');
    const k = ('octocat:'.length % 3) as 0 | 1 | 2;
    expect(auth).toContain(base64Embedded(password, k));
    expect(base64Embedded(password, k).length).toBeGreaterThanOrEqual(Math.floor((password.length * 8) / 6) - 1);
  });
});

describe('toUrlAlphabet', () => {
  it("turns Node's base64 into its base64url, padding aside", () => {
    fc.assert(
      fc.property(bytes(64), (value) => {
        expect(toUrlAlphabet(value.toString('base64')).replace(/=+$/, '')).toBe(value.toString('base64url'));
      }),
      { numRuns: 300 },
    );
    // Both characters that differ appear: 0xfb 0xff -> "+/8=" in base64.
    expect(toUrlAlphabet(Buffer.from([0xfb, 0xff]).toString('base64'))).toBe('-_8=');
  });
});
