// End to end through dist/, against a real OpenBao PKI engine: a `pki` entry issues a client
// certificate into NAME.crt, NAME.key, NAME.ca.pem and NAME.chain.pem (0600, in the secrets
// directory); a later step uses them with curl and openssl s_client against a TLS server this test
// starts, which asks for a client certificate signed by the same CA and refuses a connection
// without one; post revokes the certificate: by serial (`pki/revoke`) for a role without a lease,
// with its lease for a role with `generate_lease`, and names the certificate (never its serial)
// when Vault refuses both. What is revoked is asked of OpenBao (`pki/certs/revoked`, `pki/cert/SERIAL`).
import { promises as fs, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { MAIN as BUILT_MAIN, POST as BUILT_POST, ledgerOf, newJob, privateDirsOf } from './setup.ts';

// PKI_DIST=<dir> runs these against another build (e.g. the one before `pki`, to see them fail).
const MAIN = process.env.PKI_DIST ? path.join(process.env.PKI_DIST, 'main.js') : BUILT_MAIN;
const POST = process.env.PKI_DIST ? path.join(process.env.PKI_DIST, 'post.js') : BUILT_POST;
const SCAN = path.join(path.dirname(BUILT_MAIN), 'scan.js');
const SCAN_YML = path.join(path.dirname(BUILT_MAIN), '..', 'scan', 'action.yml');

const VALUES = { roleId: 'pki-role-id-6d2e', secretId: 'pki-secret-id-1f9c' };
const FILES = ['client.crt', 'client.key', 'client.ca.pem', 'client.chain.pem'];

let vault: OpenBao;
let proxy: FaultProxy;
let server: https.Server;
let port: number;
let job: Job;

beforeAll(async () => {
  vault = await OpenBao.start();
  await vault.addPkiRole('pki', 'leased', { ttl: '10m' });
  await vault.addPkiRoleWithoutLease('pki', 'nolease', { ttl: '10m' });
  await vault.addPkiRoleWithoutLease('pki', 'server', { ttl: '1h' });
  const issue = [
    { path: 'pki/issue/leased', capabilities: ['update'] },
    { path: 'pki/issue/nolease', capabilities: ['update'] },
  ];
  // A typical CI role: it may issue, but neither revoke by serial nor by lease id.
  await vault.addPolicy('pki-issue', issue);
  await vault.addPolicy('pki-revoke', [{ path: 'pki/revoke', capabilities: ['update'] }]);
  await vault.addAppRole('approle', 'issue', { roleId: `${VALUES.roleId}-issue`, secretId: VALUES.secretId, policies: ['pki-issue'] });
  await vault.addAppRole('approle', 'revoke', {
    roleId: `${VALUES.roleId}-revoke`,
    secretId: VALUES.secretId,
    policies: ['pki-issue', 'pki-revoke'],
  });
  // The TLS server: its own certificate from the same CA, and it requires a client certificate
  // that CA signed (rejectUnauthorized), answering with the client's common name.
  const own = await vault.issueCertificate('pki', 'server', { common_name: 'localhost', ip_sans: '127.0.0.1', ttl: '1h' });
  const ca = await vault.pkiCaPem('pki');
  server = https.createServer(
    { cert: own.certificate, key: own.private_key, ca, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.end(`hello ${String(peer.subject?.CN)}\n`);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  proxy = await startFaultProxy(vault.url);
}, 120_000);
afterEach(async () => {
  proxy.clearFaults();
  await job?.cleanup();
});
afterAll(async () => {
  await proxy?.stop();
  await new Promise((resolve) => server?.close(resolve));
  await vault?.stop();
});

function approle(name: string): Record<string, string> {
  return { url: vault.url, method: 'approle', 'role-id': `${VALUES.roleId}-${name}`, 'secret-id': VALUES.secretId };
}

function warnings(step: StepResult): string[] {
  return step.annotations.filter((a) => a.level === 'warning' || a.level === 'error').map((a) => a.message);
}

/** The private key and serial main delivered, read before post removes them: the values that must not leak. */
async function issued(main: StepResult): Promise<{ key: string; cert: string; serial: string; dir: string }> {
  const dir = ledgerOf(main).secretsDir;
  const cert = ledgerOf(main).certs?.[0];
  if (!cert) throw new Error('main recorded no certificate');
  return {
    dir,
    key: await fs.readFile(path.join(dir, 'client.key'), 'utf8'),
    cert: await fs.readFile(path.join(dir, 'client.crt'), 'utf8'),
    serial: (await fs.readFile(cert.serialFile, 'utf8')).trim(),
  };
}

// The later step: the files used as a TLS client uses them, and a try without the certificate,
// which the server must refuse (so a success above is the certificate's doing).
const CLIENT_STEP = (p: number): string => `
d="$PIPELINE_SECRETS_DIR"
curl -sS --fail --cert "$d/client.crt" --key "$d/client.key" --cacert "$d/client.ca.pem" https://127.0.0.1:${p}/ > "$RUNNER_TEMP/curl.out"
echo "curl: $(cat "$RUNNER_TEMP/curl.out")"
printf 'GET / HTTP/1.0\\r\\n\\r\\n' | openssl s_client -quiet -verify_return_error -connect 127.0.0.1:${p} \\
  -cert "$d/client.crt" -key "$d/client.key" -CAfile "$d/client.chain.pem" 2>/dev/null | tail -n 1 > "$RUNNER_TEMP/s_client.out"
echo "s_client: $(cat "$RUNNER_TEMP/s_client.out")"
openssl x509 -noout -serial -in "$d/client.crt"
if curl -sS --cacert "$d/client.ca.pem" https://127.0.0.1:${p}/ >/dev/null 2>&1; then echo "without a certificate: accepted"; else echo "without a certificate: refused"; fi
`;

describe('pki: certificates as files a TLS client uses, revoked by post', () => {
  it('a role without a lease: the files work with curl and openssl s_client; post revokes the certificate by serial', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      ...approle('revoke'),
      pki: 'pki/issue/nolease {"common_name": "client.pki.test", "ttl": "10m"} | client',
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(warnings(main)).toEqual([]);
    expect(main.summary).toContain('Post will revoke the Vault token, revoke 1 certificate(s) by serial, delete these files');
    const { key, cert, serial, dir } = await issued(main);
    expect(key).toMatch(/^-----BEGIN (RSA |EC )?PRIVATE KEY-----\n/);
    expect(key.endsWith('\n')).toBe(true);
    for (const name of FILES) expect(((await fs.stat(path.join(dir, name))).mode & 0o777).toString(8), name).toBe('600');
    // Files first: nothing in env or outputs without export-env / export-outputs.
    expect(Object.keys(main.env).filter((k) => k.startsWith('CLIENT'))).toEqual([]);
    expect(Object.keys(main.outputs).filter((k) => k.startsWith('client'))).toEqual([]);
    expect(main.masks).toContain(serial);
    expect(main.masks).toContain(key.trim());
    // Each line of the key is registered too (older runners do not split a value into lines).
    for (const line of key.trim().split('\n')) expect(main.masks, 'a line of the key').toContain(line);

    const client = await job.runShell(CLIENT_STEP(port));
    expect(client.exitCode, client.log).toBe(0);
    expect(client.stdout).toContain('curl: hello client.pki.test');
    expect(client.stdout).toContain('s_client: hello client.pki.test');
    expect(client.stdout).toContain('without a certificate: refused');
    // The serial as openssl prints it (upper-case hex, no colons) is masked in the job's log too.
    const printed = serial.replaceAll(':', '').toUpperCase();
    expect(client.stdout).toContain(`serial=${printed}`);
    expect(client.log).toContain('serial=***');
    expect(client.log).not.toContain(printed);
    expect(await vault.certRevocationTime('pki', serial)).toBe(0);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(post.summary).toContain('Certificates: 1 revoked by serial, 0 left valid');
    expect(await vault.certRevocationTime('pki', serial)).toBeGreaterThan(0);
    expect(await vault.revokedSerials('pki')).toContain(serial);
    // The client step printed the serial on purpose (above, masked in the log): it is checked in main and post.
    assertNoLeak(job, [main, post], [...Object.values(VALUES), key, serial, printed, cert], { privateDirs: privateDirsOf([main]) });
    assertNoLeak(job, [client], [...Object.values(VALUES), key, cert], { privateDirs: privateDirsOf([main]) });
  });

  it('a role with generate_lease: env and outputs under vault-action names only when asked; the certificate goes with its lease', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      ...approle('issue'),
      pki: 'pki/issue/leased {"common_name": "client.pki.test", "ttl": "10m"}',
      'export-env': 'true',
      'export-outputs': 'true',
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(warnings(main)).toEqual([]);
    const ledger = ledgerOf(main);
    const dir = ledger.secretsDir;
    const cert = ledger.certs?.[0];
    expect(cert?.leaseId).toMatch(/^pki\/issue\/leased\//);
    expect(ledger.leases).toEqual([cert?.leaseId]);
    // The lease is in the job summary like any other; the summary holds names and sizes, no value.
    expect(main.summary).toContain(cert?.leaseId ?? '-');
    // Named after the role, as vault-action names its outputs: leased.crt ..., LEASED_CERT ..., leased_cert ...
    expect((await fs.readdir(dir)).sort()).toEqual(['leased.ca.pem', 'leased.chain.pem', 'leased.crt', 'leased.key']);
    const key = await fs.readFile(path.join(dir, 'leased.key'), 'utf8');
    const serial = (await fs.readFile(cert?.serialFile ?? '', 'utf8')).trim();
    expect(main.env.LEASED_KEY).toBe(key);
    expect(main.env.LEASED_CERT).toBe(await fs.readFile(path.join(dir, 'leased.crt'), 'utf8'));
    expect(main.env.LEASED_CA_CHAIN).toBe(await fs.readFile(path.join(dir, 'leased.chain.pem'), 'utf8'));
    expect(
      Object.keys(main.outputs)
        .filter((k) => k.startsWith('leased'))
        .sort(),
    ).toEqual(['leased_ca', 'leased_ca_chain', 'leased_cert', 'leased_key']);

    // Neither sys/leases/revoke nor pki/revoke is granted: revoking the login's token revokes the
    // lease, and the PKI engine revokes a certificate whose lease is revoked.
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(await vault.settledLeases('pki/')).toEqual([]);
    expect(await vault.certRevocationTime('pki', serial)).toBeGreaterThan(0);
    // The env file and outputs hold the key by request; the invariant holds everywhere else.
    assertNoLeak(job, [main, post], [...Object.values(VALUES), serial], { privateDirs: privateDirsOf([main]) });
  });

  it('without pki/revoke on a role without a lease: post names the certificate by name, mount and expiry (not its serial)', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      ...approle('issue'),
      pki: 'pki/issue/nolease {"common_name": "client.pki.test", "ttl": "10m"} | client',
    });
    expect(main.exitCode, main.log).toBe(0);
    const { key, serial } = await issued(main);
    const expires = ledgerOf(main).certs?.[0]?.expires ?? '';
    expect(Date.parse(expires) - Date.now()).toBeGreaterThan(8 * 60_000);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([
      `cleanup: certificate client from pki left valid until ${expires}: Vault refused pki/revoke (403; the default policy lacks it); grant path "pki/revoke" { capabilities = ["update"] } in the token's policy`,
    ]);
    expect(post.summary).toContain('Certificates: 0 revoked by serial, 1 left valid');
    expect(await vault.certRevocationTime('pki', serial)).toBe(0);
    assertNoLeak(job, [main, post], [...Object.values(VALUES), key, serial], { privateDirs: privateDirsOf([main]) });
    // Left valid on purpose above: revoked here so it does not count against another test.
    await vault.call('POST', 'pki/revoke', { body: { serial_number: serial } });
  });

  it('a run that fails after the certificate was issued: post still revokes it by serial', async () => {
    job = await newJob();
    // The `secrets` line is refused (no such mount, no grant), while the certificate is issued.
    const main = await job.runMain(MAIN, {
      ...approle('revoke'),
      pki: 'pki/issue/nolease {"common_name": "client.pki.test"} | client',
      secrets: 'secret/data/missing key',
    });
    expect(main.exitCode).not.toBe(0);
    expect(main.outputs['secrets-dir']).toBeUndefined();
    const cert = ledgerOf(main).certs?.[0];
    expect(cert?.name).toBe('client');
    const serial = (await fs.readFile(cert?.serialFile ?? '', 'utf8')).trim();
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.certRevocationTime('pki', serial)).toBeGreaterThan(0);
    assertNoLeak(job, [main, post], [...Object.values(VALUES), serial], { privateDirs: privateDirsOf([main]) });
  });

  it('the leak scan does not report the certificate, CA and chain (public) in an artifact; the key it does', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      ...approle('revoke'),
      pki: 'pki/issue/nolease {"common_name": "client.pki.test", "ttl": "10m"} | client',
    });
    expect(main.exitCode, main.log).toBe(0);
    const { key, cert, serial, dir } = await issued(main);
    // An image's CA bundle: the certificate, the CA and the chain as a build would copy them.
    const art = mkdtempSync(path.join(os.tmpdir(), 'ps-pki-artifacts-'));
    try {
      for (const name of ['client.crt', 'client.ca.pem', 'client.chain.pem']) await fs.copyFile(path.join(dir, name), path.join(art, name));
      const clean = await job.runMain(SCAN, { paths: art }, { actionYml: SCAN_YML });
      expect(clean.exitCode, clean.log).toBe(0);
      expect(clean.outputs.leaks).toBe('0');
      expect(clean.summary).toContain('(3 public certificate file(s) not looked for)');
      await fs.copyFile(path.join(dir, 'client.key'), path.join(art, 'key.pem'));
      const leak = await job.runMain(SCAN, { paths: art }, { actionYml: SCAN_YML });
      expect(leak.exitCode, leak.log).toBe(1);
      expect(leak.outputs.leaks).toBe('1');
      expect(
        leak.annotations.some((a) => a.level === 'error' && a.message.includes("secret 'client.key' found as raw in ")),
        leak.log,
      ).toBe(true);
      const post = await job.runPost(POST, main);
      expect(post.exitCode, post.log).toBe(0);
      assertNoLeak(job, [main, clean, leak, post], [...Object.values(VALUES), key, serial, cert], { privateDirs: privateDirsOf([main]) });
    } finally {
      rmSync(art, { recursive: true, force: true });
    }
  });

  it('with renew: true the renewal agent leaves the certificate alone (issued once, by main): it expires, and post says so', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      ...approle('revoke'),
      pki: 'pki/issue/nolease {"common_name": "client.pki.test", "ttl": "3s"} | client',
      renew: 'true',
      'refresh-interval': '1',
    });
    expect(main.exitCode, main.log).toBe(0);
    const { key, serial, dir } = await issued(main);
    // Past the certificate's 3 s TTL and three refresh rounds: nothing re-issued, nothing rewritten.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(await fs.readFile(path.join(dir, 'client.key'), 'utf8')).toBe(key);
    const log = await fs.readFile(path.join(ledgerOf(main).root, 'agent.log'), 'utf8');
    expect(log).toMatch(/agent started .*: 0 source\(s\)/);
    expect(log).not.toMatch(/new credential|rewrote/);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    // The agent did not replace it, so it expired: OpenBao answers its revocation without a
    // revocation time (nothing is left to revoke), and post says so.
    expect(post.summary).toContain('Certificates: 0 revoked by serial, 1 expired already, 0 left valid');
    expect(await vault.certRevocationTime('pki', serial)).toBe(0);
    expect(warnings(post)).toEqual([]);
    assertNoLeak(job, [main, post], [...Object.values(VALUES), key, serial], { privateDirs: privateDirsOf([main]) });
  }, 30_000);

  it('a job cancelled (SIGTERM) while Vault issues the certificate: the answer in flight is recorded, and post revokes it', async () => {
    proxy.inject({ path: /^pki\/issue\//, kind: 'latency', latencyMs: 1500 });
    // A token passed in (dash, the `sh` below, drops env names holding '-' such as INPUT_ROLE-ID):
    // never revoked by post, which still revokes the certificate by serial with it.
    const token = await vault.createToken({ policies: ['pki-issue', 'pki-revoke'] });
    job = await newJob();
    // In the job's own temporary root: job.cleanup() removes it whatever the test's outcome.
    const pidFile = path.join(job.root, 'main.pid');
    const from = proxy.requests.length;
    const running = job.runMain(
      MAIN,
      { url: proxy.url, token, pki: 'pki/issue/nolease {"common_name": "client.pki.test"} | client' },
      // The step process keeps the shell's pid (exec), so the test can signal it as the runner would.
      { wrap: ['sh', '-c', `echo $$ > ${pidFile}; exec "$@"`, 'sh'] },
    );
    const issuing = (): number => proxy.requests.slice(from).filter((r) => /^pki\/issue\//.test(r.path)).length;
    const until = Date.now() + 10_000;
    while (issuing() < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(issuing()).toBe(1);
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    const main = await running;
    expect(main.exitCode).not.toBe(0);
    expect(warnings(main).join('\n')).toContain(
      'the job was cancelled (SIGTERM) while talking to Vault; 0 lease(s) and 1 certificate(s) issued so far are recorded for post to revoke',
    );
    const cert = ledgerOf(main).certs?.[0];
    expect(cert?.name).toBe('client');
    const serial = (await fs.readFile(cert?.serialFile ?? '', 'utf8')).trim();
    expect(await vault.certRevocationTime('pki', serial)).toBe(0);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.certRevocationTime('pki', serial)).toBeGreaterThan(0);
    expect(await vault.tokenAlive(token)).toBe(true);
    assertNoLeak(job, [main, post], [...Object.values(VALUES), serial, token], { privateDirs: privateDirsOf([main]) });
  });

  it('a role the policy does not grant: one line naming the pki line, the path and what to grant; nothing delivered', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { ...approle('issue'), pki: 'pki/issue/server {"common_name": "a.test"}' });
    expect(main.exitCode).not.toBe(0);
    const errors = main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^pki line 1: .*pki\/issue\/server.*403.*: grant 'update' on 'pki\/issue\/server' in a policy of the token \(or of the login role\)$/,
    );
    expect(main.outputs['secrets-dir']).toBeUndefined();
    expect(ledgerOf(main).certs).toBeUndefined();
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    assertNoLeak(job, [main, post], Object.values(VALUES), { privateDirs: privateDirsOf([main]) });
  });

  it('a pki line that is not an issue path fails main in one line naming the input and line', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { ...approle('issue'), pki: 'pki/issue/nolease {"common_name": "a.test"}\npki/roles/x {}' });
    expect(main.exitCode).not.toBe(0);
    expect(main.annotations.filter((a) => a.level === 'error').map((a) => a.message)).toEqual([
      "input 'pki': line 2: 'pki/roles/x' is not an issue path like 'pki/issue/ROLE'; expected '<mount>/issue/<role> {\"common_name\": \"...\"} [| NAME]'",
    ]);
  });
});
