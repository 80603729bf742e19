// signJwt: a compact JWS that node:crypto's verify accepts with the public key, RS256 for RSA and
// ES256 (r || s, 64 bytes) for EC P-256, vault-action's claims, exp = iat + jwt-ttl, aud only when
// given, and an encrypted key opened with its password.
import { generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { JwtSigning } from '../../../src/inputs/main.ts';
import { signJwt } from '../../../src/vault/jwt-sign.ts';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const CLAIMS = { repository: 'org/repo', ref: 'refs/heads/main', actor: 'octocat' };

function parts(jwt: string): { header: unknown; payload: Record<string, unknown>; input: Buffer; signature: Buffer } {
  const [h, p, s] = jwt.split('.') as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>,
    input: Buffer.from(`${h}.${p}`),
    signature: Buffer.from(s, 'base64url'),
  };
}

function signing(privateKey: string, algorithm: JwtSigning['algorithm'], passphrase?: string): JwtSigning {
  return { privateKey, passphrase, algorithm, ttlSeconds: 600, claims: CLAIMS };
}

describe('signJwt', () => {
  it('RS256 with an RSA key: verifies with the public key, carries vault-action claims', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwt = signJwt(signing(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 'RS256'), undefined, NOW);
    const { header, payload, input, signature } = parts(jwt);
    expect(header).toEqual({ alg: 'RS256', typ: 'JWT' });
    const iat = Math.floor(NOW / 1000);
    expect(payload).toEqual({ iss: 'vault-action', iat, nbf: iat, exp: iat + 600, ...CLAIMS });
    expect(verify('sha256', input, publicKey, signature)).toBe(true);
    expect(verify('sha256', Buffer.from(`${input.toString()}x`), publicKey, signature)).toBe(false);
  });

  it('ES256 with an EC P-256 key: a 64-byte r || s signature, and aud from jwt-audience', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwt = signJwt(signing(privateKey.export({ type: 'sec1', format: 'pem' }) as string, 'ES256'), 'vault', NOW);
    const { header, payload, input, signature } = parts(jwt);
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT' });
    expect(payload.aud).toBe('vault');
    expect(signature).toHaveLength(64);
    expect(verify('sha256', input, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
  });

  it('opens an encrypted key with its password', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'key pass' }) as string;
    const { input, signature } = parts(signJwt(signing(pem, 'RS256', 'key pass'), undefined, NOW));
    expect(verify('sha256', input, publicKey, signature)).toBe(true);
  });
});
