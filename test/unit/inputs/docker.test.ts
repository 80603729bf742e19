// The registry and BuildKit inputs (src/inputs/docker.ts): what they give, and each mistake an
// InputError naming the input, with a password pasted in place of a name never echoed.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { parseBuildSecrets, parseRegistries } from '../../../src/inputs/docker.ts';
import { thrown } from '../../support/errors.ts';

const PASTED = 'hunter2-Pasted-Password';

const inputError = (fn: () => unknown): InputError => thrown(fn, InputError);

describe('parseRegistries', () => {
  it('reads the single registry inputs and registries lines', () => {
    expect(
      parseRegistries({
        INPUT_REGISTRY: 'ghcr.io',
        'INPUT_REGISTRY-USERNAME': 'bot',
        'INPUT_REGISTRY-PASSWORD': 'pw',
        INPUT_REGISTRIES: '# comment\nregistry.example.com:5000 ci REG_PASSWORD',
      }),
    ).toEqual([
      { registry: 'ghcr.io', username: 'bot', password: { value: 'pw' }, source: "input 'registry-password'" },
      {
        registry: 'registry.example.com:5000',
        username: 'ci',
        password: { secret: 'REG_PASSWORD' },
        source: "secret 'REG_PASSWORD' (registries line 2)",
      },
    ]);
    expect(parseRegistries({})).toEqual([]);
  });

  it.each([
    [{ 'INPUT_REGISTRY-USERNAME': 'bot', 'INPUT_REGISTRY-PASSWORD': 'pw' }, 'registry', /is required with 'registry-username'/],
    [{ INPUT_REGISTRY: 'ghcr.io', 'INPUT_REGISTRY-PASSWORD': 'pw' }, 'registry-username', /is required to log in to registry 'ghcr.io'/],
    [{ INPUT_REGISTRY: 'ghcr.io', 'INPUT_REGISTRY-USERNAME': 'bot' }, 'registry-password', /give exactly one of/],
    [{ INPUT_REGISTRY: 'ghcr io', 'INPUT_REGISTRY-USERNAME': 'b', 'INPUT_REGISTRY-PASSWORD': 'p' }, 'registry', /is not a registry like/],
    [
      { INPUT_REGISTRIES: 'ghcr.io bot' },
      'registries',
      /^input 'registries': line 1: expected '<registry> <username> <password-secret-name>', found 2/,
    ],
    [{ INPUT_REGISTRIES: 'ghcr.io a A\nghcr.io b B' }, 'registries', /registry 'ghcr.io' is given twice/],
  ])('%j: an error naming %s', (env, input, message) => {
    const error = inputError(() => parseRegistries(env));
    expect(error.input).toBe(input);
    expect(error.message).toMatch(message);
  });

  it('a password pasted where a secret name goes is refused, not echoed', () => {
    for (const env of [
      { INPUT_REGISTRY: 'ghcr.io', 'INPUT_REGISTRY-USERNAME': 'bot', 'INPUT_REGISTRY-PASSWORD-SECRET': `${PASTED}!` },
      { INPUT_REGISTRIES: `ghcr.io bot ${PASTED}$` },
    ]) {
      const error = inputError(() => parseRegistries(env));
      expect(error.message).toMatch(/is not a secret name/);
      expect(error.message).not.toContain(PASTED);
    }
  });
});

describe('parseBuildSecrets', () => {
  it('reads ID=NAME and NAME entries, comma-separated or one per line, with their lines', () => {
    expect(parseBuildSecrets({ 'INPUT_BUILD-SECRETS': 'npm=NPM_TOKEN, PIP_INDEX\n\nsigning-key' })).toEqual([
      { id: 'npm', name: 'NPM_TOKEN', line: 1 },
      { id: 'PIP_INDEX', name: 'PIP_INDEX', line: 1 },
      { id: 'signing-key', name: 'signing-key', line: 3 },
    ]);
  });

  it('refuses a value in place of a name without echoing it, and an id given twice', () => {
    const error = inputError(() => parseBuildSecrets({ 'INPUT_BUILD-SECRETS': `npm=${PASTED}$` }));
    expect(error.message).toMatch(/^input 'build-secrets': line 1: the part after '=' is not a secret name/);
    expect(error.message).not.toContain(PASTED);
    expect(inputError(() => parseBuildSecrets({ 'INPUT_BUILD-SECRETS': 'a=X\na=Y' })).message).toMatch(/line 2: id 'a' is given twice/);
  });
});
