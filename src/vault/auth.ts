// Logs in to Vault with the configured method. Credentials given as inputs and the token Vault
// returns are masked before any request is made or anything is logged.
import { VaultError } from '../errors.ts';
import type { AuthConfig } from '../inputs.ts';
import type { MaskRegistry } from '../mask.ts';
import type { VaultClient } from './client.ts';

export interface Session {
  readonly token: string;
  /** True when this run created the token (a login); post revokes only such tokens. */
  readonly created: boolean;
  readonly method: AuthConfig['method'];
  readonly ttlSeconds: number | undefined;
}

export interface AuthDeps {
  readonly masks: MaskRegistry;
  readonly getIDToken: (audience?: string) => Promise<string>;
}

export async function login(client: VaultClient, auth: AuthConfig, deps: AuthDeps): Promise<Session> {
  switch (auth.method) {
    case 'token': {
      deps.masks.add(auth.token);
      client.token = auth.token;
      // A token the user passed in belongs to the user: we use it, we never revoke it.
      return { token: auth.token, created: false, method: auth.method, ttlSeconds: undefined };
    }
    case 'approle': {
      deps.masks.add(auth.secretId);
      deps.masks.add(auth.roleId);
      return loginWith(client, auth.method, `auth/${auth.mount}/login`, { role_id: auth.roleId, secret_id: auth.secretId }, deps);
    }
    case 'jwt': {
      const jwt = auth.jwt ?? (await deps.getIDToken(auth.audience));
      deps.masks.add(jwt);
      return loginWith(client, auth.method, `auth/${auth.mount}/login`, { role: auth.role, jwt }, deps);
    }
  }
}

async function loginWith(
  client: VaultClient,
  method: AuthConfig['method'],
  path: string,
  body: Record<string, unknown>,
  deps: AuthDeps,
): Promise<Session> {
  client.token = undefined;
  const response = await client.write(path, body);
  const token = response?.auth?.client_token;
  if (typeof token !== 'string' || token === '') {
    throw new VaultError(path, `POST ${path}: Vault's answer carried no auth.client_token`);
  }
  // Masked before it is stored anywhere: the token is a secret like the others.
  deps.masks.add(token);
  client.token = token;
  const ttl = response?.auth?.lease_duration;
  return { token, created: true, method, ttlSeconds: typeof ttl === 'number' ? ttl : undefined };
}
