// Parses the `pki` input: certificates to issue, in hashicorp/vault-action's `pki` syntax
// (`<mount>/issue/<role> {json}`, entries separated by `;` or new lines), plus an optional
// `| NAME`. Each entry becomes the files a TLS client expects (src/vault/pki.ts): NAME.crt,
// NAME.key, NAME.ca.pem, NAME.chain.pem. The name defaults to the role, named as vault-action
// names it (its outputs are ROLE_cert, ROLE_key, ROLE_ca, ROLE_ca_chain).
import { InputError } from '../core/errors.ts';
import { isSafeName, SAFE_NAME_RULE } from './common.ts';

export interface PkiEntry {
  /** 1-based line of the input where the entry stands. */
  readonly line: number;
  /** The issue path as written, without a leading `/`: `pki/issue/ci`, `pki/issuer/ISSUER/issue/ci`. */
  readonly path: string;
  /** The PKI mount (with any namespace prefix the path has): where `revoke` is. */
  readonly mount: string;
  /** The JSON body POSTed to the path (common_name, alt_names, ttl...). */
  readonly body: Readonly<Record<string, unknown>>;
  /** The base of the file names (NAME.crt ...) and of the env and output names. */
  readonly name: string;
}

const EXPECTED = 'expected \'<mount>/issue/<role> {"common_name": "..."} [| NAME]\'';
// pki/issue/ROLE, or pki/issuer/REF/issue/ROLE (an issuer other than the mount's default).
const ISSUE_PATH = /^(.+?)(?:\/issuer\/[^/]+)?\/issue\/([^/]+)$/;
// The delivered files are PEM (what curl, openssl and nginx read): other formats are refused.
const PEM_FORMATS: Readonly<Record<string, readonly string[]>> = { format: ['pem'], private_key_format: ['pem', 'pkcs8'] };

/** vault-action's name for a `pki` entry's outputs: the role, `.` -> `__`, `-` and all but letters, digits and `_` dropped. */
export function pkiDefaultName(role: string): string {
  return role
    .replaceAll('.', '__')
    .replaceAll('-', '')
    .replace(/[^\p{L}\p{N}_]/gu, '');
}

export function parsePkiInput(input: string): PkiEntry[] {
  const result: PkiEntry[] = [];
  input.split(/\r?\n/).forEach((raw, index) => {
    const text = raw.trim();
    if (text === '' || text.startsWith('#')) return;
    for (const part of splitOutsideJson(text)) {
      const entry = part.trim();
      if (entry !== '') result.push(parseEntry(entry, index + 1));
    }
  });
  const seen = new Map<string, number>();
  for (const entry of result) {
    const first = seen.get(entry.name);
    if (first !== undefined)
      throw new InputError('pki', `line ${entry.line}: the name '${entry.name}' is taken by line ${first}; give one of them '| NAME'`);
    seen.set(entry.name, entry.line);
  }
  return result;
}

function parseEntry(text: string, line: number): PkiEntry {
  const where = `line ${line}`;
  const match = /^(\S+)\s*(?=\{)/.exec(text);
  if (!match) throw new InputError('pki', `${where}: ${EXPECTED}`);
  const path = (match[1] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  const issue = ISSUE_PATH.exec(path);
  if (!issue || path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new InputError('pki', `${where}: '${path}' is not an issue path like 'pki/issue/ROLE'; ${EXPECTED}`);
  }
  const { body, rest } = takeBody(text, match[0].length, where);
  for (const [field, allowed] of Object.entries(PEM_FORMATS)) {
    const value = body[field];
    if (value !== undefined && !(typeof value === 'string' && allowed.includes(value))) {
      throw new InputError('pki', `${where}: "${field}" must be ${allowed.map((a) => `"${a}"`).join(' or ')}: the files are PEM`);
    }
  }
  let name = pkiDefaultName(issue[2] ?? '');
  if (rest !== '') {
    const bar = /^\|\s*(.*)$/.exec(rest);
    if (!bar) throw new InputError('pki', `${where}: only '| NAME' may follow the JSON body; ${EXPECTED}`);
    name = bar[1]?.trim() ?? '';
    // Never echoed: a value pasted in place of a name must not reach the log.
    if (!isSafeName(name)) throw new InputError('pki', `${where}: the name after '|' may hold only ${SAFE_NAME_RULE}`);
  } else if (name === '') {
    throw new InputError('pki', `${where}: the role '${issue[2] ?? ''}' gives an empty name; add '| NAME'`);
  }
  return { line, path, mount: issue[1] ?? '', body, name };
}

/** The JSON object starting at `start`, by brace matching (it may hold spaces, `;` and `|`), and what follows it. */
function takeBody(text: string, start: number, where: string): { body: Record<string, unknown>; rest: string } {
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
        // Not echoed: the body is the user's, and a message shows only where it is.
        throw new InputError('pki', `${where}: the body is not valid JSON`);
      }
      return { body: body as Record<string, unknown>, rest: text.slice(i + 1).trim() };
    }
  }
  throw new InputError('pki', `${where}: the JSON body has no closing '}'`);
}

/** Splits a line on `;` outside a `{...}` body and the strings in it. */
function splitOutsideJson(text: string): string[] {
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
    else if (c === ';' && depth === 0) {
      parts.push(text.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(text.slice(from));
  return parts;
}
