// The post step (post-if: always()): revoke leases, revoke the token this run created, delete every
// file and directory main wrote. It cleans up whatever main got as far as, is safe to run twice,
// and warns rather than fails so it never hides the main step's own outcome.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ROOT_MARKER, ROOT_PREFIX } from './deliver.ts';
import { errorText } from './errors.ts';
import { getInput, type Env } from './inputs.ts';
import { loadLedger, type Ledger } from './ledger.ts';
import { MaskRegistry } from './mask.ts';
import type { Runner } from './runner.ts';
import { cleanupSummary, type CleanupReport } from './summary.ts';
import type { VaultClientFactory } from './vault/client.ts';

export interface PostDeps {
  readonly env: Env;
  readonly runner: Runner;
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly now?: () => number;
}

export async function runPost(deps: PostDeps): Promise<void> {
  const masks = new MaskRegistry(deps.runner);
  try {
    await post(deps, masks);
  } catch (error) {
    // Post warns: a cleanup problem must be visible but must not hide main's outcome.
    deps.runner.warning(`cleanup: ${masks.scrub(errorText(error))}`);
  }
}

async function post(deps: PostDeps, masks: MaskRegistry): Promise<void> {
  const { runner } = deps;
  let ledger: Ledger | undefined;
  try {
    ledger = loadLedger(runner);
  } catch {
    runner.warning('cleanup: the saved state is not readable; nothing can be cleaned up safely');
    return;
  }
  if (!ledger) {
    runner.info('Pipeline Secrets cleanup: main created nothing; nothing to do');
    return;
  }
  const problems: string[] = [];
  const dirsRemoved: string[] = [];
  const report: { -readonly [K in keyof CleanupReport]: CleanupReport[K] } = {
    tokenRevoked: undefined,
    leasesRevoked: 0,
    leasesFailed: 0,
    filesRemoved: 0,
    dirsRemoved,
    problems,
  };

  await revoke(deps, ledger, masks, report, problems);

  for (const file of ledger.files) {
    if (await removeFile(file, problems)) report.filesRemoved++;
  }
  if (ledger.tokenFile && (await removeFile(ledger.tokenFile, problems))) report.filesRemoved++;
  if (ledger.userSecretsDir && ledger.secretsDir) {
    // A directory the user named: remove only what we wrote, then the directory if it is empty.
    try {
      await fs.rmdir(ledger.secretsDir);
      dirsRemoved.push(ledger.secretsDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        const left = await fs.readdir(ledger.secretsDir).catch(() => []);
        problems.push(`${ledger.secretsDir} still holds files this action did not write (${left.join(', ')}); left in place`);
      } else if (code !== 'ENOENT') problems.push(`cannot remove ${ledger.secretsDir} (${code})`);
    }
  }
  if (ledger.root) {
    if (await removeRoot(ledger.root, problems)) dirsRemoved.push(ledger.root);
  }

  for (const problem of problems) runner.warning(`cleanup: ${problem}`);
  runner.info(
    `Pipeline Secrets cleanup: ${report.tokenRevoked ? 'token revoked, ' : ''}${report.leasesRevoked} lease(s) revoked, ${report.filesRemoved} file(s) and ${report.dirsRemoved.length} director(ies) removed`,
  );
  await runner.appendSummary(cleanupSummary(report));
}

async function revoke(
  deps: PostDeps,
  ledger: Ledger,
  masks: MaskRegistry,
  report: { tokenRevoked: boolean | undefined; leasesRevoked: number; leasesFailed: number },
  problems: string[],
): Promise<void> {
  if (!ledger.tokenFile || !ledger.vaultUrl) return;
  let token: string;
  try {
    token = await fs.readFile(ledger.tokenFile, 'utf8');
  } catch (error) {
    // Already revoked and removed by an earlier post run, or main died before writing it.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      problems.push(`cannot read the token file (${(error as NodeJS.ErrnoException).code})`);
    return;
  }
  masks.add(token);
  const timeoutSeconds = Number(getInput(deps.env, 'timeout')) || 30;
  const createClient = await deps.loadVaultClient();
  const client = createClient({
    url: ledger.vaultUrl,
    namespace: ledger.namespace,
    deadline: (deps.now ?? Date.now)() + timeoutSeconds * 1000,
    retries: 4,
    maxSockets: 4,
    log: (message) => deps.runner.debug(message),
  });
  client.token = token;
  try {
    // Leases first: revoking the token would revoke its leases too, but a lease may outlive a
    // token created with a longer TTL elsewhere, so each one is revoked by id.
    for (const leaseId of ledger.leases) {
      try {
        await client.write('sys/leases/revoke', { lease_id: leaseId });
        report.leasesRevoked++;
      } catch (error) {
        report.leasesFailed++;
        problems.push(`lease ${leaseId} not revoked: ${masks.scrub(errorText(error))}`);
      }
    }
    try {
      await client.revokeSelf();
      report.tokenRevoked = true;
    } catch (error) {
      report.tokenRevoked = false;
      problems.push(`Vault token not revoked: ${masks.scrub(errorText(error))}`);
    }
  } finally {
    client.close();
  }
}

async function removeFile(file: string, problems: string[]): Promise<boolean> {
  try {
    // unlink removes a symlink itself, never its target.
    await fs.unlink(file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') problems.push(`cannot remove ${file} (${code})`);
    return false;
  }
}

/** Removes the private root only if it is ours: our name prefix and our marker file inside. */
async function removeRoot(root: string, problems: string[]): Promise<boolean> {
  if (!path.basename(root).startsWith(ROOT_PREFIX)) {
    problems.push(`${root} is not a Pipeline Secrets directory; left in place`);
    return false;
  }
  try {
    const stat = await fs.lstat(root);
    if (!stat.isDirectory()) {
      problems.push(`${root} is not a directory; left in place`);
      return false;
    }
    await fs.access(path.join(root, ROOT_MARKER));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // Gone already (second run), or main died before writing its marker: remove it if empty.
      await fs.rmdir(path.join(root, 'secrets')).catch(() => {});
      const removed = await fs.rmdir(root).then(
        () => true,
        () => false,
      );
      return removed;
    }
    problems.push(`cannot inspect ${root} (${code})`);
    return false;
  }
  await fs.rm(root, { recursive: true, force: true });
  return true;
}
