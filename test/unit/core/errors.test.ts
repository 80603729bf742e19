// The typed errors: which count as the user's mistake (one line, no stack) and the one-line text of
// any thrown value.
import { describe, expect, it } from 'vitest';
import { DeliveryError, errorText, InputError, isUserError, SecretError, VaultError } from '../../../src/core/errors.ts';

describe('isUserError', () => {
  it("is true for an input, Vault, secret or delivery problem: the user's to act on", () => {
    expect(isUserError(new InputError('url', 'is not a URL'))).toBe(true);
    expect(isUserError(new VaultError('secret/data/app', 'permission denied', 403))).toBe(true);
    expect(isUserError(new SecretError("no key 'password'"))).toBe(true);
    expect(isUserError(new DeliveryError('a symlink was planted'))).toBe(true);
  });

  it('is false for anything else, which is a bug and keeps its stack', () => {
    for (const thrown of [new Error('x'), new TypeError('x'), new RangeError('x'), 'a string', { message: 'x' }, undefined, null]) {
      expect(isUserError(thrown), errorText(thrown)).toBe(false);
    }
    // Looking like one is not being one.
    expect(isUserError(Object.assign(new Error('input x: y'), { name: 'InputError' }))).toBe(false);
  });
});

describe('the typed errors', () => {
  it('name the input, and keep their cause', () => {
    const cause = new Error('underlying');
    const error = new InputError('secrets', 'line 3: expected PATH KEY', { cause });
    expect(error.message).toBe("input 'secrets': line 3: expected PATH KEY");
    expect(error.input).toBe('secrets');
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('InputError');
    expect(String(error)).toBe("InputError: input 'secrets': line 3: expected PATH KEY");
  });

  it('a VaultError carries the path and status, and nothing uncertain until told', () => {
    const error = new VaultError('auth/approle/login', 'invalid role id', 400);
    expect([error.name, error.path, error.status, error.afterUncertainTry, error.kv]).toEqual([
      'VaultError',
      'auth/approle/login',
      400,
      false,
      undefined,
    ]);
    expect(new VaultError('sys/mounts', 'connection refused').status).toBeUndefined();
  });
});

describe('errorText', () => {
  it('is the message of an Error, or its name when the message is empty', () => {
    expect(errorText(new VaultError('p', 'permission denied'))).toBe('permission denied');
    expect(errorText(new TypeError(''))).toBe('TypeError');
  });

  it('gives a one-line text for any other thrown value', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(errorText('a string, not an Error')).toBe('a string, not an Error');
    expect(errorText({ code: 'E1', n: 2 })).toBe('{"code":"E1","n":2}');
    expect(errorText(42)).toBe('42');
    expect(errorText(null)).toBe('null');
    expect(errorText(undefined)).toBe('undefined');
    expect(errorText(Symbol('s'))).toBe('Symbol(s)');
    // JSON.stringify throws on these; the text falls back to String().
    expect(errorText(10n)).toBe('10');
    expect(errorText(circular)).toBe('[object Object]');
  });
});
