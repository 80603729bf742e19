// Encodings shared by masking (mask.ts) and the leak scan (scan/patterns.ts): one definition, so
// what main masks and what the scan looks for cannot drift apart.

/**
 * The base64 characters that depend only on `bytes` when they sit at byte offset `k` (mod 3) of a
 * longer base64-encoded stream: no padding, no character that carries bits of a neighbour. This is
 * how base64("user:" + password) in a docker config is covered.
 */
export function base64Embedded(bytes: Buffer, k: 0 | 1 | 2): string {
  const encoded = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
  const first = Math.ceil((k * 8) / 6);
  const last = Math.floor(((k + bytes.length) * 8) / 6);
  return last > first ? encoded.slice(first, last) : '';
}

/** The URL-safe base64 alphabet (RFC 4648 section 5) for standard base64 text. */
export const toUrlAlphabet = (s: string): string => s.replaceAll('+', '-').replaceAll('/', '_');
