// Main's compose override (`compose-services`, output `compose-file`): a compose file to pass after
// the user's own (`docker compose -f compose.yml -f <compose-file> up`) that declares every delivered
// secret as a file secret and attaches to each service exactly the secrets `compose-services` names,
// so each service reads its own at /run/secrets/NAME and no other. Compose bind-mounts the host
// file read-only, so the container sees the file's owner and mode as `file-owner` / `file-mode` set
// them. The override holds paths and names, never a value; it lives in the private root (0600),
// not in the secrets directory, so a container that mounts that directory does not see it.
import * as path from 'node:path';
import { InputError } from '../core/errors.ts';
import type { LedgerWriter } from '../core/ledger.ts';
import { writeExclusive, type PrivateDir } from '../core/private-dir.ts';
import type { Runner } from '../core/runner.ts';
import { isComposeSecretName } from '../inputs/compose.ts';
import type { ComposeService } from '../inputs/main.ts';
import type { Secret } from '../vault/fetch.ts';

/** The override's file name in the private root. */
export const COMPOSE_FILE = 'compose.secrets.yml';

export interface ComposePlan {
  readonly services: readonly ComposeService[];
  /** Every delivered secret whose name compose takes, in delivery order: declared at the top level. */
  readonly declared: readonly string[];
  /** Delivered secrets left out of the override: compose's names are ASCII only. */
  readonly leftOut: readonly string[];
}

/**
 * Checks `compose-services` against this step's secrets, before anything is delivered. Undefined
 * when the input is empty: the override is written only when asked for, since it exists to attach
 * secrets to services and a job that uses compose names its services; a job without compose gets
 * no extra file and no output to ignore.
 */
export function resolveCompose(services: readonly ComposeService[], secrets: readonly Secret[]): ComposePlan | undefined {
  if (services.length === 0) return undefined;
  const names = secrets.map((s) => s.name);
  for (const s of services) {
    for (const name of s.names) {
      if (!names.includes(name)) {
        throw new InputError(
          'compose-services',
          `line ${s.line}: service '${s.service}' gets '${name}', which is no secret of this step (secrets: ${names.join(', ') || 'none'}); name a secret from \`secrets\` or \`env-secrets\``,
        );
      }
    }
  }
  return { services, declared: names.filter(isComposeSecretName), leftOut: names.filter((n) => !isComposeSecretName(n)) };
}

/**
 * A YAML double-quoted scalar that compose reads back as exactly `text`: '"' and '\' escaped, every
 * character outside printable ASCII as \uXXXX or \UXXXXXXXX (a raw line separator would be folded
 * by a YAML 1.1 parser such as docker-compose's), and '$' doubled, since compose interpolates
 * `$VAR` in every value of the file.
 */
export function composeString(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '$') out += '$$';
    else if (code >= 0x20 && code < 0x7f) out += ch;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `"${out}"`;
}

/**
 * The override's text. Every name is quoted too, although each is of a safe alphabet: a bare `on`,
 * `null` or `1.0` would be read as a boolean, null or number by YAML, not as a name.
 */
export function composeYaml(plan: ComposePlan, secretsDir: string): string {
  return [
    '# Pipeline Secrets: the secrets of this step as compose file secrets, each at /run/secrets/NAME',
    '# in the services listed here only. Use after your own file: docker compose -f compose.yml -f THIS up',
    'services:',
    ...plan.services.flatMap((s) => [
      `  ${composeString(s.service)}:`,
      '    secrets:',
      ...s.names.map((n) => `      - ${composeString(n)}`),
    ]),
    'secrets:',
    ...plan.declared.flatMap((n) => [`  ${composeString(n)}:`, `    file: ${composeString(path.join(secretsDir, n))}`]),
    '',
  ].join('\n');
}

/** Writes the override (0600, in the private root), recorded in the ledger first; returns its path. */
export async function writeComposeFile(runner: Runner, ledger: LedgerWriter, dir: PrivateDir, plan: ComposePlan): Promise<string> {
  const file = path.join(dir.root, COMPOSE_FILE);
  // Recorded before it exists: post removes it with the root even if this step dies half-way.
  ledger.update((l) => l.files.push(file));
  await writeExclusive(file, composeYaml(plan, dir.secretsDir));
  for (const name of plan.leftOut) {
    runner.warning(
      `secret '${name}' is left out of the compose-file: compose takes secret names of ASCII letters, digits, '_', '-' and '.' only; mount its file yourself`,
    );
  }
  return file;
}
