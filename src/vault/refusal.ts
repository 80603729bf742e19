// A refused read said as what to do about it: a 403 or 404 of a `secrets` line, naming the line,
// the path and the grant, after asking Vault whether the token itself is still good.
import { VaultError } from '../core/errors.ts';
import type { VaultClient } from './client.ts';

/**
 * Whether Vault accepts the token: auth/token/lookup-self is in the default policy, so a 403 there
 * means the token itself is invalid, expired or revoked, not that a policy leaves a path out. The
 * status decides, not the text (OpenBao words both cases "permission denied").
 */
export async function tokenAccepted(client: VaultClient): Promise<boolean> {
  try {
    await client.read('auth/token/lookup-self');
    return true;
  } catch (error) {
    return !(error instanceof VaultError && error.status === 403);
  }
}

/** A 403 or 404 said as what to do about it, naming the secrets line and the path. */
export async function explainRefusal(
  error: VaultError,
  plan: { path: string; line: number; body: Record<string, unknown> | undefined },
  tokenValid: () => Promise<boolean>,
): Promise<string> {
  const where = `secrets line ${plan.line}: ${error.message}`;
  if (error.status === 404) {
    const kv = plan.body === undefined ? ` (for KV v2 '${plan.path}' and its /data/ form both work)` : '';
    return `${where}: nothing at '${plan.path}'; check the path${kv}, or end the line with ' ?' if the entry is optional`;
  }
  if (!(await tokenValid()))
    return `${where}: the Vault token is invalid, expired or revoked (auth/token/lookup-self is refused too); give a valid token or check the login method`;
  return `${where}: the token is valid but its policies do not allow this; grant ${plan.body === undefined ? "'read'" : "'update'"} on '${error.path}' in a policy of the token (or of the login role)`;
}
