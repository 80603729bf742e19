// The main step's inputs (action.yml), read and checked once, into a readonly typed config:
// parseInputs performs every check, including those between inputs. The Vault inputs are parsed in
// vault.ts, the registry and BuildKit ones in docker.ts, the `secrets` lines in secret-spec.ts,
// `compose-services` in compose.ts; the other steps have their own parsers beside this one. Errors
// name the input (and the line) and never echo a credential.
import { InputError } from '../core/errors.ts';
import { FILE_MODES, type FileAccess } from '../core/file-access.ts';
import { DEFAULT_TIMEOUT_SECONDS, getBoolean, getChoice, getInput, getInteger, type Env } from './common.ts';
import { parseComposeServices, type ComposeService } from './compose.ts';
import { parseBuildSecrets, parseRegistries, type BuildSecretSpec, type RegistryConfig } from './docker.ts';
import { parsePkiInput, type PkiEntry } from './pki.ts';
import { parseEnvSecretsInput, parseSecretEncoding, parseSecretsInput, type EnvSecretLine, type VaultSecretLine } from './secret-spec.ts';
import { parseTemplatesInput, type TemplateEntry } from './templates.ts';
import { parseVault, type VaultConfig } from './vault.ts';

// Config's parts, and the Vault connection settings post reuses to revoke what main created: main's
// inputs read as one module to the code that uses them.
export type { BuildSecretSpec, RegistryConfig } from './docker.ts';
export type { ComposeService } from './compose.ts';
export type { PkiEntry } from './pki.ts';
export type { TemplateEntry } from './templates.ts';
export { parseExtraHeaders, parseTls, proxyFor, type AuthConfig, type JwtSigning, type TlsConfig, type VaultConfig } from './vault.ts';

export interface RenewConfig {
  readonly refreshMs: number;
  readonly onChange: string | undefined;
  readonly onChangeTimeoutMs: number;
  readonly maxLifetimeMs: number;
}

export interface Config {
  /** Present when the `secrets` or `pki` input has at least one entry. */
  readonly vault: VaultConfig | undefined;
  readonly secrets: readonly VaultSecretLine[];
  /** `pki`: certificates to issue, each delivered as NAME.crt, NAME.key, NAME.ca.pem, NAME.chain.pem. */
  readonly pki: readonly PkiEntry[];
  readonly envSecrets: readonly EnvSecretLine[];
  readonly exportEnv: boolean;
  readonly exportOutputs: boolean;
  /** Where the secret files go when the user chooses; else a fresh directory on tmpfs. */
  readonly secretsDir: string | undefined;
  /** `file-owner` / `file-mode`: who besides the runner reads the secret files; absent: 0600, the runner's. */
  readonly fileAccess?: FileAccess;
  readonly registries: readonly RegistryConfig[];
  readonly buildSecrets: readonly BuildSecretSpec[];
  /** `compose-services`: the secrets each compose service gets; empty: no compose override is written. */
  readonly composeServices: readonly ComposeService[];
  /** `templates`: config files rendered from the secrets (src/templates/), in input order. */
  readonly templates: readonly TemplateEntry[];
  /** The renewal agent, when `renew` is true. */
  readonly renew: RenewConfig | undefined;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly retries: number;
}

/** The main action's boolean inputs (action.yml): each checked on every run, whatever else is used. */
export const MAIN_BOOLEANS = [
  'unwrap-secret-id',
  'tls-skip-verify',
  'export-token',
  'export-env',
  'export-outputs',
  'renew',
  'ignore-not-found',
] as const;
/** `scrub`'s values: checked here by main, acted on by post (src/post/scrub.ts). */
export const SCRUB_MODES = ['redact', 'delete', 'report', 'off'] as const;
export type ScrubMode = (typeof SCRUB_MODES)[number];

/** Largest uid/gid taken: 2^32 - 2 (2^32 - 1 is chown's "unchanged"). */
const MAX_ID = 4_294_967_294;

/**
 * `file-owner` (UID or UID:GID, numbers only: a name means what the image's /etc/passwd says, not
 * the runner's) and `file-mode` (FILE_MODES: never readable by others; group bits only with a GID,
 * else the runner's own group would gain them). Default mode with an owner: 0400, 0440 with a GID.
 */
export function parseFileAccess(env: Env): FileAccess | undefined {
  const owner = getInput(env, 'file-owner');
  const rawMode = getInput(env, 'file-mode');
  if (owner === '' && rawMode === '') return undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  if (owner !== '') {
    const match = /^([0-9]{1,10})(?::([0-9]{1,10}))?$/.exec(owner);
    if (!match || Number(match[1]) > MAX_ID || (match[2] !== undefined && Number(match[2]) > MAX_ID)) {
      throw new InputError(
        'file-owner',
        `'${owner}' is not UID or UID:GID in numbers (e.g. 1000 or 1000:1000, what the container runs as: \`id -u\` in the image); user names are not taken`,
      );
    }
    uid = Number(match[1]);
    gid = match[2] === undefined ? undefined : Number(match[2]);
  }
  let mode = uid === undefined ? 0o600 : gid === undefined ? 0o400 : 0o440;
  if (rawMode !== '') {
    mode = /^0?[0-7]{3}$/.test(rawMode) ? parseInt(rawMode, 8) : -1;
    if (!FILE_MODES.includes(mode)) {
      throw new InputError('file-mode', `'${rawMode}' is not one of 0400, 0440, 0600, 0640 (secret files are never readable by others)`);
    }
    if ((mode & 0o070) !== 0 && gid === undefined) {
      throw new InputError('file-mode', `'${rawMode}' lets a group read: name the group in file-owner as UID:GID`);
    }
  }
  return { ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}), mode };
}

export function parseInputs(env: Env): Config {
  // Fixed-value inputs first, whether or not they apply to this run: a typo (`scrub: redacted`)
  // fails here, in main, instead of quietly turning a safeguard off in post.
  for (const name of MAIN_BOOLEANS) getBoolean(env, name, false);
  getChoice(env, 'scrub', SCRUB_MODES, 'redact');
  // `ignore-not-found` (vault-action's ignoreNotFound): every `secrets` line optional, as if it
  // ended in ' ?'; a missing path or key is then a warning and the line delivers nothing.
  const ignoreNotFound = getBoolean(env, 'ignore-not-found', false);
  const secrets = parseSecretsInput(getInput(env, 'secrets'), parseSecretEncoding(getInput(env, 'secret-encoding'))).map((line) =>
    ignoreNotFound ? { ...line, optional: true } : line,
  );
  const pki = parsePkiInput(getInput(env, 'pki'));
  const envSecrets = parseEnvSecretsInput(getInput(env, 'env-secrets'));
  const exportEnv = getBoolean(env, 'export-env', false);
  const exportOutputs = getBoolean(env, 'export-outputs', false);
  const timeoutMs = getInteger(env, 'timeout', DEFAULT_TIMEOUT_SECONDS, 1, 3600) * 1000;
  const concurrency = getInteger(env, 'concurrency', 16, 1, 256);
  const retries = getInteger(env, 'retries', 4, 0, 20);

  const vault: VaultConfig | undefined = secrets.length > 0 || pki.length > 0 ? parseVault(env, '`secrets` or `pki`') : undefined;
  const registries = parseRegistries(env);
  const buildSecrets = parseBuildSecrets(env);
  const composeServices = parseComposeServices(env);
  if (secrets.length === 0 && pki.length === 0 && envSecrets.length === 0 && registries.length === 0) {
    throw new InputError(
      'secrets',
      'nothing to do: give `secrets` (Vault) or `env-secrets` (workflow secrets) entries, `pki` certificates, or a registry to log in to',
    );
  }

  const secretsDir = getInput(env, 'secrets-dir') || undefined;
  const fileAccess = parseFileAccess(env);
  const templates = parseTemplatesInput(getInput(env, 'templates'), { exportEnv, fileAccess });
  let renew: RenewConfig | undefined;
  if (getBoolean(env, 'renew', false)) {
    if (!vault) throw new InputError('renew', 'needs Vault `secrets` entries: there is nothing to renew or re-read otherwise');
    renew = {
      refreshMs: getInteger(env, 'refresh-interval', 60, 1, 86_400) * 1000,
      onChange: getInput(env, 'on-change') || undefined,
      onChangeTimeoutMs: getInteger(env, 'on-change-timeout', 30, 1, 3600) * 1000,
      maxLifetimeMs: getInteger(env, 'agent-max-lifetime', 21_600, 1, 604_800) * 1000,
    };
  } else if (getInput(env, 'on-change') !== '') {
    throw new InputError('on-change', "takes effect only with 'renew: true'");
  }
  return {
    vault,
    secrets,
    pki,
    envSecrets,
    exportEnv,
    exportOutputs,
    secretsDir,
    ...(fileAccess ? { fileAccess } : {}),
    registries,
    buildSecrets,
    composeServices,
    templates,
    renew,
    timeoutMs,
    concurrency,
    retries,
  };
}
