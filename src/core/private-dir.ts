// Files first: each secret becomes one 0600 file in a private 0700 directory laid out like Swarm's
// /run/secrets/<name>, on tmpfs (/dev/shm) when usable so values never touch a disk, with the
// env-file for `docker run --env-file` and the marker post checks beside them in the private root.
import { createHash, randomBytes } from 'node:crypto';
import { constants, promises as fs, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { fileContent, isBinary, type Decoded } from './decode.ts';
import { DeliveryError } from './errors.ts';
import { accessDir, accessHandle, aclFiles, type FileAccess } from './file-access.ts';

/** Env var naming the secrets directory for later steps (a path, never a value). */
export const PRIVATE_DIR_ENV = 'PIPELINE_SECRETS_DIR';
export const ROOT_PREFIX = 'pipeline-secrets-';
/**
 * A marker in the private root: post acts on the paths in its state only if they lie under a root
 * that carries it, with content whose sha256 the state holds (see RootMarker).
 */
export const ROOT_MARKER = '.pipeline-secrets';

/**
 * The marker's content. State is untrusted input to post (a step can tamper with what post is
 * given), but the 0700 root is not writable by anyone else, so what main wrote there is what post
 * trusts: the random nonce ties the state (which holds only the sha256 of this content) to this
 * one root, and the device:inode of the root and the secrets directory tie the content to those
 * directories, so a copy of the marker in any other directory proves nothing.
 */
export interface RootMarker {
  readonly v: 1;
  readonly nonce: string;
  readonly root: string;
  readonly rootId: string;
  readonly secretsDir: string;
  readonly secretsDirId: string;
  readonly userSecretsDir: boolean;
  /**
   * When this root counts as a leftover of a job long gone (ISO time; stale-roots.ts): a later run
   * of main by the same user removes it after then, revoking the token in it at `vault`'s address.
   */
  readonly expires?: string;
  readonly vault?: { readonly url: string; readonly namespace?: string };
}

/** What a root's marker says about its end (stale-roots.ts rootLife). */
export type RootLife = Pick<RootMarker, 'expires' | 'vault'>;

/** device:inode, from a bigint stat (inode numbers can exceed 2^53). */
export function fileId(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}`;
}

export function markerHash(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}
const TMPFS_MAGIC = 0x01021994;

export interface PrivateDir {
  /** 0700 directory for everything that is not for containers (token, env-file, docker config). */
  readonly root: string;
  /** 0700 directory with one file per secret; mount it as /run/secrets. */
  readonly secretsDir: string;
  /** True when secretsDir was chosen by the user (`secrets-dir`) rather than made inside root. */
  readonly userSecretsDir: boolean;
  /** True when secretsDir itself is on tmpfs (a `secrets-dir` of the user's is looked at, not assumed). */
  readonly onTmpfs: boolean;
  /** sha256 of the root's marker content, for the ledger (see RootMarker). */
  readonly marker: string;
}

/** Whether `dir` is on a tmpfs (memory), by the file system it is on. */
export async function isOnTmpfs(dir: string): Promise<boolean> {
  try {
    return (await fs.statfs(dir)).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** /dev/shm when it is a usable tmpfs, else RUNNER_TEMP (macOS/Windows runners, small containers). */
export async function chooseBase(
  env: Readonly<Record<string, string | undefined>>,
  shm = '/dev/shm',
): Promise<{ base: string; onTmpfs: boolean }> {
  try {
    const stat = await fs.lstat(shm);
    const statfs = await fs.statfs(shm);
    if (stat.isDirectory() && statfs.type === TMPFS_MAGIC) {
      await fs.access(shm, constants.W_OK | constants.X_OK);
      return { base: shm, onTmpfs: true };
    }
  } catch {
    // not usable: fall through
  }
  const temp = env.RUNNER_TEMP;
  if (!temp) throw new DeliveryError('no usable /dev/shm and RUNNER_TEMP is not set: nowhere private to write secrets');
  return { base: temp, onTmpfs: false };
}

export async function createPrivateDir(
  env: Readonly<Record<string, string | undefined>>,
  userSecretsDir: string | undefined,
  shm?: string,
  life: RootLife = {},
): Promise<PrivateDir> {
  const { base, onTmpfs } = await chooseBase(env, shm);
  // mkdtemp: an unpredictable name created 0700 by us, so nothing can be planted there beforehand.
  const root = await fs.mkdtemp(path.join(base, ROOT_PREFIX));
  await fs.chmod(root, 0o700);
  let secretsDir = path.join(root, 'secrets');
  let marker: string;
  let secretsOnTmpfs = onTmpfs;
  try {
    if (userSecretsDir !== undefined) {
      secretsDir = path.resolve(userSecretsDir);
      await makeFreshDir(secretsDir, 'secrets-dir');
      // The user's directory is wherever the user put it: on disk unless its file system says otherwise.
      secretsOnTmpfs = await isOnTmpfs(secretsDir);
    } else {
      await fs.mkdir(secretsDir, { mode: 0o700 });
    }
    await fs.chmod(secretsDir, 0o700);
    marker = await writeRootMarker(root, secretsDir, userSecretsDir !== undefined, life);
  } catch (error) {
    // Nothing has been written yet: leave no empty directory behind.
    await fs.rm(root, { recursive: true, force: true });
    throw error;
  }
  return { root, secretsDir, userSecretsDir: userSecretsDir !== undefined, onTmpfs: secretsOnTmpfs, marker };
}

/** Writes the root's marker (O_EXCL, 0600) and returns the sha256 of its content. */
async function writeRootMarker(root: string, secretsDir: string, userSecretsDir: boolean, life: RootLife): Promise<string> {
  const content: RootMarker = {
    v: 1,
    nonce: randomBytes(32).toString('hex'),
    root,
    rootId: fileId(await fs.lstat(root, { bigint: true })),
    secretsDir,
    secretsDirId: fileId(await fs.lstat(secretsDir, { bigint: true })),
    userSecretsDir,
    ...life,
  };
  const text = `${JSON.stringify(content)}\n`;
  await writeExclusive(path.join(root, ROOT_MARKER), text);
  return markerHash(text);
}

/** Creates a directory that must not exist yet: refuses a planted file, directory or symlink. */
async function makeFreshDir(dir: string, input: string): Promise<void> {
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new DeliveryError(
        `input '${input}': ${dir} already exists; give a path that does not exist yet (it is refused, never reused or followed)`,
      );
    if (code === 'ENOENT') throw new DeliveryError(`input '${input}': the parent directory of ${dir} does not exist`);
    throw new DeliveryError(`input '${input}': cannot create ${dir} (${code ?? 'error'})`);
  }
  const stat = await fs.lstat(dir);
  if (!stat.isDirectory()) throw new DeliveryError(`input '${input}': ${dir} is not a directory after creating it`);
}

/**
 * Writes a new file with mode 0600. O_EXCL refuses anything already there, O_NOFOLLOW refuses a
 * symlink even a dangling one: a value is never written through a link planted by someone else.
 */
export async function writeExclusive(file: string, content: string | Buffer, access?: FileAccess): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP') {
      throw new DeliveryError(`${file} already exists (file or symlink); refusing to overwrite or follow it`);
    }
    throw new DeliveryError(`cannot create ${file} (${code ?? 'error'})`);
  }
  try {
    // No fchmod: the umask can only remove bits from 0600, never add any.
    await handle.writeFile(content);
    // `file-owner` / `file-mode` (file-access.ts): by descriptor, on the file just created.
    if (access) await accessHandle(handle, access);
  } finally {
    await handle.close();
  }
}

export interface Delivered {
  readonly files: string[];
  readonly envFile: string;
  readonly envFileSkipped: string[];
}

/**
 * Writes one file per secret and the env-file. `onPlan` records every path before the first is
 * written (one state write, not one per file) so post can remove them even if this step dies
 * half-way; the directory is fresh and ours, so a recorded path can only be a file we wrote.
 */
export async function writeSecretFiles(
  dir: PrivateDir,
  /** The delivered secrets: file name, env name, value and decoded bytes (vault/fetch.ts Secret fits). */
  secrets: ReadonlyArray<{ readonly name: string; readonly envName: string; readonly value: string; readonly decoded?: Decoded }>,
  onPlan: (files: string[]) => void,
  access?: FileAccess,
): Promise<Delivered> {
  const envFile = path.join(dir.root, 'secrets.env');
  const secretFiles = secrets.map((secret) => path.join(dir.secretsDir, secret.name));
  onPlan([...secretFiles, envFile]);
  await Promise.all(secrets.map((secret, index) => writeExclusive(secretFiles[index] as string, fileContent(secret), access)));
  if (access) {
    // The files first, the directory last: the uid can reach them only once each is what was asked.
    await aclFiles(secretFiles, access);
    await accessDir(dir.secretsDir, access);
  }
  const { text, skipped } = envFileText(secrets);
  await writeExclusive(envFile, text);
  return { files: [...secretFiles, envFile], envFile, envFileSkipped: skipped };
}

/**
 * The env-file's content: `docker run --env-file` takes VAR=value lines literally, so a value with a
 * line break cannot be written and is left out (its env name is returned in `skipped`); so is a
 * decoded value that is not text (no env var can hold it: core/decode.ts).
 */
export function envFileText(entries: ReadonlyArray<{ envName: string; value: string; decoded?: Pick<Decoded, 'text'> | undefined }>): {
  text: string;
  skipped: string[];
} {
  const skipped: string[] = [];
  const lines: string[] = [];
  for (const entry of entries) {
    if (isBinary(entry) || /[\r\n]/.test(entry.value)) skipped.push(entry.envName);
    else lines.push(`${entry.envName}=${entry.value}\n`);
  }
  return { text: lines.join(''), skipped };
}
