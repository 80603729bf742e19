// When the transport (transport.ts) tries a failed Vault request again, and how long it waits
// first: pure functions of the method and path, the status or error code, the attempt number and
// the Retry-After header. The rule throughout: a request Vault provably did not act on may be
// retried whatever it is; one it may have acted on only if doing it twice is harmless.

/**
 * What a try's outcome says: 'final' is returned or thrown as it is; 'not-acted' proves Vault did
 * nothing, so any call may be retried; 'maybe-acted' leaves that open, so only an idempotent call is.
 */
export type TryOutcome = 'final' | 'not-acted' | 'maybe-acted';

const KV_UPGRADING = 'Waiting for the primary to upgrade from non-versioned to versioned data';

/**
 * A KV v2 mount answers 400 with this error while it checks its storage layout, which a newly
 * active node does right after a failover (seen for about a second against OpenBao 2.7 in
 * test/e2e/ha.test.ts). The mount refuses every request until then, before handling it: Vault did
 * not act, and the same request succeeds once the check is done.
 */
function kvUpgrading(status: number, body: unknown): boolean {
  if (status !== 400 || body === null || typeof body !== 'object') return false;
  const errors = (body as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.some((e) => typeof e === 'string' && e.startsWith(KV_UPGRADING));
}

/**
 * An answer's status. Vault answers these when the request may succeed later: 412 a performance
 * standby not caught up (https://developer.hashicorp.com/vault/docs/enterprise/consistency), 429
 * rate limited, 5xx transient (sealed, standby forwarding, upstream proxy). Of them 412 (also an
 * Agent or Proxy refusing a request without X-Vault-Request), 429 (quotas are checked before
 * routing) and 503 (sealed or standby unavailable, refused before routing) prove Vault did not act;
 * a 500/502/504 does not. Only a JSON answer gets here: an HTML or plain-text 503 from a proxy in
 * between fails as a malformed answer (exchange.ts), since that proxy may have forwarded first.
 * A KV v2 mount's 400 while it checks its layout (kvUpgrading) is refused before handling too.
 */
export function statusOutcome(status: number, body?: unknown): TryOutcome {
  if (status === 412 || status === 429 || status === 503 || kvUpgrading(status, body)) return 'not-acted';
  if (status === 500 || status === 502 || status === 504) return 'maybe-acted';
  return 'final';
}

/** A failed exchange's code (exchange.ts): refusals before a byte of the request left prove nothing was acted on. */
export function errorOutcome(code: string): TryOutcome {
  // A refused redirect and an https server spoken to in plain http fail the same way every time.
  if (code === 'EREDIRECT' || code === 'EHTTPTOHTTPS') return 'final';
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return 'not-acted';
  return 'maybe-acted';
}

// GETs known to be plain reads. Any other GET may issue something (database/creds/ROLE mints a
// database user per call), so like a login it is retried only when Vault provably did not act.
const READ_ONLY_GET = /^\/v1\/([^?]+\/)?(sys\/internal\/ui\/mounts(\/.*)?|auth\/token\/lookup-self|sys\/health|sys\/seal-status)$/;

/**
 * Whether a call may be retried after a failure that leaves open whether Vault acted on it.
 * Renewals and revocations are idempotent; of the GETs only known reads (and those the caller
 * marks as KV reads) are: a second GET of database/creds/ROLE mints a second credential.
 */
export function isIdempotent(method: string, path: string): boolean {
  if (method === 'LIST' || method === 'HEAD') return true;
  if (method === 'GET') return READ_ONLY_GET.test(path);
  return /\/(auth\/token\/(renew-self|revoke-self)|sys\/leases\/(renew|revoke)(\/.*)?)$/.test(path);
}

/**
 * The longest wait a Retry-After is granted (its spread comes on top). Main and post give up
 * sooner anyway (their deadline is checked before each wait); the renewal agent has no overall
 * deadline, and a rate limiter's "come back in an hour" must not park it for an hour while its
 * leases run out.
 */
const MAX_RETRY_AFTER_MS = 60_000;
const BACKOFF_BASE_MS = 50;
const MAX_BACKOFF_MS = 2000;
/**
 * The spread added to a Retry-After: uniform over 1 s, doubling with each refusal of the same
 * request up to 8 s, or over a quarter of a longer wait. Vault sends Retry-After in whole seconds
 * rounded down (a quota of 1 s intervals says "0"), so its quota frees up somewhere in the second
 * after the number: every job of a matrix refused in the same instant would otherwise come back in
 * the same instant, the first `rate` of them pass and the rest are refused again, wave after wave.
 * Spread over that second they meet a refilled bucket a few at a time. A request refused again
 * means the quota is oversubscribed: doubling its window halves what the refused requests send,
 * so demand falls to what the quota admits instead of every job spending its retries in the first
 * seconds (a 429's retries then wait up to 1 + 2 + 4 + 8 + 8 ... s, until the default 30 s timeout).
 * A longer wait (a block_interval) gets a proportionate spread.
 */
const RETRY_AFTER_SPREAD_MS = 1000;
const MAX_RETRY_AFTER_SPREAD_MS = 8000;
const RETRY_AFTER_SPREAD_SHARE = 0.25;

/**
 * A Retry-After header (RFC 9110, section 10.2.3) in ms from `now`: seconds, or an HTTP date (a
 * date already past is 0), capped at MAX_RETRY_AFTER_MS. Undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | undefined, now: number): number | undefined {
  const text = header?.trim() ?? '';
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(Math.round(Number(text) * 1000), MAX_RETRY_AFTER_MS);
  // A date names its day and month (IMF-fixdate, RFC 850, asctime): Date.parse alone takes "1,5"
  // too. asctime carries no zone and means GMT; Date.parse would read it as local time.
  if (!/[a-z]/i.test(text)) return undefined;
  const date = Date.parse(/\b(GMT|UTC)\b/i.test(text) ? text : `${text} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_MS);
}

/**
 * The wait before the try after `attempt` (0 for the first): the server's Retry-After when it
 * gives one (or `quota`, a 429, without one), plus a random spread growing with the attempt (RETRY_AFTER_SPREAD_MS), else exponential backoff from 50 ms up
 * to 2 s, jittered over the upper half of each step: many matrix jobs retrying at once spread out
 * instead of stampeding Vault together.
 */
export function backoffMs(attempt: number, retryAfter: string | undefined, now: number, random: () => number, quota = false): number {
  // A quota's 429 without a Retry-After counts as "0": Vault sends none unless the operator set
  // enable_rate_limit_response_headers (off by default), and its quota frees up within an interval
  // (1 s by default) that backoffs from 25 ms would spend all the retries inside.
  const asked = retryAfterMs(retryAfter, now) ?? (quota ? 0 : undefined);
  if (asked !== undefined) {
    const window = Math.min(MAX_RETRY_AFTER_SPREAD_MS, RETRY_AFTER_SPREAD_MS * 2 ** attempt);
    return asked + Math.round(random() * Math.max(window, asked * RETRY_AFTER_SPREAD_SHARE));
  }
  const cap = Math.min(MAX_BACKOFF_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/**
 * Most retries of one request refused with 429 by a quota, counted apart from the `retries` input
 * (which counts failures): a quota's refusal says "your turn comes later", and the deadline
 * (`timeout`) bounds those turns in main and post. This bounds them where the deadline is far off
 * (the renewal agent): with the waits of backoffMs, about two minutes. `retries: 0` turns these off too.
 */
export const QUOTA_RETRIES = 20;

/**
 * Why a request refused with 429 to the last retry failed, on one line: Vault's own words (a
 * rate-limit or a lease-count quota, which the body names) and what the user can change.
 */
export function quotaRefusal(errors: unknown, retries: number): string {
  const words = Array.isArray(errors) ? errors.map((e) => String(e).replace(/\s+/g, ' ').trim()).filter((e) => e !== '') : [];
  const said = words.length > 0 ? words.join('; ') : 'too many requests';
  return `Vault answered 429 ${said} (a Vault quota), ${retries} ${retries === 1 ? 'retry' : 'retries'} spent: raise the quota (sys/quotas/rate-limit), lower 'concurrency', or raise 'timeout'`;
}
