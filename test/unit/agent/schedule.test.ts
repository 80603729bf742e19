// The renewal agent's schedule on a fake clock: renewals at 0.6 to 0.7 of a TTL (never sooner than
// 500 ms), the refresh interval, the back-off after failed rounds and what caps it, the max lifetime.
import { describe, expect, it } from 'vitest';
import { nearMaxTtl, realClock, Schedule, type Clock } from '../../../src/agent/schedule.ts';

function clockAt(t: number, rand = 0.5): Clock & { t: number } {
  const clock = {
    t,
    now: () => clock.t,
    sleep: () => Promise.resolve(),
    random: () => rand,
  };
  return clock;
}

describe('Schedule', () => {
  it.each([
    [0, 60, 36_000],
    [0.5, 60, 39_000],
    [0.999, 60, 41_994],
    [0.5, 0.5, 500], // a very short TTL: no sooner than 500 ms
  ])('with jitter %s a %s s TTL is due %s ms on', (rand, ttl, due) => {
    const clock = clockAt(1000, rand);
    const schedule = new Schedule(clock, 60_000, 3_600_000);
    schedule.token(ttl);
    schedule.lease('db', ttl);
    expect([schedule.tokenDue(1000 + due - 1), schedule.leaseDue('db', 1000 + due - 1)]).toEqual([false, false]);
    expect([schedule.tokenDue(1000 + due), schedule.leaseDue('db', 1000 + due)]).toEqual([true, true]);
  });

  it('counts a lease from when main obtained it, and forgets one that is gone', () => {
    const schedule = new Schedule(clockAt(5000), 60_000, 3_600_000);
    schedule.lease('db', 10, 1000);
    expect(schedule.leaseDue('db', 7499)).toBe(false);
    expect(schedule.leaseDue('db', 7500)).toBe(true);
    schedule.lease('db', undefined);
    expect(schedule.leaseDue('db', 1e12)).toBe(false);
  });

  it('a token that is not renewed is never due', () => {
    const schedule = new Schedule(clockAt(0), 60_000, 3_600_000);
    expect(schedule.tokenDue(1e12)).toBe(false);
    schedule.token(10);
    schedule.token(undefined);
    expect(schedule.tokenDue(1e12)).toBe(false);
  });

  it('refreshes one interval after start, then one interval after each complete refresh', () => {
    const schedule = new Schedule(clockAt(0), 5000, 3_600_000);
    expect([schedule.refreshDue(4999), schedule.refreshDue(5000)]).toEqual([false, true]);
    schedule.refreshed(6000);
    expect([schedule.refreshDue(10_999), schedule.refreshDue(11_000)]).toEqual([false, true]);
  });

  it('ends its lifetime at the max lifetime after start', () => {
    const schedule = new Schedule(clockAt(1000), 5000, 3000);
    expect([schedule.lifetimeOver(3999), schedule.lifetimeOver(4000)]).toEqual([false, true]);
  });

  it('pauses 250 ms after a good round, backs off 200 ms doubling to 5 s after failed ones, and starts over after a good one', () => {
    const schedule = new Schedule(clockAt(0), 3_600_000, 86_400_000);
    const waits = [true, false, false, false, false, false, false, false, false, true, false].map((ok) => schedule.afterRound(ok, 0));
    expect(waits).toEqual([250, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 250, 200]);
  });

  it('never backs off past the next task not yet due (nor past the max lifetime); one already due does not shorten it', () => {
    const schedule = new Schedule(clockAt(0), 1000, 20_000);
    schedule.token(10); // due at 6500
    for (let i = 0; i < 5; i++) schedule.afterRound(false, 1000);
    // The refresh (due at 1000) is the failing task; the token is 5500 ms away; the back-off is 5000.
    expect(schedule.afterRound(false, 1000)).toBe(5000);
    expect(schedule.afterRound(false, 4000)).toBe(2500);
    schedule.token(undefined);
    expect(schedule.afterRound(false, 18_000)).toBe(2000);
  });
});

describe('nearMaxTtl', () => {
  it.each([
    [10, 10, false],
    [4, 10, false],
    [3, 10, true],
    [0, 10, true],
  ])('a renewal to %s s of %s s asked for: near the max TTL %s', (ttl, asked, near) => {
    expect(nearMaxTtl(ttl, asked)).toBe(near);
  });
});

describe('realClock.sleep', () => {
  it('resolves after its time, or at once when aborted (and leaves no timer behind)', async () => {
    const started = Date.now();
    await realClock.sleep(20, new AbortController().signal);
    expect(Date.now() - started).toBeGreaterThanOrEqual(19);
    const stop = new AbortController();
    const long = realClock.sleep(60_000, stop.signal);
    stop.abort();
    await long;
    const aborted = new AbortController();
    aborted.abort();
    await realClock.sleep(60_000, aborted.signal);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
