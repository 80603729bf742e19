// parseVerifyInputs: verify/action.yml's inputs, each mistake an InputError naming the input.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { parseVerifyInputs } from '../../../src/inputs/verify.ts';

const base = { INPUT_CONTAINER: 'app', 'INPUT_SECRETS-DIR': '/tmp/s' };

describe('parseVerifyInputs', () => {
  it('reads the container, the mount path (default /run/secrets), the directory and fail-on-mismatch (default true)', () => {
    expect(parseVerifyInputs(base)).toEqual({
      container: 'app',
      mountPath: '/run/secrets',
      secretsDir: { path: '/tmp/s', from: 'secrets-dir' },
      failOnMismatch: true,
    });
    expect(parseVerifyInputs({ ...base, INPUT_PATH: '/secrets', 'INPUT_FAIL-ON-MISMATCH': 'FALSE' })).toMatchObject({
      mountPath: '/secrets',
      failOnMismatch: false,
    });
  });

  it('takes the directory from PIPELINE_SECRETS_DIR (an earlier Pipeline Secrets step) when secrets-dir is not given', () => {
    expect(parseVerifyInputs({ INPUT_CONTAINER: 'app', PIPELINE_SECRETS_DIR: '/dev/shm/ps/secrets' }).secretsDir).toEqual({
      path: '/dev/shm/ps/secrets',
      from: 'PIPELINE_SECRETS_DIR',
    });
  });

  it.each([
    [{ INPUT_CONTAINER: '' }, 'container', "input 'container': is required (the name or id of a running container)"],
    [
      { 'INPUT_SECRETS-DIR': '' },
      'secrets-dir',
      "input 'secrets-dir': not given and PIPELINE_SECRETS_DIR is not set; run Pipeline Secrets in an earlier step",
    ],
    [{ 'INPUT_FAIL-ON-MISMATCH': 'no' }, 'fail-on-mismatch', "input 'fail-on-mismatch': 'no' is not a boolean; use true or false"],
    // The boolean is checked before the rest: its typo is the one reported.
    [{ INPUT_CONTAINER: '', 'INPUT_FAIL-ON-MISMATCH': 'yes' }, 'fail-on-mismatch', /^input 'fail-on-mismatch': 'yes'/],
  ])('%j: an error naming %s', (overrides, input, message) => {
    let caught: unknown;
    try {
      parseVerifyInputs({ ...base, ...overrides });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as InputError).input).toBe(input);
    if (typeof message === 'string') expect((caught as Error).message).toBe(message);
    else expect((caught as Error).message).toMatch(message);
  });
});
