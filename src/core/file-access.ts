// Who besides the runner may read the secret files (`file-owner`, `file-mode`): a container that
// runs as a non-root user (`USER node`, `docker run --user 1000`) reads its bind-mounted files with
// that uid, and a 0600 file of the runner's is closed to it. Exactly the named uid (and gid) is
// let in, never others:
// - as root: each secret file is chowned to UID[:GID] with `file-mode`, and the secrets directory
//   to UID[:GID] with 0500 (0550 when the mode lets the group read), so root keeps writing in it;
// - as any other user (who cannot chown): the files keep the runner as owner and get a POSIX ACL
//   entry for the uid (and gid) with the mode's owner (group) bits, and the secrets directory one
//   with search (x) only, through setfacl (Node has no ACL API). The named entries set the ACL
//   mask, the owning group's entry stays empty, so no other uid or group gains anything.
// The private root above the secrets directory (token, env-file, docker config) is never touched:
// a bind mount of the secrets directory does not need its parents, so the uid cannot reach it.
import { builtin } from './builtin.ts';
import type { promises as fs } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { DeliveryError } from './errors.ts';

export interface FileAccess {
  /** The uid to let in; undefined: `file-mode` alone (the runner's own files, another mode). */
  readonly uid?: number;
  readonly gid?: number;
  /** One of FILE_MODES: owner bits for the uid (or the runner), group bits for the gid. */
  readonly mode: number;
}

/** The modes `file-mode` takes: read (or read-write) for the owner, read for its group, nothing for others. */
export const FILE_MODES: readonly number[] = [0o400, 0o440, 0o600, 0o640];

export interface AccessOptions {
  /** Whether chown is possible (root); default: this process's uid is 0. */
  readonly root?: boolean;
}

function isRoot(options: AccessOptions): boolean {
  return options.root ?? process.getuid?.() === 0;
}

function perms(bits: number): string {
  return `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`;
}

/**
 * Sets owner and mode on a file just written through `handle` (by descriptor, so nothing swapped in
 * at its path is changed instead). On the ACL path it sets the runner's own bits; call aclFiles next.
 */
export async function accessHandle(handle: fs.FileHandle, access: FileAccess, options: AccessOptions = {}): Promise<void> {
  if (access.uid !== undefined && isRoot(options)) {
    await handle.chown(access.uid, access.gid ?? -1);
    await handle.chmod(access.mode);
  } else {
    await handle.chmod(access.uid !== undefined ? access.mode & 0o700 : access.mode);
  }
}

/** The ACL entries for the secret files (kind 'file') or the secrets directory (kind 'dir'). */
export function aclSpec(access: FileAccess, kind: 'file' | 'dir'): string {
  if (access.uid === undefined) return '';
  const user = kind === 'dir' ? 1 : (access.mode >> 6) & 7;
  const group = kind === 'dir' ? 1 : (access.mode >> 3) & 7;
  const entries = [`u:${access.uid}:${perms(user)}`];
  if (access.gid !== undefined && (access.mode & 0o070) !== 0) entries.push(`g:${access.gid}:${perms(group)}`);
  return entries.join(',');
}

/** Adds the uid's (and gid's) ACL entries to files written by accessHandle; nothing as root. */
export async function aclFiles(files: readonly string[], access: FileAccess, options: AccessOptions = {}): Promise<void> {
  if (access.uid === undefined || isRoot(options) || files.length === 0) return;
  await runSetfacl(['-m', aclSpec(access, 'file'), '--', ...files]);
}

/** Lets the uid (and gid) search the secrets directory: chown as root, an ACL entry (x only) otherwise. */
export async function accessDir(dir: string, access: FileAccess, options: AccessOptions = {}): Promise<void> {
  if (access.uid === undefined) return;
  if (isRoot(options)) {
    const stat = await fsp.lstat(dir);
    if (!stat.isDirectory()) throw new DeliveryError(`${dir} is not a directory`);
    await fsp.chown(dir, access.uid, access.gid ?? -1);
    await fsp.chmod(dir, 0o500 | (access.gid !== undefined && (access.mode & 0o070) !== 0 ? 0o050 : 0));
    return;
  }
  await runSetfacl(['-m', aclSpec(access, 'dir'), '--', dir]);
}

/** Runs the setfacl on PATH; a missing one is named with the package that has it. Its stderr holds paths, no values. */
function runSetfacl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    builtin.childProcess().execFile('setfacl', args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(
          new DeliveryError(
            "input 'file-owner': setfacl was not found, and a runner that is not root needs it to let the uid read the files: install the `acl` package (apt-get install acl), or run the job as root (files are then chowned)",
          ),
        );
      }
      const why = String(stderr).trim().split('\n')[0] || error.message;
      reject(
        new DeliveryError(
          `input 'file-owner': setfacl failed (${why}); the file system of the secrets directory may not support POSIX ACLs`,
        ),
      );
    });
  });
}
