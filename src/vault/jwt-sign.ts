// A JWT the action signs itself from `jwt-private-key`, for Vault's jwt auth method with the
// matching public key in `jwt_validation_pubkeys`: vault-action's jwtPrivateKey, with its claims
// (iss "vault-action", iat, nbf, exp = now + jwt-ttl, and the job's event, workflow, sha, actor,
// repository and ref), so a role written for vault-action's JWT accepts this one. node:crypto signs:
// RS256 (RSASSA-PKCS1-v1_5, SHA-256) for an RSA key, ES256 (ECDSA P-256, SHA-256) for an EC key.
import { createPrivateKey, sign } from 'node:crypto';
import type { JwtSigning } from '../inputs/main.ts';

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * The compact JWS. `audience` (`jwt-audience`) becomes the `aud` claim when given: vault-action
 * sends none, and a role with `bound_audiences` refuses a token without a matching one.
 */
export function signJwt(signing: JwtSigning, audience: string | undefined, nowMs: number): string {
  const now = Math.floor(nowMs / 1000);
  const header = { alg: signing.algorithm, typ: 'JWT' };
  const payload = {
    iss: 'vault-action',
    ...(audience !== undefined ? { aud: audience } : {}),
    iat: now,
    nbf: now,
    exp: now + signing.ttlSeconds,
    ...signing.claims,
  };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const key = createPrivateKey(
    signing.passphrase !== undefined ? { key: signing.privateKey, passphrase: signing.passphrase } : signing.privateKey,
  );
  // JWS wants ECDSA's signature as r || s (IEEE P1363), not the DER node:crypto gives by default.
  const signature = sign('sha256', Buffer.from(input), signing.algorithm === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${base64url(signature)}`;
}
