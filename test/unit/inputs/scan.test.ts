// parseScanInputs: scan/action.yml's inputs, each mistake an InputError naming the input; names
// that are not names (a value pasted by mistake) are refused without being echoed.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { parseScanInputs } from '../../../src/inputs/scan.ts';
import { thrown } from '../../support/errors.ts';

const base = { INPUT_PATHS: 'dist/\nbuild/*.tar.gz, out.zip', 'INPUT_SECRETS-DIR': '/tmp/s' };

const inputError = (env: Record<string, string>): InputError => thrown(() => parseScanInputs(env), InputError);

describe('parseScanInputs', () => {
  it('reads lists, the directory and the booleans with their defaults (fail-on-leak true, fail-on-lint false)', () => {
    expect(parseScanInputs(base)).toEqual({
      paths: ['dist/', 'build/*.tar.gz', 'out.zip'],
      images: [],
      dockerfiles: undefined,
      secretsDir: { path: '/tmp/s', from: 'secrets-dir' },
      secretEnvNames: [],
      failOnLeak: true,
      failOnLint: false,
    });
  });

  it('strict booleans: TRUE and False are taken as written', () => {
    expect(parseScanInputs({ ...base, 'INPUT_FAIL-ON-LINT': 'TRUE', 'INPUT_FAIL-ON-LEAK': 'False' })).toMatchObject({
      failOnLint: true,
      failOnLeak: false,
    });
  });

  it('dockerfiles: not given means every Dockerfile of the workspace; given, exactly those', () => {
    expect(parseScanInputs({ ...base, INPUT_DOCKERFILES: 'Dockerfile, app/Containerfile' }).dockerfiles).toEqual([
      'Dockerfile',
      'app/Containerfile',
    ]);
    expect(parseScanInputs({ ...base, INPUT_DOCKERFILES: '# none' }).dockerfiles).toEqual([]);
  });

  it('images and env var names', () => {
    const config = parseScanInputs({
      ...base,
      INPUT_IMAGES: 'app:1.0\nghcr.io/org/app@sha256:0123abcd',
      'INPUT_SECRET-ENV-NAMES': 'NPM_TOKEN, _OTHER',
    });
    expect(config.images).toEqual(['app:1.0', 'ghcr.io/org/app@sha256:0123abcd']);
    expect(config.secretEnvNames).toEqual(['NPM_TOKEN', '_OTHER']);
  });

  it('values from env vars alone need no secrets directory', () => {
    expect(parseScanInputs({ INPUT_PATHS: '.', 'INPUT_SECRET-ENV-NAMES': 'TOKEN' }).secretsDir).toBeUndefined();
  });

  it.each([
    [{ 'INPUT_FAIL-ON-LEAK': 'flase' }, 'fail-on-leak', "input 'fail-on-leak': 'flase' is not a boolean; use true or false"],
    [{ 'INPUT_FAIL-ON-LINT': 'yes' }, 'fail-on-lint', "input 'fail-on-lint': 'yes' is not a boolean; use true or false"],
    [
      { INPUT_IMAGES: '--output=/etc/x' },
      'images',
      "input 'images': '--output=/etc/x' is not a local docker image reference like app:1.0 or ghcr.io/org/app@sha256:...",
    ],
    [
      { 'INPUT_SECRETS-DIR': '' },
      'secrets-dir',
      "input 'secrets-dir': not given and PIPELINE_SECRETS_DIR is not set, so there are no values to look for: run Pipeline Secrets in an earlier step, or name env vars in 'secret-env-names'",
    ],
  ])('%j: an error naming %s', (overrides, input, message) => {
    const error = inputError({ ...base, ...overrides });
    expect(error.input).toBe(input);
    expect(error.message).toBe(message);
  });

  it('a value pasted into secret-env-names is refused without being echoed', () => {
    const pasted = 'ghp_r3alT0ken-value!';
    const error = inputError({ ...base, 'INPUT_SECRET-ENV-NAMES': `NPM_TOKEN\n${pasted}` });
    expect(error.input).toBe('secret-env-names');
    expect(error.message).toMatch(/^input 'secret-env-names': entry 2 is not an environment variable name/);
    expect(error.message).not.toContain(pasted);
  });

  it('lint only (no paths, no images) needs no values', () => {
    expect(parseScanInputs({})).toMatchObject({ paths: [], images: [], secretsDir: undefined, secretEnvNames: [] });
  });
});
