// file-owner / file-mode applied on /dev/shm: chown as root; setfacl as the runner's user, checked
// by reading as other uids through setpriv; including the agent's atomic rewrite. Needs root (and
// installs the acl package); input validation is test/unit/core/file-access.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeAtomic } from '../../src/agent/agent.ts';
import { writeSecretFiles, type PrivateDir } from '../../src/core/private-dir.ts';
import { accessDir, aclFiles, type FileAccess } from '../../src/core/file-access.ts';
import type { Secret } from '../../src/vault/fetch.ts';
import { ensurePackages } from '../support/services/install.ts';

const root = process.getuid?.() === 0;
let base: string;
beforeAll(async () => {
  if (root) await ensurePackages(['acl']);
});
afterEach(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

/** Whether `uid` can read `file` (a real process under setpriv). */
function canRead(uid: number, file: string): boolean {
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'cat', file], { stdio: 'ignore' }).status === 0;
}

/** A private root with a secrets directory on /dev/shm, as createPrivateDir makes it. */
function privateDir(): PrivateDir {
  base = mkdtempSync('/dev/shm/ps-file-access-');
  chmodSync(base, 0o700);
  const secretsDir = path.join(base, 'secrets');
  execFileSync('mkdir', ['-m', '700', secretsDir]);
  return { root: base, secretsDir, userSecretsDir: false, onTmpfs: true, marker: '' };
}

const secret = (name: string, value: string): Secret => ({ name, envName: name, value }) as unknown as Secret;

describe.skipIf(!root)('applying file-owner on /dev/shm', () => {
  it('as root: chowns the files and the secrets directory; the root, the env-file and other uids stay closed', async () => {
    const dir = privateDir();
    const access: FileAccess = { uid: 1000, gid: 1000, mode: 0o440 };
    await writeSecretFiles(dir, [secret('A', 'value-a')], () => {}, access);
    const file = path.join(dir.secretsDir, 'A');
    expect([statSync(file).uid, statSync(file).gid, statSync(file).mode & 0o777]).toEqual([1000, 1000, 0o440]);
    expect(statSync(dir.secretsDir).mode & 0o777).toBe(0o550);
    expect(statSync(dir.root).mode & 0o777).toBe(0o700);
    expect(canRead(1000, file)).toBe(false); // through the 0700 root on the host: only a bind mount reaches it
    expect(canRead(1000, path.join(dir.root, 'secrets.env'))).toBe(false);

    // The agent's rewrite: the new file gets the same owner and mode.
    await writeAtomic(file, 'value-a-2', access);
    expect([statSync(file).uid, statSync(file).gid, statSync(file).mode & 0o777]).toEqual([1000, 1000, 0o440]);
  });

  it('not root (the ACL path, as uid 2000): exactly uid 1000 reads, the agent`s rewrite keeps it', async () => {
    const dir = privateDir();
    // Reach the secrets directory directly: open the root for the test's own probe, as a bind mount would.
    chmodSync(dir.root, 0o711);
    const access: FileAccess = { uid: 1000, mode: 0o400 };
    // Run the ACL path for real as a non-root user: a child node under setpriv applies it to files it owns.
    chownSync(dir.secretsDir, 2000, 2000);
    const script = `
      import { promises as fs } from 'node:fs';
      import { writeExclusive } from ${JSON.stringify(path.resolve('src/core/private-dir.ts'))};
      import { accessDir, aclFiles } from ${JSON.stringify(path.resolve('src/core/file-access.ts'))};
      import { writeAtomic } from ${JSON.stringify(path.resolve('src/agent/agent.ts'))};
      const access = ${JSON.stringify(access)};
      const [dir] = process.argv.slice(-1);
      await writeExclusive(dir + '/A', 'value-a', access);
      await writeExclusive(dir + '/B', 'value-b');
      await aclFiles([dir + '/A'], access);
      await accessDir(dir, access);
      if (process.getuid() === 0) throw new Error('ran as root');
      await writeAtomic(dir + '/A', 'value-a-rewritten', access);
    `;
    const result = spawnSync(
      'setpriv',
      ['--reuid=2000', '--regid=2000', '--clear-groups', '--', process.execPath, '--input-type=module', '-e', script, dir.secretsDir],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
    const file = path.join(dir.secretsDir, 'A');
    expect(statSync(file).uid).toBe(2000);
    // With an ACL the group bits show the mask (r, from the uid's entry); others get nothing.
    expect(statSync(file).mode & 0o077).toBe(0o040);
    expect(canRead(1000, file)).toBe(true);
    expect(canRead(1001, file)).toBe(false);
    expect(canRead(1000, path.join(dir.secretsDir, 'B')), 'a secret not granted').toBe(false);
    expect(execFileSync('getfacl', ['-cpn', file], { encoding: 'utf8' }).trim().split('\n')).toEqual([
      'user::r--',
      'user:1000:r--',
      'group::---',
      'mask::r--',
      'other::---',
    ]);
  });

  it('not root without setfacl: one line naming the input and the package', async () => {
    const dir = privateDir();
    const saved = process.env.PATH;
    process.env.PATH = dir.root;
    try {
      await expect(aclFiles([dir.secretsDir], { uid: 1000, mode: 0o400 }, { root: false })).rejects.toThrow(
        /^input 'file-owner': setfacl was not found.*install the `acl` package/,
      );
    } finally {
      process.env.PATH = saved;
    }
    await expect(accessDir(path.join(dir.root, 'none'), { uid: 1000, mode: 0o400 }, { root: true })).rejects.toThrow();
  });
});
