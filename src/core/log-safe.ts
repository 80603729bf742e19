// The one rule for text that did not come from the action itself (file and archive-member names,
// Vault key names and messages, paths, docker output, the agent's log) on its way to the log, an
// annotation or the job summary: it cannot start a workflow command and carries no terminal escape.
//
// The runner reads its step output line by line (CR, LF, CRLF) and parses a line as a command when,
// after leading whitespace, it starts with `::` (ActionCommand.TryParseV2), or when it holds `##[`
// anywhere (the legacy TryParse); a terminal, the log viewer and annotations act on ESC/CSI/OSC
// sequences and C1 controls. `inert` makes any string one line that does neither:
// - every control character is rendered visibly, as in a JS string literal: LF as the two characters
//   `\n`, CR `\r`, TAB `\t`, ESC `\x1b`, NUL `\x00`, DEL `\x7f`, C1 (U+0080-U+009F, NEL, CSI, OSC)
//   `\x85`, line and paragraph separators `\u2028` `\u2029`, and the bidirectional and BOM format
//   characters that reorder or hide what a reader sees (`\u202e`...);
// - a leading `::` (after any whitespace) becomes `\x3a:`, and every `##[` becomes `##\x5b`.
// Everything else stays as it is: unicode names remain readable, `%0A` stays `%0A` (only command
// data is percent-decoded by the runner). The result never contains a character `inert` rewrites,
// so applying it twice changes nothing (a call site may apply it, and the runner edge applies it
// again). It is for display only: it is not reversible (a literal `\n` in a name looks the same).

// eslint-disable-next-line no-control-regex -- control characters are what this matches
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function render(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` as one line that cannot start a workflow command and carries no terminal escape. */
export function inert(text: string): string {
  let out = text.replace(UNSAFE, render).replaceAll('##[', '##\\x5b');
  const start = out.length - out.trimStart().length;
  if (out.startsWith('::', start)) out = `${out.slice(0, start)}\\x3a${out.slice(start + 1)}`;
  return out;
}
