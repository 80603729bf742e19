// Workflow commands printed on stdout/stderr, parsed and processed as the runner does.
//
// Sources (actions/runner):
// - src/Runner.Common/ActionCommand.cs: TryParseV2 (`::name k=v,k=v::data`, leading whitespace
//   allowed) and the legacy TryParse (`##[name k=v;k=v]data` anywhere in the line); the escape tables
//   and their sequential Replace order; properties are case-insensitive.
// - src/Runner.Worker/ActionCommandManager.cs: V2 is tried first, then legacy; only registered
//   commands parse (case-insensitive); `stop-commands` pauses everything until `::TOKEN::`, both lines
//   are echoed; add-mask is never echoed; set-env/add-path are disabled; unknown lines are plain output.
// - src/Runner.Worker/Handlers/NodeScriptActionHandler.cs: stdout and stderr each go through an
//   OutputManager, so commands work on both streams.
// - @actions/core src/command.ts: escapeData (% CR LF) and escapeProperty (also `:` and `,`).

import { addMaskValues } from './masking.ts';

export interface ParsedCommand {
  command: string; // lower-cased
  properties: Record<string, string>; // keys lower-cased (OrdinalIgnoreCase dictionary)
  data: string;
}

type Escapes = ReadonlyArray<readonly [escaped: string, token: string]>;
// ActionCommand._escapeDataMappings / _escapePropertyMappings / _escapeMappings, applied in order.
const DATA_ESCAPES: Escapes = [
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%25', '%'],
];
const PROPERTY_ESCAPES: Escapes = [
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%3A', ':'],
  ['%2C', ','],
  ['%25', '%'],
];
const LEGACY_ESCAPES: Escapes = [
  ['%3B', ';'],
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%5D', ']'],
  ['%25', '%'],
];

function unescape(text: string, table: Escapes): string {
  let out = text;
  for (const [escaped, token] of table) out = out.replaceAll(escaped, token);
  return out;
}

/** `k=v` with .NET Split('=', 2, RemoveEmptyEntries): both sides must be non-empty. */
function splitPair(text: string): [string, string] | undefined {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) return undefined;
  return [text.substring(0, eq), text.substring(eq + 1)];
}

/** Commands the runner registers (ActionCommandManager extensions + `stop-commands`). */
export const RUNNER_COMMANDS: readonly string[] = [
  'stop-commands',
  'set-env',
  'set-output',
  'save-state',
  'add-mask',
  'add-path',
  'add-matcher',
  'remove-matcher',
  'warning',
  'error',
  'notice',
  'debug',
  'group',
  'endgroup',
  'echo',
];

export function parseCommand(line: string, registered: ReadonlySet<string>): ParsedCommand | undefined {
  return parseV2(line, registered) ?? parseLegacy(line, registered);
}

function parseV2(line: string, registered: ReadonlySet<string>): ParsedCommand | undefined {
  const message = line.trimStart();
  if (!message.startsWith('::')) return undefined;
  const end = message.indexOf('::', 2);
  if (end < 0) return undefined;
  const info = message.substring(2, end);
  const space = info.indexOf(' ');
  const name = (space < 0 ? info : info.substring(0, space)).toLowerCase();
  if (!registered.has(name)) return undefined;
  const properties: Record<string, string> = {};
  if (space > 0) {
    for (const prop of info
      .substring(space + 1)
      .trim()
      .split(',')) {
      const pair = prop === '' ? undefined : splitPair(prop);
      if (pair) properties[pair[0].toLowerCase()] = unescape(pair[1], PROPERTY_ESCAPES);
    }
  }
  return { command: name, properties, data: unescape(message.substring(end + 2), DATA_ESCAPES) };
}

function parseLegacy(line: string, registered: ReadonlySet<string>): ParsedCommand | undefined {
  const prefix = line.indexOf('##[');
  if (prefix < 0) return undefined;
  const rb = line.indexOf(']', prefix);
  if (rb < 0) return undefined;
  const info = line.substring(prefix + 3, rb);
  const space = info.indexOf(' ');
  const name = (space < 0 ? info : info.substring(0, space)).toLowerCase();
  if (!registered.has(name)) return undefined;
  const properties: Record<string, string> = {};
  if (space > 0) {
    for (const prop of info.substring(space + 1).split(';')) {
      const pair = prop === '' ? undefined : splitPair(prop);
      if (pair) properties[pair[0].toLowerCase()] = unescape(pair[1], LEGACY_ESCAPES);
    }
  }
  return { command: name, properties, data: unescape(line.substring(rb + 1), LEGACY_ESCAPES) };
}

export type AnnotationLevel = 'error' | 'warning' | 'notice' | 'debug';
export interface Annotation {
  level: AnnotationLevel;
  message: string;
  file?: string;
  line?: number;
}

/** What processing one output line asks of the step. */
export interface LineEffects {
  log?: string; // the (unmasked) text the runner writes to the log for this line
  annotations: Annotation[];
  masks: string[]; // data of a processed ::add-mask::
  isAddMask: boolean; // the line was consumed as an add-mask command
}

const DEPRECATED = (name: string): string =>
  `The \`${name}\` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. ` +
  'For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/';
// Constants.Runner.UnsupportedCommandMessageDisabled
const DISABLED = (name: string): string =>
  `The \`${name}\` command is disabled. Please upgrade to using Environment Files or opt into unsecure command ` +
  'execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more ' +
  'information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/';

/**
 * One ActionCommandManager: the stop-commands state lives per step process, like the runner's
 * per-step command manager.
 */
export class CommandProcessor {
  readonly #registered = new Set(RUNNER_COMMANDS);
  #stopped = false;
  #stopToken: string | null = null;
  readonly #debug: boolean;

  constructor(debug: boolean) {
    this.#debug = debug;
  }

  process(line: string): LineEffects {
    const effects: LineEffects = { annotations: [], masks: [], isAddMask: false };
    const cmd = parseCommand(line, this.#registered);
    if (!cmd) {
      effects.log = line;
      return effects;
    }
    if (this.#stopped) {
      // While stopped only the token resumes; anything else is plain output.
      if (this.#stopToken && cmd.command === this.#stopToken.toLowerCase()) {
        this.#registered.delete(this.#stopToken.toLowerCase());
        this.#stopped = false;
        this.#stopToken = null;
      }
      effects.log = line;
      return effects;
    }
    const warn = (message: string): void => {
      effects.annotations.push({ level: 'warning', message });
      effects.log = `##[warning]${message}`;
    };
    switch (cmd.command) {
      case 'stop-commands':
        effects.log = line;
        this.#stopToken = cmd.data;
        this.#stopped = true;
        this.#registered.add(cmd.data.toLowerCase());
        break;
      case 'add-mask': {
        effects.isAddMask = true;
        const values = addMaskValues(cmd.data);
        if (values.length === 0) warn("Can't add secret mask for empty string in ##[add-mask] command.");
        else effects.masks.push(cmd.data);
        break;
      }
      case 'error':
      case 'warning':
      case 'notice': {
        const annotation: Annotation = { level: cmd.command, message: cmd.data };
        const file = cmd.properties['file'];
        if (file !== undefined) annotation.file = file;
        const lineNo = Number.parseInt(cmd.properties['line'] ?? '', 10);
        if (Number.isInteger(lineNo)) annotation.line = lineNo;
        effects.annotations.push(annotation);
        effects.log = `##[${cmd.command}]${cmd.data}`;
        break;
      }
      case 'debug':
        effects.annotations.push({ level: 'debug', message: cmd.data });
        if (this.#debug) effects.log = `##[debug]${cmd.data}`;
        break;
      case 'group':
        effects.log = `##[group]${cmd.data}`;
        break;
      case 'endgroup':
        effects.log = '##[endgroup]';
        break;
      case 'set-output':
      case 'save-state':
        // Harness choice: the legacy commands warn like the runner but take no effect, so a test
        // cannot pass on an output or state the runner is about to stop honouring.
        warn(DEPRECATED(cmd.command));
        break;
      case 'set-env':
      case 'add-path': {
        const first = `Unable to process command '${line}' successfully.`;
        effects.annotations.push({ level: 'error', message: first }, { level: 'error', message: DISABLED(cmd.command) });
        effects.log = `##[error]${first}\n##[error]${DISABLED(cmd.command)}`;
        break;
      }
      default:
        // echo, add-matcher, remove-matcher: accepted, nothing to show.
        break;
    }
    return effects;
  }
}

/**
 * Split output into lines like .NET StreamReader.ReadLine (the runner's ProcessInvoker): `\n`,
 * `\r\n` and a lone `\r` all end a line; no empty line after a final terminator.
 */
export class LineSplitter {
  #buffer = '';
  readonly #emit: (line: string) => void;

  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  push(text: string): void {
    const b = this.#buffer + text;
    let start = 0;
    let i = 0;
    while (i < b.length) {
      const c = b.charCodeAt(i);
      if (c === 10) {
        this.#emit(b.substring(start, i));
        start = ++i;
      } else if (c === 13) {
        if (i + 1 >= b.length) break; // a following chunk may bring the \n of a \r\n
        this.#emit(b.substring(start, i));
        i += b.charCodeAt(i + 1) === 10 ? 2 : 1;
        start = i;
      } else {
        i++;
      }
    }
    this.#buffer = b.substring(start);
  }

  end(): void {
    const rest = this.#buffer;
    this.#buffer = '';
    if (rest !== '') this.#emit(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
  }
}

export function splitLines(text: string): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((l) => lines.push(l));
  splitter.push(text);
  splitter.end();
  return lines;
}
