// The TLS and proxy test services work: makePki's certificates verify (and fail to verify) the way
// node:tls sees them, and tinyproxy tunnels HTTPS through CONNECT to a loopback port without ever
// seeing what goes through the tunnel.
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type Proxy } from './services/proxy.ts';
import { makePki, type Pki } from './services/tls.ts';
import { OpenBao } from './services/openbao.ts';

let pki: Pki;
let pkiMs = 0;

beforeAll(async () => {
  const t = Date.now();
  pki = await makePki({ clientCn: 'ps-client' });
  pkiMs = Date.now() - t;
});

afterAll(async () => {
  await pki?.cleanup();
});

/** Resolves when a TLS handshake from `client` options to a server made of `server` options succeeds. */
async function handshake(
  server: tls.TlsOptions,
  client: tls.ConnectionOptions,
): Promise<{ clientAuthorized: boolean; serverAuthorized: boolean; peerCn: string | undefined }> {
  const srv = tls.createServer(server);
  let serverSide: Promise<{ authorized: boolean; cn: string | undefined }> = new Promise(() => undefined);
  const accepted = new Promise<void>((resolve) => {
    srv.once('secureConnection', (s: tls.TLSSocket) => {
      const cert = s.getPeerX509Certificate();
      serverSide = Promise.resolve({
        authorized: s.authorized,
        cn: cert?.subject
          .split('\n')
          .find((l) => l.startsWith('CN='))
          ?.slice(3),
      });
      s.end();
      resolve();
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const sock = tls.connect({ host: '127.0.0.1', port, ...client });
    const clientAuthorized = await new Promise<boolean>((resolve, reject) => {
      sock.once('secureConnect', () => resolve(sock.authorized));
      sock.once('error', reject);
    });
    await accepted;
    const s = await serverSide;
    sock.destroy();
    return { clientAuthorized, serverAuthorized: s.authorized, peerCn: s.cn };
  } finally {
    srv.close();
  }
}

describe('makePki', () => {
  it('makes a CA, server and client certificates signed by it, and an unrelated CA, quickly', () => {
    expect(pkiMs).toBeLessThan(1000);
    const ca = new X509Certificate(pki.caPem);
    const server = new X509Certificate(pki.serverCertPem);
    const client = new X509Certificate(pki.clientCertPem);
    const other = new X509Certificate(pki.otherCaPem);
    expect(ca.ca).toBe(true);
    expect(other.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(client.ca).toBe(false);
    for (const leaf of [server, client]) {
      expect(leaf.checkIssued(ca)).toBe(true);
      expect(leaf.verify(ca.publicKey)).toBe(true);
      expect(leaf.checkIssued(other)).toBe(false);
      expect(leaf.verify(other.publicKey)).toBe(false);
    }
    expect(server.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // extended key usage: serverAuth
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth
    expect(client.subject).toBe('CN=ps-client');
    for (const c of [ca, server, client, other]) expect(c.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    expect(server.checkPrivateKey(createPrivateKey(pki.serverKeyPem))).toBe(true);
    expect(client.checkPrivateKey(createPrivateKey(pki.clientKeyPem))).toBe(true);
    expect(readdirSync(pki.dir).sort()).toEqual(
      ['ca.key', 'ca.pem', 'client.key', 'client.pem', 'openssl.cnf', 'other-ca.key', 'other-ca.pem', 'server.key', 'server.pem'].sort(),
    );
    expect(readFileSync(`${pki.dir}/ca.pem`, 'utf8')).toBe(pki.caPem);
  });

  it('takes other server names, a client CN and RSA keys; cleanup removes the dir', async () => {
    const p = await makePki({ serverNames: ['vault.test', '::1'], clientCn: 'runner-7', keyType: 'rsa' });
    try {
      const server = new X509Certificate(p.serverCertPem);
      expect(server.subjectAltName).toBe('DNS:vault.test, IP Address:0:0:0:0:0:0:0:1');
      expect(server.publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048 });
      expect(server.verify(new X509Certificate(p.caPem).publicKey)).toBe(true);
      expect(new X509Certificate(p.clientCertPem).subject).toBe('CN=runner-7');
      const rsaHandshake = await handshake({ key: p.serverKeyPem, cert: p.serverCertPem }, { ca: p.caPem, servername: 'vault.test' });
      expect(rsaHandshake.clientAuthorized).toBe(true);
    } finally {
      await p.cleanup();
    }
    expect(existsSync(p.dir)).toBe(false);
    await expect(makePki({ clientCn: 'a/b' })).rejects.toThrow(/only letters/);
  });

  it('verifies with node:tls against the CA, by IP and by name, and not against the other CA', async () => {
    const server = { key: pki.serverKeyPem, cert: pki.serverCertPem };
    const byIp = await handshake(server, { ca: pki.caPem });
    expect(byIp.clientAuthorized).toBe(true);
    const byName = await handshake(server, { ca: pki.caPem, servername: 'localhost' });
    expect(byName.clientAuthorized).toBe(true);
    await expect(handshake(server, { ca: pki.otherCaPem })).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    await expect(handshake(server, { ca: pki.caPem, servername: 'vault.example' })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('does mutual TLS: the client certificate verifies against the CA, not against the other CA', async () => {
    const server = { key: pki.serverKeyPem, cert: pki.serverCertPem, requestCert: true, rejectUnauthorized: false };
    const client = { ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem };
    const ok = await handshake({ ...server, ca: pki.caPem }, client);
    expect(ok).toEqual({ clientAuthorized: true, serverAuthorized: true, peerCn: 'ps-client' });
    const other = await handshake({ ...server, ca: pki.otherCaPem }, client);
    expect(other).toMatchObject({ serverAuthorized: false, peerCn: 'ps-client' });
    const none = await handshake({ ...server, ca: pki.caPem }, { ca: pki.caPem });
    expect(none).toMatchObject({ serverAuthorized: false, peerCn: undefined });
  });
});

/** Every process (not this one) whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.substring(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) out.push(Number(name));
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('tinyproxy', () => {
  let proxy: Proxy;
  let target: https.Server;
  let targetPort: number;
  const seen: string[] = [];

  beforeAll(async () => {
    proxy = await startProxy();
    target = https.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
      res.end('hello over tls');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    targetPort = (target.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    target?.closeAllConnections();
    target?.close();
    await proxy?.stop();
  });

  it('listens on 127.0.0.1 only', () => {
    expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const conf = readFileSync(`${proxy.dir}/tinyproxy.conf`, 'utf8');
    expect(conf).toMatch(/^Listen 127\.0\.0\.1$/m);
    expect(conf).toMatch(/^Allow 127\.0\.0\.1$/m);
    expect(conf).not.toMatch(/ConnectPort/);
  });

  it('tunnels HTTPS to a random loopback port through CONNECT; the path never crosses the proxy in the clear', async () => {
    const proxyUrl = new URL(proxy.url);
    const secretPath = '/v1/secret/data/app?token=s3cr3t-path-value';
    const { status, socket } = await new Promise<{ status: number; socket: net.Socket }>((resolve, reject) => {
      const req = http.request({
        host: proxyUrl.hostname,
        port: Number(proxyUrl.port),
        method: 'CONNECT',
        path: `127.0.0.1:${targetPort}`,
        headers: { Host: `127.0.0.1:${targetPort}` },
      });
      req.once('connect', (res, sock) => resolve({ status: res.statusCode ?? 0, socket: sock }));
      req.once('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    const body = await new Promise<string>((resolve, reject) => {
      const t = tls.connect({ socket, ca: pki.caPem, servername: 'localhost' }, () => {
        t.write(`GET ${secretPath} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\nConnection: close\r\n\r\n`);
      });
      let text = '';
      t.setEncoding('utf8');
      t.on('data', (c: string) => (text += c));
      t.once('end', () => resolve(text));
      t.once('error', reject);
    });
    expect(body).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(body.endsWith('hello over tls')).toBe(true);
    expect(seen).toContain(`GET ${secretPath}`);
    expect(proxy.connects()).toContainEqual({ host: '127.0.0.1', port: targetPort });
    expect(proxy.requests()).toContain(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1`);
    expect(proxy.log()).not.toContain('s3cr3t');
    expect(proxy.requests().some((l) => l.includes('/v1/secret'))).toBe(false);
  });

  it('logs plain-HTTP requests in the clear (so requests() would catch a leak)', async () => {
    const plain = http.createServer((_req, res) => res.end('plain'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const port = (plain.address() as net.AddressInfo).port;
    try {
      const proxyUrl = new URL(proxy.url);
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.get(
          { host: proxyUrl.hostname, port: Number(proxyUrl.port), path: `http://127.0.0.1:${port}/in/the/clear`, agent: false },
          (res) => {
            let t = '';
            res.on('data', (c: Buffer) => (t += c.toString()));
            res.on('end', () => resolve(t));
          },
        );
        req.on('error', reject);
      });
      expect(text).toBe('plain');
      expect(proxy.requests()).toContain(`GET http://127.0.0.1:${port}/in/the/clear HTTP/1.1`);
      expect(proxy.connects()).not.toContainEqual({ host: '127.0.0.1', port });
    } finally {
      plain.close();
    }
  });

  it('carries an https-proxy-agent client to a real OpenBao over TLS', async () => {
    const v = await OpenBao.start({ tls: { certFile: path.join(pki.dir, 'server.pem'), keyFile: path.join(pki.dir, 'server.key') } });
    try {
      const tlsUrl = v.tlsUrl ?? '';
      const port = Number(new URL(tlsUrl).port);
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.get(`${tlsUrl}/v1/sys/health`, { agent: new HttpsProxyAgent(proxy.url), ca: pki.caPem }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
      });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ sealed: false });
      expect(proxy.connects()).toContainEqual({ host: '127.0.0.1', port });
      expect(proxy.requests().some((l) => l.includes('sys/health'))).toBe(false);
    } finally {
      await v.stop();
    }
  });
});

describe('tinyproxy lifetime', () => {
  it('stop() ends the process, frees the port and removes the dir; twice is fine', async () => {
    const p = await startProxy();
    const port = Number(new URL(p.url).port);
    expect(processesMentioning(p.dir)).toHaveLength(1);
    expect(await accepts(port)).toBe(true);
    await p.stop();
    expect(processesMentioning(p.dir)).toEqual([]);
    expect(await accepts(port)).toBe(false);
    expect(existsSync(p.dir)).toBe(false);
    await p.stop();
  });

  it('dies with a test process that is SIGKILLed; the next start sweeps its dir', async () => {
    const script = [
      `const { startProxy } = await import(${JSON.stringify(new URL('./services/proxy.ts', import.meta.url).href)});`,
      'const p = await startProxy();',
      'process.stdout.write(p.dir + "\\n");',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const dir = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`child exited early (${String(code)})`)));
    });
    expect(processesMentioning(dir)).toHaveLength(1);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const until = Date.now() + 5000;
    while (processesMentioning(dir).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(processesMentioning(dir)).toEqual([]); // pdeathsig
    expect(existsSync(dir)).toBe(true); // nobody ran an exit hook
    const next = await startProxy();
    await next.stop();
    expect(existsSync(dir)).toBe(false);
  });
});
