// runStep: the one failure path of all four steps. A failure is one scrubbed line; a user's mistake
// leaves no stack anywhere, a bug leaves its stack (scrubbed) in debug output only.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { runStep } from '../../../src/core/run-step.ts';
import { fakeRunner } from '../../support/fake-runner.ts';

const VALUE = 's3cr3t-value-for-run-step';

describe('runStep', () => {
  it('a body that succeeds: nothing failed, nothing warned, undefined returned', async () => {
    const runner = fakeRunner();
    const result = await runStep(runner, { fail: 'Pipeline Secrets' }, async (masks) => void masks.add(VALUE));
    expect(result).toBeUndefined();
    expect(runner.failures).toEqual([]);
    expect(runner.warnings).toEqual([]);
    expect(runner.masked).toContain(VALUE);
  });

  it('a user mistake fails the step with one scrubbed line, the same reason in the summary, and no stack', async () => {
    const runner = fakeRunner();
    const result = await runStep(runner, { fail: 'Pipeline Secrets verify' }, async (masks) => {
      masks.add(VALUE);
      throw new InputError('container', `no such container holding ${VALUE}`);
    });
    expect(result).toBe("input 'container': no such container holding ***");
    expect(runner.failures).toEqual([result]);
    expect(runner.summaries.join('')).toContain('### Pipeline Secrets verify: failed');
    expect(runner.summaries.join('')).toContain('no such container holding ***');
    expect(runner.debugs).toEqual([]);
    expect(runner.visible()).not.toContain(VALUE);
  });

  it('a bug keeps its stack in debug output only, scrubbed', async () => {
    const runner = fakeRunner();
    await runStep(runner, { fail: 'Pipeline Secrets' }, async (masks) => {
      masks.add(VALUE);
      throw new TypeError(`cannot read ${VALUE}`);
    });
    expect(runner.failures).toEqual(['cannot read ***']);
    expect(runner.debugs).toHaveLength(1);
    expect(runner.debugs[0]).toMatch(/^TypeError: cannot read \*\*\*\n\s+at /);
    expect(runner.visible()).not.toContain(VALUE);
  });

  it('post warns instead of failing, and writes no failure summary', async () => {
    const runner = fakeRunner();
    const result = await runStep(runner, { warn: 'cleanup' }, async () => {
      throw new Error('the saved state is gone');
    });
    expect(result).toBe('the saved state is gone');
    expect(runner.failures).toEqual([]);
    expect(runner.summaries).toEqual([]);
    expect(runner.warnings).toEqual(['cleanup: the saved state is gone']);
  });

  it('a thrown non-Error becomes its text, and a failing summary write does not hide the failure', async () => {
    const runner = fakeRunner();
    runner.appendSummary = async () => Promise.reject(new Error('summary file not writable'));
    const result = await runStep(runner, { fail: 'Pipeline Secrets' }, async () => {
      throw 'a string, not an Error'; // eslint-disable-line @typescript-eslint/only-throw-error
    });
    expect(result).toBe('a string, not an Error');
    expect(runner.failures).toEqual(['a string, not an Error']);
  });
});
