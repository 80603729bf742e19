// Parses the `templates` input: one entry per line, `NAME < PATH [OPTIONS]` (a template file in the
// repository) or `NAME <<MARKER [OPTIONS]` followed by the template's lines up to a line that is
// exactly MARKER. OPTIONS: `path=` (write the file there in the workspace instead of the private
// root), `env=` (with export-env: export that variable as the file's path) and `mode=`. What the
// template says is checked by src/templates/ (Mustache syntax, filters) and its file read by main.
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import { FILE_MODES, type FileAccess } from '../core/file-access.ts';
import { isEnvVarName, isSafeName, SAFE_NAME_RULE } from './common.ts';

export interface TemplateEntry {
  readonly name: string;
  /** 1-based line of the input where the entry stands. */
  readonly line: number;
  /** An inline body (its text and the input line of its first line), or a file in the repository. */
  readonly source:
    { readonly kind: 'inline'; readonly text: string; readonly firstLine: number } | { readonly kind: 'file'; readonly file: string };
  /** `path=`: where in the workspace to write it (relative, normalised), instead of the private root. */
  readonly destination: string | undefined;
  /** `env=`: the variable export-env sets to the rendered file's path. */
  readonly envVar: string | undefined;
  /** `mode=`, else 0600. */
  readonly mode: number;
}

/** Env vars the action itself sets for later steps: a template must not take them over. */
const RESERVED_ENV = new Set(['PIPELINE_SECRETS_DIR']);
const OPTION_KEYS = ['path', 'env', 'mode'] as const;

function bad(line: number, message: string): never {
  throw new InputError('templates', `line ${line}: ${message}`);
}

/**
 * The `templates` entries, each checked: its name (the one name rule, unique), its form, its
 * options; `env=` only with export-env; a group-readable `mode=` only with a GID in `file-owner`.
 */
export function parseTemplatesInput(
  raw: string,
  context: { readonly exportEnv: boolean; readonly fileAccess: FileAccess | undefined },
): TemplateEntry[] {
  const lines = raw === '' ? [] : raw.split(/\r?\n/);
  const entries: TemplateEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const text = (lines[i] ?? '').trim();
    if (text === '' || text.startsWith('#')) continue;
    const inline = /^([^\s<]+)\s*<<\s*(\S+)(.*)$/.exec(text);
    const file = inline ? null : /^([^\s<]+)\s*<(?!<)\s*(\S+)(.*)$/.exec(text);
    const match = inline ?? file;
    if (!match) {
      bad(
        line,
        `'${text.slice(0, 80)}' is not a template entry: write \`NAME < path/in/repo.tmpl\` or \`NAME <<EOF\`, the template's lines, then \`EOF\``,
      );
    }
    const [, name = '', target = '', rest = ''] = match;
    if (!isSafeName(name)) bad(line, `template name '${name.slice(0, 80)}' is not valid: use ${SAFE_NAME_RULE}`);
    if (entries.some((e) => e.name === name)) bad(line, `template name '${name}' is used twice; give each template its own name`);
    let source: TemplateEntry['source'];
    if (inline) {
      const body: string[] = [];
      let closed = false;
      const firstLine = line + 1;
      for (i++; i < lines.length; i++) {
        const bodyLine = lines[i] ?? '';
        if (bodyLine.trim() === target) {
          closed = true;
          break;
        }
        body.push(bodyLine);
      }
      if (!closed) bad(line, `template '${name}' has no closing line '${target}': end its lines with a line that is exactly ${target}`);
      // Like a shell here-document: every line ends with a newline, the last one too.
      source = { kind: 'inline', text: body.map((l) => `${l}\n`).join(''), firstLine };
    } else {
      source = { kind: 'file', file: repositoryPath(line, name, target) };
    }
    entries.push({ name, line, source, ...options(line, name, rest, context) });
  }
  checkUnique(entries);
  return entries;
}

/** A template file's path: relative to the repository (GITHUB_WORKSPACE), inside it as written. */
function repositoryPath(line: number, name: string, file: string): string {
  const normal = path.posix.normalize(file);
  if (path.posix.isAbsolute(file) || normal === '..' || normal.startsWith('../') || normal === '.') {
    bad(line, `template '${name}': '${file}' must be a file path relative to the repository (GITHUB_WORKSPACE), inside it`);
  }
  return normal;
}

function options(
  line: number,
  name: string,
  rest: string,
  context: { readonly exportEnv: boolean; readonly fileAccess: FileAccess | undefined },
): Pick<TemplateEntry, 'destination' | 'envVar' | 'mode'> {
  const seen = new Map<string, string>();
  for (const option of rest
    .trim()
    .split(/\s+/)
    .filter((o) => o !== '')) {
    const eq = option.indexOf('=');
    const key = eq > 0 ? option.slice(0, eq) : option;
    if (!(OPTION_KEYS as readonly string[]).includes(key) || eq < 0) {
      bad(line, `template '${name}': '${option.slice(0, 80)}' is not an option; the options are path=, env= and mode=`);
    }
    if (seen.has(key)) bad(line, `template '${name}': ${key}= is given twice`);
    seen.set(key, option.slice(eq + 1));
  }
  let destination: string | undefined;
  const rawPath = seen.get('path');
  if (rawPath !== undefined) {
    const normal = path.posix.normalize(rawPath);
    if (
      rawPath === '' ||
      path.posix.isAbsolute(rawPath) ||
      normal === '.' ||
      normal === '..' ||
      normal.startsWith('../') ||
      normal.endsWith('/')
    ) {
      bad(line, `template '${name}': path='${rawPath}' must be a file path relative to the workspace (GITHUB_WORKSPACE), inside it`);
    }
    destination = normal;
  }
  const envVar = seen.get('env');
  if (envVar !== undefined) {
    if (!isEnvVarName(envVar) || RESERVED_ENV.has(envVar)) {
      bad(
        line,
        `template '${name}': env='${envVar.slice(0, 80)}' is not an environment variable name this action may set (letters, digits, '_')`,
      );
    }
    if (!context.exportEnv) {
      bad(line, `template '${name}': env=${envVar} exports the rendered file's path only with 'export-env: true'; set it, or drop env=`);
    }
  }
  let mode = 0o600;
  const rawMode = seen.get('mode');
  if (rawMode !== undefined) {
    mode = /^0?[0-7]{3}$/.test(rawMode) ? parseInt(rawMode, 8) : -1;
    if (!FILE_MODES.includes(mode)) {
      bad(
        line,
        `template '${name}': mode=${rawMode.slice(0, 20)} is not one of 0400, 0440, 0600, 0640 (a rendered file is never readable by others)`,
      );
    }
    if ((mode & 0o070) !== 0 && context.fileAccess?.gid === undefined) {
      bad(line, `template '${name}': mode=${rawMode} lets a group read: name the group in file-owner as UID:GID`);
    }
  }
  return { destination, envVar, mode };
}

/** Two templates must not write one file or set one variable. */
function checkUnique(entries: readonly TemplateEntry[]): void {
  for (const [index, entry] of entries.entries()) {
    const earlier = entries.slice(0, index);
    const samePath = earlier.find((e) => e.destination !== undefined && e.destination === entry.destination);
    if (samePath) bad(entry.line, `templates '${samePath.name}' and '${entry.name}' both write path=${entry.destination ?? ''}`);
    const sameEnv = earlier.find((e) => e.envVar !== undefined && e.envVar === entry.envVar);
    if (sameEnv) bad(entry.line, `templates '${sameEnv.name}' and '${entry.name}' both set env=${entry.envVar ?? ''}`);
  }
}
