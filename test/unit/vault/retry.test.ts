// The retry policy as tables: which outcomes prove Vault did not act, which calls may be repeated
// when that is left open, and the waits (Retry-After in seconds or as a date, capped; backoff).
import { afterEach, describe, expect, it } from 'vitest';
import { backoffMs, errorOutcome, isIdempotent, quotaRefusal, retryAfterMs, statusOutcome } from '../../../src/vault/retry.ts';

describe('statusOutcome', () => {
  it("a KV v2 mount's 400 while it checks its layout after a failover is not-acted; another 400 is final", () => {
    const upgrading = {
      errors: [
        'Waiting for the primary to upgrade from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly.',
      ],
    };
    expect(statusOutcome(400, upgrading)).toBe('not-acted');
    expect(statusOutcome(400, { errors: ['permission denied'] })).toBe('final');
    expect(statusOutcome(400)).toBe('final');
  });

  it.each([
    [200, 'final'],
    [204, 'final'],
    [400, 'final'],
    [403, 'final'],
    [404, 'final'],
    [412, 'not-acted'],
    [429, 'not-acted'],
    [503, 'not-acted'],
    [500, 'maybe-acted'],
    [502, 'maybe-acted'],
    [504, 'maybe-acted'],
  ])('%i: %s', (status, expected) => {
    expect(statusOutcome(status)).toBe(expected);
  });
});

describe('errorOutcome', () => {
  it.each([
    ['ECONNREFUSED', 'not-acted'],
    ['ENOTFOUND', 'not-acted'],
    ['EAI_AGAIN', 'not-acted'],
    ['EHOSTUNREACH', 'not-acted'],
    ['ENETUNREACH', 'not-acted'],
    ['ECONNRESET', 'maybe-acted'],
    ['ETIMEDOUT', 'maybe-acted'],
    ['EBADBODY', 'maybe-acted'],
    ['EREDIRECT', 'final'],
    ['EHTTPTOHTTPS', 'final'],
  ])('%s: %s', (code, expected) => {
    expect(errorOutcome(code)).toBe(expected);
  });
});

describe('isIdempotent', () => {
  it.each([
    ['GET', '/v1/sys/internal/ui/mounts/secret/app', true],
    ['GET', '/v1/ns1/sys/internal/ui/mounts/secret/app', true], // a namespace prefix in the path
    ['GET', '/v1/auth/token/lookup-self', true],
    ['GET', '/v1/sys/health', true],
    ['GET', '/v1/database/creds/ci', false],
    ['GET', '/v1/secret/data/app', false], // a KV read is marked by its caller, not guessed from the path
    ['LIST', '/v1/secret/metadata/', true],
    ['POST', '/v1/auth/token/revoke-self', true],
    ['POST', '/v1/auth/token/renew-self', true],
    ['PUT', '/v1/sys/leases/revoke', true],
    ['PUT', '/v1/sys/leases/renew', true],
    ['POST', '/v1/auth/approle/login', false],
    ['POST', '/v1/pki/issue/ci', false],
    ['POST', '/v1/auth/token/create', false],
  ])('%s %s: %s', (method, path, expected) => {
    expect(isIdempotent(method, path)).toBe(expected);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  it.each([
    ['3', 3000],
    [' 2 ', 2000],
    ['0', 0],
    ['1.5', 1500],
    ['60', 60_000],
    ['3600', 60_000], // capped
    ['Tue, 01 Jan 2030 00:00:05 GMT', 5000], // IMF-fixdate
    ['Tuesday, 01-Jan-30 00:00:07 GMT', 7000], // RFC 850
    ['Tue Jan  1 00:00:09 2030', 9000], // asctime, GMT by definition
    ['Mon, 31 Dec 2029 23:59:00 GMT', 0], // already past
    ['Wed, 01 Jan 2031 00:00:00 GMT', 60_000], // capped
  ])('%j: %i ms', (header, expected) => {
    expect(retryAfterMs(header, now)).toBe(expected);
  });

  it.each([[undefined], [''], ['-1'], ['1,5'], ['soon'], ['Tomorrow']])('%j: none (the backoff applies)', (header) => {
    expect(retryAfterMs(header, now)).toBeUndefined();
  });

  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });
  it('reads an asctime date as GMT whatever the machine zone', () => {
    process.env.TZ = 'America/New_York';
    expect(retryAfterMs('Tue Jan  1 00:00:09 2030', now)).toBe(9000);
  });
});

describe('backoffMs', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const waits = (random: () => number): number[] => Array.from({ length: 8 }, (_, attempt) => backoffMs(attempt, undefined, now, random));
  it('doubles from 50 ms to at most 2 s, jittered over the upper half of each step', () => {
    expect(waits(() => 0)).toEqual([25, 50, 100, 200, 400, 800, 1000, 1000]);
    expect(waits(() => 0.5)).toEqual([38, 75, 150, 300, 600, 1200, 1500, 1500]);
    expect(waits(() => 0.999_999)).toEqual([50, 100, 200, 400, 800, 1600, 2000, 2000]);
  });

  it("takes the server's Retry-After instead, and the backoff when it is unreadable", () => {
    expect(backoffMs(0, '4', now, () => 0)).toBe(4000);
    expect(backoffMs(5, '0', now, () => 0)).toBe(0);
    expect(backoffMs(0, 'Tue, 01 Jan 2030 00:00:03 GMT', now, () => 0)).toBe(3000);
    expect(backoffMs(2, 'later', now, () => 0)).toBe(100);
  });
});

describe('backoffMs after a Retry-After', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  it.each([
    ['0', 0, 0], // Vault's "0": the quota frees up within the second
    ['0', 0.5, 500],
    ['0', 0.999_999, 1000],
    ['1', 0.5, 1500],
    ['8', 0.5, 9000], // a block_interval's longer wait: spread over a quarter of it
    ['8', 0.999_999, 10_000],
    ['3600', 0.5, 67_500], // capped at 60 s, then spread
  ])('%j with random %d: %i ms', (header, r, expected) => {
    expect(backoffMs(0, header, now, () => r)).toBe(expected);
  });

  it('doubles the spread with each refusal of the same request, up to 8 s', () => {
    expect(Array.from({ length: 6 }, (_, attempt) => backoffMs(attempt, '0', now, () => 0.5))).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(Array.from({ length: 6 }, (_, attempt) => backoffMs(attempt, '2', now, () => 0.999_999))).toEqual([
      3000, 4000, 6000, 10_000, 10_000, 10_000,
    ]);
    expect(backoffMs(3, '60', now, () => 0.5)).toBe(67_500); // a quarter of a long wait is more than 8 s
  });

  it('takes a quota\'s 429 without a Retry-After (Vault sends none by default) as "0"', () => {
    expect(Array.from({ length: 4 }, (_, attempt) => backoffMs(attempt, undefined, now, () => 0.5, true))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffMs(1, 'soon', now, () => 0.5, true)).toBe(1000);
    expect(backoffMs(1, undefined, now, () => 0.5)).toBe(75); // not a quota: the backoff
  });

  it('spreads 50 jobs refused in the same instant over the second after it', () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const waits = Array.from({ length: 50 }, () => backoffMs(0, '0', now, random));
    const perTenth = new Map<number, number>();
    for (const w of waits) perTenth.set(Math.floor(w / 100), (perTenth.get(Math.floor(w / 100)) ?? 0) + 1);
    expect(Math.max(...waits)).toBeLessThanOrEqual(1000);
    expect(Math.max(...perTenth.values())).toBeLessThan(15); // no 100 ms holds more than a few of them
  });
});

describe('quotaRefusal', () => {
  it("quotes Vault's words on one line and says what to change", () => {
    expect(quotaRefusal(['request path "secret/data/app": rate limit quota exceeded'], 4)).toBe(
      `Vault answered 429 request path "secret/data/app": rate limit quota exceeded (a Vault quota), 4 retries spent: raise the quota (sys/quotas/rate-limit), lower 'concurrency', or raise 'timeout'`,
    );
    expect(quotaRefusal(['lease count\n quota exceeded', ''], 1)).toMatch(
      /^Vault answered 429 lease count quota exceeded \(a Vault quota\), 1 retry spent: /,
    );
    expect(quotaRefusal(undefined, 0)).toMatch(/^Vault answered 429 too many requests \(a Vault quota\), 0 retries spent: /);
  });
});
