// The one rule for outside text on its way to the log: hostile inputs, checked with the harness's
// own parser of workflow commands (the runner's). The runner edge that applies it is runner.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inert } from '../../../src/core/log-safe.ts';
import { parseCommand, RUNNER_COMMANDS } from '../../support/harness/commands.ts';

const REGISTERED = new Set(RUNNER_COMMANDS);

/** Every line the runner would see in `text`, none of which may parse as a command. */
function commandsIn(text: string): string[] {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => parseCommand(line, REGISTERED)?.command)
    .filter((c): c is string => c !== undefined);
}

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

const HOSTILE = [
  'leak\n::error title=X::forged\n::add-mask::Files removed',
  'a\r::warning::carriage return',
  'name\r\n::add-mask::Files removed',
  '   ::stop-commands::tok',
  '\t::error::tab first',
  '\u00a0\u3000::notice::unicode spaces first',
  '::error::at the very start',
  'mid ##[error]legacy command anywhere in the line',
  'legacy ##[add-mask]Files removed',
  '\u001b[31mred\u001b[0m',
  '\u001b]8;;https://evil.example/\u0007click\u001b]8;;\u0007',
  '\u001b]8;;https://evil.example/\u001b\\click\u001b]8;;\u001b\\',
  'nul\u0000byte',
  'del\u007f',
  'c1 csi \u009b31m and nel \u0085::error::after nel',
  'sep\u2028::error::after line separator\u2029',
  'bidi \u202eevil\u202c',
];

describe('inert', () => {
  it.each(HOSTILE)('makes %j one line with no command and no escape', (text) => {
    const out = inert(text);
    expect(out).not.toMatch(CONTROLS);
    expect(out.split(/\r\n|\r|\n/)).toHaveLength(1);
    expect(commandsIn(out)).toEqual([]);
    // Also after a prefix the action writes, and twice (the runner edge applies it again).
    expect(commandsIn(`  ${out}`)).toEqual([]);
    expect(inert(out)).toBe(out);
  });

  it('holds for any text: one line, no control, no command even after a prefix, unchanged by a second pass', () => {
    const unit = fc.oneof(
      fc.constantFrom(
        ':',
        '::',
        '#',
        '##[',
        '[',
        ' ',
        '\t',
        '\n',
        '\r',
        '\u00a0',
        '\u001b',
        '\u0085',
        '\u2028',
        '\u202e',
        'error',
        'add-mask',
      ),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 30 }), (text) => {
        const out = inert(text);
        expect(out).not.toMatch(CONTROLS);
        expect(commandsIn(out)).toEqual([]);
        expect(commandsIn(`  ${out}`)).toEqual([]);
        expect(inert(out)).toBe(out);
      }),
      { numRuns: 1000 },
    );
  });

  it('renders controls visibly, as in a JS string literal', () => {
    expect(inert('leak\n::error title=X::forged\n::add-mask::Files removed')).toBe(
      'leak\\n::error title=X::forged\\n::add-mask::Files removed',
    );
    expect(inert('a\rb\r\nc\td')).toBe('a\\rb\\r\\nc\\td');
    expect(inert('\u001b[31mred\u001b[0m')).toBe('\\x1b[31mred\\x1b[0m');
    expect(inert('\u001b]8;;https://e.example/\u0007x\u001b]8;;\u0007')).toBe('\\x1b]8;;https://e.example/\\x07x\\x1b]8;;\\x07');
    expect(inert('nul\u0000 del\u007f nel\u0085 csi\u009b')).toBe('nul\\x00 del\\x7f nel\\x85 csi\\x9b');
    expect(inert('a\u2028b\u2029c\u202ed\ufeff')).toBe('a\\u2028b\\u2029c\\u202ed\\ufeff');
  });

  it('neutralises a leading :: after any whitespace, and every legacy ##[', () => {
    expect(inert('::error::x')).toBe('\\x3a:error::x');
    expect(inert('   ::stop-commands::tok')).toBe('   \\x3a:stop-commands::tok');
    expect(inert('a ##[error]b ##[warning]c')).toBe('a ##\\x5berror]b ##\\x5bwarning]c');
  });

  it('leaves harmless text as it is', () => {
    expect(inert('')).toBe('');
    expect(inert('%0A%0D%25')).toBe('%0A%0D%25');
    expect(inert('données/日本語/😀‍🔥 ok')).toBe('données/日本語/😀‍🔥 ok');
    expect(inert('image::tag a::b C:\\dir\\file')).toBe('image::tag a::b C:\\dir\\file');
    expect(inert('secret/data/ci/app → password')).toBe('secret/data/ci/app → password');
  });
});
