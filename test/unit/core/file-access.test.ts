// file-owner / file-mode: input validation, the ACL entries, and what a runner that is not root
// does (modes by descriptor, setfacl from PATH, a stand-in script here). Applying them for real on
// /dev/shm (chown as root, setfacl as other uids) is test/e2e/file-access.test.ts: it needs root and
// the acl package.
import { promises as fs, mkdtempSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { accessDir, accessHandle, aclFiles, aclSpec, type FileAccess } from '../../../src/core/file-access.ts';
import { DeliveryError } from '../../../src/core/errors.ts';

const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-file-access-'));
  made.push(dir);
  return dir;
}
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

describe('aclSpec', () => {
  it('gives ACL entries with only the named uid and gid', () => {
    expect(aclSpec({ uid: 1000, mode: 0o400 }, 'file')).toBe('u:1000:r--');
    expect(aclSpec({ uid: 1000, gid: 50, mode: 0o640 }, 'file')).toBe('u:1000:rw-,g:50:r--');
    expect(aclSpec({ uid: 1000, gid: 50, mode: 0o400 }, 'file')).toBe('u:1000:r--');
    expect(aclSpec({ uid: 1000, gid: 50, mode: 0o440 }, 'dir')).toBe('u:1000:--x,g:50:--x');
  });
});

describe('as a user who cannot chown', () => {
  const NOT_ROOT = { root: false };

  it.each([
    ['file-mode 0440 alone', { mode: 0o440 }, 0o440],
    ['file-mode 0600 alone', { mode: 0o600 }, 0o600],
    // With a uid, the runner keeps only the owner bits; the uid gets its access through the ACL.
    ['1000 with 0400', { uid: 1000, mode: 0o400 }, 0o400],
    ['1000:50 with 0640', { uid: 1000, gid: 50, mode: 0o640 }, 0o600],
  ] as Array<[string, FileAccess, number]>)('%s: sets the mode on the file by its descriptor', async (_name, access, expected) => {
    const file = path.join(tmp(), 'a');
    const handle = await fs.open(file, 'wx', 0o600);
    try {
      await accessHandle(handle, access, NOT_ROOT);
    } finally {
      await handle.close();
    }
    expect(statSync(file).mode & 0o777).toBe(expected);
  });

  /** A setfacl on PATH that records its arguments, or fails like setfacl on a file system without ACLs. */
  async function fakeSetfacl(fails = false): Promise<string> {
    const bin = tmp();
    const log = path.join(bin, 'args');
    const body = fails
      ? `printf 'setfacl: %s: Operation not supported\\nsecond line\\n' "$4" >&2; exit 1`
      : `for a in "$@"; do printf '%s\n' "$a" >> '${log}'; done`;
    await fs.writeFile(path.join(bin, 'setfacl'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    vi.stubEnv('PATH', bin);
    return log;
  }

  it('asks setfacl for the uid and gid entries only, files first and then the directory', async () => {
    const log = await fakeSetfacl();
    const access = { uid: 1000, gid: 50, mode: 0o640 };
    await aclFiles(['/s/a', '/s/-b'], access, NOT_ROOT);
    await accessDir('/s', access, NOT_ROOT);
    expect((await fs.readFile(log, 'utf8')).split('\n')).toEqual([
      '-m',
      'u:1000:rw-,g:50:r--',
      '--',
      '/s/a',
      '/s/-b',
      '-m',
      'u:1000:--x,g:50:--x',
      '--',
      '/s',
      '',
    ]);
  });

  it('runs no setfacl without a uid or without files', async () => {
    const log = await fakeSetfacl();
    await aclFiles(['/s/a'], { mode: 0o400 }, NOT_ROOT);
    await aclFiles([], { uid: 1000, mode: 0o400 }, NOT_ROOT);
    await accessDir('/s', { mode: 0o400 }, NOT_ROOT);
    expect(statSync(log, { throwIfNoEntry: false })).toBeUndefined();
  });

  it('says which package to install when setfacl is missing, naming the input', async () => {
    vi.stubEnv('PATH', tmp());
    await expect(aclFiles(['/s/a'], { uid: 1000, mode: 0o400 }, NOT_ROOT)).rejects.toThrow(
      /^input 'file-owner': setfacl was not found.*install the `acl` package \(apt-get install acl\), or run the job as root/,
    );
  });

  it("gives setfacl's first line of complaint when it fails", async () => {
    await fakeSetfacl(true);
    await expect(accessDir('/s', { uid: 1000, mode: 0o400 }, NOT_ROOT)).rejects.toThrow(
      new DeliveryError(
        "input 'file-owner': setfacl failed (setfacl: /s: Operation not supported); the file system of the secrets directory may not support POSIX ACLs",
      ),
    );
  });
});
