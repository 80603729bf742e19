// A throwaway PKI for TLS tests, made with the openssl CLI in a temp dir: a CA; a server certificate
// it signed (serverAuth, SANs for 127.0.0.1 and localhost by default); a client certificate it signed
// (clientAuth, for mTLS and Vault's cert auth method); and an unrelated CA for mismatch tests.
// Keys are ECDSA P-256 by default (the set takes ~50 ms, well under 1 s even on a busy machine) or
// RSA 2048 with keyType 'rsa' (~0.3 s idle, more under load: four RSA key generations). Valid for
// two days (the CAs three) from the moment they are made. Independent openssl runs go in parallel.
//
// Every file stays in `dir` (keys 0600); cleanup() removes it, and an exit hook removes the dirs of
// this process that were not cleaned up.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePackages } from './install.ts';

export interface Pki {
  /** Temp dir with ca.pem, ca.key, server.pem, server.key, client.pem, client.key, other-ca.pem, other-ca.key. */
  dir: string;
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  clientCertPem: string;
  clientKeyPem: string;
  /** A CA that signed none of the above. */
  otherCaPem: string;
  cleanup(): Promise<void>;
}

export interface PkiOptions {
  /** Subject alternative names of the server certificate: IP addresses or DNS names. Default ['127.0.0.1', 'localhost']. */
  serverNames?: string[];
  /** Common name of the client certificate. Default 'pipeline-secrets-ci'. */
  clientCn?: string;
  /** 'ec' (P-256, default) or 'rsa' (2048 bits). */
  keyType?: 'ec' | 'rsa';
}

const OPENSSL = '/usr/bin/openssl';

const liveDirs = new Set<string>();
let exitHook = false;

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // OPENSSL_CONF: never read the system's openssl.cnf (its defaults add extensions of their own)
    const env = { PATH: '/usr/bin:/bin', OPENSSL_CONF: join(cwd, 'openssl.cnf') };
    execFile(OPENSSL, args, { cwd, env, timeout: 20_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** Config value: no characters openssl.cnf would interpret. */
function safe(s: string, what: string): string {
  if (!/^[A-Za-z0-9.:_*-]+$/.test(s)) throw new Error(`${what} ${JSON.stringify(s)}: only letters, digits and . : _ * - are allowed`);
  return s;
}

function config(serverNames: readonly string[], keyType: 'ec' | 'rsa'): string {
  // keyEncipherment only means something for RSA keys
  const leafUsage = keyType === 'rsa' ? 'critical,digitalSignature,keyEncipherment' : 'critical,digitalSignature';
  const sans = serverNames.map((n) => (isIP(n) ? `IP:${safe(n, 'server name')}` : `DNS:${safe(n, 'server name')}`)).join(',');
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    'CN = unused',
    '[ca_ext]',
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    '[server_ext]',
    'basicConstraints = critical,CA:FALSE',
    `keyUsage = ${leafUsage}`,
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${sans}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid,issuer',
    '[client_ext]',
    'basicConstraints = critical,CA:FALSE',
    `keyUsage = ${leafUsage}`,
    'extendedKeyUsage = clientAuth',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid,issuer',
    '',
  ].join('\n');
}

/** A random positive serial number (60 bits). */
function serial(): string {
  return `0x1${randomBytes(8).toString('hex').slice(1)}`;
}

export async function makePki(opts: PkiOptions = {}): Promise<Pki> {
  await ensurePackages(['openssl']);
  const serverNames = opts.serverNames ?? ['127.0.0.1', 'localhost'];
  if (serverNames.length === 0) throw new Error('serverNames must not be empty');
  const clientCn = safe(opts.clientCn ?? 'pipeline-secrets-ci', 'clientCn');
  const dir = mkdtempSync(join(tmpdir(), 'ps-pki-'));
  liveDirs.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  const cleanup = (): Promise<void> => {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    return Promise.resolve();
  };
  try {
    const keyType = opts.keyType ?? 'ec';
    writeFileSync(join(dir, 'openssl.cnf'), config(serverNames, keyType));
    const newKey =
      keyType === 'rsa' ? ['-newkey', 'rsa:2048', '-nodes'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const selfSigned = (name: string, cn: string): Promise<void> =>
      // prettier-ignore
      openssl(['req', '-x509', '-config', 'openssl.cnf', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.pem`,
        '-days', '3', '-subj', `/CN=${cn}`, '-extensions', 'ca_ext', '-set_serial', serial()], dir);
    const request = (name: string, cn: string): Promise<void> =>
      // prettier-ignore
      openssl(['req', '-new', '-config', 'openssl.cnf', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`,
        '-subj', `/CN=${cn}`], dir);
    const sign = (name: string, ext: string): Promise<void> =>
      // prettier-ignore
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial(),
        '-days', '2', '-extfile', 'openssl.cnf', '-extensions', ext, '-out', `${name}.pem`], dir);

    await Promise.all([
      selfSigned('ca', 'pipeline-secrets test CA'),
      selfSigned('other-ca', 'unrelated test CA'),
      request('server', serverNames[0] ?? 'localhost'),
      request('client', clientCn),
    ]);
    await Promise.all([sign('server', 'server_ext'), sign('client', 'client_ext')]);
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
    for (const f of ['server.csr', 'client.csr']) rmSync(join(dir, f), { force: true });
    for (const f of ['ca.key', 'other-ca.key', 'server.key', 'client.key']) chmodSync(join(dir, f), 0o600);
    return {
      dir,
      caPem: read('ca.pem'),
      serverCertPem: read('server.pem'),
      serverKeyPem: read('server.key'),
      clientCertPem: read('client.pem'),
      clientKeyPem: read('client.key'),
      otherCaPem: read('other-ca.pem'),
      cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
