// Registers secret values with the runner's log masker before anything can print them.
// The runner derives some encodings itself (padded base64 and its 1- and 2-byte shifts, JSON, URI,
// XML and quote escapes); we add what it does not: each line of a multi-line value, each field of a
// JSON value, base64url, unpadded base64 at every byte alignment (so base64("user:" + password)
// inside a docker config is covered), and hex.
import { base64Embedded, toUrlAlphabet } from './encodings.ts';
import type { Runner } from './runner.ts';

/** Forms shorter than this would mask every such string in the log, so they are not registered alone. */
export const MIN_FORM_LENGTH = 4;

/** Every form of `value` we register ourselves, longest first, deduplicated, each >= MIN_FORM_LENGTH. */
export function derivedForms(value: string): string[] {
  const forms = new Set<string>();
  const add = (form: string): void => {
    if (form.length >= MIN_FORM_LENGTH) forms.add(form);
  };
  const addEncodings = (text: string): void => {
    const bytes = Buffer.from(text, 'utf8');
    for (const shift of [0, 1, 2] as const) {
      const core = base64Embedded(bytes, shift);
      add(core);
      add(toUrlAlphabet(core));
    }
    add(bytes.toString('base64url'));
    add(bytes.toString('hex'));
    add(bytes.toString('hex').toUpperCase());
  };

  addEncodings(value);
  for (const line of value.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed !== value) {
      add(trimmed);
      if (trimmed.length >= MIN_FORM_LENGTH) addEncodings(trimmed);
    }
  }
  for (const field of jsonStringLeaves(value)) {
    add(field);
    for (const line of field.split(/\r?\n/)) add(line.trim());
  }
  forms.delete(value);
  return [...forms].sort((a, b) => b.length - a.length);
}

/** String (and number) leaves of a JSON object or array value; nothing for other values. */
function jsonStringLeaves(value: string): string[] {
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

/** Keeps what was registered so errors can be scrubbed too, and registers each form once. */
export class MaskRegistry {
  private readonly registered = new Set<string>();
  private readonly runner: Runner;
  constructor(runner: Runner) {
    this.runner = runner;
  }

  /**
   * Registers a value and its derived forms. Returns false when the whole value is shorter than
   * MIN_FORM_LENGTH (it is still masked; the caller warns by name).
   */
  add(value: string): boolean {
    if (value === '') return true;
    this.register(value);
    for (const form of derivedForms(value)) this.register(form);
    return value.length >= MIN_FORM_LENGTH;
  }

  private register(form: string): void {
    if (this.registered.has(form)) return;
    this.registered.add(form);
    this.runner.setSecret(form);
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
