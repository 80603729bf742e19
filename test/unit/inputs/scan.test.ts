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
      roots: [],
      secretEnvNames: [],
      vault: undefined,
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
      "input 'secrets-dir': not given and PIPELINE_SECRETS_DIR is not set, so there are no values to look for: run Pipeline Secrets in an earlier step, give Vault 'secrets' (and 'url', 'method'...) for this step to fetch, or name env vars in 'secret-env-names'",
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

  it('PIPELINE_SECRETS_ROOTS: every step of the job, each once, blank entries dropped; a source on its own', () => {
    expect(
      parseScanInputs({
        INPUT_PATHS: '.',
        PIPELINE_SECRETS_ROOTS: '/dev/shm/pipeline-secrets-a::/dev/shm/pipeline-secrets-b:/dev/shm/pipeline-secrets-a',
      }).roots,
    ).toEqual(['/dev/shm/pipeline-secrets-a', '/dev/shm/pipeline-secrets-b']);
  });

  it("Vault: main's inputs and `secrets` lines, main's defaults; a source on its own", () => {
    const config = parseScanInputs({
      INPUT_PATHS: '.',
      INPUT_URL: 'https://vault.example:8200/',
      INPUT_METHOD: 'approle',
      'INPUT_ROLE-ID': 'role',
      'INPUT_SECRET-ID': 'sid',
      INPUT_SECRETS: 'secret/ci/app password | APP_PASSWORD\nsecret/ci/tls * ?',
    });
    expect(config.secretsDir).toBeUndefined();
    expect(config.vault).toMatchObject({
      config: { url: 'https://vault.example:8200', auth: { method: 'approle', mount: 'approle', roleId: 'role', secretId: 'sid' } },
      timeoutMs: 30_000,
      concurrency: 16,
      retries: 4,
    });
    expect(config.vault?.secrets.map((l) => [l.line, l.path, l.name, l.optional])).toEqual([
      [1, 'secret/ci/app', 'APP_PASSWORD', false],
      [2, 'secret/ci/tls', undefined, true],
    ]);
  });

  it.each([
    [{ INPUT_SECRETS: 'secret/ci/app password' }, "input 'url': is required when `secrets` has entries (or set VAULT_ADDR)"],
    [
      { INPUT_SECRETS: 'secret/ci/app password', INPUT_URL: 'https://v.example', INPUT_METHOD: 'approle' },
      "input 'role-id': is required for method 'approle'",
    ],
    [
      {
        INPUT_SECRETS: 'secret/ci/app password\nwrite pki/issue/ci {"common_name": "a.example"} certificate | CERT',
        INPUT_URL: 'https://v.example',
      },
      "input 'secrets': line 2: a 'write' entry issues a new credential, which no artifact made earlier can hold; the scan looks for values that exist already: leave it out here (a step that delivered it lists it in its own private directory)",
    ],
    [
      { INPUT_SECRETS: 'secret/ci/app', INPUT_URL: 'https://v.example', INPUT_TOKEN: 't' },
      "input 'secrets': line 1: found 1 word(s); expected '<path> <key> [| NAME]', '<path> * [| PREFIX]', '<path> ** [| PREFIX]' or 'write <path> {json} <key> [| NAME]', optionally ending in ' ?'",
    ],
  ])("Vault mistakes are the main step's messages: %j", (env, message) => {
    expect(inputError({ INPUT_PATHS: '.', ...env }).message).toBe(message);
  });

  it('lint only (no paths, no images) needs no values', () => {
    expect(parseScanInputs({})).toMatchObject({ paths: [], images: [], secretsDir: undefined, secretEnvNames: [] });
  });
});
