// Post's deletions: every file main wrote, the token file, the side-values file, a secrets directory the user named (only
// when nothing else is left in it), and the private root (only when it is provably ours). Paths come
// from the ledger as checkLedger proved them; a file already gone is no problem (post may run twice).
// Rendered files main wrote in the workspace (`templates` with `path=`) go first, before the scrub,
// each only while it is the file main (or the renewal agent, for one it rendered again) wrote.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AgentStatus } from '../agent/agent.ts';
import { SIDE_VALUES_FILE } from '../core/job-values.ts';
import type { Ledger } from '../core/ledger.ts';
import { fileId, ROOT_MARKER, ROOT_PREFIX } from '../core/private-dir.ts';
import type { CleanupReport } from './summary.ts';

export async function removeDelivered(ledger: Ledger): Promise<Pick<CleanupReport, 'filesRemoved' | 'dirsRemoved' | 'problems'>> {
  const problems: string[] = [];
  const dirsRemoved: string[] = [];
  let filesRemoved = 0;
  for (const file of ledger.files) {
    if (await removeFile(file, problems)) filesRemoved++;
  }
  if (ledger.tokenFile && (await removeFile(ledger.tokenFile, problems))) filesRemoved++;
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
    // The values without a file of their own (core/job-values.ts) go first and by name, even when
    // the root itself cannot be removed; bookkeeping of the root, like its marker, so not counted.
    await removeFile(path.join(ledger.root, SIDE_VALUES_FILE), problems);
    if (await removeRoot(ledger.root, problems)) dirsRemoved.push(ledger.root);
  }
  return { filesRemoved, dirsRemoved, problems };
}

/**
 * Deletes each rendered file main wrote in the workspace, proven by its device:inode: the one main
 * recorded, or the one the agent's status gives for a file it rendered again. A file that is not
 * that one (replaced since, a symlink, another user's), or that lies outside the workspace, is left.
 */
export async function removeWorkspaceFiles(
  ledger: Pick<Ledger, 'workspaceFiles'>,
  workspace: string | undefined,
  agentStatus: Pick<AgentStatus, 'rendered'> | undefined,
): Promise<{ workspaceFilesRemoved: string[]; problems: string[] }> {
  const entries = ledger.workspaceFiles ?? [];
  if (entries.length === 0) return { workspaceFilesRemoved: [], problems: [] };
  const problems: string[] = [];
  const removed: string[] = [];
  const root = workspace ? await fs.realpath(workspace).catch(() => undefined) : undefined;
  for (const entry of entries) {
    const ids = [entry.id, ...(agentStatus?.rendered ?? []).filter((r) => r.path === entry.path).map((r) => r.id)];
    const left = (why: string): void => void problems.push(`rendered file ${entry.path}: ${why}; left in place`);
    const parent = await fs.realpath(path.dirname(entry.path)).catch((error: NodeJS.ErrnoException) => error.code ?? 'error');
    if (parent === 'ENOENT') continue; // its directory is gone, and the file with it
    if (root === undefined || !(parent === root || parent.startsWith(`${root}${path.sep}`))) {
      left('not in the workspace');
      continue;
    }
    const stat = await fs.lstat(entry.path, { bigint: true }).catch((error: NodeJS.ErrnoException) => error.code ?? 'error');
    if (stat === 'ENOENT') continue;
    if (typeof stat === 'string') left(`cannot inspect it (${stat})`);
    else if (!stat.isFile() || (process.getuid !== undefined && stat.uid !== BigInt(process.getuid())))
      left('not a regular file of this user');
    else if (ids.every((id) => id === undefined)) left("main recorded no identity for it (it stopped while writing it): not proven main's");
    else if (!ids.includes(fileId(stat))) left('not the file main wrote (replaced since)');
    else if (await removeFile(entry.path, problems)) removed.push(entry.path);
  }
  return { workspaceFilesRemoved: removed, problems };
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
