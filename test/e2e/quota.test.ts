// End to end: many jobs at once against one OpenBao with a rate-limit quota (sys/quotas/rate-limit)
// tight enough that most of them are refused with 429 on the way. Every job either succeeds or
// fails with one line naming the quota; the retries after a refusal are spread out (Retry-After
// plus a random spread, src/vault/retry.ts), not sent back in one wave; no value leaks and post
// leaves no token alive. The fault proxy in front only records the requests (when each started,
// what the client got); the 429s are OpenBao's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy, type RecordedRequest } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, newAccessors, newJob, privateDirsOf } from './setup.ts';

const JOBS = 10;
/** Requests a second the quota admits, for every client on loopback together: well below what 10 jobs ask. */
const RATE = 30;
/**
 * The most retries any 100 ms may hold. Measured here: sent back at once (Retry-After "0" taken as
 * it is) 40 to 100 in the busiest 100 ms; spread, 13 to 21.
 */
const BURST = 32;
const SECRETS = 20;
const ROLE_ID = 'quota-role-id-5c6d7e';
const SECRET_ID = 'quota-secret-id-8f9a0b';
/** A value per job and secret, each read only by its job: a second request for a path is a retry. */
const value = (job: number, i: number): string => `quota-value-${job}-${i}-${'q'.repeat(12)}`;
const ALL = [ROLE_ID, SECRET_ID, ...Array.from({ length: JOBS }, (_, j) => Array.from({ length: SECRETS }, (_, i) => value(j, i))).flat()];

let vault: OpenBao;
let proxy: FaultProxy;

beforeAll(async () => {
  vault = await OpenBao.start();
  proxy = await startFaultProxy(vault.url);
  for (let j = 0; j < JOBS; j++) for (let i = 0; i < SECRETS; i++) await vault.putKv('secret', `quota/j${j}/s${i}`, { value: value(j, i) });
  await vault.addPolicy('quota', [{ path: 'secret/data/quota/*', capabilities: ['read'] }]);
  await vault.addAppRole('approle', 'quota', { roleId: ROLE_ID, secretId: SECRET_ID, policies: ['quota'], ttl: '10m' });
}, 60_000);
afterAll(async () => {
  await proxy?.stop();
  await vault?.stop();
});

/** The most of `times` (ms) that fall in any window of `width` ms. */
function largestBurst(times: number[], width: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let lo = 0, hi = 0; hi < sorted.length; hi++) {
    while ((sorted[hi] as number) - (sorted[lo] as number) >= width) lo++;
    most = Math.max(most, hi - lo + 1);
  }
  return most;
}

/** Start times of the requests that repeat an earlier one (same method and path): the retries. */
function retryTimes(requests: readonly RecordedRequest[]): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  for (const r of requests) {
    const key = `${r.method} ${r.path}`;
    // Logins, mount lookups and revocations are the same request for every job: only reads tell.
    if (!r.path.startsWith('secret/data/quota/')) continue;
    if (seen.has(key)) out.push(r.at);
    seen.add(key);
  }
  return out;
}

const QUOTA_LINE =
  /^(secrets line \d+: )?\S+ \S+: gave up on \S+ \S+(: | after status 429: .*; |: the 'timeout' input would run out while the job waits for Vault's quota; )Vault answered 429 request path "[^"]+": rate limit quota exceeded \(a Vault quota\), \d+ retr(y|ies) spent: raise the quota \(sys\/quotas\/rate-limit\), lower 'concurrency', or raise 'timeout'$/;

describe('many jobs at once under a rate-limit quota', () => {
  it(
    `${JOBS} jobs x ${SECRETS} secrets: each succeeds or fails naming the quota, retries are spread, nothing leaks, no token is left`,
    { timeout: 120_000, retry: 2 },
    async () => {
      const before = new Set(await vault.liveAccessors());
      // This attempt's requests only (the proxy keeps every request since it started).
      const from = proxy.requests.length;
      // Retry-After on: OpenBao then sends "0" (whole seconds rounded down) under a 1 s interval.
      await vault.addRateLimitQuota('ci', { rate: RATE, interval: '1s', headers: true });
      const jobs: Job[] = await Promise.all(Array.from({ length: JOBS }, () => newJob()));
      let results: Array<{ main: StepResult; post: StepResult }>;
      try {
        results = await Promise.all(
          jobs.map(async (job, j) => {
            const main = await job.runMain(MAIN, {
              url: proxy.url,
              method: 'approle',
              'role-id': ROLE_ID,
              'secret-id': SECRET_ID,
              secrets: Array.from({ length: SECRETS }, (_, i) => `secret/data/quota/j${j}/s${i} value | S${i}`).join('\n'),
              retries: '6',
            });
            const post = await job.runPost(POST, main);
            return { main, post };
          }),
        );
      } finally {
        await vault.removeRateLimitQuota('ci');
      }
      try {
        const requests = proxy.requests.slice(from);
        const refused = requests.filter((r) => r.status === 429);
        expect(refused.length, 'the quota never refused a request: the test proves nothing').toBeGreaterThan(20);
        let succeeded = 0;
        for (const [j, { main, post }] of results.entries()) {
          const job = jobs[j] as Job;
          assertNoLeak(job, [main, post], ALL, { privateDirs: privateDirsOf([main]) });
          const errors = main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
          if (main.exitCode === 0) {
            succeeded++;
            expect(errors, main.log).toEqual([]);
          } else {
            // One line, naming the 429 and the quota and what to do.
            expect(errors, main.log).toHaveLength(1);
            expect(errors[0], main.log).toMatch(QUOTA_LINE);
          }
          expect(post.exitCode, post.log).toBe(0);
        }
        expect(succeeded, 'no job got through the quota').toBeGreaterThan(0);
        // Retries after a refusal are spread over the second after it (and longer after more), not
        // sent back at once.
        const retries = retryTimes(requests);
        expect(retries.length).toBeGreaterThan(20);
        expect(largestBurst(retries, 100)).toBeLessThanOrEqual(BURST);
        // Post revoked every token main logged in with (the quota gone, so nothing refuses the check).
        expect(await newAccessors(vault, before)).toEqual([]);
      } finally {
        await Promise.all(jobs.map((job) => job.cleanup()));
      }
      // Arrival times at the proxy bunch when the machine's cores are busy with other test files (a
      // starved process sends its spread retries late, together): a burst over the bound is tried
      // again on a fresh attempt; an unspread client exceeds it on every attempt (40 to 100).
    },
  );
});
