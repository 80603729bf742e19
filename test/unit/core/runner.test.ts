// The runner edge: what it prints on stdout (parsed as the runner parses workflow commands, and
// byte for byte as @actions/core prints it) and what it writes to the runner's file commands.
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isUserError } from '../../../src/core/errors.ts';
import { actionsRunner, stepLog } from '../../../src/core/runner.ts';
import { parseCommand, RUNNER_COMMANDS } from '../../support/harness/commands.ts';

const REGISTERED = new Set(RUNNER_COMMANDS);
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

let written: string[];
const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-runner-'));
  made.push(dir);
  return dir;
}
beforeEach(() => {
  written = [];
  vi.spyOn(stepLog, 'write').mockImplementation((text: string) => {
    written.push(text);
  });
});
afterEach(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  process.exitCode = undefined;
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

const output = (): string => written.join('');
const commands = (): Array<NonNullable<ReturnType<typeof parseCommand>>> =>
  output()
    .split(/\r\n|\r|\n/)
    .map((line) => parseCommand(line, REGISTERED))
    .filter((c) => c !== undefined);

describe('messages: outside text never becomes a workflow command', () => {
  const hostile = 'x\n::error title=X::forged\n  ::add-mask::Files removed ##[add-mask]more \u001b[31m';

  it('info, warning, debug, setFailed and annotate print outside text inert', () => {
    actionsRunner.info(`scrub: found in ${hostile}`);
    actionsRunner.info(hostile);
    actionsRunner.warning(`cleanup: ${hostile}`);
    actionsRunner.debug(hostile);
    actionsRunner.setFailed(hostile);
    actionsRunner.annotate('error', hostile, { file: hostile, line: 3, title: hostile });
    const seen = commands();
    // Only the commands the action itself issued: no forged error, add-mask or stop-commands.
    expect(seen.map((c) => c.command)).toEqual(['warning', 'debug', 'error', 'error']);
    for (const c of seen) {
      expect(c.data).not.toMatch(CONTROLS);
      for (const value of Object.values(c.properties)) expect(value).not.toMatch(CONTROLS);
    }
    expect(seen.some((c) => c.properties.title === 'X')).toBe(false);
    expect(output()).not.toContain('\u001b');
    expect(output()).toContain('scrub: found in x\\n::error title=X::forged\\n  ::add-mask::Files removed ##\\x5badd-mask]more \\x1b[31m');
  });

  it('annotations carry the file, line and title given, as the runner reads them', () => {
    actionsRunner.annotate('warning', 'found a value', { file: 'dist/app.js', line: 12, title: 'leak' });
    actionsRunner.annotate('notice', 'plain');
    expect(commands()).toEqual([
      { command: 'warning', properties: { file: 'dist/app.js', line: '12', title: 'leak' }, data: 'found a value' },
      { command: 'notice', properties: {}, data: 'plain' },
    ]);
  });

  it('keeps setSecret raw, and masks a value whose inert form the runner would not know', () => {
    actionsRunner.setSecret('pass\u001bword\nline2');
    expect(output()).toBe('::add-mask::pass\u001bword%0Aline2\n');
    written.length = 0;
    actionsRunner.info('value pass\u001bword\nline2 here');
    expect(output()).toBe('value *** here\n');
  });
});

describe('the same lines as @actions/core', () => {
  it('for messages, commands with and without properties, and masks', async () => {
    const core = await import('@actions/core');
    const calls: Array<[() => void, () => void]> = [
      [() => actionsRunner.info('plain 100% line'), () => core.info('plain 100% line')],
      [() => actionsRunner.warning('a, b: c%'), () => core.warning('a, b: c%')],
      [() => actionsRunner.debug('dbg'), () => core.debug('dbg')],
      [() => actionsRunner.setSecret('s%e\r\ncret'), () => core.setSecret('s%e\r\ncret')],
      [
        () => actionsRunner.annotate('error', 'msg', { file: 'a,b:c.txt', line: 7, title: 'T: 1%' }),
        () => core.error('msg', { file: 'a,b:c.txt', startLine: 7, title: 'T: 1%' }),
      ],
      [() => actionsRunner.annotate('notice', 'n', { file: 'f' }), () => core.notice('n', { file: 'f' })],
      [() => actionsRunner.annotate('warning', 'w', { line: 0 }), () => core.warning('w', { startLine: 0 })],
      [() => actionsRunner.setFailed('failed'), () => core.setFailed('failed')],
    ];
    for (const [ours, theirs] of calls) {
      written.length = 0;
      ours();
      const mine = output();
      const core: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        core.push(String(chunk));
        return true;
      });
      theirs();
      spy.mockRestore();
      expect(mine).toBe(core.join(''));
    }
    expect(process.exitCode).toBe(1);
  });

  it('writes to fd 1 itself, in order and whole, also far more than a pipe holds', () => {
    const big = 'x'.repeat(300_000);
    const script = `import { actionsRunner } from ${JSON.stringify(path.resolve('src/core/runner.ts'))};
actionsRunner.setSecrets(['first-value', 'second-value']);
actionsRunner.info(${JSON.stringify(big)});
actionsRunner.warning('last');`;
    const file = path.join(tmp(), 'print.ts');
    writeFileSync(file, script);
    const out = execFileSync(process.execPath, [file], { encoding: 'utf8', maxBuffer: 1 << 22 });
    expect(out).toBe(`::add-mask::first-value\n::add-mask::second-value\n${big}\n::warning::last\n`);
  });
});

describe('the step log when fd 1 is non-blocking', () => {
  it('a pipe made non-blocking (process.stdout set up on it) and full: all of it arrives, in order, once the reader reads', async () => {
    const big = 'y'.repeat(2_000_000);
    const file = path.join(tmp(), 'print.ts');
    // Touching process.stdout makes libuv put fd 1, a pipe, in non-blocking mode: writeSync then
    // meets EAGAIN as soon as the pipe is full, which it is at once while the reader waits.
    writeFileSync(
      file,
      `import { actionsRunner } from ${JSON.stringify(path.resolve('src/core/runner.ts'))};
void process.stdout;
actionsRunner.setSecrets(['the-first-value']);
actionsRunner.info(${JSON.stringify(big)});
actionsRunner.info('the end');`,
    );
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.pause();
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The reader starts late: by then the pipe has long been full.
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.stdout.resume();
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(`::add-mask::the-first-value\n${big}\nthe end\n`);
  });
});

describe('setSecrets', () => {
  it('writes the same ::add-mask:: lines as setSecret would, all in one write', () => {
    const values = ['first-secret', 'with%percent', 'two\r\nlines', 'pass\u001bword2'];
    for (const v of values) actionsRunner.setSecret(v);
    const oneByOne = output();
    written.length = 0;
    actionsRunner.setSecrets?.(values);
    expect(written).toHaveLength(1);
    expect(output()).toBe(oneByOne);
    written.length = 0;
    // The control-character value is masked in messages as setSecret's is.
    actionsRunner.info('see pass\u001bword2');
    expect(output()).toBe('see ***\n');
  });

  it('writes nothing for no values', () => {
    actionsRunner.setSecrets?.([]);
    expect(written).toEqual([]);
  });
});

describe('exports through the file commands only', () => {
  for (const [file, call] of [
    ['GITHUB_ENV', () => actionsRunner.exportVariable('SOME_VAR', 'value-never-printed')],
    ['GITHUB_OUTPUT', () => actionsRunner.setOutput('some-output', 'value-never-printed')],
  ] as const) {
    it(`refuses when ${file} is unset, as the user's one-line problem, printing nothing`, () => {
      vi.stubEnv(file, undefined);
      vi.stubEnv('SOME_VAR', undefined);
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(isUserError(error)).toBe(true);
      expect((error as Error).message).toMatch(new RegExp(`file command ${file} is not set`));
      expect((error as Error).message).not.toContain('\n');
      expect(output()).toBe('');
      expect(process.env.SOME_VAR).toBeUndefined();
    });
  }

  it('writes the value to the file command, never to the log', async () => {
    const dir = tmp();
    const envFile = path.join(dir, 'env');
    const outputFile = path.join(dir, 'output');
    // The runner creates both files before the step starts.
    await fs.writeFile(envFile, '');
    await fs.writeFile(outputFile, '');
    vi.stubEnv('GITHUB_ENV', envFile);
    vi.stubEnv('GITHUB_OUTPUT', outputFile);
    vi.stubEnv('SOME_VAR', undefined);
    actionsRunner.exportVariable('SOME_VAR', 'exported-value\nsecond line');
    actionsRunner.setOutput('some-output', 'output-value');
    expect(readFileSync(envFile, 'utf8')).toMatch(/^SOME_VAR<<(ghadelimiter_[0-9a-f-]+)\nexported-value\nsecond line\n\1\n$/);
    expect(readFileSync(outputFile, 'utf8')).toMatch(/^some-output<<(ghadelimiter_[0-9a-f-]+)\noutput-value\n\1\n$/);
    expect(output()).toBe('');
  });
});

describe('appendSummary', () => {
  it('is a no-op without GITHUB_STEP_SUMMARY (a local run), and appends to it otherwise', async () => {
    vi.stubEnv('GITHUB_STEP_SUMMARY', undefined);
    await expect(actionsRunner.appendSummary('### nowhere')).resolves.toBeUndefined();
    const file = path.join(tmp(), 'summary.md');
    await fs.writeFile(file, '### an earlier step\n');
    vi.stubEnv('GITHUB_STEP_SUMMARY', file);
    await actionsRunner.appendSummary('### first');
    await actionsRunner.appendSummary('### second');
    expect(await fs.readFile(file, 'utf8')).toBe('### an earlier step\n### first\n### second\n');
    expect(output()).toBe('');
  });
});
