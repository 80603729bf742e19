// The private directory and the secret files: where they go (tmpfs or RUNNER_TEMP), their modes
// (0700 directories, 0600 files whatever the umask), the marker post trusts, and the exclusive
// create that refuses anything planted at a path (file, directory, symlink, dangling symlink).
import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  chooseBase,
  createPrivateDir,
  envFileText,
  fileId,
  isOnTmpfs,
  markerHash,
  ROOT_MARKER,
  ROOT_PREFIX,
  writeExclusive,
  writeSecretFiles,
  type RootMarker,
} from '../../../src/core/private-dir.ts';
import { DeliveryError } from '../../../src/core/errors.ts';
import type { Secret } from '../../../src/vault/fetch.ts';

const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-private-dir-'));
  made.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});
const secret = (name: string, value: string): Secret => ({
  name,
  envName: name.toUpperCase(),
  value,
  source: { kind: 'env', line: 1, envVar: 'X' },
});
const mode = (file: string): number => statSync(file).mode & 0o777;

// What this machine offers: the tests of the tmpfs choice need a usable /dev/shm, those of the
// fallback a temporary directory that is not tmpfs.
const SHM = await isOnTmpfs('/dev/shm');
const TMP_ON_DISK = !(await isOnTmpfs(os.tmpdir()));
const ROOT = process.getuid?.() === 0;

/** Each way something can already sit at a path, planted before the action gets there. */
const PLANTS: Array<[string, (at: string) => Promise<void>]> = [
  ['an existing file', (at) => fs.writeFile(at, 'planted')],
  ['an existing directory', (at) => fs.mkdir(at)],
  ['a symlink to a file', async (at) => (await fs.writeFile(`${at}.target`, 'x'), fs.symlink(`${at}.target`, at))],
  ['a symlink to a directory', async (at) => (await fs.mkdir(`${at}.target`), fs.symlink(`${at}.target`, at))],
  ['a dangling symlink', (at) => fs.symlink('/nonexistent/target', at)],
];

describe('writeExclusive', () => {
  it('creates a 0600 file even under a permissive umask', async () => {
    const file = path.join(tmp(), 'a');
    const old = process.umask(0);
    try {
      await writeExclusive(file, 'value-1');
    } finally {
      process.umask(old);
    }
    expect(mode(file)).toBe(0o600);
    expect(await fs.readFile(file, 'utf8')).toBe('value-1');
  });

  it.each(PLANTS)('refuses %s and leaves it untouched', async (_name, plant) => {
    const dir = tmp();
    const file = path.join(dir, 'secret');
    await plant(file);
    const before = await fs.lstat(file);
    const error = await writeExclusive(file, 'value-2').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeliveryError);
    expect((error as Error).message).toBe(`${file} already exists (file or symlink); refusing to overwrite or follow it`);
    const after = await fs.lstat(file);
    expect([after.ino, after.mtimeMs, after.mode]).toEqual([before.ino, before.mtimeMs, before.mode]);
    // Nothing written through the link either.
    for (const entry of await fs.readdir(dir)) {
      const stat = await fs.lstat(path.join(dir, entry));
      if (stat.isFile()) expect(await fs.readFile(path.join(dir, entry), 'utf8')).not.toContain('value-2');
    }
  });

  it('names the path and the reason when the file cannot be created', async () => {
    const file = path.join(tmp(), 'missing-parent', 'a');
    await expect(writeExclusive(file, 'value-3')).rejects.toThrow(new DeliveryError(`cannot create ${file} (ENOENT)`));
  });
});

describe('chooseBase', () => {
  it.runIf(SHM)('takes /dev/shm when it is a usable tmpfs', async () => {
    expect(await chooseBase({ RUNNER_TEMP: tmp() })).toEqual({ base: '/dev/shm', onTmpfs: true });
  });

  it('falls back to RUNNER_TEMP when the tmpfs candidate is missing, a file, or a symlink (not followed)', async () => {
    const runnerTemp = tmp();
    const dir = tmp();
    await fs.writeFile(path.join(dir, 'file'), '');
    await fs.symlink('/dev/shm', path.join(dir, 'link'));
    for (const candidate of [path.join(dir, 'missing'), path.join(dir, 'file'), path.join(dir, 'link')]) {
      expect(await chooseBase({ RUNNER_TEMP: runnerTemp }, candidate), candidate).toEqual({ base: runnerTemp, onTmpfs: false });
    }
  });

  it.runIf(TMP_ON_DISK)('falls back to RUNNER_TEMP when the candidate is a directory on disk', async () => {
    const runnerTemp = tmp();
    expect(await chooseBase({ RUNNER_TEMP: runnerTemp }, tmp())).toEqual({ base: runnerTemp, onTmpfs: false });
  });

  // Root may write anywhere, so as root the check runs in a child as nobody (setpriv), on a copy
  // of src/core that nobody can read wherever the checkout sits.
  it.runIf(SHM)('falls back to RUNNER_TEMP when the tmpfs is not writable by this user', async () => {
    const closed = await fs.mkdtemp(path.join('/dev/shm', 'ps-private-dir-test-'));
    made.push(closed);
    await fs.chmod(closed, 0o500);
    const runnerTemp = tmp();
    if (!ROOT) {
      expect(await chooseBase({ RUNNER_TEMP: runnerTemp }, closed)).toEqual({ base: runnerTemp, onTmpfs: false });
      return;
    }
    const copy = tmp();
    await fs.cp(path.resolve('src/core'), path.join(copy, 'core'), { recursive: true });
    await fs.chmod(copy, 0o755);
    const script = `const { chooseBase } = await import(${JSON.stringify(path.join(copy, 'core/private-dir.ts'))});
process.stdout.write(JSON.stringify(await chooseBase({ RUNNER_TEMP: ${JSON.stringify(runnerTemp)} }, ${JSON.stringify(closed)})));`;
    const out = execFileSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
      { encoding: 'utf8', cwd: '/' },
    );
    expect(JSON.parse(out)).toEqual({ base: runnerTemp, onTmpfs: false });
  });

  it('with neither, says there is nowhere private to write', async () => {
    await expect(chooseBase({}, path.join(tmp(), 'missing'))).rejects.toThrow(
      new DeliveryError('no usable /dev/shm and RUNNER_TEMP is not set: nowhere private to write secrets'),
    );
  });
});

describe('createPrivateDir', () => {
  it('makes a fresh 0700 root (pipeline-secrets-*) and 0700 secrets directory in RUNNER_TEMP on the fallback', async () => {
    const runnerTemp = tmp();
    const old = process.umask(0);
    let dir;
    try {
      dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, undefined, path.join(tmp(), 'missing'));
    } finally {
      process.umask(old);
    }
    expect(path.dirname(dir.root)).toBe(runnerTemp);
    expect(path.basename(dir.root).startsWith(ROOT_PREFIX)).toBe(true);
    expect(dir.secretsDir).toBe(path.join(dir.root, 'secrets'));
    expect([mode(dir.root), mode(dir.secretsDir)]).toEqual([0o700, 0o700]);
    expect(dir).toMatchObject({ userSecretsDir: false, onTmpfs: false });
    // Two runs never share a root.
    const again = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, undefined, path.join(tmp(), 'missing'));
    expect(again.root).not.toBe(dir.root);
  });

  it.runIf(SHM)('on /dev/shm, says the files are in memory', async () => {
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, undefined);
    made.push(dir.root);
    expect(dir.root.startsWith('/dev/shm/')).toBe(true);
    expect(dir.onTmpfs).toBe(true);
  });

  it('writes the marker post trusts: 0600, tied to these directories, its sha256 returned', async () => {
    const life = { expires: '2030-01-01T00:00:00.000Z', vault: { url: 'https://vault.example:8200' } };
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, undefined, path.join(tmp(), 'missing'), life);
    const file = path.join(dir.root, ROOT_MARKER);
    const text = await fs.readFile(file, 'utf8');
    expect(mode(file)).toBe(0o600);
    expect(markerHash(text)).toBe(dir.marker);
    const marker = JSON.parse(text) as RootMarker;
    expect(marker).toEqual({
      v: 1,
      nonce: expect.stringMatching(/^[0-9a-f]{64}$/),
      root: dir.root,
      rootId: fileId(await fs.lstat(dir.root, { bigint: true })),
      secretsDir: dir.secretsDir,
      secretsDirId: fileId(await fs.lstat(dir.secretsDir, { bigint: true })),
      userSecretsDir: false,
      ...life,
    });
    // A fresh nonce each time: a marker of one root proves nothing about another.
    const other = await createPrivateDir({ RUNNER_TEMP: tmp() }, undefined, path.join(tmp(), 'missing'), life);
    expect(other.marker).not.toBe(dir.marker);
  });

  it("takes a user's secrets-dir that does not exist yet, made 0700, on disk unless its file system says otherwise", async () => {
    const userDir = path.join(tmp(), 'mine');
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, userDir, path.join(tmp(), 'missing'));
    expect(dir.secretsDir).toBe(userDir);
    expect(dir.userSecretsDir).toBe(true);
    expect(mode(userDir)).toBe(0o700);
    expect(dir.onTmpfs).toBe(!TMP_ON_DISK);
  });

  it.runIf(SHM && TMP_ON_DISK)('a user secrets-dir on disk is not on tmpfs, even when the private root is', async () => {
    const userDir = path.join(tmp(), 'mine');
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, userDir);
    made.push(dir.root);
    expect(dir.root.startsWith('/dev/shm/')).toBe(true);
    expect(dir.onTmpfs).toBe(false);
  });

  it.runIf(SHM)('a user secrets-dir on tmpfs is reported as such', async () => {
    const userDir = path.join('/dev/shm', `ps-private-dir-test-${process.pid}-${Date.now()}`);
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, userDir, path.join(tmp(), 'missing'));
    made.push(dir.root, userDir);
    expect(dir.onTmpfs).toBe(true);
  });

  it.each(PLANTS)('refuses a secrets-dir that is %s, naming the input, and leaves nothing behind', async (_name, plant) => {
    const runnerTemp = tmp();
    const userDir = path.join(tmp(), 'mine');
    await plant(userDir);
    await expect(createPrivateDir({ RUNNER_TEMP: runnerTemp }, userDir, path.join(tmp(), 'missing'))).rejects.toThrow(
      new DeliveryError(
        `input 'secrets-dir': ${userDir} already exists; give a path that does not exist yet (it is refused, never reused or followed)`,
      ),
    );
    expect(await fs.readdir(runnerTemp)).toEqual([]);
  });

  it('refuses a secrets-dir whose parent does not exist', async () => {
    const runnerTemp = tmp();
    const userDir = path.join(tmp(), 'no', 'mine');
    await expect(createPrivateDir({ RUNNER_TEMP: runnerTemp }, userDir, path.join(tmp(), 'missing'))).rejects.toThrow(
      new DeliveryError(`input 'secrets-dir': the parent directory of ${userDir} does not exist`),
    );
    expect(await fs.readdir(runnerTemp)).toEqual([]);
  });
});

describe('writeSecretFiles', () => {
  it('names every path before writing the first, then writes each value 0600 and the env-file', async () => {
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, undefined, path.join(tmp(), 'missing'));
    let existedAtPlan: boolean[] = [];
    let planned: string[] = [];
    const old = process.umask(0);
    let out;
    try {
      out = await writeSecretFiles(dir, [secret('a', 'one-value'), secret('b', 'two\nlines')], (files) => {
        planned = files;
        existedAtPlan = files.map((file) => statSync(file, { throwIfNoEntry: false }) !== undefined);
      });
    } finally {
      process.umask(old);
    }
    expect(planned).toEqual([path.join(dir.secretsDir, 'a'), path.join(dir.secretsDir, 'b'), path.join(dir.root, 'secrets.env')]);
    expect(existedAtPlan).toEqual([false, false, false]);
    expect(out.files).toEqual(planned);
    expect(await fs.readFile(path.join(dir.secretsDir, 'a'), 'utf8')).toBe('one-value');
    expect(await fs.readFile(path.join(dir.secretsDir, 'b'), 'utf8')).toBe('two\nlines');
    for (const file of out.files) expect(mode(file), file).toBe(0o600);
    // The env-file sits in the root, not in the directory mounted into containers.
    expect(out.envFile).toBe(path.join(dir.root, 'secrets.env'));
    expect(await fs.readFile(out.envFile, 'utf8')).toBe('A=one-value\n');
    expect(out.envFileSkipped).toEqual(['B']);
    expect((await fs.readdir(dir.secretsDir)).sort()).toEqual(['a', 'b']);
  });
});

describe('envFileText', () => {
  it('writes VAR=value lines as docker --env-file reads them, leaving out values with a line break', () => {
    expect(
      envFileText([
        { envName: 'A', value: 'x=y z' },
        { envName: 'B', value: 'cr\rhere' },
        { envName: 'C', value: '' },
        { envName: 'D', value: 'lf\n' },
      ]),
    ).toEqual({ text: 'A=x=y z\nC=\n', skipped: ['B', 'D'] });
  });
});
