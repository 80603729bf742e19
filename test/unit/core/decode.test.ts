// The strict decoders behind `?encoding=` and `secret-encoding`: both base64 alphabets, padded or
// not, wrapped or not; hex in either case; utf8 as stored; and what is refused, in words that never
// hold the value. Also what counts as text (valid UTF-8 without a NUL).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeBase64,
  DecodeError,
  decodeHex,
  decodeSelected,
  decodeValue,
  fileContent,
  isBinary,
  isText,
  maskTexts,
} from '../../../src/core/decode.ts';
import { SecretError } from '../../../src/core/errors.ts';

// Bytes that give '+', '/' (standard) and '-', '_' (URL-safe) and need padding: 0xfb 0xff 0xbf ...
const BYTES = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83, 0xfe]);
const STD = BYTES.toString('base64'); // "+/+/ABCD/g==" shape: both special characters and '=='

describe('decodeBase64', () => {
  it.each([
    ['standard, padded', STD],
    ['standard, unpadded', STD.replace(/=+$/, '')],
    ['URL-safe, padded', STD.replaceAll('+', '-').replaceAll('/', '_')],
    ['URL-safe, unpadded', BYTES.toString('base64url')],
    ['wrapped with line breaks and spaces', `${STD.slice(0, 4)}\n${STD.slice(4, 8)}\r\n ${STD.slice(8)}\n`],
  ])('%s', (_, stored) => {
    expect(STD).toMatch(/[+/].*==$/);
    expect(decodeBase64(stored).equals(BYTES)).toBe(true);
  });

  it('decodes what `base64` (76 columns) wraps, byte for byte', () => {
    const bytes = randomBytes(1000);
    const wrapped = bytes.toString('base64').replace(/.{76}/g, '$&\n');
    expect(decodeBase64(wrapped).equals(bytes)).toBe(true);
    expect(decodeBase64('').length).toBe(0);
  });

  it.each([
    ['a character outside the alphabet', 'QUJD*EVG', /character at offset 4 is not in the base64 alphabet/],
    ['both alphabets mixed', 'ab+c-d__', /mixes the standard/],
    ['padding inside', 'QQ==QUJD', /'=' inside the text/],
    ['too much padding', 'QQ===', /padding does not fit/],
    ['padding that does not fit the length', 'QUI==', /padding does not fit/],
    ['a length no base64 has', 'QUJDR', /length \(5 characters without padding\) cannot be base64/],
  ])('refuses %s, without showing it', (_, stored, message) => {
    let error: unknown;
    try {
      decodeBase64(stored);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain(stored);
  });
});

describe('decodeHex', () => {
  it.each([
    ['lower case', BYTES.toString('hex')],
    ['upper case', BYTES.toString('hex').toUpperCase()],
    [
      'spaced and wrapped',
      BYTES.toString('hex')
        .replace(/../g, '$& ')
        .replace(/(.{9})/, '$1\n'),
    ],
  ])('%s', (_, stored) => {
    expect(decodeHex(stored).equals(BYTES)).toBe(true);
  });

  it.each([
    ['a character that is no hex digit', 'abcg12', /character at offset 3 is not a hex digit/],
    ['an odd number of digits', 'abc', /odd number of hex digits \(3\)/],
    ['a 0x prefix', '0xab', /offset 1/],
  ])('refuses %s', (_, stored, message) => {
    expect(() => decodeHex(stored)).toThrow(message);
  });
});

describe('isText', () => {
  it.each([
    ['ASCII', Buffer.from('hello'), true],
    ['UTF-8', Buffer.from('wörd ✓'), true],
    ['empty', Buffer.alloc(0), true],
    ['a NUL', Buffer.from('a\0b'), false],
    ['invalid UTF-8', Buffer.from([0xc3, 0x28]), false],
    ['a lone continuation byte', Buffer.from([0x80]), false],
  ])('%s: %s', (_, bytes, text) => {
    expect(isText(bytes)).toBe(text);
  });
});

describe('decodeValue', () => {
  it('utf8 delivers the value as stored, a JSON value as JSON text, and decodes nothing', () => {
    expect(decodeValue('aGVsbG8=', 'utf8')).toEqual({ value: 'aGVsbG8=' });
    expect(decodeValue({ a: 1 }, 'utf8')).toEqual({ value: '{"a":1}' });
  });

  it('a value that decodes to text is that text, and keeps its stored form', () => {
    const out = decodeValue(Buffer.from('line one\nline two').toString('base64'), 'base64');
    expect(out.value).toBe('line one\nline two');
    expect(out.decoded).toMatchObject({ encoding: 'base64', text: true, stored: 'bGluZSBvbmUKbGluZSB0d28=' });
    expect(isBinary(out)).toBe(false);
    expect(fileContent(out)).toEqual(Buffer.from('line one\nline two'));
  });

  it('bytes that are not text: the file gets them exactly; the text stays the stored form', () => {
    const out = decodeValue(BYTES.toString('hex'), 'hex');
    expect(out.decoded?.text).toBe(false);
    expect(isBinary(out)).toBe(true);
    expect(out.value).toBe(BYTES.toString('hex'));
    expect(Buffer.from(fileContent(out)).equals(BYTES)).toBe(true);
  });

  it('only strings are decoded', () => {
    expect(() => decodeValue(42, 'base64')).toThrow(/a JSON number, not base64 text/);
    expect(() => decodeValue(['a'], 'hex')).toThrow(/a JSON array, not hex text/);
  });
});

describe('decodeSelected', () => {
  it('names the line and says what to do, never the value', () => {
    const stored = 'not*base64*at*all';
    let error: unknown;
    try {
      decodeSelected(stored, 'base64', () => "secrets line 3: the value of key 'p12' at 'secret/data/ci'");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SecretError);
    expect((error as Error).message).toBe(
      "secrets line 3: the value of key 'p12' at 'secret/data/ci' is not valid base64 (a character at offset 3 is not in the base64 alphabet); store it base64-encoded, or give this line another ?encoding= (utf8: as stored)",
    );
  });
});

describe('maskTexts', () => {
  it('the stored form always; the decoded text only when the bytes are text', () => {
    const text = decodeValue(Buffer.from('s3cret-value').toString('base64'), 'base64').decoded;
    const binary = decodeValue(BYTES.toString('base64'), 'base64').decoded;
    expect(text && maskTexts(text)).toEqual([Buffer.from('s3cret-value').toString('base64'), 's3cret-value']);
    expect(binary && maskTexts(binary)).toEqual([BYTES.toString('base64')]);
  });
});
