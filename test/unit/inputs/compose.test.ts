// The `compose-services` input (src/inputs/compose.ts): one line per service with its secrets, and
// each mistake a one-line InputError naming the input and the line, with a value pasted in place
// of a name never echoed.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { isComposeSecretName, parseComposeServices } from '../../../src/inputs/compose.ts';
import { parseInputs } from '../../../src/inputs/main.ts';
import { thrown } from '../../support/errors.ts';

const PASTED = 'hunter2-Pasted-Password';
const parse = (text: string): ReturnType<typeof parseComposeServices> => parseComposeServices({ 'INPUT_COMPOSE-SERVICES': text });

describe('parseComposeServices', () => {
  it('reads one line per service, names split by commas or blanks, comments and blank lines skipped', () => {
    expect(parse('# the app\napp: DB_PASSWORD, api.key\n\n  worker.v2 :QUEUE_TOKEN  DB_PASSWORD\r\nmy_svc-1: a')).toEqual([
      { service: 'app', names: ['DB_PASSWORD', 'api.key'], line: 2 },
      { service: 'worker.v2', names: ['QUEUE_TOKEN', 'DB_PASSWORD'], line: 4 },
      { service: 'my_svc-1', names: ['a'], line: 5 },
    ]);
    expect(parse('')).toEqual([]);
    expect(parseComposeServices({})).toEqual([]);
  });

  it.each([
    ['app DB_PASSWORD', /^input 'compose-services': line 1: expected 'SERVICE: NAME, NAME'/],
    ['ok: A\nmy app: A', /^input 'compose-services': line 2: the part before ':' is not a compose service name \(ASCII letters/],
    [': A', /line 1: the part before ':' is not a compose service name/],
    ['app:', /^input 'compose-services': line 1: service 'app' gets no secret; list its secrets after the colon/],
    ['app: A, A', /^input 'compose-services': line 1: secret 'A' is listed twice for service 'app'; list it once$/],
    ['app: A\n# x\napp: B', /^input 'compose-services': line 3: service 'app' is listed on line 1 too; give each service one line/],
    ['app: A, .hidden', /line 1: secret 2 of service 'app' is not a secret name compose takes/],
    ['app: -rf', /line 1: secret 1 of service 'app' is not a secret name compose takes/],
    // Our names may hold letters beyond ASCII; compose's may not.
    ['app: pässwort', /line 1: secret 1 of service 'app' is not a secret name compose takes \(ASCII letters/],
  ])('%j: an error naming the input and the line', (text, message) => {
    const error = thrown(() => parse(text), InputError);
    expect(error.input).toBe('compose-services');
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('\n');
  });

  it('a value pasted where a name goes is refused, not echoed', () => {
    for (const text of [`app: ${PASTED}!`, `app: A, ${PASTED}/x`, `${PASTED} x: A`]) {
      const error = thrown(() => parse(text), InputError);
      expect(error.message).not.toContain(PASTED);
    }
  });

  it('isComposeSecretName: ours (no leading dot or dash) and compose`s (ASCII)', () => {
    expect(['DB_PASSWORD', 'api.key', 'a-b', '9lives'].filter(isComposeSecretName)).toHaveLength(4);
    expect(['.env', '-x', 'pässwort', 'a/b', 'a b', ''].filter(isComposeSecretName)).toEqual([]);
  });
});

describe('parseInputs: composeServices', () => {
  const env = { 'INPUT_ENV-SECRETS': 'DB_PASSWORD' };
  it('is empty without the input, and the parsed lines with it', () => {
    expect(parseInputs(env).composeServices).toEqual([]);
    expect(parseInputs({ ...env, 'INPUT_COMPOSE-SERVICES': 'app: DB_PASSWORD' }).composeServices).toEqual([
      { service: 'app', names: ['DB_PASSWORD'], line: 1 },
    ]);
  });

  it('a bad line fails parseInputs itself', () => {
    expect(thrown(() => parseInputs({ ...env, 'INPUT_COMPOSE-SERVICES': 'app' }), InputError).input).toBe('compose-services');
  });
});
