// The HTTP transport node-vault runs on. node-vault's built-in axios transport cannot tunnel HTTPS
// through a proxy (axios #4531, #6330), drops response headers (so Retry-After is lost) and has no
// retries; node-vault accepts a `request-promise`-shaped function instead, which is this.
// Retries live here, below node-vault, so every call (reads, logins, revokes) gets one policy
// (retry.ts); one try is an exchange (exchange.ts). Here: the retry loop, the overall deadline,
// redirects from a standby and cancellation.
import { createExchange, TransportError, type ExchangeOptions, type RpOptions, type RpResponse } from './exchange.ts';
import { backoffMs, errorOutcome, isIdempotent, quotaRefusal, statusOutcome } from './retry.ts';

export interface TransportOptions extends ExchangeOptions {
  /** Absolute time (ms since epoch) after which no request is started and none waits longer. */
  readonly deadline: number;
  readonly retries: number;
  /** Longest wait for one answer; needed when the deadline is open-ended (the renewal agent). */
  readonly requestTimeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
  /** In [0, 1): the jitter of the backoff. */
  readonly random?: () => number;
  /** Debug log; gets method, path, status and attempt only. */
  readonly log?: (message: string) => void;
}

const bodiesAfterUncertainTry = new WeakSet<object>();

/** Whether this response body answered a retry after a try Vault may have acted on. */
export function answeredAfterUncertainTry(body: unknown): boolean {
  return body !== null && typeof body === 'object' && bodiesAfterUncertainTry.has(body);
}

// Redirects followed at most this many times, and only to the origin 'url' names (see redirectTarget).
const MAX_REDIRECTS = 3;

export function createTransport(options: TransportOptions) {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  const exchange = createExchange(options);
  let cancelled: string | undefined;

  async function request(opts: RpOptions): Promise<RpResponse> {
    let target = new URL(opts.uri);
    const path = target.pathname.replace(/^\/v1\//, '');
    let safe: boolean | undefined = isIdempotent(opts.method, target.pathname) || opts.retrySafe === true ? true : undefined;
    // Asked only when a failure leaves open whether Vault acted, and then once.
    const retrySafe = async (): Promise<boolean> =>
      (safe ??= typeof opts.retrySafe === 'function' ? await opts.retrySafe().catch(() => false) : false);
    let redirects = 0;
    // Whether a failed try may have been acted on: a retry's answer is then read in that light
    // (a 403 to a retried revoke-self means the first try revoked the token).
    let uncertain = false;
    const fail = (error: TransportError): TransportError => {
      error.mayHaveActed ||= uncertain;
      return error;
    };
    for (let attempt = 0; ; attempt++) {
      if (cancelled !== undefined) {
        throw fail(new TransportError('ECANCELED', target.host, `${opts.method} ${path} not sent: the job was cancelled (${cancelled})`));
      }
      const remaining = options.deadline - now();
      if (remaining <= 0) {
        throw fail(new TransportError('ETIMEDOUT', target.host, `gave up on ${opts.method} ${path}: the 'timeout' input ran out`));
      }
      let retryAfter: string | undefined;
      let outcome: string;
      // Vault's words when it refused with 429, for the message if this request gives up on it.
      let refused: string | undefined;
      try {
        const response = await exchange.send(opts, target, Math.min(remaining, options.requestTimeoutMs ?? remaining));
        if (response.statusCode === 307 || response.statusCode === 308) {
          const to = redirectTarget(target, response, opts.method, path, ++redirects);
          if (to instanceof URL) {
            target = to;
            attempt--; // a redirect is not a failed attempt
            continue;
          }
          // Another origin: a standby that could not forward (mid-election, or before it reaches a
          // new active node) names the active node. It did not act, and the token goes nowhere
          // else: 'url' is tried again, where behind a load balancer the next try may reach a node
          // that answers. Out of retries, the refusal is the error.
          if (attempt >= options.retries) throw fail(to);
          target = new URL(opts.uri);
          redirects = 0;
          outcome = 'a redirect to another origin';
        } else {
          // node-vault keeps only status and body of a failed response: the body carries the mark.
          if (uncertain && response.body !== null && typeof response.body === 'object') bodiesAfterUncertainTry.add(response.body);
          const verdict = statusOutcome(response.statusCode, response.body);
          if (verdict === 'final') return response;
          const retryable = verdict === 'not-acted' || (await retrySafe());
          if (response.statusCode === 429) refused = quotaRefusal((response.body as { errors?: unknown } | null)?.errors, attempt);
          if (!retryable || (attempt >= options.retries && refused === undefined)) return response;
          uncertain ||= verdict === 'maybe-acted';
          // Node keeps one Retry-After (and one Location) of a response: duplicates are discarded.
          retryAfter = response.headers['retry-after'];
          outcome = `status ${response.statusCode}`;
        }
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        const verdict = errorOutcome(error.code);
        if (verdict === 'final') throw error;
        const retryable = verdict === 'not-acted' || (await retrySafe());
        if (!retryable || attempt >= options.retries) {
          error.mayHaveActed ||= verdict === 'maybe-acted' && error.code !== 'ECANCELED';
          throw fail(error);
        }
        uncertain ||= verdict === 'maybe-acted';
        outcome = error.code;
      }
      // A quota's refusal to the last retry fails saying so and what to change, not as a bare 429.
      if (refused !== undefined && attempt >= options.retries) {
        throw fail(new TransportError('EQUOTA', target.host, `gave up on ${opts.method} ${path}: ${refused}`));
      }
      const wait = backoffMs(attempt, retryAfter, now(), random, refused !== undefined);
      // No retry that could not start before the deadline: fail now, saying why, rather than sleep.
      if (now() + wait >= options.deadline) {
        throw fail(
          new TransportError(
            'ETIMEDOUT',
            target.host,
            `gave up on ${opts.method} ${path} after ${outcome}: the 'timeout' input would run out before the next try${refused !== undefined ? `; ${refused}` : ''}`,
          ),
        );
      }
      log(`retry ${attempt + 1}/${options.retries} of ${opts.method} ${path} after ${outcome}, waiting ${wait} ms`);
      await sleep(wait);
    }
  }

  // node-vault calls `defaults(rpDefaults)` once and then the function it gets back.
  const rp = Object.assign(request, { defaults: () => request });
  return {
    rp,
    /** No request or retry starts after this; those in flight may still answer (their leases count). */
    cancel(reason: string): void {
      cancelled ??= reason;
    },
    close: () => exchange.close(),
  };
}

/**
 * A standby answers 307 with the active node's address. Followed only to the origin (scheme, host
 * and port) 'url' names: the request carries the token, which must never go to a host the user did
 * not configure, nor from https to http. Another origin is refused: the error naming it is returned.
 */
function redirectTarget(from: URL, response: RpResponse, method: string, path: string, count: number): URL | TransportError {
  const location = response.headers.location;
  let to: URL | undefined;
  try {
    to = location !== undefined && location !== '' ? new URL(location, from) : undefined;
  } catch {
    to = undefined;
  }
  if (to === undefined) {
    throw new TransportError(
      'EREDIRECT',
      from.host,
      `Vault at ${from.host} answered ${method} ${path} with ${response.statusCode} but no usable Location`,
    );
  }
  if (to.origin !== from.origin) {
    return new TransportError(
      'EREDIRECT',
      from.host,
      `Vault at ${from.host} redirected ${method} ${path} to ${to.origin}${to.pathname} (a standby pointing at the active node?): not followed, the token goes only to the 'url' given; set 'url' to the active node or a load balancer in front of the cluster`,
    );
  }
  if (count > MAX_REDIRECTS) {
    throw new TransportError('EREDIRECT', from.host, `Vault at ${from.host} redirected ${method} ${path} more than ${MAX_REDIRECTS} times`);
  }
  return to;
}
