import { describe, expect, it } from 'vitest';
import { flattenErrors, toVaultError } from '../../../src/vault/client.ts';

describe('Vault error text', () => {
  it.each([
    [['1 error occurred:\n\t* permission denied\n\n'], 'permission denied'],
    [['2 errors occurred:\n\t* a\n\t* b\n\n'], 'a; b'],
    [['permission denied', 'invalid token'], 'permission denied; invalid token'],
    [['missing client token'], 'missing client token'],
    [['line one\nline two'], 'line one line two'],
  ])('%j -> %s', (errors, expected) => {
    expect(flattenErrors(errors)).toBe(expected);
  });

  it('names the method, path and status on one line', () => {
    const error = toVaultError(
      'GET',
      'secret/data/x',
      Object.assign(new Error('x'), { response: { statusCode: 403, body: { errors: ['1 error occurred:\n\t* permission denied\n\n'] } } }),
    );
    expect(error.message).toBe('GET secret/data/x: Vault answered 403 permission denied');
    expect(error.status).toBe(403);
  });
});
