// Registers secret values with the runner's log masker before anything can print them.
// What is registered is the delivered form of each selected value (never the fields of a read
// secret that were not selected), as a whole and in the forms it takes: each line of a multi-line
// value and each leaf of a JSON value, and the encodings of each of these the runner does not
// derive itself: base64url, unpadded base64 at every byte alignment (so base64("user:" + password)
// inside a docker config is covered), and hex. (The runner derives padded base64 and its 1- and
// 2-byte shifts, JSON, URI, XML and quote escapes.) A form too weak to mask usefully (see
// isTooWeakToMask) is not registered: it would mask every such string in the job's log.
import { base64Embedded, toUrlAlphabet } from './encodings.ts';
import type { Runner } from './runner.ts';

/** Forms shorter than this would mask every such string in the log, so they are not registered. */
export const MIN_FORM_LENGTH = 4;

const BARE_WORD = /^(?:true|false|null)$/;
const BARE_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
/**
 * A number this long or longer is masked: log lines are full of short numbers (sizes, counts, ports,
 * years, times), but an 8-digit or longer one is rare there and may well be the secret itself.
 */
const MASKED_NUMBER_LENGTH = 8;

/**
 * True for text too weak to mask usefully: shorter than MIN_FORM_LENGTH, or a bare `true`,
 * `false`, `null` or a number shorter than 8 characters (JSON's scalars rendered as text). Registering it would replace that
 * text everywhere in the job's log; a selected value like this is delivered unmasked, with a warning.
 */
export function isTooWeakToMask(text: string): boolean {
  const trimmed = text.trim();
  return (
    trimmed.length < MIN_FORM_LENGTH || BARE_WORD.test(trimmed) || (BARE_NUMBER.test(trimmed) && trimmed.length < MASKED_NUMBER_LENGTH)
  );
}

/** Every form of `value` we register ourselves, longest first, deduplicated, none of them weak. */
export function derivedForms(value: string): string[] {
  const forms = new Set<string>();
  // Encodings are judged by length only: hex of a strong value may well be all digits.
  const addEncoded = (form: string): void => {
    if (form.length >= MIN_FORM_LENGTH) forms.add(form);
  };
  const addEncodings = (text: string): void => {
    const bytes = Buffer.from(text, 'utf8');
    for (const shift of [0, 1, 2] as const) {
      const core = base64Embedded(bytes, shift);
      addEncoded(core);
      addEncoded(toUrlAlphabet(core));
    }
    addEncoded(bytes.toString('base64url'));
    addEncoded(bytes.toString('hex'));
    addEncoded(bytes.toString('hex').toUpperCase());
  };
  // A text form (a line, a leaf) is registered with its encodings, unless it is too weak.
  const addText = (text: string): void => {
    if (isTooWeakToMask(text)) return;
    forms.add(text);
    addEncodings(text);
  };
  const addLines = (text: string): void => {
    if (!/[\r\n]/.test(text)) return;
    for (const line of text.split(/\r\n|\r|\n/)) addText(line.trim());
  };

  addEncodings(value);
  const trimmed = value.trim();
  if (trimmed !== value) addText(trimmed);
  addLines(value);
  for (const leaf of jsonLeaves(value)) {
    addText(leaf);
    addLines(leaf);
  }
  forms.delete(value);
  return [...forms].sort((a, b) => b.length - a.length);
}

/** String (and number) leaves of a JSON object or array value; nothing for other values. */
function jsonLeaves(value: string): string[] {
  const text = value.trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  const out: string[] = [];
  const walk = (node: unknown, depth: number): void => {
    if (depth > 32) return;
    if (typeof node === 'string') out.push(node);
    else if (typeof node === 'number') out.push(String(node));
    else if (Array.isArray(node)) node.forEach((item) => walk(item, depth + 1));
    else if (node !== null && typeof node === 'object') Object.values(node).forEach((item) => walk(item, depth + 1));
  };
  walk(parsed, 0);
  return out;
}

/** Where `base64` (coreutils) wraps its output by default. */
const BASE64_WRAP = 76;

/**
 * Forms of decoded bytes that are not text (a keystore from `?encoding=`), registered as they are
 * (no further encodings of them): they have no text form of their own, but a debugging step may
 * print them with `base64` (wrapped at 76 columns, each line its own log line) or `base64 -w0`, or as
 * hex. The stored form is registered with add() already; whatever of these it already covers is a
 * no-op there.
 */
export function byteForms(bytes: Buffer): string[] {
  const b64 = bytes.toString('base64');
  const lines: string[] = [];
  if (b64.length > BASE64_WRAP) for (let at = 0; at < b64.length; at += BASE64_WRAP) lines.push(b64.slice(at, at + BASE64_WRAP));
  return [b64, ...lines, bytes.toString('hex')].filter((form) => form.length >= MIN_FORM_LENGTH);
}

/** Keeps what was registered so errors can be scrubbed too, and registers each form once. */
export class MaskRegistry {
  private readonly registered = new Set<string>();
  private readonly runner: Runner;
  constructor(runner: Runner) {
    this.runner = runner;
  }

  /**
   * Registers a value (the form it is delivered in) and its derived forms. Returns false, and
   * registers nothing, when the value is too weak to mask usefully (isTooWeakToMask): masking it
   * would hide that text everywhere in the job's log. The caller warns by name.
   */
  add(value: string): boolean {
    if (value === '') return true;
    if (isTooWeakToMask(value)) return false;
    const fresh: string[] = [];
    for (const form of [value, ...derivedForms(value)]) {
      if (this.registered.has(form)) continue;
      this.registered.add(form);
      fresh.push(form);
    }
    // All of a value's forms in one write, the value itself first; this returns only once they are
    // all registered, so nothing printed after it can show any of them.
    if (this.runner.setSecrets) this.runner.setSecrets(fresh);
    else for (const form of fresh) this.runner.setSecret(form);
    return true;
  }

  /** Registers each form exactly as given (byteForms), without deriving encodings of it; in one write, as add() does. */
  addForms(forms: readonly string[]): void {
    const fresh = [...new Set(forms)].filter((form) => form.length >= MIN_FORM_LENGTH && !this.registered.has(form));
    for (const form of fresh) this.registered.add(form);
    if (this.runner.setSecrets) this.runner.setSecrets(fresh);
    else for (const form of fresh) this.runner.setSecret(form);
  }

  /** Replaces every registered form in `text` with ***, longest first (for error messages). */
  scrub(text: string): string {
    let out = text;
    for (const form of [...this.registered].sort((a, b) => b.length - a.length)) {
      if (out.includes(form)) out = out.split(form).join('***');
    }
    return out;
  }
}
