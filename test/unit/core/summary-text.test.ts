// Outside text in the job summary: a table cell (cell) and a code span (code) that nothing inside can
// escape from (no cell break, line break, markup, HTML or entity of its own), and the failure section.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inert } from '../../../src/core/log-safe.ts';
import { cell, code, failureSummary } from '../../../src/core/summary-text.ts';

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Outside text heavy in what markdown, HTML and the runner act on, and any other character. */
const hostile = fc.string({
  unit: fc.oneof(
    fc.constantFrom(
      '|',
      '`',
      '\\',
      '<',
      '>',
      '[',
      ']',
      '(',
      ')',
      '*',
      '_',
      '&',
      '#',
      '!',
      ':',
      ';',
      '\n',
      '\r',
      '\t',
      ' ',
      '\u001b',
      '\u2028',
    ),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 40,
});

/** What markdown leaves of `text` once each backslash escape (`\` and the character after it) is read. */
const unescaped = (text: string): string => text.replace(/\\[\s\S]/g, '');

describe('cell', () => {
  it('is one line in which every character markdown or HTML acts on is escaped', () => {
    fc.assert(
      fc.property(hostile, (text) => {
        const out = cell(text);
        expect(out).not.toMatch(CONTROLS);
        // No pipe to end the cell, no tag, link, image, code span or emphasis, no entity but &amp;.
        expect(unescaped(out)).not.toMatch(/[|<>[\]`*_\\]/);
        expect(unescaped(out).replaceAll('&amp;', '')).not.toContain('&');
        // In a table row it stays in its one cell.
        const row = `| ${out} | next |`;
        expect(row.split(/(?<!\\)\|/)).toHaveLength(4);
      }),
      { numRuns: 500 },
    );
  });

  it('reads as the text did, with controls shown visibly', () => {
    const out = cell('a|b\n| x | y |\r<img src=x onerror=alert(1)>[link](https://e.example)\u001b[31m&lt;');
    expect(out).toBe('a\\|b\\\\n\\| x \\| y \\|\\\\r\\<img src=x onerror=alert(1)\\>\\[link\\](https://e.example)\\\\x1b\\[31m&amp;lt;');
    expect(cell('secret/data/ci/app → password')).toBe('secret/data/ci/app → password');
  });
});

describe('code', () => {
  it('is one code span that nothing inside can close, showing exactly the inert text', () => {
    fc.assert(
      fc.property(hostile, (text) => {
        const out = code(text);
        expect(out).not.toMatch(CONTROLS);
        const fence = /^`+/.exec(out)?.[0] ?? '';
        expect(fence.length).toBeGreaterThan(0);
        expect(out.endsWith(fence)).toBe(true);
        const inside = out.slice(fence.length, out.length - fence.length);
        // A code span ends at the first run of exactly as many backticks as opened it; the fence is
        // longer than any run inside, and the inside never touches the fence with a backtick.
        expect((inside.match(/`+/g) ?? []).every((run) => run.length < fence.length)).toBe(true);
        expect(inside.startsWith('`') || inside.endsWith('`')).toBe(false);
        // CommonMark strips one space on each side when both are there: what shows is the inert text.
        const shown = inside.startsWith(' ') && inside.endsWith(' ') && inside.trim() !== '' ? inside.slice(1, -1) : inside;
        expect(shown).toBe(inert(text));
      }),
      { numRuns: 500 },
    );
  });

  it('reads as the text did', () => {
    expect(code('/home/runner/work/_temp/a*b')).toBe('`/home/runner/work/_temp/a*b`');
    expect(code('a`b``c\n<x>')).toBe('```a`b``c\\n<x>```');
    expect(code('`x')).toBe('`` `x ``');
    // Spaces on both sides survive CommonMark's stripping of one from each side.
    expect(code(' | ')).toBe('`  |  `');
    expect(code('d\n::error::x\u001b[31m')).toBe('`d\\n::error::x\\x1b[31m`');
  });
});

describe('failureSummary', () => {
  it('is a heading naming the step, and the reason as one code span', () => {
    const section = failureSummary('Pipeline Secrets', "input 'secrets': line 2 `x`\n### forged heading\n<b>bold</b>");
    expect(section).toBe(
      ['### Pipeline Secrets: failed', '', "``input 'secrets': line 2 `x`\\n### forged heading\\n<b>bold</b>``", ''].join('\n'),
    );
  });
});
