// Rendered config files (the `templates` input): Mustache templates whose placeholders are the
// step's secrets by name (`{{NPM_TOKEN}}`) and whose only sections are the filters (filters.ts).
// The template is parsed by Mustache (its tag, section and standalone-line rules) and the token tree
// is checked and rendered here; main and the renewal agent render the same way.
//
// Why the tokens are rendered here, not by Mustache.render: Mustache's view lookup reads `a.b` as a
// path into nested objects (a secret may be called `db.password`), finds names on Object.prototype
// (`constructor`), cannot tell the secret `url` from the filter `url`, and HTML-escapes `{{NAME}}`
// by default (`&`, `<`, `"`, `'`, `/`, `=` and backquote become entities, which would corrupt a
// token). Walking the tokens inserts each value raw, exactly as Vault gave it, and no escape
// function ever runs: Mustache's escaping is off for every render because its renderer is never used.
import Mustache, { type TemplateSpans } from 'mustache';
import { InputError } from '../core/errors.ts';
import { FILTER_NAMES, FILTERS, isFilter, type FilterName } from './filters.ts';

type Node =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'secret'; readonly name: string; readonly line: number; readonly tag: string }
  | { readonly kind: 'filter'; readonly filter: FilterName; readonly body: readonly Node[]; readonly usesSecret: boolean };

/** A parsed, checked template: what main renders and the agent re-renders. */
export interface Template {
  readonly name: string;
  readonly nodes: readonly Node[];
  /** Every secret name it uses, in the order of first use, each once. */
  readonly secrets: readonly string[];
  /** Where a message about it points: the template, and the file or input line it came from. */
  readonly where: TemplateSource;
}

export interface TemplateSource {
  readonly name: string;
  /** The repository file it was read from (relative, as the input gives it). */
  readonly file?: string | undefined;
  /** The input line of an inline template's first body line. */
  readonly inputLine?: number | undefined;
}

export interface Rendered {
  readonly text: string;
  /**
   * Each filter output whose inner text holds a secret: a new string no mask covers yet (main
   * registers each before the file is written; the agent, which cannot mask, ignores them).
   */
  readonly derived: readonly string[];
}

/** The tags as the input documents them, whatever `Mustache.tags` was set to elsewhere. */
const TAGS: [string, string] = ['{{', '}}'];
/** How much of a tag a message shows (a tag is template text, never a value). */
const TAG_SHOWN = 60;

/** "template 'npmrc' line 2 (input line 3)": where in the template, and where that is for the user. */
function at(where: TemplateSource, line: number): string {
  const from = where.file !== undefined ? where.file : where.inputLine !== undefined ? `input line ${where.inputLine + line - 1}` : '';
  return `template '${where.name}' line ${line}${from !== '' ? ` (${from})` : ''}`;
}

function fail(where: TemplateSource, line: number, message: string): never {
  throw new InputError('templates', `${at(where, line)}: ${message}`);
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function shown(tag: string): string {
  const flat = tag.replace(/\s+/g, ' ');
  return flat.length > TAG_SHOWN ? `${flat.slice(0, TAG_SHOWN)}...` : flat;
}

const FILTER_LIST = FILTER_NAMES.map((f) => `{{#${f}}}`).join(', ');

/**
 * Parses and checks a template: Mustache's syntax, and only placeholders, comments and the filter
 * sections. Throws an InputError naming the input, the template, the line and the tag, never a value.
 */
export function parseTemplate(where: TemplateSource, text: string): Template {
  // A set-delimiter tag changes how the rest parses: refused before Mustache reads on with new tags.
  const delimiter = /\{\{\s*=/.exec(text);
  if (delimiter) {
    fail(where, lineAt(text, delimiter.index), `set-delimiter tags ({{=<% %>=}}) are not supported; write placeholders as {{NAME}}`);
  }
  let tokens: TemplateSpans;
  try {
    tokens = Mustache.parse(text, TAGS);
  } catch (error) {
    syntaxError(where, text, error);
  }
  const secrets: string[] = [];
  const nodes = toNodes(where, text, tokens, secrets);
  return { name: where.name, nodes, secrets, where };
}

/** Mustache's parse errors ("Unclosed tag at 12"), told as the line and tag they are about. */
function syntaxError(where: TemplateSource, text: string, error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^(Unclosed tag|Unopened section|Unclosed section)(?: "([^"]*)")? at (\d+)$/.exec(message);
  if (!match) fail(where, 1, 'cannot be parsed as a Mustache template');
  const [, kind, name = '', pos] = match;
  const offset = Number(pos);
  if (kind === 'Unclosed tag') fail(where, lineAt(text, offset), "a tag opened with '{{' is not closed with '}}'");
  if (kind === 'Unopened section') fail(where, lineAt(text, offset), `{{/${shown(name)}}} closes no open section`);
  // Unclosed section: at a closing tag for another section, or at the end of the template.
  const closing = /^\{\{\s*\/\s*([^}]*?)\s*\}\}/.exec(text.slice(offset));
  const opening = lastOpening(text, name, offset);
  const line = lineAt(text, opening ?? offset);
  if (closing)
    fail(where, lineAt(text, offset), `{{/${shown(closing[1] ?? '')}}} does not close {{#${shown(name)}}} (opened on line ${line})`);
  fail(where, line, `{{#${shown(name)}}} is not closed: end it with {{/${shown(name)}}}`);
}

/** Where the last `{{#name}}` (or `{{^name}}`) before `offset` starts. */
function lastOpening(text: string, name: string, offset: number): number | undefined {
  let found: number | undefined;
  for (const m of text.slice(0, offset).matchAll(/\{\{\s*[#^]\s*([^}]*?)\s*\}\}/g)) if (m[1] === name) found = m.index;
  return found;
}

function toNodes(where: TemplateSource, text: string, tokens: TemplateSpans, secrets: string[]): Node[] {
  const nodes: Node[] = [];
  for (const token of tokens) {
    const [type, value, start, end] = token;
    const tag = shown(text.slice(start, end));
    const line = lineAt(text, start);
    switch (type) {
      case 'text':
        nodes.push({ kind: 'text', text: value });
        break;
      case 'name':
      case '&':
        if (!secrets.includes(value)) secrets.push(value);
        nodes.push({ kind: 'secret', name: value, line, tag });
        break;
      case '!':
        break; // a comment renders nothing
      case '#': {
        if (!isFilter(value)) fail(where, line, `${tag} is not a filter; the filters are ${FILTER_LIST} (a placeholder is {{NAME}})`);
        const body = toNodes(where, text, (token[4] as TemplateSpans | undefined) ?? [], secrets);
        nodes.push({ kind: 'filter', filter: value, body, usesSecret: body.some(holdsSecret) });
        break;
      }
      case '^':
        fail(where, line, `${tag}: inverted sections are not supported; the only sections are the filters ${FILTER_LIST}`);
        break;
      case '>':
        fail(where, line, `${tag}: partials are not supported; put the text in the template`);
        break;
      default:
        fail(where, line, `${tag} is not supported; use {{NAME}} placeholders and the filters ${FILTER_LIST}`);
    }
  }
  return nodes;
}

function holdsSecret(node: Node): boolean {
  return node.kind === 'secret' || (node.kind === 'filter' && node.usesSecret);
}

/** The first placeholder naming `name`, for its line and tag. */
function firstUse(nodes: readonly Node[], name: string): Extract<Node, { kind: 'secret' }> | undefined {
  for (const node of nodes) {
    if (node.kind === 'secret' && node.name === name) return node;
    if (node.kind === 'filter') {
      const found = firstUse(node.body, name);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Every placeholder must name a secret of this step (its output name, the file name under
 * secrets/): checked once the secrets are known, before anything is written.
 */
export function checkSecretNames(template: Template, known: readonly string[]): void {
  for (const name of template.secrets) {
    if (known.includes(name)) continue;
    const use = firstUse(template.nodes, name);
    const list =
      known.length === 0
        ? 'this step has none'
        : `this step's secrets are ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''}`;
    fail(template.where, use?.line ?? 1, `${use?.tag ?? `{{${name}}}`} names no secret of this step (${list})`);
  }
}

/**
 * A template inserts text: a secret whose decoded bytes are not UTF-8 text (`?encoding=`) cannot
 * stand in one (a lossy conversion would write a corrupt value without a word). Named with the
 * template, its line and the tag; the file of that secret is the way to use it.
 */
export function checkTextSecrets(template: Template, binary: readonly string[]): void {
  for (const name of template.secrets) {
    if (!binary.includes(name)) continue;
    const use = firstUse(template.nodes, name);
    fail(
      template.where,
      use?.line ?? 1,
      `${use?.tag ?? `{{${name}}}`} is secret '${name}', whose decoded value is not UTF-8 text; a template inserts text: use its file ($PIPELINE_SECRETS_DIR/${name}) instead`,
    );
  }
}

/** Renders with each placeholder's value inserted raw; `value` must know every name checkSecretNames passed. */
export function renderTemplate(template: Template, value: (name: string) => string | undefined): Rendered {
  const derived: string[] = [];
  const render = (nodes: readonly Node[]): string => {
    let out = '';
    for (const node of nodes) {
      if (node.kind === 'text') out += node.text;
      else if (node.kind === 'secret') {
        const v = value(node.name);
        if (v === undefined)
          throw new Error(`template '${template.name}': no value for '${node.name}' (names are checked before rendering)`);
        out += v;
      } else {
        const filtered = FILTERS[node.filter](render(node.body));
        if (node.usesSecret) derived.push(filtered);
        out += filtered;
      }
    }
    return out;
  };
  return { text: render(template.nodes), derived };
}
