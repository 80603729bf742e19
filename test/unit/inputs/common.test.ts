// What every step's input parser shares: strict booleans, fixed choices, whole numbers, lists, the
// one secret-name rule (and every parser that checks a name keeping to it), and the defaults,
// which must agree with what the action.yml files declare.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { InputError } from '../../../src/core/errors.ts';
import {
  DEFAULT_SECRETS_MOUNT,
  DEFAULT_TIMEOUT_SECONDS,
  getBoolean,
  getChoice,
  getInput,
  getInteger,
  getList,
  isEnvVarName,
  isSafeName,
  type Env,
} from '../../../src/inputs/common.ts';
import { parseBuildSecrets, parseRegistries } from '../../../src/inputs/docker.ts';
import { parseInputs } from '../../../src/inputs/main.ts';
import { parseScanInputs } from '../../../src/inputs/scan.ts';
import { parseEnvSecretsInput, parseSecretsInput } from '../../../src/inputs/secret-spec.ts';
import { parseVerifyInputs } from '../../../src/inputs/verify.ts';
import { thrown } from '../../support/errors.ts';

/** The InputError a call throws (fails the test when it throws anything else, or nothing). */
const inputError = (fn: () => unknown): InputError => thrown(fn, InputError);

describe('getInput', () => {
  it('reads INPUT_<NAME> as the runner sets it: upper-cased, spaces as _, trimmed', () => {
    expect(getInput({ 'INPUT_FAIL-ON-LINT': '  true \n' }, 'fail-on-lint')).toBe('true');
    expect(getInput({ INPUT_MY_INPUT: 'x' }, 'my input')).toBe('x');
    expect(getInput({}, 'absent')).toBe('');
  });
});

describe('getBoolean (YAML 1.2 core schema, strict)', () => {
  it.each([
    ['true', true],
    ['True', true],
    ['TRUE', true],
    ['false', false],
    ['False', false],
    ['FALSE', false],
    [' TRUE ', true],
  ])('%j is %s', (raw, expected) => {
    expect(getBoolean({ 'INPUT_FAIL-ON-LINT': raw }, 'fail-on-lint', !expected)).toBe(expected);
  });

  it('empty gives the fallback', () => {
    expect(getBoolean({}, 'fail-on-leak', true)).toBe(true);
    expect(getBoolean({ 'INPUT_FAIL-ON-LEAK': '' }, 'fail-on-leak', false)).toBe(false);
  });

  it.each(['yes', 'no', 'on', 'off', '1', '0', 'tRUE', 'flase', 'y'])('%j is refused, naming the input and what to write', (raw) => {
    const error = inputError(() => getBoolean({ 'INPUT_FAIL-ON-LINT': raw }, 'fail-on-lint', false));
    expect(error.input).toBe('fail-on-lint');
    expect(error.message).toBe(`input 'fail-on-lint': '${raw}' is not a boolean; use true or false`);
  });
});

describe('getChoice', () => {
  const modes = ['redact', 'delete', 'report', 'off'] as const;
  it('takes a listed value as written, and the fallback when empty', () => {
    expect(getChoice({ INPUT_SCRUB: 'delete' }, 'scrub', modes, 'redact')).toBe('delete');
    expect(getChoice({}, 'scrub', modes, 'redact')).toBe('redact');
  });
  it.each(['Redact', 'redacted', 'none'])('%j is refused, naming the input and the values', (raw) => {
    expect(inputError(() => getChoice({ INPUT_SCRUB: raw }, 'scrub', modes, 'redact')).message).toBe(
      `input 'scrub': '${raw}' is not one of redact, delete, report, off`,
    );
  });
});

describe('getInteger', () => {
  it('takes a whole number in range, the fallback when empty', () => {
    expect(getInteger({ INPUT_RETRIES: '0' }, 'retries', 4, 0, 20)).toBe(0);
    expect(getInteger({ INPUT_RETRIES: '20' }, 'retries', 4, 0, 20)).toBe(20);
    expect(getInteger({}, 'retries', 4, 0, 20)).toBe(4);
  });
  it.each(['21', '-1', '1.5', '5s', '0x10', '1e1'])('%j is refused naming the range', (raw) => {
    expect(inputError(() => getInteger({ INPUT_RETRIES: raw }, 'retries', 4, 0, 20)).message).toBe(
      `input 'retries': '${raw}' must be a whole number from 0 to 20`,
    );
  });
});

describe('getList', () => {
  it('splits on new lines and commas, drops blanks and # comments', () => {
    expect(getList({ INPUT_PATHS: 'dist/, build/*.tar\n# not this\n\n  out.zip  ,' }, 'paths')).toEqual([
      'dist/',
      'build/*.tar',
      'out.zip',
    ]);
    expect(getList({}, 'paths')).toEqual([]);
  });
});

// One rule for a secret's name: each input that takes a name refuses exactly what isSafeName does.
const GOOD_NAMES = ['DB_PASSWORD', 'a', 'app.key-1', '_x', '9lives', 'clé', 'x'.repeat(200)];
const BAD_NAMES = ['.hidden', '-rf', 'a/b', '../up', 'a b', 'a$b', 'a=b', 'x'.repeat(201), 'a;b', 'a"b'];

describe('the one secret-name rule', () => {
  it.each(GOOD_NAMES.map((n) => [n.length > 20 ? `${n.length} x's` : n, n]))('%s is a name', (_, name) => {
    expect(isSafeName(name)).toBe(true);
  });
  it.each(BAD_NAMES.map((n) => [n.length > 20 ? `${n.length} x's` : n, n]))('%s is not', (_, name) => {
    expect(isSafeName(name)).toBe(false);
  });

  // Each place a name is given, as the parsers read it; a name that has no spaces or separators of
  // that input's own syntax (',', '=', '|', spaces) is taken there exactly when isSafeName says so.
  const takers: Array<[string, (name: string) => unknown]> = [
    ['env-secrets', (n) => parseEnvSecretsInput(`${n}=X`)],
    ['secrets | NAME', (n) => parseSecretsInput(`secret/app key | ${n}`)],
    ['secrets * | PREFIX', (n) => parseSecretsInput(`secret/app * | ${n}`)],
    ['build-secrets id', (n) => parseBuildSecrets({ 'INPUT_BUILD-SECRETS': `${n}=A` })],
    ['build-secrets name', (n) => parseBuildSecrets({ 'INPUT_BUILD-SECRETS': `a=${n}` })],
    [
      'registry-password-secret',
      (n) => parseRegistries({ INPUT_REGISTRY: 'r.example', 'INPUT_REGISTRY-USERNAME': 'u', 'INPUT_REGISTRY-PASSWORD-SECRET': n }),
    ],
    ['registries', (n) => parseRegistries({ INPUT_REGISTRIES: `r.example u ${n}` })],
  ];
  const candidates = [...GOOD_NAMES, ...BAD_NAMES].filter((n) => !/[\s,=|;]/.test(n));
  it.each(takers)('%s keeps to it', (_, take) => {
    for (const name of candidates) {
      if (isSafeName(name)) expect(() => take(name), name).not.toThrow();
      else expect(inputError(() => take(name)).message, name).not.toContain(name);
    }
  });

  it('environment variable names: letters, digits and _, not starting with a digit', () => {
    expect(['PATH', '_X', 'a1'].every(isEnvVarName)).toBe(true);
    expect(['1A', 'A-B', 'A.B', '', 'A B'].some(isEnvVarName)).toBe(false);
  });
});

/** The defaults an action.yml declares, as the runner passes them: INPUT_<NAME> for each. */
function actionDefaults(file: string): Record<string, string> {
  const inputs = (parse(readFileSync(file, 'utf8')) as { inputs: Record<string, { default?: string | number | boolean }> }).inputs;
  const env: Record<string, string> = {};
  for (const [name, spec] of Object.entries(inputs))
    if (spec.default !== undefined) env[`INPUT_${name.toUpperCase()}`] = String(spec.default);
  return env;
}

describe('defaults agree with the action.yml files', () => {
  // The runner passes every declared default; a parser's own default for an input left empty
  // (a direct call, post reading main's inputs) must mean the same.
  it.each<[string, Env, (env: Env) => unknown]>([
    ['action.yml', { INPUT_SECRETS: 'secret/app key', INPUT_URL: 'https://vault.example', INPUT_TOKEN: 't' }, parseInputs],
    [
      'action.yml',
      { INPUT_SECRETS: 'secret/app key', INPUT_URL: 'https://vault.example', INPUT_METHOD: 'kubernetes', INPUT_ROLE: 'ci' },
      parseInputs,
    ],
    ['verify/action.yml', { INPUT_CONTAINER: 'app', 'INPUT_SECRETS-DIR': '/s' }, parseVerifyInputs],
    ['scan/action.yml', { INPUT_PATHS: 'dist', 'INPUT_SECRETS-DIR': '/s' }, parseScanInputs],
    [
      'scan/action.yml',
      { INPUT_PATHS: 'dist', INPUT_SECRETS: 'secret/app key', INPUT_URL: 'https://vault.example', INPUT_TOKEN: 't' },
      parseScanInputs,
    ],
    [
      'scan/action.yml',
      {
        INPUT_PATHS: 'dist',
        INPUT_SECRETS: 'secret/app key',
        INPUT_URL: 'https://vault.example',
        INPUT_METHOD: 'kubernetes',
        INPUT_ROLE: 'ci',
      },
      parseScanInputs,
    ],
  ])('%s (%j)', (file, given, parseStep) => {
    const defaults = actionDefaults(file);
    expect(Object.keys(defaults).length).toBeGreaterThan(0);
    expect(parseStep({ ...defaults, ...given })).toEqual(parseStep(given));
  });

  it('the shared constants are the values action.yml states', () => {
    expect(actionDefaults('action.yml')['INPUT_VERIFY-PATH']).toBe(DEFAULT_SECRETS_MOUNT);
    expect(actionDefaults('verify/action.yml').INPUT_PATH).toBe(DEFAULT_SECRETS_MOUNT);
    expect(actionDefaults('action.yml').INPUT_TIMEOUT).toBe(String(DEFAULT_TIMEOUT_SECONDS));
  });
});

describe('the Vault inputs are declared wherever they are read', () => {
  // main and the scan share one Vault parser (src/inputs/vault.ts): an input it reads but an
  // action.yml does not declare would reach it only with a runner warning, and no docs.
  const read = [...readFileSync('src/inputs/vault.ts', 'utf8').matchAll(/[a-zA-Z]+\(env, '([a-z-]+)'/g)].map((m) => m[1]!);
  // The scan never hands its token on (it revokes it before the step ends): no `export-token` there.
  it.each<[string, string[]]>([
    ['action.yml', []],
    ['scan/action.yml', ['export-token']],
  ])('%s declares every input vault.ts reads', (file, notForThisStep) => {
    const declared = Object.keys((parse(readFileSync(file, 'utf8')) as { inputs: Record<string, unknown> }).inputs);
    expect(read).toContain('github-token');
    expect(read.filter((name) => !declared.includes(name) && !notForThisStep.includes(name))).toEqual([]);
  });
});
