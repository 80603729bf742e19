// What a call threw or a promise rejected with, checked to be of the expected class, so a test can
// go on to assert its message (a test that expected an error fails when none comes).
import { expect } from 'vitest';

export function thrown<E extends Error>(fn: () => unknown, type: abstract new (...args: never[]) => E): E {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as E;
  }
  throw new Error(`no ${type.name} thrown`);
}

export async function rejected<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return error as E;
}
