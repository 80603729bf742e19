// The scan's options with their defaults, and the progress callback's rate limit.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_LIMITS } from '../../../src/scan/containers/index.ts';
import { progressReporter, settings } from '../../../src/scan/options.ts';
import { DEFAULT_LINK_LIMITS } from '../../../src/scan/walk.ts';

afterEach(() => vi.restoreAllMocks());

describe('settings', () => {
  it('fills in the defaults', () => {
    expect(settings({})).toEqual({ chunkSize: 2 ** 20, limits: DEFAULT_LIMITS, cwd: process.cwd(), linkLimits: DEFAULT_LINK_LIMITS });
  });

  it('takes what is given: maxDepth over limits.maxDepth, a whole chunk size of at least 1', () => {
    const s = settings({ maxDepth: 1, limits: { maxDepth: 5, maxMembers: 7 }, chunkSize: 0.5, cwd: '/x', links: { maxLinks: 3 } });
    expect(s).toEqual({
      chunkSize: 1,
      limits: { ...DEFAULT_LIMITS, maxDepth: 1, maxMembers: 7 },
      cwd: '/x',
      linkLimits: { ...DEFAULT_LINK_LIMITS, maxLinks: 3 },
    });
  });
});

describe('progressReporter', () => {
  it('calls onProgress at most once per interval, with the counts read when it fires', () => {
    let now = 1000;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const calls: unknown[] = [];
    let bytes = 0;
    const report = progressReporter({ progressIntervalMs: 100, onProgress: (p) => calls.push(p) }, 1000, () => ({ files: 1, bytes }));
    bytes = 5;
    now = 1050;
    report();
    now = 1100;
    report();
    bytes = 9;
    now = 1150;
    report();
    now = 1250;
    report();
    expect(calls).toEqual([
      { files: 1, bytes: 5, elapsedMs: 100 },
      { files: 1, bytes: 9, elapsedMs: 250 },
    ]);
  });

  it('does nothing without onProgress', () => {
    expect(() => progressReporter({}, 0, () => ({ files: 0, bytes: 0 }))()).not.toThrow();
  });
});
