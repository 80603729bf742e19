// What the input parsers of every step (main, post, verify, leak scan) share: reading INPUT_* as
// the runner sets them, strict booleans, fixed choices, bounded whole numbers, lists, the one rule
// for a secret's name, and the defaults more than one step states. Only src/inputs/ reads INPUT_*.
import { InputError } from '../core/errors.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** Where a container mounts the secrets directory: verify's `path` and the main action's `verify-path` (as both action.yml files say). */
export const DEFAULT_SECRETS_MOUNT = '/run/secrets';
/** Seconds one Vault operation may take (`timeout`: main parses it, post's revocations use it too). */
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** Reads an input the way @actions/core does: INPUT_<NAME upper-cased, spaces to _>, trimmed. */
export function getInput(env: Env, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

/** An input that must be given; `why` completes "is required ..." (e.g. "for method 'approle'"). */
export function requireInput(env: Env, name: string, why: string): string {
  const value = getInput(env, name);
  if (value === '') throw new InputError(name, `is required ${why}`);
  return value;
}

/**
 * A boolean input, strict as @actions/core's getBooleanInput (YAML 1.2 core schema: true, True,
 * TRUE, false, False, FALSE). Anything else is refused naming the value: a typo such as `flase`
 * must not quietly turn a safeguard off (or on), and a boolean is no secret.
 */
export function getBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = getInput(env, name);
  if (raw === '') return fallback;
  if (/^(true|True|TRUE)$/.test(raw)) return true;
  if (/^(false|False|FALSE)$/.test(raw)) return false;
  throw new InputError(name, `'${raw}' is not a boolean; use true or false`);
}

/** An input with a fixed set of values, as written (no case folding); anything else is refused naming them. */
export function getChoice<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = getInput(env, name);
  if (raw === '') return fallback;
  const value = allowed.find((a) => a === raw);
  if (value === undefined) throw new InputError(name, `'${raw}' is not one of ${allowed.join(', ')}`);
  return value;
}

/** A whole number from `min` to `max` (seconds, counts); empty gives `fallback`. */
export function getInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = getInput(env, name);
  if (raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new InputError(name, `'${raw}' must be a whole number from ${min} to ${max}`);
  }
  return Number(raw);
}

/** A list input: one entry per line or comma-separated, blank entries and `#` comments dropped. */
export function getList(env: Env, name: string): string[] {
  return getInput(env, name)
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('#'));
}

// A secret's name becomes a file name in the secrets directory, a BuildKit secret id
// (/run/secrets/<id>) and part of an output or env name: no path separator, no leading dot (dot
// names are reserved), no leading '-' (an option to a command), nothing a shell or docker would split.
const SAFE_NAME = /^[\p{L}\p{N}_][\p{L}\p{N}_.-]*$/u;
/** What a safe name may hold, for messages. */
export const SAFE_NAME_RULE = "letters, digits, '_', '-' and '.', not starting with '.' or '-'";

/** The one rule for a secret's name (and a name prefix, a build secret id, a file verified in a container). */
export function isSafeName(name: string): boolean {
  return SAFE_NAME.test(name) && name.length <= 200;
}

/** An environment variable name as a workflow's `env:` gives one to a step. */
export function isEnvVarName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}
