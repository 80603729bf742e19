// Parses the `secrets` and `env-secrets` inputs. hashicorp/vault-action's syntax works unchanged
// (`<path> <selector> [| NAME]`, entries separated by `;` or new lines, `*`, `**`, `* | PREFIX_`),
// so users switch by changing `uses:`. Additions: `?version=N` on a path, `?encoding=base64|hex|utf8`
// (how the value is stored; the step-wide `secret-encoding` is the default), a trailing ` ?` marking
// an entry optional, and KV v2 paths written without `/data/`.
import { isSecretEncoding, SECRET_ENCODINGS, type SecretEncoding } from '../core/decode.ts';
import { InputError } from '../core/errors.ts';
import { isEnvVarName, isSafeName, SAFE_NAME_RULE } from './common.ts';

export type Selector =
  | { kind: 'key'; key: string } // a key, or a dotted path into a JSON object (vault-action's plain selector)
  | { kind: 'all'; keepCase: boolean; prefix: string }; // `*` (env names upper-cased) or `**` (case kept)

export interface VaultSecretLine {
  /** 1-based line of the input where the entry stands. */
  line: number;
  /** The path as the user wrote it, without a leading `/` and without `?version=`. */
  path: string;
  version: number | undefined;
  selector: Selector;
  optional: boolean;
  /** Explicit `| NAME` (for `key` selectors); undefined means derive from the key. */
  name: string | undefined;
  /** For `write <path> <json> ...` entries: the JSON body to POST (engines such as aws/sts, pki/issue). */
  body: Record<string, unknown> | undefined;
  /** How the selected values are stored (`?encoding=`, else `secret-encoding`): `utf8` is not decoded. */
  encoding: SecretEncoding;
}

export interface EnvSecretLine {
  line: number;
  name: string;
  envVar: string;
  optional: boolean;
  /** `NAME=VAR?encoding=base64`: how the variable's value is stored (a workflow secret holds text only). */
  encoding: SecretEncoding;
}

const PLAIN_KEY = /^[^\s$()[\]{}&|,;:<>=!?*'"`~^%]+$/u;

/**
 * vault-action's default name for a key (v3.4.0 normalizeOutputKey): `.` -> `__`, then `-` and all
 * but letters, digits and `_` dropped. The same names, so a migrated workflow's later steps find
 * what they read before (and an env name with `-` is one no shell can read).
 */
export function normalizeName(key: string, upperCase = false): string {
  const name = key.replaceAll('.', '__').replace(/[^\p{L}\p{N}_]/gu, '');
  return upperCase ? name.toUpperCase() : name;
}

interface Entry {
  line: number;
  text: string;
}

/** Splits on new lines and `;`, remembering the line each entry starts on; drops empty entries and `#` comments. */
function entries(input: string): Entry[] {
  const out: Entry[] = [];
  input.split(/\r?\n/).forEach((raw, index) => {
    const text = raw.trim();
    if (text === '' || text.startsWith('#')) return;
    for (const part of splitOutsideJson(text, ';')) {
      const entry = part.trim();
      if (entry !== '') out.push({ line: index + 1, text: entry });
    }
  });
  return out;
}

/** Splits on `separator` except inside a `{...}` JSON body or a string in it. */
function splitOutsideJson(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let inString = false;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (depth > 0 && c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}') depth = Math.max(0, depth - 1);
    else if (c === separator && depth === 0) {
      parts.push(text.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(text.slice(from));
  return parts;
}

function takeOptional(text: string): { text: string; optional: boolean } {
  const match = /\s\?$/.exec(text);
  return match ? { text: text.slice(0, match.index).trim(), optional: true } : { text, optional: false };
}

const EXPECTED = `expected '<path> <key> [| NAME]', '<path> * [| PREFIX]', '<path> ** [| PREFIX]' or 'write <path> {json} <key> [| NAME]', optionally ending in ' ?'`;

/** `write <path> {json} rest`: the JSON object is taken by brace matching, so it may hold spaces and '|'. */
function takeWrite(text: string, where: string): { path: string; body: Record<string, unknown>; rest: string } | undefined {
  const match = /^write\s+(\S+)\s+(?=\{)/.exec(text);
  if (!match) {
    if (/^write\s/.test(text))
      throw new InputError(
        'secrets',
        `${where}: 'write' needs a path and a JSON object body: write <path> {"key": "value"} <selector> [| NAME]`,
      );
    return undefined;
  }
  const start = match[0].length;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      let body: unknown;
      try {
        body = JSON.parse(text.slice(start, i + 1));
      } catch {
        throw new InputError('secrets', `${where}: the body after 'write ${match[1]}' is not valid JSON`);
      }
      return { path: match[1] ?? '', body: body as Record<string, unknown>, rest: text.slice(i + 1).trim() };
    }
  }
  throw new InputError('secrets', `${where}: the JSON body after 'write ${match[1]}' has no closing '}'`);
}

/** `secret-encoding`: the encoding of every `secrets` line without its own `?encoding=` (vault-action's `secretEncodingType`). */
export function parseSecretEncoding(input: string): SecretEncoding {
  const value = input.trim();
  if (value === '') return 'utf8';
  if (!isSecretEncoding(value)) throw new InputError('secret-encoding', `'${value}' is not one of ${SECRET_ENCODINGS.join(', ')}`);
  return value;
}

export function parseSecretsInput(input: string, defaultEncoding: SecretEncoding = 'utf8'): VaultSecretLine[] {
  const result: VaultSecretLine[] = [];
  for (const entry of entries(input)) {
    const where = `line ${entry.line}`;
    const taken = takeOptional(entry.text);
    const optional = taken.optional;
    const write = takeWrite(taken.text, where);
    const text = write ? `${write.path} ${write.rest}` : taken.text;
    let spec = text;
    let name: string | undefined;
    const bar = text.lastIndexOf('|');
    if (bar >= 0) {
      spec = text.slice(0, bar).trim();
      name = text.slice(bar + 1).trim();
      if (name === '') throw new InputError('secrets', `${where}: nothing after '|'; ${EXPECTED}`);
    }
    const words = spec.split(/\s+/).filter((w) => w !== '');
    if (words.length !== 2) {
      // JSONata (vault-action's `$join([a, b], " ")`...) holds spaces: say what is supported instead.
      if (words.length > 2 && /[$()[\]{}&"'=<>!+]/.test(words.slice(1).join(' ')))
        throw new InputError(
          'secrets',
          `${where}: the selector is a JSONata expression; JSONata expressions are not supported, only a key or a dotted key path (a.b.c): '<path> <key> | NAME'`,
        );
      if (words.length > 2 && bar < 0)
        throw new InputError(
          'secrets',
          `${where}: found ${words.length} words and no '|'; write '<path> <key> | NAME' (the name goes after '|'), or '<path> <key>' to name it after the key`,
        );
      throw new InputError('secrets', `${where}: found ${words.length} word(s)${bar >= 0 ? " before '|'" : ''}; ${EXPECTED}`);
    }
    const [rawPath, rawSelector] = words as [string, string];
    const { path, version, encoding } = parsePath(rawPath, where);

    let selector: Selector;
    if (rawSelector === '*' || rawSelector === '**') {
      const prefix = name ?? '';
      if (prefix !== '' && !isSafeName(prefix)) {
        // Never echoed: a value pasted here by mistake must not reach the log.
        throw new InputError('secrets', `${where}: the prefix after '|' may hold only ${SAFE_NAME_RULE}`);
      }
      selector = { kind: 'all', keepCase: rawSelector === '**', prefix };
      name = undefined;
    } else {
      // JSONata quotes a key holding special characters: "my.key" means the literal key.
      const key = rawSelector.replace(/^"(.*)"$/, '$1');
      if (key === '' || !PLAIN_KEY.test(key.replaceAll('.', 'x'))) {
        throw new InputError(
          'secrets',
          // Not echoed either: the second word may be a value pasted in place of a key.
          `${where}: the second word is not a key; JSONata expressions are not supported, select a key or a dotted path (a.b.c)`,
        );
      }
      selector = { kind: 'key', key };
      if (name !== undefined && !isSafeName(name)) {
        throw new InputError(
          'secrets',
          // Never echoed: a value pasted in place of a name must not reach the log.
          `${where}: the name after '|' may hold only ${SAFE_NAME_RULE}`,
        );
      }
      if (name === undefined && normalizeName(key) === '') {
        throw new InputError('secrets', `${where}: key '${key}' gives an empty name; add '| NAME'`);
      }
    }
    if (write && version !== undefined) throw new InputError('secrets', `${where}: '?version=' does not apply to a write`);
    result.push({ line: entry.line, path, version, selector, optional, name, body: write?.body, encoding: encoding ?? defaultEncoding });
  }
  return result;
}

function parsePath(raw: string, where: string): { path: string; version: number | undefined; encoding: SecretEncoding | undefined } {
  let path = raw.replace(/^\/+/, '');
  let version: number | undefined;
  let encoding: SecretEncoding | undefined;
  const q = path.indexOf('?');
  if (q >= 0) {
    const query = new URLSearchParams(path.slice(q + 1));
    path = path.slice(0, q);
    const seen = new Set<string>();
    for (const [key, value] of query) {
      if (key !== 'version' && key !== 'encoding')
        throw new InputError(
          'secrets',
          `${where}: unknown query '${key}' on the path; only ?version=N and ?encoding=${SECRET_ENCODINGS.join('|')} are accepted`,
        );
      if (seen.has(key)) throw new InputError('secrets', `${where}: '${key}' is given twice on the path`);
      seen.add(key);
      if (key === 'encoding') {
        if (!isSecretEncoding(value))
          throw new InputError('secrets', `${where}: encoding '${value}' is not one of ${SECRET_ENCODINGS.join(', ')}`);
        encoding = value;
        continue;
      }
      if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new InputError('secrets', `${where}: version '${value}' must be a positive whole number`);
      version = Number(value);
    }
  }
  path = path.replace(/\/+$/, '');
  if (path === '' || path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new InputError('secrets', `${where}: path '${raw}' is not a Vault path like 'secret/data/app'`);
  }
  return { path, version, encoding };
}

/** `env-secrets`: `NAME` or `NAME=ENV_VAR`, each optionally with `?encoding=`, one per line or comma-separated. */
export function parseEnvSecretsInput(input: string): EnvSecretLine[] {
  const result: EnvSecretLine[] = [];
  input.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    for (const part of raw.split(',')) {
      const taken = takeOptional(part.trim());
      const { optional } = taken;
      if (taken.text === '' || taken.text.startsWith('#')) continue;
      const { text, encoding } = takeEnvEncoding(taken.text, line);
      const eq = text.indexOf('=');
      const name = (eq >= 0 ? text.slice(0, eq) : text).trim();
      const envVar = (eq >= 0 ? text.slice(eq + 1) : text).trim();
      if (!isSafeName(name)) {
        // Not echoed: this input holds names, and a value pasted here by mistake must not reach the log.
        throw new InputError(
          'env-secrets',
          `line ${line}: a name may hold only ${SAFE_NAME_RULE} (give names here; pass values through env:)`,
        );
      }
      if (!isEnvVarName(envVar)) {
        throw new InputError(
          'env-secrets',
          `line ${line}: the part after '=' is not an environment variable name (give its name; pass the value through env:)`,
        );
      }
      result.push({ line, name, envVar, optional, encoding });
    }
  });
  return result;
}

/** A trailing `?encoding=X` on an env-secrets entry (the only query it takes); `utf8` without one. */
function takeEnvEncoding(text: string, line: number): { text: string; encoding: SecretEncoding } {
  const q = text.indexOf('?');
  if (q < 0) return { text, encoding: 'utf8' };
  const match = /^encoding=([A-Za-z0-9]+)$/.exec(text.slice(q + 1));
  // Not echoed: this input holds names, and a value pasted here by mistake must not reach the log.
  if (!match) throw new InputError('env-secrets', `line ${line}: after '?' only encoding=${SECRET_ENCODINGS.join('|')} is accepted`);
  const encoding = match[1] ?? '';
  if (!isSecretEncoding(encoding))
    throw new InputError('env-secrets', `line ${line}: the encoding after '?encoding=' is not one of ${SECRET_ENCODINGS.join(', ')}`);
  return { text: text.slice(0, q), encoding };
}
