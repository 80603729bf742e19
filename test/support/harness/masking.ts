// The runner's secret masker, value for value.
//
// Sources (actions/runner):
// - src/Sdk/DTLogging/Logging/ValueEncoders.cs: the encoder bodies.
// - src/Runner.Common/HostContext.cs: which encoders are registered on the masker (all eleven below).
// - src/Sdk/DTLogging/Logging/SecretMasker.cs: AddValue (value + every non-empty encoding, no length
//   floor) and MaskSecrets (ordinal matches of every variation, overlapping/adjacent ranges merged,
//   each merged range replaced by `***`).
// - src/Sdk/DTLogging/Logging/ValueSecret.cs: ordinal IndexOf, advancing one char after each hit.
// - src/Runner.Worker/ActionCommandManager.cs (AddMaskCommandExtension): whitespace-only data only
//   warns; the whole value is registered and, on current runners, each line split on CR/LF, trimmed,
//   empty lines dropped.
//
// Strings are UTF-16 here as in .NET, so every `Length` gate counts the same units.

export type ValueEncoder = (value: string) => string;

const utf8 = (value: string): Buffer => Buffer.from(value, 'utf8');

/** ValueEncoders.Base64StringEscape: Convert.ToBase64String(UTF8(value)), padded. */
export function base64StringEscape(value: string): string {
  return utf8(value).toString('base64');
}

/**
 * ValueEncoders.Base64StringEscapeShift: base64 of the UTF-8 bytes with the first `shift` bytes
 * dropped (padded, nothing trimmed at the end); when the value has no more than `shift` bytes the
 * unshifted encoding is returned instead.
 */
export function base64StringEscapeShift(value: string, shift: number): string {
  const bytes = utf8(value);
  return bytes.length > shift ? bytes.subarray(shift).toString('base64') : bytes.toString('base64');
}

/** ValueEncoders.CommandLineArgumentEscape: `"` -> `\"` (env passed to docker). */
export function commandLineArgumentEscape(value: string): string {
  return value.replaceAll('"', '\\"');
}

/** ValueEncoders.ExpressionStringEscape = ExpressionUtility.StringEscape: `'` -> `''`. */
export function expressionStringEscape(value: string): string {
  return value.replaceAll("'", "''");
}

/**
 * ValueEncoders.JsonStringEscape: Newtonsoft JsonConvert.ToString(value) without the surrounding
 * quotes. Default escape table: `"`, `\`, \b \f \n \r \t, other C0 controls and U+0085, U+2028,
 * U+2029 as lower-case \uXXXX.
 */
export function jsonStringEscape(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case '\\':
        out += '\\\\';
        break;
      case '\b':
        out += '\\b';
        break;
      case '\f':
        out += '\\f';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      default:
        if (code < 0x20 || code === 0x85 || code === 0x2028 || code === 0x2029) {
          out += `\\u${code.toString(16).padStart(4, '0')}`;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

/**
 * ValueEncoders.UriDataEscape = Uri.EscapeDataString: every UTF-8 byte outside RFC 3986 unreserved
 * (A-Z a-z 0-9 - . _ ~) as upper-case %XX. (encodeURIComponent differs: it keeps `!'()*`.)
 */
export function uriDataEscape(value: string): string {
  let out = '';
  for (const byte of utf8(value)) {
    const unreserved =
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      (byte >= 0x30 && byte <= 0x39) ||
      byte === 0x2d ||
      byte === 0x2e ||
      byte === 0x5f ||
      byte === 0x7e;
    out += unreserved ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** ValueEncoders.XmlDataEscape = SecurityElement.Escape. */
export function xmlDataEscape(value: string): string {
  return value.replace(/[<>"'&]/g, (ch) => {
    switch (ch) {
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default:
        return '&amp;';
    }
  });
}

/** ValueEncoders.TrimDoubleQuotes: the inner text of a `"..."` value longer than 8, else empty. */
export function trimDoubleQuotes(value: string): string {
  if (value.length > 8 && value.startsWith('"') && value.endsWith('"')) {
    return value.substring(1, value.length - 1);
  }
  return '';
}

/** ValueEncoders.PowerShellPreAmpersandEscape: text up to `&+`, else up to the last `&`; >= 6 chars. */
export function powerShellPreAmpersandEscape(value: string): string {
  if (!value.includes('&')) return '';
  const plus = value.indexOf('&+');
  const section = plus >= 0 ? value.substring(0, plus + 2) : value.substring(0, value.lastIndexOf('&') + 1);
  return section.length >= 6 ? section : '';
}

/**
 * ValueEncoders.PowerShellPostAmpersandEscape: text after `&+` minus the one coloured char, else
 * after the last `&`; >= 6 chars. (A value ending in `&+` yields nothing: actions/runner#2875.)
 */
export function powerShellPostAmpersandEscape(value: string): string {
  if (!value.includes('&')) return '';
  const plus = value.indexOf('&+');
  let section: string;
  if (plus >= 0) {
    const from = plus + 2 + 1;
    section = from <= value.length ? value.substring(from) : '';
  } else {
    section = value.substring(value.lastIndexOf('&') + 1);
  }
  return section.length >= 6 ? section : '';
}

/** The encoders HostContext registers, in its order. */
export const RUNNER_ENCODERS: ReadonlyArray<{ name: string; encode: ValueEncoder }> = [
  { name: 'Base64StringEscape', encode: base64StringEscape },
  { name: 'Base64StringEscapeShift1', encode: (v) => base64StringEscapeShift(v, 1) },
  { name: 'Base64StringEscapeShift2', encode: (v) => base64StringEscapeShift(v, 2) },
  { name: 'CommandLineArgumentEscape', encode: commandLineArgumentEscape },
  { name: 'ExpressionStringEscape', encode: expressionStringEscape },
  { name: 'JsonStringEscape', encode: jsonStringEscape },
  { name: 'UriDataEscape', encode: uriDataEscape },
  { name: 'XmlDataEscape', encode: xmlDataEscape },
  { name: 'TrimDoubleQuotes', encode: trimDoubleQuotes },
  { name: 'PowerShellPreAmpersandEscape', encode: powerShellPreAmpersandEscape },
  { name: 'PowerShellPostAmpersandEscape', encode: powerShellPostAmpersandEscape },
];

/** SecretMasker.cs: registered originals plus every derived variation. */
export class SecretMasker {
  readonly #originals = new Set<string>();
  readonly #variations = new Set<string>();

  /** SecretMasker.AddValue: ignores empty, dedups originals, adds every non-empty encoding. */
  addValue(value: string): void {
    if (value === '' || this.#originals.has(value)) return;
    this.#originals.add(value);
    this.#variations.add(value);
    for (const { encode } of RUNNER_ENCODERS) {
      const variation = encode(value);
      if (variation !== '') this.#variations.add(variation);
    }
  }

  get variations(): ReadonlySet<string> {
    return this.#variations;
  }

  /** SecretMasker.MaskSecrets: union of all ordinal match ranges, each merged range -> `***`. */
  maskSecrets(input: string): string {
    if (input === '') return '';
    const positions: Array<{ start: number; end: number }> = [];
    for (const secret of this.#variations) {
      let start = 0;
      while (start < input.length && input.length - start >= secret.length) {
        const hit = input.indexOf(secret, start);
        if (hit < 0) break;
        positions.push({ start: hit, end: hit + secret.length });
        start = hit + 1;
      }
    }
    if (positions.length === 0) return input;
    positions.sort((a, b) => a.start - b.start);
    const merged: Array<{ start: number; end: number }> = [];
    for (const p of positions) {
      const last = merged.at(-1);
      // `Start <= End` in SecretMasker.cs: adjacent ranges merge too.
      if (last !== undefined && p.start <= last.end) last.end = Math.max(last.end, p.end);
      else merged.push({ ...p });
    }
    let out = '';
    let from = 0;
    for (const r of merged) {
      out += input.substring(from, r.start) + '***';
      from = r.end;
    }
    return out + input.substring(from);
  }
}

/**
 * What `::add-mask::DATA` registers (AddMaskCommandExtension): the whole value, then each CR/LF
 * separated line, trimmed, empty ones dropped. Returns [] for whitespace-only data (the runner only
 * warns: "Can't add secret mask for empty string in ##[add-mask] command.").
 */
export function addMaskValues(data: string): string[] {
  if (data.trim() === '') return [];
  const values = [data];
  for (const line of data.split(/\r|\n/)) {
    const trimmed = line.trim();
    if (trimmed !== '' && !values.includes(trimmed)) values.push(trimmed);
  }
  return values;
}
