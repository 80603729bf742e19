// Secrets stored encoded (a `.p12` keystore, a Java keystore, a signing key kept base64 in Vault):
// strict decoders for `?encoding=` on a `secrets` line and the `secret-encoding` input, and the
// delivered form of a decoded value. The file gets the decoded bytes exactly; a value that is not
// UTF-8 text (or holds a NUL, which no environment variable can) can only be a file.
// Every error names the line and the key, never a value or a character of it.
import { isUtf8 } from 'node:buffer';
import { SecretError } from './errors.ts';

/** How a value is stored: `utf8` is as written (no decoding); the others are decoded to bytes. */
export type SecretEncoding = 'utf8' | 'base64' | 'hex';

export const SECRET_ENCODINGS: readonly SecretEncoding[] = ['utf8', 'base64', 'hex'];

export function isSecretEncoding(value: string): value is SecretEncoding {
  return (SECRET_ENCODINGS as readonly string[]).includes(value);
}

/** A value decoded from its stored form. */
export interface Decoded {
  readonly encoding: Exclude<SecretEncoding, 'utf8'>;
  /** The decoded bytes: exactly what the secret's file holds. */
  readonly bytes: Buffer;
  /** The value as Vault stores it (base64 or hex text): masked too. */
  readonly stored: string;
  /** The bytes are valid UTF-8 without a NUL: they can be text (env, outputs, templates, logins). */
  readonly text: boolean;
}

/** Thrown with what is wrong with the stored text, never any of it; the caller adds the line. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

// Line breaks and spaces are allowed anywhere (`base64` wraps at 76 columns, PEM-like bodies at 64):
// they are layout, not data. Everything else must belong to the encoding.
const LAYOUT = /[ \t\r\n]/g;
const STANDARD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64 (RFC 4648): the standard or the URL-safe alphabet (one of them, not both mixed),
 * padded or not; padding, where present, only at the end and to a multiple of 4. Node's own
 * Buffer.from(text, 'base64') skips characters it does not know, which would deliver a corrupt
 * keystore without a word: this refuses instead.
 */
export function decodeBase64(stored: string): Buffer {
  const text = stored.replace(LAYOUT, '');
  const body = text.replace(/=+$/, '');
  const padding = text.length - body.length;
  if (body.includes('=')) throw new DecodeError("'=' inside the text (padding goes only at the end)");
  const standard = STANDARD.test(body);
  if (!standard && !URL_SAFE.test(body)) {
    const mixed = /^[A-Za-z0-9+/_-]*$/.test(body);
    throw new DecodeError(
      mixed
        ? "it mixes the standard ('+', '/') and URL-safe ('-', '_') alphabets"
        : `a character at offset ${firstOutside(body)} is not in the base64 alphabet`,
    );
  }
  if (body.length % 4 === 1) throw new DecodeError(`its length (${body.length} characters without padding) cannot be base64`);
  if (padding > 0 && (padding > 2 || text.length % 4 !== 0)) throw new DecodeError('the padding does not fit its length');
  return Buffer.from(body, standard ? 'base64' : 'base64url');
}

/** Strict hex: pairs of 0-9, a-f (either case); spaces and line breaks between them are layout. */
export function decodeHex(stored: string): Buffer {
  const text = stored.replace(LAYOUT, '');
  if (!/^[0-9a-fA-F]*$/.test(text)) throw new DecodeError(`a character at offset ${firstOutside(text, /[0-9a-fA-F]/)} is not a hex digit`);
  if (text.length % 2 !== 0) throw new DecodeError(`an odd number of hex digits (${text.length})`);
  return Buffer.from(text, 'hex');
}

function firstOutside(text: string, allowed = /[A-Za-z0-9+/_-]/): number {
  for (let i = 0; i < text.length; i++) if (!allowed.test(text[i] as string)) return i;
  return text.length;
}

/** Valid UTF-8 without a NUL: what an env var, an output or a template can carry. */
export function isText(bytes: Uint8Array): boolean {
  return !bytes.includes(0) && isUtf8(bytes);
}

/**
 * A selected value in its delivered form: `value` is the text a later step may get (the decoded
 * text when the bytes are text; the stored text, never handed over as the value, when they are not),
 * `decoded` is set for a decoded line. Only strings are decoded: a number or an object is not an
 * encoded value.
 */
export function decodeValue(raw: unknown, encoding: SecretEncoding): { value: string; decoded?: Decoded } {
  // Anything but the two decoding encodings is as stored: a line without the field decodes nothing.
  if (encoding !== 'base64' && encoding !== 'hex') return { value: typeof raw === 'string' ? raw : JSON.stringify(raw) };
  if (typeof raw !== 'string') throw new DecodeError(`it is a JSON ${Array.isArray(raw) ? 'array' : typeof raw}, not ${encoding} text`);
  const bytes = encoding === 'base64' ? decodeBase64(raw) : decodeHex(raw);
  const text = isText(bytes);
  return { value: text ? bytes.toString('utf8') : raw, decoded: { encoding, bytes, stored: raw, text } };
}

/**
 * decodeValue for a selected value: a value that does not decode fails its line (`where` names the
 * line, key and path), saying what is wrong and what to do, never showing the value.
 */
export function decodeSelected(raw: unknown, encoding: SecretEncoding, where: () => string): { value: string; decoded?: Decoded } {
  try {
    return decodeValue(raw, encoding);
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    throw new SecretError(
      `${where()} is not valid ${encoding} (${error.message}); store it ${encoding}-encoded, or give this line another ?encoding= (utf8: as stored)`,
    );
  }
}

/** A decoded value's texts to mask: the stored form, and the decoded text only where the bytes are text. */
export function maskTexts(decoded: Decoded): string[] {
  return decoded.text ? [decoded.stored, decoded.bytes.toString('utf8')] : [decoded.stored];
}

/** What a secret's file holds: the decoded bytes of a decoded line, else its text. */
export function fileContent(secret: { readonly value: string; readonly decoded?: Decoded | undefined }): string | Buffer {
  return secret.decoded?.bytes ?? secret.value;
}

/** True for a secret whose value can only be a file (decoded bytes that are not text). */
export function isBinary(secret: { readonly decoded?: Pick<Decoded, 'text'> | undefined }): boolean {
  return secret.decoded !== undefined && !secret.decoded.text;
}
