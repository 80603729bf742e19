// Logs in to Vault with the configured method. Credentials given as inputs and the token Vault
// returns are masked before any request is made or anything is logged.
import { promises as fs } from 'node:fs';
import { InputError, VaultError } from '../core/errors.ts';
import type { AuthConfig } from '../inputs/main.ts';
import type { MaskRegistry } from '../core/mask.ts';
import type { VaultClient } from './client.ts';
import { signJwt } from './jwt-sign.ts';

export interface Session {
  readonly token: string;
  /** True when this run created the token (a login); post revokes only such tokens. */
  readonly created: boolean;
  /**
   * A batch token (https://openbao.org/docs/concepts/tokens/#batch-tokens): it cannot be revoked
   * or renewed (Vault answers 400) and ends with its TTL; its leases do not die with it.
   */
  readonly batch: boolean;
  readonly method: AuthConfig['method'];
  readonly ttlSeconds: number | undefined;
}

export interface AuthDeps {
  readonly masks: MaskRegistry;
  readonly getIDToken: (audience?: string) => Promise<string>;
  /** The clock a signed JWT's iat/nbf/exp come from (tests). */
  readonly now?: () => number;
}

export async function login(client: VaultClient, auth: AuthConfig, deps: AuthDeps): Promise<Session> {
  switch (auth.method) {
    case 'token': {
      deps.masks.add(auth.token);
      client.token = auth.token;
      // A token the user passed in belongs to the user: we use it, we never revoke it.
      return { token: auth.token, created: false, batch: isBatchToken(auth.token), method: auth.method, ttlSeconds: undefined };
    }
    case 'approle': {
      deps.masks.add(auth.secretId);
      deps.masks.add(auth.roleId);
      const secretId = auth.unwrapSecretId ? await unwrapSecretId(client, auth.secretId, deps) : auth.secretId;
      return loginWith(client, auth.method, `auth/${auth.mount}/login`, { role_id: auth.roleId, secret_id: secretId }, deps);
    }
    case 'github':
      // https://developer.hashicorp.com/vault/api-docs/auth/github#login: Vault checks the token
      // with GitHub's API and maps the user's organization and teams to policies.
      deps.masks.add(auth.githubToken);
      return loginWith(client, auth.method, `auth/${auth.mount}/login`, { token: auth.githubToken }, deps);
    case 'jwt': {
      if (auth.signing) {
        // The key and its password are credentials: masked (with each PEM line) before any request.
        deps.masks.add(auth.signing.privateKey);
        if (auth.signing.passphrase !== undefined) deps.masks.add(auth.signing.passphrase);
      }
      const jwt =
        auth.jwt ?? (auth.signing ? signJwt(auth.signing, auth.audience, (deps.now ?? Date.now)()) : await jobIdToken(auth.audience, deps));
      deps.masks.add(jwt);
      try {
        return await loginWith(client, auth.method, `auth/${auth.mount}/login`, { role: auth.role, jwt }, deps);
      } catch (error) {
        // OpenBao and Vault name the aud claim in their refusal (OpenBao 2: "invalid audience (aud)
        // claim: audience claim does not match any expected audience").
        if (error instanceof VaultError && error.status !== undefined && /\baud(ience)?\b/i.test(error.message)) {
          const what =
            auth.jwt !== undefined
              ? `the token in 'jwt' carries an audience that role '${auth.role}' does not bind; give one for the role's bound_audiences ('jwt-audience' does not change a JWT given in 'jwt')`
              : auth.signing
                ? `the JWT signed with 'jwt-private-key' (aud: ${auth.audience !== undefined ? `'${auth.audience}' from 'jwt-audience'` : 'none'}) carries no audience that role '${auth.role}' binds; set 'jwt-audience' to one of its bound_audiences (a role without bound_audiences refuses a JWT that has an aud)`
                : `the job's OIDC token (audience: ${auth.audience !== undefined ? `'${auth.audience}' from 'jwt-audience'` : "GitHub's default, https://github.com/OWNER"}) carries an audience that role '${auth.role}' does not bind; set 'jwt-audience' to one of the role's bound_audiences (or add it to them)`;
          throw new VaultError(error.path, `${error.message}: ${what}`, error.status, { cause: error });
        }
        throw error;
      }
    }
    case 'kubernetes': {
      // https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#login
      let jwt: string;
      try {
        jwt = (await fs.readFile(auth.tokenPath, 'utf8')).trim();
      } catch (error) {
        throw new InputError(
          'kubernetes-token-path',
          `cannot read ${auth.tokenPath} (${(error as NodeJS.ErrnoException).code ?? 'error'}); is this runner in a Kubernetes pod with a service account token?`,
        );
      }
      if (jwt === '') throw new InputError('kubernetes-token-path', `${auth.tokenPath} is empty`);
      deps.masks.add(jwt);
      return loginWith(client, auth.method, `auth/${auth.mount}/login`, { role: auth.role, jwt }, deps);
    }
    case 'userpass':
    case 'ldap':
      // https://developer.hashicorp.com/vault/api-docs/auth/userpass#login
      deps.masks.add(auth.password);
      return loginWith(
        client,
        auth.method,
        `auth/${auth.mount}/login/${encodeURIComponent(auth.username)}`,
        { password: auth.password },
        deps,
      );
    case 'cert':
      // https://developer.hashicorp.com/vault/api-docs/auth/cert#login: the TLS client certificate
      // of the connection is the credential; `name` picks the role.
      return loginWith(client, auth.method, `auth/${auth.mount}/login`, auth.role !== undefined ? { name: auth.role } : {}, deps);
    case 'custom':
      // The payload carries credentials of a method we do not model: mask every field of it.
      deps.masks.add(JSON.stringify(auth.payload));
      for (const value of Object.values(auth.payload)) if (typeof value === 'string') deps.masks.add(value);
      return loginWith(client, auth.method, `auth/${auth.mount}/login`, auth.payload, deps);
  }
}

/**
 * The job's GitHub OIDC token. Without `permissions: id-token: write` the runner gives the step no
 * ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN, and @actions/core says only that: say what to add.
 */
async function jobIdToken(audience: string | undefined, deps: AuthDeps): Promise<string> {
  try {
    return await deps.getIDToken(audience);
  } catch (error) {
    if (error instanceof Error && /ACTIONS_ID_TOKEN_REQUEST_(URL|TOKEN)/.test(error.message))
      throw new InputError(
        'method',
        "'jwt' needs the job's GitHub OIDC token, which this job may not request: add `permissions: id-token: write` to the job (or give a token in 'jwt')",
        { cause: error },
      );
    throw error;
  }
}

/**
 * A secret-id handed over response-wrapped: unwrapping is single use, so if someone else had
 * unwrapped it first the call fails loudly (https://developer.hashicorp.com/vault/docs/concepts/response-wrapping).
 */
async function unwrapSecretId(client: VaultClient, wrappingToken: string, deps: AuthDeps): Promise<string> {
  client.token = wrappingToken;
  let response;
  try {
    response = await client.write('sys/wrapping/unwrap', {});
  } finally {
    client.token = undefined;
  }
  const secretId = response?.data?.secret_id;
  if (typeof secretId !== 'string' || secretId === '') {
    throw new VaultError(
      'sys/wrapping/unwrap',
      "POST sys/wrapping/unwrap: the wrapped response holds no secret_id; is 'secret-id' a wrapped AppRole secret-id?",
    );
  }
  deps.masks.add(secretId);
  return secretId;
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
  const batch = response?.auth?.token_type === 'batch' || isBatchToken(token);
  return { token, created: true, batch, method, ttlSeconds: typeof ttl === 'number' ? ttl : undefined };
}

/**
 * `renew: true` with a token the user gave: the agent never renews a token it did not create, so
 * one that expires before 'agent-max-lifetime' leaves the agent unable to re-read or renew. Warned
 * (the job may well finish in time) rather than refused. Undefined when it lives long enough.
 */
export async function givenTokenExpiryWarning(client: VaultClient, maxLifetimeMs: number): Promise<string | undefined> {
  let ttl: number;
  try {
    const response = await client.read('auth/token/lookup-self');
    ttl = Number(response.data?.ttl ?? 0);
  } catch {
    return undefined; // the reads just succeeded with it; nothing to add
  }
  if (!(ttl > 0) || ttl * 1000 >= maxLifetimeMs) return undefined;
  return `renew: the token given in 'token' expires in ${ttl} s, before 'agent-max-lifetime' (${Math.round(maxLifetimeMs / 1000)} s), and the agent does not renew a token it did not create: after that it cannot re-read secrets or renew leases; use a login method (approle, jwt...) so the agent renews its own token, give a longer-lived token, or lower 'agent-max-lifetime'`;
}

/** Batch tokens carry their type in the prefix: `hvb.` (Vault 1.10+), `b.` (OpenBao, older Vault). */
export function isBatchToken(token: string): boolean {
  return /^(hvb|b)\./.test(token);
}
