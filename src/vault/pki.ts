// Issues the `pki` input's certificates (POST <mount>/issue/<role>, concurrently) and lays each
// out as the files a TLS client expects: NAME.crt (the certificate), NAME.key (its private key),
// NAME.ca.pem (the issuing CA) and NAME.chain.pem (the CA chain, issuing CA first). The private
// key and the serial are masked the moment the answer arrives, and each certificate is handed to
// `onIssued` right then, so post can revoke it whatever fails afterwards. A POST that issues is
// never retried once Vault may have acted (transport.ts): a retry would issue a second certificate.
import { VaultError } from '../core/errors.ts';
import { mapLimit } from '../core/pool.ts';
import type { PkiEntry } from '../inputs/pki.ts';
import type { VaultClient } from './client.ts';
import type { Lease, Secret } from './fetch.ts';

/** A certificate as post needs it to revoke it: never its key; the serial only for a 0600 file. */
export interface IssuedCertificate {
  readonly name: string;
  readonly mount: string;
  /** Masked like a secret: post says which certificate by name, mount and expiry, never by serial. */
  readonly serial: string;
  /** When it expires (ISO time), from the answer's `expiration`. */
  readonly expires: string | undefined;
  /** Set when the role has `generate_lease: true`: the lease revokes the certificate with it. */
  readonly leaseId: string | undefined;
}

export interface PkiDeps {
  /** Called with each secret value (the key, the serial, the PEM files) as soon as it is known. */
  readonly onValue: (value: string) => void;
  /** Called once per certificate the moment Vault issued it, before any other answer is awaited. */
  readonly onIssued: (certificate: IssuedCertificate) => Promise<void>;
  readonly debug: (message: string) => void;
}

/** The four files of one entry: suffix, env suffix (vault-action's), output suffix (vault-action's), response field. */
export const PKI_FILES = [
  { suffix: '.crt', env: '_CERT', output: '_cert', field: 'certificate' },
  { suffix: '.key', env: '_KEY', output: '_key', field: 'private_key' },
  { suffix: '.ca.pem', env: '_CA', output: '_ca', field: 'issuing_ca' },
  { suffix: '.chain.pem', env: '_CA_CHAIN', output: '_ca_chain', field: 'ca_chain' },
] as const;

/** The env name base of an entry: upper-cased, anything an env var name cannot hold as `_`. */
export function pkiEnvBase(name: string): string {
  return name.toUpperCase().replace(/[^\p{L}\p{N}_]/gu, '_');
}

export async function issueCertificates(
  client: VaultClient,
  entries: readonly PkiEntry[],
  concurrency: number,
  deps: PkiDeps,
): Promise<{ secrets: Secret[]; certificates: IssuedCertificate[]; leases: Lease[] }> {
  const issued = await mapLimit(entries, concurrency, (entry) => issueOne(client, entry, deps));
  return {
    secrets: issued.flatMap((i) => i.secrets),
    certificates: issued.map((i) => i.certificate),
    leases: issued.flatMap((i) => (i.lease ? [i.lease] : [])),
  };
}

async function issueOne(
  client: VaultClient,
  entry: PkiEntry,
  deps: PkiDeps,
): Promise<{ secrets: Secret[]; certificate: IssuedCertificate; lease: Lease | undefined }> {
  let answer;
  try {
    answer = await client.write(entry.path, { ...entry.body });
  } catch (error) {
    if (error instanceof VaultError && error.status === 403) {
      throw new VaultError(
        error.path,
        `pki line ${entry.line}: ${error.message}: grant 'update' on '${entry.path}' in a policy of the token (or of the login role)`,
        error.status,
        { cause: error },
      );
    }
    if (error instanceof VaultError)
      throw new VaultError(error.path, `pki line ${entry.line}: ${error.message}`, error.status, { cause: error });
    throw error;
  }
  const data = answer?.data ?? {};
  const key = data.private_key;
  const serial = data.serial_number;
  // The key first: nothing may print it, an error about this very answer included.
  if (typeof key === 'string') deps.onValue(key);
  if (typeof serial === 'string') for (const form of serialForms(serial)) deps.onValue(form);
  const expiration = typeof data.expiration === 'number' ? new Date(data.expiration * 1000).toISOString() : undefined;
  const leaseId = typeof answer?.lease_id === 'string' && answer.lease_id !== '' ? answer.lease_id : undefined;
  if (typeof serial === 'string' && serial !== '') {
    await deps.onIssued({ name: entry.name, mount: entry.mount, serial, expires: expiration, leaseId });
  }
  const values = pemFiles(data);
  const missing = PKI_FILES.filter((f) => values[f.field] === undefined).map((f) => f.field);
  if (typeof serial !== 'string' || serial === '' || missing.length > 0) {
    throw new VaultError(
      entry.path,
      `pki line ${entry.line}: the answer of '${entry.path}' lacks ${[...(typeof serial === 'string' && serial !== '' ? [] : ['serial_number']), ...missing].join(', ')}; is it a PKI issue endpoint?`,
    );
  }
  for (const file of PKI_FILES) deps.onValue(values[file.field] ?? '');
  deps.debug(`issued a certificate at ${entry.path} for pki line ${entry.line}${expiration ? `, expiring ${expiration}` : ''}`);
  const env = pkiEnvBase(entry.name);
  const secrets: Secret[] = PKI_FILES.map((file) => ({
    name: `${entry.name}${file.suffix}`,
    envName: `${env}${file.env}`,
    outputName: `${entry.name}${file.output}`,
    pem: true,
    value: values[file.field] ?? '',
    source: {
      kind: 'vault',
      line: entry.line,
      requestKey: `pki ${entry.path} ${JSON.stringify(entry.body)}`,
      path: entry.path,
      readPath: entry.path,
      key: file.field,
      kvVersion: undefined,
      version: undefined,
      leaseId,
    },
  }));
  const lease = leaseId
    ? { leaseId, path: entry.path, duration: answer?.lease_duration, renewable: answer?.renewable === true }
    : undefined;
  return { secrets, certificate: { name: entry.name, mount: entry.mount, serial, expires: expiration, leaseId }, lease };
}

/**
 * The serial as Vault gives it (`3a:5f:...`, as `openssl x509 -text` prints it too) and as
 * `openssl x509 -serial` prints it (upper-case hex without colons), and that in lower case.
 */
export function serialForms(serial: string): string[] {
  const hex = serial.replaceAll(':', '');
  return [...new Set([serial, hex.toUpperCase(), hex.toLowerCase()])];
}

/**
 * The PEM text of each file, ending with a line break (so `cat NAME.crt NAME.chain.pem` is a valid
 * bundle): the chain is `ca_chain` joined, or the issuing CA alone when Vault gave no chain.
 */
export function pemFiles(data: Record<string, unknown>): Record<(typeof PKI_FILES)[number]['field'], string | undefined> {
  const pem = (value: unknown): string | undefined =>
    typeof value === 'string' && value.trim() !== '' ? `${value.replace(/\s+$/, '')}\n` : undefined;
  const chain = Array.isArray(data.ca_chain) ? data.ca_chain.filter((c): c is string => typeof c === 'string' && c.trim() !== '') : [];
  return {
    certificate: pem(data.certificate),
    private_key: pem(data.private_key),
    issuing_ca: pem(data.issuing_ca),
    ca_chain: chain.length > 0 ? pem(chain.map((c) => c.replace(/\s+$/, '')).join('\n')) : pem(data.issuing_ca),
  };
}
