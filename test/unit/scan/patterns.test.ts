import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { BASE_ENCODINGS, buildPatterns, encodeAll, encodeBytes } from '../../../src/scan/patterns.ts';

const VALUE = 'p@ss "wörd"/+?&=';

function forms(value: string): Map<string, string> {
  return new Map(encodeAll(value).map(([encoding, bytes]) => [encoding, bytes.toString('latin1')]));
}

describe('encodeAll', () => {
  const utf8 = Buffer.from(VALUE, 'utf8');
  const b64 = utf8.toString('base64');
  const url = b64.replaceAll('+', '-').replaceAll('/', '_');
  it.each([
    ['raw', utf8],
    ['json', Buffer.from('p@ss \\"wörd\\"/+?&=', 'utf8')],
    ['percent', Buffer.from('p%40ss%20%22w%C3%B6rd%22%2F%2B%3F%26%3D')],
    ['percent-lower', Buffer.from('p%40ss%20%22w%c3%b6rd%22%2f%2b%3f%26%3d')],
    ['form', Buffer.from('p%40ss+%22w%C3%B6rd%22%2F%2B%3F%26%3D')],
    ['hex', Buffer.from(utf8.toString('hex'))],
    ['hex-upper', Buffer.from(utf8.toString('hex').toUpperCase())],
    ['utf16le', Buffer.from(VALUE, 'utf16le')],
    ['base64', Buffer.from(b64)],
    ['base64url', Buffer.from(url)],
    ['base64-nopad', Buffer.from(b64.replace(/=+$/, ''))],
    ['base64url-nopad', Buffer.from(url.replace(/=+$/, ''))],
  ])('%s', (encoding, expected) => {
    expect(forms(VALUE).get(encoding)).toBe(expected.toString('latin1'));
  });

  it('covers every base encoding', () => {
    expect(new Set(forms(VALUE).keys())).toEqual(new Set(BASE_ENCODINGS));
  });
});

describe('base64Embedded', () => {
  it('finds the password in a docker config auth', () => {
    const auth = Buffer.from('octocat:Sup3r-S3cret-T0ken').toString('base64');
    const pattern = buildPatterns([{ name: 'P', value: 'Sup3r-S3cret-T0ken' }]).find((p) => auth.includes(p.bytes.toString('latin1')));
    expect(pattern?.encoding).toBe('base64@2');
  });
});

describe('buildPatterns', () => {
  it('keeps the most specific label for identical bytes and drops nothing distinct', () => {
    const patterns = buildPatterns([{ name: 'TOKEN', value: 'abcdefghijkl' }]);
    const labels = new Map(patterns.map((p) => [p.bytes.toString('latin1'), p.encoding]));
    expect(labels.get('abcdefghijkl')).toBe('raw'); // = json = percent = percent-lower = form
    expect(labels.get(Buffer.from('abcdefghijkl').toString('base64'))).toBe('base64'); // = nopad = url = @0 (12 bytes)
    expect(new Set(patterns.map((p) => p.bytes.toString('latin1'))).size).toBe(patterns.length);
    expect(patterns.map((p) => p.encoding).sort()).toEqual(['base64', 'base64@1', 'base64@2', 'hex', 'hex-upper', 'raw', 'utf16le']);
  });

  it('adds each trimmed line of a multi-line value, labelled as a line', () => {
    const patterns = buildPatterns([{ name: 'KEY', value: '-----BEGIN KEY-----\r\n  line-two-of-the-key  \n\n' }]);
    const raw = patterns.filter((p) => p.encoding === 'raw' || p.encoding === 'line:raw').map((p) => [p.encoding, p.bytes.toString()]);
    expect(raw).toEqual([
      ['raw', '-----BEGIN KEY-----\r\n  line-two-of-the-key  \n\n'],
      ['line:raw', '-----BEGIN KEY-----'],
      ['line:raw', 'line-two-of-the-key'],
    ]);
    expect(patterns.some((p) => p.encoding === 'line:base64@1')).toBe(true);
  });

  it('shares one pattern between secrets with the same value, naming both', () => {
    const patterns = buildPatterns([
      { name: 'B', value: 'same-value-123' },
      { name: 'A', value: 'same-value-123' },
    ]);
    expect(new Set(patterns.map((p) => p.name))).toEqual(new Set(['A, B']));
  });

  it('drops patterns shorter than minLength and empty values', () => {
    expect(buildPatterns([{ name: 'E', value: '' }])).toEqual([]);
    const short = buildPatterns([{ name: 'S', value: 'abcd' }]);
    expect(short.every((p) => p.bytes.length >= 6)).toBe(true);
    expect(short.some((p) => p.encoding === 'raw')).toBe(false);
    expect(buildPatterns([{ name: 'S', value: 'abcd' }], { minLength: 4 }).some((p) => p.encoding === 'raw')).toBe(true);
  });

  it('never carries the value outside the bytes', () => {
    const patterns = buildPatterns([{ name: 'N', value: 'v4lue-that-must-not-leak' }]);
    for (const p of patterns) expect(`${p.name} ${p.encoding}`).not.toContain('v4lue');
  });
});

describe('bytes that are not text (a decoded keystore)', () => {
  // 0xff 0xfe never occur in UTF-8: these bytes are not text, whatever the rest.
  const bytes = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), randomBytes(601)]); // 604 bytes: base64 with '=='
  const patterns = buildPatterns([{ name: 'KEYSTORE', value: bytes }]);
  const find = (haystack: Buffer): string[] => patterns.filter((p) => haystack.includes(p.bytes)).map((p) => p.encoding);

  it('the bytes themselves, not a lossy text of them', () => {
    expect(find(Buffer.concat([Buffer.from('junk'), bytes, Buffer.from('junk')]))).toContain('raw');
    expect(find(Buffer.from(bytes.toString('utf8'), 'utf8'))).not.toContain('raw');
  });

  it.each([
    ['base64', bytes.toString('base64')],
    ['base64-nopad', bytes.toString('base64').replace(/=+$/, '')],
    ['base64url-nopad', bytes.toString('base64url')],
    ['base64url', bytes.toString('base64').replaceAll('+', '-').replaceAll('/', '_')],
    ['hex', bytes.toString('hex')],
    ['hex-upper', bytes.toString('hex').toUpperCase()],
  ])('the stored form it was decoded from: %s', (encoding, stored) => {
    expect(find(Buffer.from(`value: "${stored}"`))).toContain(encoding);
  });

  it.each([76, 64])('base64 wrapped at %i columns (base64, PEM), line by line', (width) => {
    const wrapped = bytes.toString('base64').replace(new RegExp(`.{${width}}`, 'g'), '$&\n');
    const lines = wrapped.split('\n').filter((l) => l.length >= 6);
    for (const line of lines) expect(find(Buffer.from(`  ${line}\n`))).toContain('base64-line');
  });

  it('text escapes are not derived from bytes; bytes that are UTF-8 are searched as that text', () => {
    expect(new Set(encodeBytes(bytes).map(([e]) => e))).not.toContain('json');
    const asText = buildPatterns([{ name: 'T', value: Buffer.from('s3cret-text-value') }]);
    expect(asText).toEqual(buildPatterns([{ name: 'T', value: 's3cret-text-value' }]));
  });
});
