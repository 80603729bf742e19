// Outside text made safe for the job summary (cell, code) and the one failure section every step
// writes. Never a value: callers pass names, paths, counts and scrubbed messages.
import { inert } from './log-safe.ts';

/**
 * Escapes outside text (names, paths, messages) for the job summary, in a table cell or anywhere in
 * a line: one line with controls rendered visibly (log-safe.ts), then no markdown or HTML of its own
 * (no cell break, link, image, tag, entity or emphasis). Every outside string in a summary goes here.
 */
export function cell(text: string): string {
  return inert(text)
    .replace(/[|\\`*_<>[\]]/g, (c) => `\\${c}`)
    .replaceAll('&', '&amp;');
}

/**
 * Outside text as an inline code span, outside a table: one line with controls rendered visibly; a
 * fence longer than any run of backticks in it, so nothing inside can close it (inside a code span
 * there is no markdown or HTML, and backslash escapes would show).
 */
export function code(text: string): string {
  const safe = inert(text);
  const fence = '`'.repeat(Math.max(0, ...(safe.match(/`+/g) ?? []).map((run) => run.length)) + 1);
  // CommonMark strips one space from each side when both sides have one (and removes none from a
  // backtick-edged span's padding): pad so that what shows is exactly the text.
  const spaced = safe.startsWith(' ') && safe.endsWith(' ') && safe.trim() !== '';
  const pad = safe.startsWith('`') || safe.endsWith('`') || spaced ? ' ' : '';
  return `${fence}${pad}${safe}${pad}${fence}`;
}
/** A failed step's reason, the same text as its error annotation (a code span: shown verbatim, never markup). */
export function failureSummary(what: string, message: string): string {
  return [`### ${what}: failed`, '', code(message), ''].join('\n');
}
