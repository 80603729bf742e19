// The HTTP transport node-vault runs on. node-vault's built-in axios transport cannot tunnel HTTPS
// through a proxy (axios #4531, #6330), drops response headers (so Retry-After is lost) and has no
// retries; node-vault accepts a `request-promise`-shaped function instead, which is this.
// Retries live here, below node-vault, so every call (reads, logins, revokes) gets one policy
// (retry.ts); one try is an exchange (exchange.ts). Here: the retry loop, the overall deadline,
// redirects from a standby and cancellation.
import { createExchange, TransportError, type ExchangeOptions, type RpOptions, type RpResponse } from './exchange.ts';
import { backoffMs, errorOutcome, isIdempotent, QUOTA_RETRIES, quotaRefusal, statusOutcome } from './retry.ts';

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
  const quota = createQuotaTurns({ now, sleep, open: options.maxSockets });
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
    // The `retries` budget is spent by failures; a quota's 429 spends its own (QUOTA_RETRIES),
    // bounded by the deadline like everything else: under a shared quota a job that waits its turn
    // gets through, and one that gave up after `retries` refusals would fail a job that had time left.
    let spent = 0;
    let quotaSpent = 0;
    // `retries: 0` turns every retry off, a quota's too.
    const quotaRetries = options.retries === 0 ? 0 : QUOTA_RETRIES;
    for (let attempt = 0; ; attempt++) {
      if (cancelled !== undefined) {
        throw fail(new TransportError('ECANCELED', target.host, `${opts.method} ${path} not sent: the job was cancelled (${cancelled})`));
      }
      if (options.deadline - now() <= 0) {
        throw fail(new TransportError('ETIMEDOUT', target.host, `gave up on ${opts.method} ${path}: the 'timeout' input ran out`));
      }
      // After a 429 the job's requests take turns (quota.enter): refused, they would only spend
      // the quota's budget, and every other job's with it.
      if (!(await quota.enter(options.deadline))) {
        throw fail(
          new TransportError(
            'ETIMEDOUT',
            target.host,
            `gave up on ${opts.method} ${path}: the 'timeout' input would run out while the job waits for Vault's quota; ${quota.refusal}`,
          ),
        );
      }
      const remaining = options.deadline - now();
      if (remaining <= 0) {
        quota.leave();
        throw fail(new TransportError('ETIMEDOUT', target.host, `gave up on ${opts.method} ${path}: the 'timeout' input ran out`));
      }
      let retryAfter: string | undefined;
      let outcome: string;
      // Vault's words when it refused with 429, for the message if this request gives up on it.
      let refused: string | undefined;
      try {
        let response: RpResponse;
        try {
          response = await exchange.send(opts, target, Math.min(remaining, options.requestTimeoutMs ?? remaining));
        } finally {
          quota.leave();
        }
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
          if (spent >= options.retries) throw fail(to);
          target = new URL(opts.uri);
          redirects = 0;
          outcome = 'a redirect to another origin';
        } else {
          if (response.statusCode !== 429) quota.answered();
          // node-vault keeps only status and body of a failed response: the body carries the mark.
          if (uncertain && response.body !== null && typeof response.body === 'object') bodiesAfterUncertainTry.add(response.body);
          const verdict = statusOutcome(response.statusCode, response.body);
          if (verdict === 'final') return response;
          const retryable = verdict === 'not-acted' || (await retrySafe());
          if (response.statusCode === 429) refused = quotaRefusal((response.body as { errors?: unknown } | null)?.errors, quotaSpent);
          if (!retryable || (spent >= options.retries && refused === undefined)) return response;
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
        if (!retryable || spent >= options.retries) {
          error.mayHaveActed ||= verdict === 'maybe-acted' && error.code !== 'ECANCELED';
          throw fail(error);
        }
        uncertain ||= verdict === 'maybe-acted';
        outcome = error.code;
      }
      // A quota's refusal to its last retry fails saying so and what to change, not as a bare 429.
      if (refused !== undefined && quotaSpent >= quotaRetries) {
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
      if (refused !== undefined) {
        quotaSpent++;
        quota.refused(now() + wait, refused);
        log(`quota retry ${quotaSpent}/${quotaRetries} of ${opts.method} ${path} after ${outcome}, waiting ${wait} ms`);
      } else {
        spent++;
        log(`retry ${spent}/${options.retries} of ${opts.method} ${path} after ${outcome}, waiting ${wait} ms`);
      }
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

/**
 * How many of one client's requests may be in flight once Vault's quota has refused one: none
 * until the refused request's own retry is due (no request of the job starts inside the wait Vault
 * asked for), then one at a time, one more with each answer that is not a 429, and no limit again
 * once `open` are allowed (the concurrency input and the sockets bound it then). A 429 puts it back
 * to one: additive increase, multiplicative decrease, as TCP shares a link. Without it each job of
 * a matrix kept `concurrency` requests going into a quota already spent, and every refusal cost a
 * retry of the job's budget and a request of the quota's.
 */
export function createQuotaTurns(deps: { now: () => number; sleep: (ms: number) => Promise<void>; open: number }) {
  let limit = Infinity;
  let inFlight = 0;
  let pausedUntil = 0;
  let waiting: Array<() => void> = [];
  const wake = (): void => {
    const woken = waiting;
    waiting = [];
    for (const resolve of woken) resolve();
  };
  return {
    /** Vault's words on the latest 429, for a request that gives up waiting its turn. */
    refusal: '',
    /** Waits for this request's turn; false (and no turn taken) when it would come at or past `deadline`. */
    async enter(deadline: number): Promise<boolean> {
      for (;;) {
        const at = deps.now();
        if (at < pausedUntil) {
          if (pausedUntil >= deadline) return false;
          await deps.sleep(pausedUntil - at);
          continue;
        }
        if (inFlight < limit) {
          inFlight++;
          return true;
        }
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
    },
    /** The request that entered has its answer (or failed). */
    leave(): void {
      inFlight--;
      wake();
    },
    /** An answer that was not a 429: one more request may go at once. */
    answered(): void {
      if (limit === Infinity) return;
      limit = limit + 1 > deps.open ? Infinity : limit + 1;
      wake();
    },
    /** A 429 whose retry is due at `retryAt`: nothing starts before then, and one at a time after. */
    refused(retryAt: number, refusal: string): void {
      limit = 1;
      pausedUntil = Math.max(pausedUntil, retryAt);
      this.refusal = refusal;
    },
  };
}
