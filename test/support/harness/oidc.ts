// A local stand-in for the runner's OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL).
//
// What the client side does (@actions/core src/oidc-utils.ts): GET ACTIONS_ID_TOKEN_REQUEST_URL,
// appending `&audience=<encodeURIComponent(aud)>` when an audience is given (so the URL already has a
// query), with `Authorization: Bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN`, and reads `value` from the JSON
// body; core.getIDToken then masks the token. Claims follow GitHub's documented OIDC token
// (docs: "About security hardening with OpenID Connect"): iss https://token.actions.githubusercontent.com,
// aud defaulting to the owner URL, sub `repo:OWNER/REPO:ref:REF` (or `:environment:NAME`), RS256.
// Extra: /.well-known/openid-configuration and /.well-known/jwks, so a Vault server can fetch keys (OpenBao's jwt auth is given the public key itself here).

import { generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ctx from './context.ts';

export const GITHUB_OIDC_ISSUER = 'https://token.actions.githubusercontent.com';
export const DEFAULT_AUDIENCE = `${ctx.SERVER_URL}/${ctx.OWNER}`;
export const TOKEN_LIFETIME_SECONDS = 300;

export interface OidcInfo {
  url: string; // ACTIONS_ID_TOKEN_REQUEST_URL (has `?api-version=2.0`)
  publicKeyPem: string;
  issuer: string;
  audienceSeen: string[]; // the `aud` of every issued token (requested, else the default)
  claims: Record<string, unknown>; // the claim template (overrides applied; per-token aud/jti/times aside)
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export function signJwt(claims: Record<string, unknown>, privateKey: KeyObject, kid: string): string {
  const input = `${b64url({ typ: 'JWT', alg: 'RS256', x5t: kid, kid })}.${b64url(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

export function defaultClaims(overrides: Record<string, unknown>): Record<string, unknown> {
  const environment = overrides['environment'];
  const sub =
    typeof environment === 'string' && environment !== ''
      ? `repo:${ctx.REPOSITORY}:environment:${environment}`
      : `repo:${ctx.REPOSITORY}:ref:${ctx.REF}`;
  return {
    sub,
    ref: ctx.REF,
    sha: ctx.SHA,
    repository: ctx.REPOSITORY,
    repository_owner: ctx.OWNER,
    repository_owner_id: '9919',
    repository_id: '123456789',
    repository_visibility: 'private',
    run_id: ctx.RUN_ID,
    run_number: ctx.RUN_NUMBER,
    run_attempt: ctx.RUN_ATTEMPT,
    actor: ctx.ACTOR,
    actor_id: ctx.ACTOR_ID,
    workflow: ctx.WORKFLOW,
    workflow_ref: ctx.WORKFLOW_REF,
    workflow_sha: ctx.SHA,
    job_workflow_ref: ctx.WORKFLOW_REF,
    job_workflow_sha: ctx.SHA,
    head_ref: '',
    base_ref: '',
    event_name: ctx.EVENT_NAME,
    ref_type: 'branch',
    ref_protected: 'false',
    runner_environment: 'github-hosted',
    iss: GITHUB_OIDC_ISSUER,
    ...overrides,
  };
}

export class OidcIssuer {
  readonly info: OidcInfo;
  readonly requestToken: string;
  readonly #server: Server;
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #kid: string;

  private constructor(server: Server, keys: { privateKey: KeyObject; publicKey: KeyObject }, overrides: Record<string, unknown>) {
    this.#server = server;
    this.#privateKey = keys.privateKey;
    this.#publicKey = keys.publicKey;
    this.#kid = randomBytes(20).toString('hex').toUpperCase();
    this.requestToken = randomBytes(32).toString('base64url');
    const port = (server.address() as AddressInfo).port;
    const planId = randomUUID();
    this.info = {
      url: `http://127.0.0.1:${port}/_apis/distributedtask/hubs/Actions/plans/${planId}/jobs/${randomUUID()}/idtoken?api-version=2.0`,
      publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      issuer: GITHUB_OIDC_ISSUER,
      audienceSeen: [],
      claims: defaultClaims(overrides),
    };
    server.on('request', (req, res) => this.#handle(req, res));
  }

  static async start(overrides: Record<string, unknown> = {}): Promise<OidcIssuer> {
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new OidcIssuer(server, keys, overrides);
  }

  /** Issue a token as the endpoint would (also usable directly by tests). */
  issue(audience?: string): string {
    const now = Math.floor(Date.now() / 1000);
    const template = this.info.claims;
    const aud = audience ?? (typeof template['aud'] === 'string' ? template['aud'] : DEFAULT_AUDIENCE);
    this.info.audienceSeen.push(aud);
    const claims: Record<string, unknown> = {
      jti: randomUUID(),
      nbf: now,
      iat: now,
      exp: now + TOKEN_LIFETIME_SECONDS,
      ...template,
      aud,
    };
    return signJwt(claims, this.#privateKey, this.#kid);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return json(405, { message: 'Method not allowed' });
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: GITHUB_OIDC_ISSUER,
        jwks_uri: `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/.well-known/jwks`,
        subject_types_supported: ['public', 'pairwise'],
        response_types_supported: ['id_token'],
        claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'repository', 'environment'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid'],
      });
    }
    if (url.pathname === '/.well-known/jwks') {
      const jwk = this.#publicKey.export({ format: 'jwk' });
      return json(200, { keys: [{ ...jwk, kid: this.#kid, x5t: this.#kid, alg: 'RS256', use: 'sig' }] });
    }
    if (!url.pathname.endsWith('/idtoken')) return json(404, { message: 'Not found' });
    if (req.headers.authorization !== `Bearer ${this.requestToken}`) {
      return json(401, { message: 'Unauthorized: bad or missing bearer token' });
    }
    const audience = url.searchParams.get('audience');
    json(200, { value: this.issue(audience === null || audience === '' ? undefined : audience) });
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
