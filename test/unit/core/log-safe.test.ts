// The one rule for outside text on its way to the log: hostile inputs, checked with the harness's
// own parser of workflow commands (the runner's), and at the runner edge with real @actions/core.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { inert } from '../../../src/core/log-safe.ts';
import { actionsRunner } from '../../../src/core/runner.ts';
import { cell, code } from '../../../src/core/summary-text.ts';
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

describe('the markdown cell escape', () => {
  it('keeps outside text on one line of one cell, with no HTML, link or escape', () => {
    const out = cell('a|b\n| x | y |\r<img src=x onerror=alert(1)>[link](https://e.example)\u001b[31m&lt;');
    expect(out).not.toMatch(CONTROLS);
    expect(out).not.toMatch(/(^|[^\\])[|<>[\]]/);
    expect(out).toContain('\\\\n');
    expect(out).toContain('&amp;lt;');
  });

  it('puts a path in a code span nothing inside can close, readable as it is', () => {
    expect(code('/home/runner/work/_temp/a*b')).toBe('`/home/runner/work/_temp/a*b`');
    expect(code('a`b``c\n<x>')).toBe('```a`b``c\\n<x>```');
    expect(code('`x')).toBe('`` `x ``');
    expect(code('d\n::error::x\u001b[31m')).toBe('`d\\n::error::x\\x1b[31m`');
  });
});

describe('the runner edge (@actions/core, real)', () => {
  let written: string[];
  beforeEach(() => {
    written = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  const output = (): string => written.join('');
  const hostile = 'x\n::error title=X::forged\n  ::add-mask::Files removed ##[add-mask]more \u001b[31m';

  it('info, warning, debug, setFailed and annotate print outside text inert', () => {
    actionsRunner.info(`scrub: found in ${hostile}`);
    actionsRunner.info(hostile);
    actionsRunner.warning(`cleanup: ${hostile}`);
    actionsRunner.debug(hostile);
    actionsRunner.setFailed(hostile);
    actionsRunner.annotate('error', hostile, { file: hostile, line: 3, title: hostile });
    const lines = output().split(/\r\n|\r|\n/);
    const commands = lines.map((line) => parseCommand(line, REGISTERED)).filter((c) => c !== undefined);
    expect(commands.map((c) => c.command)).toEqual(['warning', 'debug', 'error', 'error']);
    for (const c of commands) {
      expect(c.data).not.toMatch(CONTROLS);
      for (const value of Object.values(c.properties)) expect(value).not.toMatch(CONTROLS);
    }
    expect(commands.some((c) => c.properties.title === 'X')).toBe(false);
    expect(output()).not.toContain('\u001b');
    expect(output()).toContain('scrub: found in x\\n::error title=X::forged\\n  ::add-mask::Files removed ##\\x5badd-mask]more \\x1b[31m');
  });

  it('keeps setSecret raw, and masks a value whose inert form the runner would not know', () => {
    actionsRunner.setSecret('pass\u001bword\nline2');
    expect(output()).toBe('::add-mask::pass\u001bword%0Aline2\n');
    written.length = 0;
    actionsRunner.info('value pass\u001bword\nline2 here');
    expect(output()).toBe('value *** here\n');
  });
});
