// TLS certificate auth method: trusted certificates ("roles") and the check of the client
// certificate presented on the connection.
// https://developer.hashicorp.com/vault/api-docs/auth/cert
// https://developer.hashicorp.com/vault/docs/auth/cert
// Logic and error texts per builtin/credential/cert/path_login.go (verifyCredentials,
// validateConnState): the x509 verification runs first (an expired certificate or one without the
// clientAuth extended key usage is a Go error → 500), then a non-CA trusted certificate is matched by
// serial number + authority key id, then a chain to a trusted CA, then the role's constraints.
import { X509Certificate } from 'node:crypto';
import { errorReply, type Reply } from './reply.ts';

export interface CertRole {
  name: string;
  /** The PEM certificate(s) of the role: a CA (any client cert it issued may log in) or a leaf. */
  certificates: X509Certificate[];
  policies: string[];
  ttl?: number | undefined;
  /** allowed_common_names: globs ('*' only), any one must match the client cert's CN. */
  allowedCommonNames?: string[] | undefined;
  displayName: string;
}

/** What the double knows about the TLS connection a request came on. */
export interface TlsInfo {
  /** The client's certificate first, then the chain it sent; empty when it presented none. */
  peerCertificates: X509Certificate[];
}

export function parsePemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN (?:TRUSTED )?CERTIFICATE-----[\s\S]+?-----END (?:TRUSTED )?CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b.replace(/(BEGIN|END) TRUSTED CERTIFICATE/g, '$1 CERTIFICATE')));
}

// ---- a little DER, for the key identifiers X509Certificate does not expose ------------------

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function tlv(buf: Buffer, off: number): Tlv | undefined {
  if (off + 2 > buf.length) return undefined;
  const tag = buf[off] ?? 0;
  let len = buf[off + 1] ?? 0;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > buf.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] ?? 0);
    start += n;
  }
  const end = start + len;
  return end > buf.length ? undefined : { tag, start, end };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = parent.start; off < parent.end;) {
    const t = tlv(buf, off);
    if (!t) break;
    out.push(t);
    off = t.end;
  }
  return out;
}

/** extnValue (the DER inside the OCTET STRING) of the extension with this OID body, e.g. 55 1d 0e. */
function extension(cert: X509Certificate, oid: readonly number[]): Buffer | undefined {
  const der = cert.raw;
  const top = tlv(der, 0);
  const tbs = top && children(der, top)[0];
  if (!tbs) return undefined;
  const explicit = children(der, tbs).find((t) => t.tag === 0xa3);
  const seq = explicit && children(der, explicit)[0];
  if (!seq) return undefined;
  for (const ext of children(der, seq)) {
    const parts = children(der, ext);
    const id = parts[0];
    const value = parts.at(-1);
    if (!id || !value || id.tag !== 0x06 || value.tag !== 0x04) continue;
    const body = der.subarray(id.start, id.end);
    if (body.length === oid.length && oid.every((b, i) => body[i] === b)) return der.subarray(value.start, value.end);
  }
  return undefined;
}

/** subjectKeyIdentifier (2.5.29.14): OCTET STRING. */
export function subjectKeyId(cert: X509Certificate): Buffer {
  const v = extension(cert, [0x55, 0x1d, 0x0e]);
  const inner = v && tlv(v, 0);
  return v && inner && inner.tag === 0x04 ? Buffer.from(v.subarray(inner.start, inner.end)) : Buffer.alloc(0);
}

/** authorityKeyIdentifier (2.5.29.35): SEQUENCE { [0] keyIdentifier, ... }. */
export function authorityKeyId(cert: X509Certificate): Buffer {
  const v = extension(cert, [0x55, 0x1d, 0x23]);
  const seq = v && tlv(v, 0);
  const keyId = v && seq ? children(v, seq).find((t) => t.tag === 0x80) : undefined;
  return v && keyId ? Buffer.from(v.subarray(keyId.start, keyId.end)) : Buffer.alloc(0);
}

/** certutil.GetHexFormatted(b, ":"): lowercase hex pairs joined by colons. */
export function hexColons(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function commonName(cert: X509Certificate): string {
  const line = cert.subject.split('\n').find((l) => l.startsWith('CN='));
  return line ? line.slice(3) : '';
}

/** Go's big.Int String() of the serial: decimal. */
export function serialDecimal(cert: X509Certificate): string {
  return BigInt(`0x${cert.serialNumber}`).toString(10);
}

// ---- verification ------------------------------------------------------------------------------

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** A chain leaf → … → anchor through the intermediates the client sent, or null. */
function chainTo(cert: X509Certificate, anchor: X509Certificate, pool: X509Certificate[], depth = 5): X509Certificate[] | null {
  if (cert.fingerprint256 === anchor.fingerprint256) return [cert];
  if (issuedBy(cert, anchor)) return [cert, anchor];
  if (depth === 0) return null;
  for (const inter of pool) {
    if (!inter.ca || inter.fingerprint256 === cert.fingerprint256 || !issuedBy(cert, inter)) continue;
    const rest = chainTo(
      inter,
      anchor,
      pool.filter((p) => p !== inter),
      depth - 1,
    );
    if (rest) return [cert, ...rest];
  }
  return null;
}

/** Go x509 with KeyUsages [ClientAuth]: every cert of the chain without EKUs, or with clientAuth/any. */
function clientAuthOk(chain: X509Certificate[]): boolean {
  return chain.every((c) => {
    const eku = c.keyUsage as string[] | undefined;
    return !eku || eku.length === 0 || eku.includes(CLIENT_AUTH) || eku.includes(ANY_EKU);
  });
}

/** ryanuber/go-glob: '*' matches any run of characters, nothing else is special. */
export function glob(pattern: string, s: string): boolean {
  if (pattern === '*') return true;
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === s;
  const first = parts[0] ?? '';
  const last = parts.at(-1) ?? '';
  if (!s.startsWith(first)) return false;
  let pos = first.length;
  for (const mid of parts.slice(1, -1)) {
    const i = s.indexOf(mid, pos);
    if (i < 0) return false;
    pos = i + mid.length;
  }
  return s.length - last.length >= pos && s.endsWith(last);
}

function matchesConstraints(leaf: X509Certificate, role: CertRole): boolean {
  const cns = role.allowedCommonNames ?? [];
  return cns.length === 0 || cns.some((p) => glob(p, commonName(leaf)));
}

/** Go's time.RFC3339 in UTC. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The role the connection's client certificate authenticates against, or Vault's error. */
export function verifyClientCert(tls: TlsInfo | undefined, roles: CertRole[], now = new Date()): CertRole | Reply {
  if (!tls) return errorReply(400, 'tls connection required');
  const [leaf, ...sent] = tls.peerCertificates;
  if (!leaf) return errorReply(400, 'client certificate must be supplied');
  const failed = (msg: string): Reply => errorReply(500, `failed to verify client's certificate: ${msg}`);

  // validateConnState: x509.Verify checks the leaf's validity period before anything else.
  if (now < leaf.validFromDate) {
    return failed(
      `x509: certificate has expired or is not yet valid: current time ${rfc3339(now)} is before ${rfc3339(leaf.validFromDate)}`,
    );
  }
  if (now > leaf.validToDate) {
    return failed(`x509: certificate has expired or is not yet valid: current time ${rfc3339(now)} is after ${rfc3339(leaf.validToDate)}`);
  }
  const caRoles = roles.filter((r) => r.certificates[0]?.ca === true);
  const leafRoles = roles.filter((r) => r.certificates[0] !== undefined && !r.certificates[0].ca);
  const chained: Array<{ role: CertRole; chain: X509Certificate[] }> = [];
  for (const role of caRoles) {
    for (const anchor of role.certificates) {
      const chain = chainTo(leaf, anchor, sent);
      if (chain) {
        chained.push({ role, chain });
        break;
      }
    }
  }
  if (chained.length > 0 && !chained.some((c) => clientAuthOk(c.chain))) {
    return failed('x509: certificate specifies an incompatible key usage');
  }

  // A trusted non-CA certificate: the same serial number and authority key id.
  for (const role of leafRoles) {
    const t = role.certificates[0];
    if (t && t.serialNumber === leaf.serialNumber && authorityKeyId(t).equals(authorityKeyId(leaf)) && matchesConstraints(leaf, role)) {
      return role;
    }
  }
  if (chained.length === 0) return errorReply(400, 'invalid certificate or no client certificate supplied');
  const match = chained.find((c) => clientAuthOk(c.chain) && matchesConstraints(leaf, c.role));
  return match ? match.role : errorReply(400, 'no chain matching all constraints could be found for this login certificate');
}
