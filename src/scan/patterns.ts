// The byte patterns a leak scan looks for: the exact values a job was given, in the encodings they
// take on their way into artifacts (config files, URLs, JSON, logs, docker config.json, Windows
// strings). Every pattern carries the secret's name and the encoding, never anything derived from the
// value that could end up in a message.
//
// Minimum length (default 6 bytes) is a trade-off:
// - false positives: a 4-byte password such as "test" or the 5-char base64 core of a 4-byte value
//   occurs by chance in any large artifact; every pattern below the bound is dropped, so a very
//   short secret is not searched for at all (the runner's masker has no minimum; a scan would only
//   produce noise);
// - speed: the matcher skips ahead by at most (shortest pattern - 2) bytes per step, so one short
//   pattern slows the whole scan down: ~1.6 GB/s in memory when the shortest is 16 bytes, ~0.8 GB/s
//   at 8, ~0.7 GB/s at 6 (see matcher.ts).
// Lowering minLength finds short values and costs speed and precision; raising it does the opposite.

import { isUtf8 } from 'node:buffer';
import { base64Embedded, toUrlAlphabet } from '../core/encodings.ts';

/** Encodings of a whole value; `line:<encoding>` is the same for one line of a multi-line value. */
export const BASE_ENCODINGS = [
  'raw',
  'json',
  'percent',
  'percent-lower',
  'form',
  'hex',
  'hex-upper',
  'utf16le',
  'base64',
  'base64url',
  'base64-nopad',
  'base64url-nopad',
  'base64@0',
  'base64@1',
  'base64@2',
  'base64url@0',
  'base64url@1',
  'base64url@2',
] as const;

export type BaseEncoding = (typeof BASE_ENCODINGS)[number];
/** `base64-line`: one line of the standard base64 of bytes that are not text, wrapped as `base64` (76) or PEM (64) wrap it. */
export type Encoding = BaseEncoding | `line:${BaseEncoding}` | 'base64-line';

/** Where `base64` (coreutils) and PEM/`openssl base64` wrap their output. */
const WRAP_WIDTHS = [76, 64] as const;

export interface Pattern {
  bytes: Buffer;
  /** The secret's name (several names joined with ', ' when different secrets share a value). */
  name: string;
  encoding: Encoding;
}

export interface Secret {
  name: string;
  /**
   * The value: text, or the bytes of a file. Bytes that are valid UTF-8 are searched as that text;
   * other bytes (a decoded keystore) as bytes, with their hex and base64 forms (encodeBytes).
   */
  value: string | Uint8Array;
}

export interface PatternOptions {
  /** Patterns shorter than this many bytes are dropped (default 6). */
  minLength?: number;
}

export const DEFAULT_MIN_LENGTH = 6;

function percent(value: string): string | undefined {
  try {
    return encodeURIComponent(value);
  } catch {
    return undefined; // lone surrogate: no such URL form exists
  }
}

/** Every encoding of one text (a whole value or one line of it), as [encoding, bytes]. */
export function encodeAll(text: string): Array<[BaseEncoding, Buffer]> {
  const utf8 = Buffer.from(text, 'utf8');
  const out: Array<[BaseEncoding, Buffer]> = [];
  const add = (encoding: BaseEncoding, form: string | Buffer | undefined): void => {
    if (form === undefined || form.length === 0) return;
    out.push([encoding, typeof form === 'string' ? Buffer.from(form, 'latin1') : form]);
  };
  out.push(['raw', utf8]);
  out.push(['json', Buffer.from(JSON.stringify(text).slice(1, -1), 'utf8')]);
  const pct = percent(text);
  add('percent', pct);
  add(
    'percent-lower',
    pct?.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  );
  add('form', new URLSearchParams([['k', text]]).toString().slice(2));
  add('hex', utf8.toString('hex'));
  add('hex-upper', utf8.toString('hex').toUpperCase());
  add('utf16le', Buffer.from(text, 'utf16le'));
  const b64 = utf8.toString('base64');
  add('base64', b64);
  add('base64url', toUrlAlphabet(b64));
  add('base64-nopad', b64.replace(/=+$/, ''));
  add('base64url-nopad', toUrlAlphabet(b64).replace(/=+$/, ''));
  for (const k of [0, 1, 2] as const) {
    const core = base64Embedded(utf8, k);
    add(`base64@${k}`, core);
    add(`base64url@${k}`, toUrlAlphabet(core));
  }
  return out;
}

/**
 * Every encoding of bytes that are not text (a keystore decoded from base64): the bytes themselves,
 * hex, and base64 in every form encodeAll gives text. That covers the stored form a `?encoding=`
 * line was decoded from (its base64, URL-safe or not, padded or not; its hex in either case), which
 * is what a workflow that copies the Vault value (not the file) would leak. Text escapes (JSON,
 * percent, UTF-16) are left out: they apply to text.
 */
export function encodeBytes(bytes: Buffer): Array<[BaseEncoding, Buffer]> {
  const out: Array<[BaseEncoding, Buffer]> = [];
  const add = (encoding: BaseEncoding, form: string | Buffer): void => {
    if (form.length > 0) out.push([encoding, typeof form === 'string' ? Buffer.from(form, 'latin1') : form]);
  };
  add('raw', bytes);
  add('hex', bytes.toString('hex'));
  add('hex-upper', bytes.toString('hex').toUpperCase());
  const b64 = bytes.toString('base64');
  add('base64', b64);
  add('base64url', toUrlAlphabet(b64));
  add('base64-nopad', b64.replace(/=+$/, ''));
  add('base64url-nopad', toUrlAlphabet(b64).replace(/=+$/, ''));
  for (const k of [0, 1, 2] as const) {
    const core = base64Embedded(bytes, k);
    add(`base64@${k}`, core);
    add(`base64url@${k}`, toUrlAlphabet(core));
  }
  return out;
}

/** The lines of the standard base64 of `bytes` as wrapped at each of WRAP_WIDTHS (the last line of each included). */
export function wrappedBase64Lines(bytes: Buffer): Buffer[] {
  const b64 = bytes.toString('base64');
  const lines: Buffer[] = [];
  for (const width of WRAP_WIDTHS) {
    if (b64.length <= width) continue;
    for (let at = 0; at < b64.length; at += width) lines.push(Buffer.from(b64.slice(at, at + width), 'latin1'));
  }
  return lines;
}

/** The trimmed, non-empty lines of a multi-line value that differ from the value itself. */
function linesOf(value: string): string[] {
  const lines = new Set<string>();
  for (const line of value.split(/\r\n|\r|\n/)) {
    const trimmed = line.trim();
    if (trimmed !== '' && trimmed !== value) lines.add(trimmed);
  }
  return [...lines];
}

/**
 * All patterns for the given secrets, deduplicated by bytes. When two derivations give the same
 * bytes the most specific label wins (whole value before a line; order of BASE_ENCODINGS: raw before
 * json before percent ... before the embedded base64 cores); different secrets with the same value
 * share one pattern whose name lists them all.
 */
export function buildPatterns(secrets: ReadonlyArray<Secret>, opts: PatternOptions = {}): Pattern[] {
  const minLength = Math.max(1, opts.minLength ?? DEFAULT_MIN_LENGTH);
  const rank = (encoding: Encoding): number => {
    if (encoding === 'base64-line') return 2 * BASE_ENCODINGS.length;
    const line = encoding.startsWith('line:');
    const base = (line ? encoding.slice(5) : encoding) as BaseEncoding;
    return (line ? BASE_ENCODINGS.length : 0) + BASE_ENCODINGS.indexOf(base);
  };
  const byBytes = new Map<string, { bytes: Buffer; names: Set<string>; encoding: Encoding }>();
  const add = (name: string, encoding: Encoding, bytes: Buffer): void => {
    if (bytes.length < minLength) return;
    const key = bytes.toString('latin1');
    const seen = byBytes.get(key);
    if (seen === undefined) {
      byBytes.set(key, { bytes, names: new Set([name]), encoding });
      return;
    }
    seen.names.add(name);
    if (rank(encoding) < rank(seen.encoding)) seen.encoding = encoding;
  };
  for (const secret of secrets) {
    const { name } = secret;
    if (secret.value.length === 0) continue;
    if (typeof secret.value !== 'string' && !isUtf8(secret.value)) {
      // Bytes that are not text: searched as bytes, with the stored forms they may have been decoded from.
      const bytes = Buffer.from(secret.value.buffer, secret.value.byteOffset, secret.value.byteLength);
      for (const [encoding, form] of encodeBytes(bytes)) add(name, encoding, form);
      for (const line of wrappedBase64Lines(bytes)) add(name, 'base64-line', line);
      continue;
    }
    const value = typeof secret.value === 'string' ? secret.value : Buffer.from(secret.value).toString('utf8');
    for (const [encoding, bytes] of encodeAll(value)) add(name, encoding, bytes);
    for (const line of linesOf(value)) {
      for (const [encoding, bytes] of encodeAll(line)) add(name, `line:${encoding}`, bytes);
    }
  }
  return [...byBytes.values()].map(({ bytes, names, encoding }) => ({ bytes, name: [...names].sort().join(', '), encoding }));
}
