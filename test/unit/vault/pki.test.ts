// issueCertificates over a small in-memory client: the four files of each entry (names, env and
// output names as vault-action gives them, PEM ending in a line break, the chain), the key and the
// serial masked before the certificate is recorded, a certificate recorded even when its answer is
// then found wanting, and a refusal that says what to grant.
import { describe, expect, it } from 'vitest';
import { VaultError } from '../../../src/core/errors.ts';
import { parsePkiInput } from '../../../src/inputs/pki.ts';
import type { VaultClient, VaultResponse } from '../../../src/vault/client.ts';
import { issueCertificates, pemFiles, pkiEnvBase, type IssuedCertificate } from '../../../src/vault/pki.ts';

const PEM = (what: string, n: number): string => `-----BEGIN ${what}-----\nMIIB${n}Q==\n-----END ${what}-----`;
const ANSWER = {
  lease_id: '',
  data: {
    certificate: PEM('CERTIFICATE', 1),
    private_key: PEM('RSA PRIVATE KEY', 2),
    issuing_ca: PEM('CERTIFICATE', 3),
    ca_chain: [PEM('CERTIFICATE', 3), PEM('CERTIFICATE', 4)],
    serial_number: '1a:2b:3c:4d:5e:6f',
    expiration: 1_800_000_000,
  },
};

function client(answers: Record<string, VaultResponse | VaultError>): VaultClient & { writes: Array<[string, unknown]> } {
  const writes: Array<[string, unknown]> = [];
  return {
    token: 't',
    writes,
    read: () => Promise.reject(new Error('no reads')),
    async write(path, body) {
      writes.push([path, body]);
      const answer = answers[path];
      if (answer === undefined) throw new VaultError(path, `POST ${path}: Vault answered 404`, 404);
      if (answer instanceof VaultError) throw answer;
      return answer;
    },
    revokeSelf: () => Promise.resolve(),
    cancel: () => {},
    close: () => {},
  };
}

async function issue(input: string, answers: Record<string, VaultResponse | VaultError>) {
  const events: string[] = [];
  const recorded: IssuedCertificate[] = [];
  const c = client(answers);
  const run = issueCertificates(c, parsePkiInput(input), 4, {
    onValue: (v) => events.push(`mask ${v.split('\n')[0]}`),
    onIssued: async (cert) => {
      events.push(`issued ${cert.name}`);
      recorded.push(cert);
    },
    debug: () => {},
  });
  return { run, events, recorded, writes: c.writes };
}

describe('issueCertificates', () => {
  it('lays one entry out as NAME.crt, NAME.key, NAME.ca.pem, NAME.chain.pem with vault-action env and output names', async () => {
    const { run, writes, recorded } = await issue('pki/issue/web-app {"common_name": "a.test", "ttl": "1h"} | web-app', {
      'pki/issue/web-app': ANSWER,
    });
    const { secrets } = await run;
    expect(writes).toEqual([['pki/issue/web-app', { common_name: 'a.test', ttl: '1h' }]]);
    expect(secrets.map((s) => [s.name, s.envName, s.outputName, s.source.kind === 'vault' ? s.source.key : ''])).toEqual([
      ['web-app.crt', 'WEB_APP_CERT', 'web-app_cert', 'certificate'],
      ['web-app.key', 'WEB_APP_KEY', 'web-app_key', 'private_key'],
      ['web-app.ca.pem', 'WEB_APP_CA', 'web-app_ca', 'issuing_ca'],
      ['web-app.chain.pem', 'WEB_APP_CA_CHAIN', 'web-app_ca_chain', 'ca_chain'],
    ]);
    expect(secrets.every((s) => s.pem === true && s.value.endsWith('-----\n'))).toBe(true);
    expect(secrets[3]?.value).toBe(`${PEM('CERTIFICATE', 3)}\n${PEM('CERTIFICATE', 4)}\n`);
    expect(recorded).toEqual([
      { name: 'web-app', mount: 'pki', serial: '1a:2b:3c:4d:5e:6f', expires: '2027-01-15T08:00:00.000Z', leaseId: undefined },
    ]);
  });

  it('masks the key and the serial before the certificate is recorded, and the PEM files too', async () => {
    const { run, events } = await issue('pki/issue/ci {}', { 'pki/issue/ci': ANSWER });
    await run;
    expect(events.slice(0, 5)).toEqual([
      'mask -----BEGIN RSA PRIVATE KEY-----',
      'mask 1a:2b:3c:4d:5e:6f',
      'mask 1A2B3C4D5E6F',
      'mask 1a2b3c4d5e6f',
      'issued ci',
    ]);
    expect(events.filter((e) => e.startsWith('mask -----BEGIN CERTIFICATE'))).toHaveLength(3);
  });

  it('keeps the lease a role with generate_lease gives', async () => {
    const { run, recorded } = await issue('pki/issue/ci {}', {
      'pki/issue/ci': { ...ANSWER, lease_id: 'pki/issue/ci/abc', lease_duration: 600, renewable: false },
    });
    const { secrets, leases } = await run;
    expect(leases).toEqual([{ leaseId: 'pki/issue/ci/abc', path: 'pki/issue/ci', duration: 600, renewable: false }]);
    expect(recorded[0]?.leaseId).toBe('pki/issue/ci/abc');
    expect(secrets[0]?.source.kind === 'vault' && secrets[0].source.leaseId).toBe('pki/issue/ci/abc');
  });

  it('records a certificate whose answer then lacks a file, and fails naming what is missing', async () => {
    const { run, recorded } = await issue('pki/issue/ci {}', {
      'pki/issue/ci': { data: { ...ANSWER.data, issuing_ca: '', ca_chain: [], certificate: undefined } },
    });
    await expect(run).rejects.toThrow(
      "pki line 1: the answer of 'pki/issue/ci' lacks certificate, issuing_ca, ca_chain; is it a PKI issue endpoint?",
    );
    expect(recorded.map((c) => c.name)).toEqual(['ci']);
  });

  it('a refusal names the line and what to grant', async () => {
    const { run } = await issue('pki/issue/a {}\npki/issue/ci {}', {
      'pki/issue/a': ANSWER,
      'pki/issue/ci': new VaultError('pki/issue/ci', 'POST pki/issue/ci: Vault answered 403 permission denied', 403),
    });
    await expect(run).rejects.toThrow(
      "pki line 2: POST pki/issue/ci: Vault answered 403 permission denied: grant 'update' on 'pki/issue/ci' in a policy of the token (or of the login role)",
    );
  });
});

describe('pemFiles and pkiEnvBase', () => {
  it('the chain falls back to the issuing CA when Vault gives none; trailing space becomes one line break', () => {
    const files = pemFiles({ certificate: 'C\n\n', private_key: 'K', issuing_ca: 'CA', ca_chain: [] });
    expect(files).toEqual({ certificate: 'C\n', private_key: 'K\n', issuing_ca: 'CA\n', ca_chain: 'CA\n' });
  });

  it('env names hold only what an env var name can', () => {
    expect(pkiEnvBase('web-app.v2')).toBe('WEB_APP_V2');
  });
});
