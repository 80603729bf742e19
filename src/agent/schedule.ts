// When the renewal agent acts: the token and each lease are renewed at about two thirds of their
// TTL (with jitter), KV sources are re-read every refresh interval, a failed round is retried
// sooner with a growing back-off, and the agent gives up at its max lifetime. Bookkeeping over an
// injected clock only: nothing here talks to Vault or touches a file.

export interface Clock {
  readonly now: () => number;
  /** Resolves after `ms`, or at once when `signal` aborts: stop() must not wait out a back-off. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** In [0, 1): the jitter. */
  readonly random: () => number;
}

// Arrow functions only (no `Date.now` read at load), so a bundle that imports this module without
// using the clock (post, for the file names) can drop it.
export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      // Cleared on abort, so a stopped agent's process exits at once instead of when the timer ends.
      const timer = setTimeout(done, ms);
      if (signal.aborted) done();
      else signal.addEventListener('abort', done, { once: true });
    }),
  random: () => Math.random(),
};

/** The pause between rounds when all went well: how late a due task can be. */
const ROUND_MS = 250;
/** No renewal sooner than this after the last, however short the TTL. */
const MIN_DUE_MS = 500;
/** The back-off after failed rounds: doubling from BACKOFF_FIRST_MS up to BACKOFF_MAX_MS. */
const BACKOFF_FIRST_MS = 200;
const BACKOFF_MAX_MS = 5000;

/**
 * Vault caps a renewal at the lease's max TTL: an answer well short of the increment asked for
 * (under a third) means the end is near, so the next step is a fresh credential, not another renewal.
 */
export function nearMaxTtl(ttlSeconds: number, askedSeconds: number): boolean {
  return ttlSeconds < askedSeconds / 3;
}

export class Schedule {
  readonly started: number;
  private readonly clock: Clock;
  private readonly refreshMs: number;
  private readonly maxLifetimeMs: number;
  private tokenAt: number | undefined;
  private readonly leaseAt = new Map<string, number>();
  private refreshAt: number;
  private failures = 0;

  constructor(clock: Clock, refreshMs: number, maxLifetimeMs: number) {
    this.clock = clock;
    this.refreshMs = refreshMs;
    this.maxLifetimeMs = maxLifetimeMs;
    this.started = clock.now();
    this.refreshAt = this.started + refreshMs;
  }

  /** About two thirds of a TTL, with jitter so many jobs do not renew in the same second. */
  private dueIn(ttlSeconds: number): number {
    return Math.max(MIN_DUE_MS, ttlSeconds * 1000 * (0.6 + this.clock.random() * 0.1));
  }

  /** The token's TTL as it now stands; undefined: it is not renewed (again). */
  token(ttlSeconds: number | undefined): void {
    this.tokenAt = ttlSeconds === undefined ? undefined : this.clock.now() + this.dueIn(ttlSeconds);
  }

  tokenDue(now: number): boolean {
    return this.tokenAt !== undefined && now >= this.tokenAt;
  }

  /** A lease's TTL as of `from` (default now); undefined: nothing to renew for this source. */
  lease(key: string, ttlSeconds: number | undefined, from = this.clock.now()): void {
    if (ttlSeconds === undefined) this.leaseAt.delete(key);
    else this.leaseAt.set(key, from + this.dueIn(ttlSeconds));
  }

  leaseDue(key: string, now: number): boolean {
    const at = this.leaseAt.get(key);
    return at !== undefined && now >= at;
  }

  refreshDue(now: number): boolean {
    return now >= this.refreshAt;
  }

  /** Every KV source was re-read at `now`: the next refresh is one interval later. */
  refreshed(now: number): void {
    this.refreshAt = now + this.refreshMs;
  }

  lifetimeOver(now: number): boolean {
    return now - this.started >= this.maxLifetimeMs;
  }

  /**
   * How long to sleep after a round. After a failure, sooner than a full refresh and backing off,
   * but never past the next task that is not yet due (a failing KV refresh must not make a lease
   * renewal late); the failing task itself stays due and is retried when the back-off ends.
   */
  afterRound(ok: boolean, now: number): number {
    this.failures = ok ? 0 : this.failures + 1;
    if (ok) return ROUND_MS;
    const backoff = Math.min(BACKOFF_FIRST_MS * 2 ** Math.min(this.failures - 1, 5), BACKOFF_MAX_MS);
    const next = [this.tokenAt, ...this.leaseAt.values(), this.refreshAt, this.started + this.maxLifetimeMs]
      .filter((at): at is number => at !== undefined && at > now)
      .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
    return Math.min(backoff, next - now);
  }
}
