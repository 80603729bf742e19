// The docker inputs of the main step: registries to log in to (`registry`, `registry-username`,
// `registry-password` or `registry-password-secret`, and `registries` lines) and BuildKit secrets
// (`build-secrets`). Passwords are named, never echoed: a value pasted in place of a name stays out
// of the log.
import { InputError } from '../core/errors.ts';
import { getInput, isSafeName, SAFE_NAME_RULE, type Env } from './common.ts';

export interface RegistryConfig {
  readonly registry: string;
  readonly username: string;
  /** The password: the name of a secret of this run, or a value given as an input (a workflow secret). */
  readonly password: { readonly secret: string } | { readonly value: string };
  /** Where it was configured, for messages: an input name, with the line for `registries`. */
  readonly source: string;
}

export interface BuildSecretSpec {
  readonly id: string;
  readonly name: string;
  readonly line: number;
}

const REGISTRY = /^(https?:\/\/)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(\/[A-Za-z0-9._/-]*)?$/;

function checkRegistry(input: string, registry: string): string {
  if (!REGISTRY.test(registry)) throw new InputError(input, `'${registry}' is not a registry like ghcr.io or registry.example.com:5000`);
  return registry;
}

export function parseRegistries(env: Env): RegistryConfig[] {
  const out: RegistryConfig[] = [];
  const registry = getInput(env, 'registry');
  const username = getInput(env, 'registry-username');
  const password = getInput(env, 'registry-password');
  const passwordSecret = getInput(env, 'registry-password-secret');
  if (registry !== '' || username !== '' || password !== '' || passwordSecret !== '') {
    if (registry === '') throw new InputError('registry', "is required with 'registry-username' and a password");
    if (username === '') throw new InputError('registry-username', `is required to log in to registry '${registry}'`);
    if ((password === '') === (passwordSecret === '')) {
      throw new InputError(
        'registry-password',
        `give exactly one of 'registry-password' (a workflow secret) and 'registry-password-secret' (the name of a secret of this step) for registry '${registry}'`,
      );
    }
    if (passwordSecret !== '' && !isSafeName(passwordSecret))
      // Not echoed: a password pasted here by mistake must not reach the log.
      throw new InputError(
        'registry-password-secret',
        `is not a secret name (${SAFE_NAME_RULE}); to pass the password itself use 'registry-password'`,
      );
    out.push({
      registry: checkRegistry('registry', registry),
      username,
      password: password !== '' ? { value: password } : { secret: passwordSecret },
      source: password !== '' ? "input 'registry-password'" : `secret '${passwordSecret}'`,
    });
  }
  getInput(env, 'registries')
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const text = raw.trim();
      if (text === '' || text.startsWith('#')) return;
      const where = `line ${index + 1}`;
      const words = text.split(/\s+/);
      if (words.length !== 3)
        throw new InputError(
          'registries',
          `${where}: expected '<registry> <username> <password-secret-name>', found ${words.length} word(s)`,
        );
      const [host = '', user = '', secret = ''] = words;
      // The third word is not echoed: a password pasted there by mistake must not reach the log.
      if (!isSafeName(secret))
        throw new InputError(
          'registries',
          `${where}: the third word is not a secret name (${SAFE_NAME_RULE}); give the name of a secret of this step, not the password`,
        );
      out.push({
        registry: checkRegistry('registries', host),
        username: user,
        password: { secret },
        source: `secret '${secret}' (registries ${where})`,
      });
    });
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.registry)) throw new InputError('registries', `registry '${r.registry}' is given twice`);
    seen.add(r.registry);
  }
  return out;
}

export function parseBuildSecrets(env: Env): BuildSecretSpec[] {
  const out: BuildSecretSpec[] = [];
  getInput(env, 'build-secrets')
    .split(/\r?\n/)
    .forEach((raw, index) => {
      for (const part of raw.split(',')) {
        const text = part.trim();
        if (text === '' || text.startsWith('#')) continue;
        const eq = text.indexOf('=');
        const id = (eq >= 0 ? text.slice(0, eq) : text).trim();
        const name = (eq >= 0 ? text.slice(eq + 1) : text).trim();
        // BuildKit secret ids end up as /run/secrets/<id> in the build: same rule as our names.
        if (!isSafeName(id))
          throw new InputError(
            'build-secrets',
            `line ${index + 1}: an id may hold only ${SAFE_NAME_RULE} (give ID=NAME with names, never a value)`,
          );
        if (!isSafeName(name))
          throw new InputError(
            'build-secrets',
            `line ${index + 1}: the part after '=' is not a secret name (${SAFE_NAME_RULE}); give a name, not a value`,
          );
        if (out.some((s) => s.id === id)) throw new InputError('build-secrets', `line ${index + 1}: id '${id}' is given twice`);
        out.push({ id, name, line: index + 1 });
      }
    });
  return out;
}
