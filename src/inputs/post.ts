// Post's inputs, read and checked once, here. Post runs after main whatever main did (post-if:
// always()), so it must clean up even when an input is bad: a bad input never stops it. Each one
// becomes a problem naming the input (a warning in post) and post goes on with the default: a
// typo must never leave a token alive or a secret file on the runner. Main has already refused the
// same typo with an error; post only has to stay safe. A problem never echoes a credential.
import { errorText } from '../core/errors.ts';
import { DEFAULT_SECRETS_MOUNT, DEFAULT_TIMEOUT_SECONDS, getChoice, getInput, getInteger, type Env } from './common.ts';
import { SCRUB_MODES, type ScrubMode } from './main.ts';
import { parseExtraHeaders, parseTls, proxyFor, type TlsConfig } from './vault.ts';

/** The most `timeout` may be, as main takes it. */
const MAX_TIMEOUT_SECONDS = 3600;
/** action.yml `scrub`. */
export const DEFAULT_SCRUB: ScrubMode = 'redact';
/** action.yml `verify-path`: where `verify-container` mounts the secrets directory. */
export const DEFAULT_VERIFY_PATH = DEFAULT_SECRETS_MOUNT;

/** No CA, no client certificate, certificates checked: what post tries with when the TLS inputs do not parse. */
const NO_TLS: TlsConfig = { ca: undefined, cert: undefined, key: undefined, skipVerify: false };

export interface PostVaultInputs {
  /** The `url` input (or VAULT_ADDR), normalised as main records it; undefined when none or not a URL. */
  readonly url: string | undefined;
  readonly namespace: string | undefined;
  readonly tls: TlsConfig;
  /** The proxy for `url` from https_proxy / http_proxy, unless no_proxy exempts its host. */
  readonly proxy: string | undefined;
  /** `extra-headers`, as main sent them (a gateway in front of Vault wants them on the revocations too). */
  readonly headers: Readonly<Record<string, string>>;
}

export interface PostInputs {
  /** The user's `token`: never revoked, used only to revoke the leases this run took with it. */
  readonly token: string | undefined;
  /** The whole budget of post's Vault requests. */
  readonly timeoutMs: number;
  readonly scrub: ScrubMode;
  readonly verifyContainer: string | undefined;
  readonly verifyPath: string;
  readonly vault: PostVaultInputs;
  /** Each bad input, named, with what post does instead (see the header). */
  readonly problems: readonly string[];
}

export function parsePostInputs(env: Env): PostInputs {
  const problems: string[] = [];
  // An input that does not parse: its problem, and the default in its place.
  const orDefault = <T>(read: () => T, fallback: T, instead: string): T => {
    try {
      return read();
    } catch (error) {
      problems.push(`${errorText(error)}; ${instead}`);
      return fallback;
    }
  };
  const timeout = orDefault(() => timeoutSeconds(env), DEFAULT_TIMEOUT_SECONDS, `post uses ${DEFAULT_TIMEOUT_SECONDS}`);
  const scrub = orDefault(() => getChoice(env, 'scrub', SCRUB_MODES, DEFAULT_SCRUB), DEFAULT_SCRUB, `post scrubs with ${DEFAULT_SCRUB}`);
  // The same TLS and proxy settings as main; if they no longer parse, post still tries to revoke
  // without them rather than give up (a refused TLS handshake sends nothing).
  const tls = orDefault(() => parseTls(env), NO_TLS, 'post tries to revoke without the TLS inputs');
  const url = vaultUrl(env);
  const proxy = url === undefined ? undefined : orDefault(() => proxyFor(url, env), undefined, 'post tries to revoke without a proxy');
  const headers = orDefault(() => parseExtraHeaders(getInput(env, 'extra-headers')), {}, 'post tries to revoke without extra headers');
  return {
    token: getInput(env, 'token') || undefined,
    timeoutMs: timeout * 1000,
    scrub,
    verifyContainer: getInput(env, 'verify-container') || undefined,
    verifyPath: getInput(env, 'verify-path') || DEFAULT_VERIFY_PATH,
    vault: { url, namespace: getInput(env, 'namespace').replace(/^\/+|\/+$/g, '') || undefined, tls, proxy, headers },
    problems,
  };
}

/** `timeout`, a whole number of seconds as main takes it (1 to 3600); the default when empty. */
function timeoutSeconds(env: Env): number {
  return getInteger(env, 'timeout', DEFAULT_TIMEOUT_SECONDS, 1, MAX_TIMEOUT_SECONDS);
}

/**
 * The Vault address main used, normalised as main normalises it; undefined when there is none or
 * it is not a URL (main refused it then, and post sends nothing: checkLedger names it).
 */
function vaultUrl(env: Env): string | undefined {
  const raw = getInput(env, 'url') || (env.VAULT_ADDR ?? '').trim();
  if (raw === '') return undefined;
  try {
    return new URL(raw).toString().replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}
