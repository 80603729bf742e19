// Auth methods (approle, jwt, kubernetes, userpass, ldap, cert, custom plugins) and the token
// "-self" endpoints.
import { createPublicKey, verify as cryptoVerify, constants as cryptoConstants, type KeyObject } from 'node:crypto';
import { authorityKeyId, type CertRole, commonName, hexColons, serialDecimal, subjectKeyId, verifyClientCert } from './cert.ts';
import {
  badRequest,
  type Ctx,
  errorReply,
  noContent,
  ok,
  permissionDenied,
  type Reply,
  unsupportedOperation,
  unsupportedPath,
} from './reply.ts';
import type { TokenEntry, TokenStore } from './tokens.ts';
import { base62, isRecord, parseDuration, trimSlashes, uuid } from './util.ts';

export type AuthType = 'approle' | 'jwt' | 'kubernetes' | 'userpass' | 'ldap' | 'cert' | 'custom';

export interface AppRole {
  roleId: string;
  secretIds: Set<string>;
  policies: string[];
  ttl?: number | undefined;
}

export interface JwtRole {
  key: KeyObject;
  boundAudiences?: string[] | undefined;
  boundClaims?: Record<string, string> | undefined;
  boundIssuer?: string | undefined;
  userClaim: string;
  policies: string[];
  ttl?: number | undefined;
}

export interface K8sRole {
  jwt: string;
  policies: string[];
  ttl?: number | undefined;
}

export interface User {
  password: string;
  policies: string[];
}

/**
 * A login method the double does not model (a plugin, aws, gcp, oci, ...): `check` decides on the
 * JSON body of `POST auth/<mount>/login[/...]`. true → token; false → 403 permission denied (what
 * backends return as logical.ErrPermissionDenied); a string → 400 with that error text.
 */
export interface CustomLogin {
  check: (body: Record<string, unknown>, path: string) => boolean | string;
  policies: string[];
  ttl?: number | undefined;
}

export interface AuthMount {
  path: string;
  type: AuthType;
  accessor: string;
  uuid: string;
  approles: Map<string, AppRole>;
  jwtRoles: Map<string, JwtRole>;
  k8sRoles: Map<string, K8sRole>;
  users: Map<string, User>;
  certRoles: Map<string, CertRole>;
  custom: CustomLogin | undefined;
}

/**
 * Auth mounts are one table for the whole double (not per namespace): a login sent with
 * X-Vault-Namespace reaches the same method, and the token it returns belongs to that namespace.
 */
export class AuthMethods {
  readonly mounts = new Map<string, AuthMount>();

  ensure(path: string, type: AuthType): AuthMount {
    const p = trimSlashes(path);
    const existing = this.mounts.get(p);
    if (existing) {
      if (existing.type !== type) throw new Error(`auth path "${p}/" is already in use by ${existing.type}`);
      return existing;
    }
    const m: AuthMount = {
      path: p,
      type,
      accessor: `auth_${type}_${base62(8).toLowerCase()}`,
      uuid: uuid(),
      approles: new Map(),
      jwtRoles: new Map(),
      k8sRoles: new Map(),
      users: new Map(),
      certRoles: new Map(),
      custom: undefined,
    };
    this.mounts.set(p, m);
    return m;
  }

  /** For a path "auth/<mount>/<rest>", the longest registered mount. */
  match(path: string): { mount: AuthMount; rest: string } | undefined {
    if (!path.startsWith('auth/')) return undefined;
    const sub = path.slice('auth/'.length);
    let best: AuthMount | undefined;
    for (const m of this.mounts.values()) {
      if ((sub === m.path || sub.startsWith(`${m.path}/`)) && (!best || m.path.length > best.path.length)) best = m;
    }
    if (!best) return undefined;
    return { mount: best, rest: sub === best.path ? '' : sub.slice(best.path.length + 1) };
  }
}

export function isLoginPath(rest: string): boolean {
  return rest === 'login' || rest.startsWith('login/');
}

interface Grant {
  policies: string[];
  ttl?: number | undefined;
  meta: Record<string, string>;
  displayName: string;
}

function str(body: Record<string, unknown>, k: string): string {
  const v = body[k];
  return typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '';
}

export function handleLogin(ctx: Ctx, m: AuthMount, rest: string, tokens: TokenStore): Reply {
  if (ctx.op !== 'update') return unsupportedOperation();
  let result: Grant | Reply;
  switch (m.type) {
    case 'approle':
      result = rest === 'login' ? approleLogin(ctx, m) : unsupportedPath();
      break;
    case 'jwt':
      result = rest === 'login' ? jwtLogin(ctx, m) : unsupportedPath();
      break;
    case 'kubernetes':
      result = rest === 'login' ? k8sLogin(ctx, m) : unsupportedPath();
      break;
    case 'userpass':
    case 'ldap':
      result = rest.startsWith('login/') ? passwordLogin(ctx, m, rest.slice('login/'.length)) : unsupportedPath();
      break;
    case 'cert':
      result = rest === 'login' ? certLogin(ctx, m) : unsupportedPath();
      break;
    case 'custom':
      result = customLogin(ctx, m, rest);
      break;
  }
  if ('status' in result) return result;
  const entry = tokens.issue({
    policies: result.policies,
    ttl: result.ttl,
    ns: ctx.ns,
    path: ctx.path,
    displayName: result.displayName,
    meta: result.meta,
    orphan: true,
    mountType: m.type,
  });
  // Login answers carry the token in "auth"; the top-level lease fields stay empty.
  return ok(ctx, { auth: tokens.authBlock(entry), mount_type: m.type, data: m.type === 'ldap' ? {} : null });
}

// https://developer.hashicorp.com/vault/api-docs/auth/cert#login-with-tls-certificate-method
// The certificate comes from the TLS connection, not the body; `name` (optional) restricts the
// check to one trusted certificate role. Metadata as builtin/credential/cert/path_login.go sets it.
function certLogin(ctx: Ctx, m: AuthMount): Grant | Reply {
  const name = str(ctx.body, 'name');
  const roles = name ? [m.certRoles.get(name)].filter((r) => r !== undefined) : [...m.certRoles.values()];
  const role = verifyClientCert(ctx.tls, roles);
  if ('status' in role) return role;
  const leaf = ctx.tls?.peerCertificates[0];
  if (!leaf) return errorReply(400, 'no client certificate found');
  return {
    policies: role.policies,
    ttl: role.ttl,
    meta: {
      authority_key_id: hexColons(authorityKeyId(leaf)),
      cert_name: role.name,
      common_name: commonName(leaf),
      serial_number: serialDecimal(leaf),
      subject_key_id: hexColons(subjectKeyId(leaf)),
    },
    displayName: `${m.path}-${role.displayName}`,
  };
}

function customLogin(ctx: Ctx, m: AuthMount, rest: string): Grant | Reply {
  if (!m.custom || !isLoginPath(rest)) return unsupportedPath();
  const verdict = m.custom.check(structuredClone(ctx.body), `auth/${m.path}/${rest}`);
  if (typeof verdict === 'string') return badRequest(verdict);
  if (!verdict) return permissionDenied();
  return { policies: m.custom.policies, ttl: m.custom.ttl, meta: {}, displayName: m.path };
}

// https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle
// Errors per builtin/credential/approle/path_login.go.
function approleLogin(ctx: Ctx, m: AuthMount): Grant | Reply {
  const roleId = str(ctx.body, 'role_id');
  if (!roleId) return badRequest('missing role_id');
  const found = [...m.approles.entries()].find(([, r]) => r.roleId === roleId);
  if (!found) return badRequest('invalid role or secret ID');
  const [roleName, role] = found;
  const secretId = str(ctx.body, 'secret_id');
  if (!secretId) return badRequest('missing secret_id');
  if (!role.secretIds.has(secretId)) return badRequest('invalid role or secret ID');
  return { policies: role.policies, ttl: role.ttl, meta: { role_name: roleName }, displayName: m.path };
}

function b64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

const ALGS: Record<string, { hash: string; pss?: boolean; ec?: boolean }> = {
  RS256: { hash: 'sha256' },
  RS384: { hash: 'sha384' },
  RS512: { hash: 'sha512' },
  PS256: { hash: 'sha256', pss: true },
  ES256: { hash: 'sha256', ec: true },
  ES384: { hash: 'sha384', ec: true },
};

function verifySignature(token: string, key: KeyObject): Record<string, unknown> | string {
  const parts = token.split('.');
  if (parts.length !== 3) return 'error parsing token: go-jose/go-jose: compact JWS format must have three parts';
  const [h = '', p = '', s = ''] = parts;
  let header: unknown;
  let payload: unknown;
  try {
    header = b64urlJson(h);
    payload = b64urlJson(p);
  } catch (e) {
    return `error parsing token: ${(e as Error).message}`;
  }
  if (!isRecord(header) || !isRecord(payload)) return 'error parsing token: invalid JWT';
  const alg = ALGS[String(header['alg'])];
  let valid = false;
  if (alg) {
    try {
      const keyOpt = alg.ec
        ? { key, dsaEncoding: 'ieee-p1363' as const }
        : alg.pss
          ? { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING }
          : { key, padding: cryptoConstants.RSA_PKCS1_PADDING };
      valid = cryptoVerify(alg.hash, Buffer.from(`${h}.${p}`), keyOpt, Buffer.from(s, 'base64url'));
    } catch {
      valid = false;
    }
  }
  if (!valid) return 'no known key successfully validated the token signature';
  return payload;
}

function numClaim(c: Record<string, unknown>, k: string): number {
  const v = c[k];
  return typeof v === 'number' ? v : 0;
}

/** Claim lookup by name or JSON pointer ("/a/b"), as the jwt plugin's getClaim does. */
function getClaim(claims: Record<string, unknown>, name: string): unknown {
  if (!name.startsWith('/')) return claims[name];
  let cur: unknown = claims;
  for (const seg of name.slice(1).split('/')) {
    if (!isRecord(cur)) return undefined;
    cur = cur[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

// https://developer.hashicorp.com/vault/api-docs/auth/jwt#jwt-login
// https://developer.hashicorp.com/vault/docs/auth/jwt#bound-claims
// Checks as vault-plugin-auth-jwt path_login.go does for static keys: signature, then exp/nbf/iat
// with the default 60 s clock-skew leeway (a missing exp is iat/nbf + 150 s), iss, aud, bound claims.
function jwtLogin(ctx: Ctx, m: AuthMount): Grant | Reply {
  const roleName = str(ctx.body, 'role').toLowerCase();
  if (!roleName) return badRequest('missing role');
  const role = m.jwtRoles.get(roleName);
  if (!role) return badRequest(`role "${roleName}" could not be found`);
  const token = str(ctx.body, 'jwt');
  if (!token) return badRequest('missing token');
  const claims = verifySignature(token, role.key);
  if (typeof claims === 'string') return badRequest(claims);

  const leeway = 60;
  const defaultLeeway = 150;
  const iat = numClaim(claims, 'iat');
  let exp = numClaim(claims, 'exp');
  let nbf = numClaim(claims, 'nbf');
  if (iat === 0 && exp === 0 && nbf === 0) return badRequest('no issue time, notbefore, or expiration time encoded in token');
  if (exp === 0) exp = Math.max(iat, nbf) + defaultLeeway;
  if (nbf === 0) nbf = iat !== 0 ? iat : exp - defaultLeeway;
  const aud = claims['aud'];
  const audList = Array.isArray(aud) ? aud.map(String) : typeof aud === 'string' ? [aud] : [];
  if (audList.length > 0 && !(role.boundAudiences && role.boundAudiences.length > 0)) {
    return badRequest('audience claim found in JWT but no audiences bound to the role');
  }
  const now = Date.now() / 1000;
  const jose = 'go-jose/go-jose/jwt: validation';
  if (role.boundIssuer && claims['iss'] !== role.boundIssuer) {
    return badRequest(`error validating claims: ${jose} failed, invalid issuer claim (iss)`);
  }
  if (now + leeway < nbf) return badRequest(`error validating claims: ${jose} failed, token not valid yet (nbf)`);
  if (now - leeway > exp) return badRequest(`error validating claims: ${jose} failed, token is expired (exp)`);
  if (iat !== 0 && now + leeway < iat) {
    return badRequest(`error validating claims: ${jose} field, token issued in the future (iat)`);
  }
  if (role.boundAudiences && role.boundAudiences.length > 0 && !role.boundAudiences.some((a) => audList.includes(a))) {
    return badRequest('error validating claims: aud claim does not match any bound audience');
  }
  for (const [k, want] of Object.entries(role.boundClaims ?? {})) {
    const got = getClaim(claims, k);
    if (got === undefined) return badRequest(`error validating claims: claim "${k}" is missing`);
    const values = Array.isArray(got) ? got : [got];
    if (!values.some((v) => String(v) === want)) {
      return badRequest(`error validating claims: claim "${k}" does not match any associated bound claim values`);
    }
  }
  const user = getClaim(claims, role.userClaim);
  if (user === undefined) return badRequest(`claim "${role.userClaim}" not found in token`);
  if (typeof user !== 'string') return badRequest(`claim "${role.userClaim}" could not be converted to string`);
  return { policies: role.policies, ttl: role.ttl, meta: { role: roleName }, displayName: `${m.path}-${user}` };
}

// https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#login
// The double stands in for the TokenReview call: only the JWT registered for the role passes;
// any other is refused like a failed review (403 permission denied).
function k8sLogin(ctx: Ctx, m: AuthMount): Grant | Reply {
  const roleName = str(ctx.body, 'role');
  if (!roleName) return badRequest('missing role');
  // Taken as sent (the plugin does not trim it): a token read from a file with its trailing
  // newline fails to parse as a JWT there, so it must not pass here either.
  const jwt = typeof ctx.body['jwt'] === 'string' ? ctx.body['jwt'] : '';
  if (!jwt) return badRequest('missing jwt');
  const role = m.k8sRoles.get(roleName);
  if (!role) return badRequest(`invalid role name "${roleName}"`);
  if (jwt !== role.jwt) return permissionDenied();
  let claims: Record<string, unknown> = {};
  try {
    const c = b64urlJson(jwt.split('.')[1] ?? '');
    if (isRecord(c)) claims = c;
  } catch {
    // opaque test token: metadata stays empty
  }
  const k8s = isRecord(claims['kubernetes.io']) ? claims['kubernetes.io'] : {};
  const sa = isRecord(k8s['serviceaccount']) ? k8s['serviceaccount'] : {};
  const saName = String(sa['name'] ?? claims['kubernetes.io/serviceaccount/service-account.name'] ?? '');
  const saNs = String(k8s['namespace'] ?? claims['kubernetes.io/serviceaccount/namespace'] ?? '');
  const saUid = String(sa['uid'] ?? claims['kubernetes.io/serviceaccount/service-account.uid'] ?? '');
  return {
    policies: role.policies,
    ttl: role.ttl,
    meta: {
      role: roleName,
      service_account_name: saName,
      service_account_namespace: saNs,
      service_account_secret_name: '',
      service_account_uid: saUid,
    },
    displayName: `${m.path}-${saNs}-${saName}`,
  };
}

// https://developer.hashicorp.com/vault/api-docs/auth/userpass#login
// https://developer.hashicorp.com/vault/api-docs/auth/ldap#login-with-ldap-user
function passwordLogin(ctx: Ctx, m: AuthMount, username: string): Grant | Reply {
  const password = typeof ctx.body['password'] === 'string' ? ctx.body['password'] : '';
  const key = username.toLowerCase();
  const user = m.users.get(key);
  if (m.type === 'userpass') {
    // builtin/credential/userpass/path_login.go returns a plain error here → 500.
    if (!password) return errorReply(500, 'missing password');
    if (!user || user.password !== password) return badRequest('invalid username or password');
    return { policies: user.policies, meta: { username: key }, displayName: `${m.path}-${key}` };
  }
  if (!password) return badRequest('password cannot be of zero length when passwordless binds are being denied');
  if (!user || user.password !== password) return badRequest('ldap operation failed: failed to bind as user');
  return { policies: user.policies, meta: { username }, displayName: `${m.path}-${username}` };
}

export function publicKey(pem: string): KeyObject {
  return createPublicKey(pem);
}

// ---- auth/token/*-self ------------------------------------------------------------------

export function handleTokenSelf(ctx: Ctx, entry: TokenEntry, tokens: TokenStore): Reply {
  switch (ctx.path) {
    // https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self
    case 'auth/token/lookup-self':
      if (ctx.op !== 'read' && ctx.op !== 'update') return unsupportedOperation();
      return ok(ctx, { data: tokens.lookupData(entry), mount_type: 'token' });
    // https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token-self
    case 'auth/token/renew-self': {
      if (ctx.op !== 'update') return unsupportedOperation();
      const raw = ctx.body['increment'];
      const inc = raw === undefined ? null : parseDuration(raw);
      if (raw !== undefined && inc === null) return badRequest(`error converting input ${String(raw)} for field "increment"`);
      const r = tokens.renewToken(entry, inc);
      if (!r.ok) return badRequest(r.error);
      return ok(ctx, { auth: tokens.authBlock(entry), warnings: r.warnings, mount_type: 'token' });
    }
    // https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-self
    case 'auth/token/revoke-self':
      if (ctx.op !== 'update') return unsupportedOperation();
      tokens.revoke(entry.id);
      return noContent();
    default:
      return unsupportedPath();
  }
}
