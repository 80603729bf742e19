// Main's `pki` entries: each certificate issued (src/vault/pki.ts) is recorded for post the moment
// its answer arrives: its name, mount, expiry and lease in the ledger (state), its serial (masked,
// so never in state) in a 0600 file of the private root. A run that fails or is cancelled after
// Vault issued a certificate still has it revoked by post. The certificate, CA and chain files are
// recorded as public (core/job-values.ts): post's scrub and the leak scan do not look for them.
import * as path from 'node:path';
import { appendPublicFiles } from '../core/job-values.ts';
import type { LedgerWriter } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import { writeExclusive } from '../core/private-dir.ts';
import type { Runner } from '../core/runner.ts';
import type { Config } from '../inputs/main.ts';
import type { VaultClient } from '../vault/client.ts';
import type { Lease, Secret } from '../vault/fetch.ts';
import { issueCertificates, type IssuedCertificate } from '../vault/pki.ts';

/** The file a certificate's serial waits in for post (the root is 0700, the file 0600). */
export function serialFile(root: string, name: string): string {
  return path.join(root, `pki-${name}.serial`);
}

/** Records one issued certificate: the ledger entry first, then the serial's file it names. */
export function certificateRecorder(ledger: LedgerWriter, root: string): (certificate: IssuedCertificate) => Promise<void> {
  return async (certificate) => {
    const file = serialFile(root, certificate.name);
    ledger.update((l) => {
      (l.certs ??= []).push({
        name: certificate.name,
        mount: certificate.mount,
        serialFile: file,
        ...(certificate.expires !== undefined ? { expires: certificate.expires } : {}),
        ...(certificate.leaseId !== undefined ? { leaseId: certificate.leaseId } : {}),
      });
    });
    await writeExclusive(file, certificate.serial);
  };
}

/** Issues every `pki` entry's certificate; each value is masked the moment it arrives. */
export async function issuePki(
  client: VaultClient,
  config: Pick<Config, 'pki' | 'concurrency'>,
  root: string,
  deps: { readonly runner: Runner; readonly masks: MaskRegistry; readonly ledger: LedgerWriter },
): Promise<{ secrets: Secret[]; leases: Lease[] }> {
  if (config.pki.length === 0) return { secrets: [], leases: [] };
  const { secrets, leases } = await issueCertificates(client, config.pki, config.concurrency, {
    onValue: (value) => deps.masks.add(value),
    onIssued: certificateRecorder(deps.ledger, root),
    debug: (message) => deps.runner.debug(message),
  });
  // Before any file is written: a scan never sees these files without knowing they are public.
  // Only what this step issued, by the name and content it delivers; the key stays a secret.
  await appendPublicFiles(
    root,
    secrets.filter((s) => s.source.kind === 'vault' && s.source.key !== 'private_key').map((s) => ({ name: s.name, value: s.value })),
  );
  return { secrets, leases };
}
