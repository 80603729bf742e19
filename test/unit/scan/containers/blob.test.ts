import { describe, expect, it } from 'vitest';
import { cleanName, DEFAULT_LIMITS, errorCode } from '../../../../src/scan/containers/blob.ts';

describe('containers: shared', () => {
  it.each([
    ['./etc/npmrc', 'etc/npmrc'],
    ['././a/', 'a'],
    ['dir///', 'dir'],
    ['./', '.'],
    ['', '.'],
    // Names are only reported, never written to: kept as the archive spells them.
    ['../../etc/passwd', '../../etc/passwd'],
    ['/abs/path', '/abs/path'],
    ['a/./b', 'a/./b'],
  ])('cleanName(%j) = %j', (raw, cleaned) => {
    expect(cleanName(raw)).toBe(cleaned);
  });

  it.each([
    [Object.assign(new Error('x'), { code: 'EACCES' }), 'EACCES'],
    [new TypeError('boom'), 'TypeError'],
    [{ code: 42 }, 'unknown error'],
    ['a string', 'unknown error'],
    [undefined, 'unknown error'],
  ])('errorCode %# names the error without its message', (e, code) => {
    expect(errorCode(e)).toBe(code);
  });

  it('has bounds that stop bombs by default', () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxDepth: 3,
      maxBytes: 32 * 2 ** 30,
      maxRatio: 200,
      ratioGrace: 2 ** 20,
      maxMembers: 100_000,
      maxHeader: 2 ** 20,
    });
  });
});
