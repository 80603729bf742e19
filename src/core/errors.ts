// Typed errors. A user mistake (bad input, Vault refusing, a planted file) is reported as one line
// with no stack trace; anything else is a bug and keeps its stack for debugging. No error message may
// carry a secret value: messages name inputs, lines, paths, keys and registries only.

/** A problem with an input: the message names the input (and line where there is one). */
export class InputError extends Error {
  override readonly name = 'InputError';
  readonly input: string;
  constructor(input: string, message: string, options?: ErrorOptions) {
    super(`input '${input}': ${message}`, options);
    this.input = input;
  }
}

/** Vault refused or could not be reached; names the operation and path, never a body with values. */
export class VaultError extends Error {
  override readonly name = 'VaultError';
  readonly status: number | undefined;
  readonly path: string;
  /** A 404 for a KV v2 version that exists but was deleted or destroyed (no value, only its state). */
  kv: { version: number | undefined; deletionTime: string | undefined; destroyed: boolean } | undefined;
  /** A try of this request may have been acted on by Vault before this outcome (its answer was lost). */
  afterUncertainTry = false;
  constructor(path: string, message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
    this.status = status;
  }
}

/** A secret could not be selected from what Vault returned (missing key, deleted version...). */
export class SecretError extends Error {
  override readonly name = 'SecretError';
}

/** Writing or removing files went wrong in a way the user can act on (a planted symlink...). */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}

export function isUserError(error: unknown): boolean {
  return error instanceof InputError || error instanceof VaultError || error instanceof SecretError || error instanceof DeliveryError;
}

/** The one-line text of any thrown value, Error or not. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
