// certificateRecorder and issuePki: each certificate reaches the ledger (state: name, mount,
// expiry, lease; never the serial) before its serial is written to a 0600 file of the root, and
// issuePki masks what it issues through the step's MaskRegistry.
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPublicFile, readPublicFiles } from '../../../src/core/job-values.ts';
import { LedgerWriter } from '../../../src/core/ledger.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { parsePkiInput } from '../../../src/inputs/pki.ts';
import { certificateRecorder, issuePki, serialFile } from '../../../src/main/certificates.ts';
import type { VaultClient } from '../../../src/vault/client.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { tempDir } from '../../support/temp.ts';

const SERIAL = '7e:01:aa:42:19:c3:5d:08';
const KEY = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIcertificates-unit-key\n-----END EC PRIVATE KEY-----';

describe('certificateRecorder', () => {
  it('records the certificate in the ledger first, then writes its serial to a 0600 file named there', async () => {
    const root = tempDir('ps-certs-unit-');
    const runner = fakeRunner();
    // Whether the serial file existed each time the state was saved.
    const fileAtSave: boolean[] = [];
    const ledger = new LedgerWriter({
      ...runner,
      saveState: (key: string, value: string) => {
        fileAtSave.push(existsSync(serialFile(root, 'client')));
        runner.saveState(key, value);
      },
    });
    const record = certificateRecorder(ledger, root);
    await record({ name: 'client', mount: 'pki', serial: SERIAL, expires: '2030-01-01T00:00:00.000Z', leaseId: undefined });
    expect(fileAtSave).toEqual([false]);
    expect(ledger.ledger.certs).toEqual([
      { name: 'client', mount: 'pki', serialFile: path.join(root, 'pki-client.serial'), expires: '2030-01-01T00:00:00.000Z' },
    ]);
    expect(await fs.readFile(serialFile(root, 'client'), 'utf8')).toBe(SERIAL);
    expect((await fs.stat(serialFile(root, 'client'))).mode & 0o777).toBe(0o600);
    expect(runner.state.get('ledger')).not.toContain(SERIAL);
  });
});

describe('issuePki', () => {
  it('issues nothing without entries, and masks the key, each line of it and the serial of what it issues', async () => {
    const runner = fakeRunner();
    const masks = new MaskRegistry(runner);
    const ledger = new LedgerWriter(runner);
    const writes: string[] = [];
    const client = {
      write: async (p: string) => {
        writes.push(p);
        return {
          data: { certificate: 'CERT-PEM-text', private_key: KEY, issuing_ca: 'CA-PEM-text', ca_chain: [], serial_number: SERIAL },
        };
      },
    } as unknown as VaultClient;
    const root = tempDir('ps-certs-unit-');
    expect(await issuePki(client, { pki: [], concurrency: 2 }, root, { runner, masks, ledger })).toEqual({ secrets: [], leases: [] });
    expect(writes).toEqual([]);
    const { secrets, leases } = await issuePki(client, { pki: parsePkiInput('pki/issue/ci {"common_name": "a"}'), concurrency: 2 }, root, {
      runner,
      masks,
      ledger,
    });
    expect(secrets.map((s) => s.name)).toEqual(['ci.crt', 'ci.key', 'ci.ca.pem', 'ci.chain.pem']);
    for (const form of [KEY, 'MHcCAQEEIcertificates-unit-key', SERIAL]) expect(runner.masked).toContain(form);
    expect(ledger.ledger.certs?.map((c) => c.name)).toEqual(['ci']);
    expect(leases).toEqual([]);
    // The certificate, CA and chain are recorded public by name and content; the key is not.
    const publicFiles = await readPublicFiles(root);
    for (const s of secrets) expect(isPublicFile(publicFiles, s.name, s.value), s.name).toBe(s.name !== 'ci.key');
  });
});
