// What the leak scan needs to know every value a job was given, beyond the secret files:
// - the job-wide list of private roots: each Pipeline Secrets main step appends its root to the env
//   var PIPELINE_SECRETS_ROOTS (GITHUB_ENV, like PIPELINE_SECRETS_DIR). An env var rather than an
//   index file in RUNNER_TEMP: the runner scopes it to this job and carries it step to step, so a
//   later job on a reused self-hosted runner never inherits another job's list, nothing is left to
//   clean up, and a step can narrow it with its own `env:`. It holds paths only, never a value.
// - the side-values file of each root: the values that have no file of their own (a registry
//   password given as an input, the Vault token, every value the renewal agent superseded), 0600 in
//   the private root, NEXT TO the secrets directory and never inside it: a container that mounts the
//   secrets directory must not see them. JSON lines, appended, so the agent adds to what main wrote.
// - the public-files file of each root: the names of the files main wrote for a `pki` entry's
//   certificate, CA and chain (public by nature: a CA baked into an image is normal), each with the
//   sha256 of what main wrote, so post's scrub and the scan do not look for them. By name AND
//   content, and only what main wrote: a user's secret that happens to be called `x.ca.pem`, or a
//   file rewritten since, is not in it (or no longer matches) and stays a secret. It holds no value.
// Both are outside input to whoever reads them (a step can set any env var, and write files of its
// user): a root is read only once it is proven ours (proveRoot), a file only through O_NOFOLLOW and
// only when it is a regular file of this user.
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileId, ROOT_MARKER, ROOT_PREFIX, type RootMarker } from './private-dir.ts';

/** Env var holding every private root of this job's Pipeline Secrets steps, path.delimiter-separated. */
export const ROOTS_ENV = 'PIPELINE_SECRETS_ROOTS';
/** The side-values file, directly in the private root. */
export const SIDE_VALUES_FILE = 'side-values';
/** The public-files file, directly in the private root. */
export const PUBLIC_FILES_FILE = 'public-files';

/** Where a side value came from: the scan's summary counts them by this. */
export type SideSource = 'registry-password' | 'vault-token' | 'superseded';

export interface SideValue {
  /** What a finding calls it (a name, never the value). */
  readonly name: string;
  readonly source: SideSource;
  /** Bytes for a value that is not text (a decoded keystore the agent replaced): kept as base64. */
  readonly value: string | Buffer;
}

const MARKER_MAX_BYTES = 4096;
/** A side-values file bigger than this is not ours (the agent appends a few hundred bytes per rotation). */
const SIDE_MAX_BYTES = 64 * 1024 * 1024;

/** The list with `root` appended, each root once. */
export function withRoot(list: string | undefined, root: string): string {
  const roots = splitRoots(list);
  if (!roots.includes(root)) roots.push(root);
  return roots.join(path.delimiter);
}

/** The entries of a PIPELINE_SECRETS_ROOTS value, blank ones dropped, each once. */
export function splitRoots(list: string | undefined): string[] {
  return [...new Set((list ?? '').split(path.delimiter).map((r) => r.trim()))].filter((r) => r !== '');
}

/** Opens `file` for appending, creating it 0600; never through a symlink, only a regular file of ours. */
async function openAppend(file: string): Promise<fs.FileHandle> {
  const handle = await fs.open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    await checkOurs(handle);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function checkOurs(handle: fs.FileHandle): Promise<number> {
  const stat = await handle.stat();
  if (!stat.isFile()) throw new Error('not a regular file');
  if (process.getuid !== undefined && stat.uid !== process.getuid()) throw new Error('not owned by this user');
  if ((stat.mode & 0o077) !== 0) throw new Error('readable or writable by others than its owner');
  return stat.size;
}

/** Appends values to the side-values file of `root` (created 0600 on first use). */
export async function appendSideValues(root: string, values: readonly SideValue[]): Promise<void> {
  const lines = values
    .filter((v) => v.value.length > 0)
    .map((v) => {
      const value = typeof v.value === 'string' ? { value: v.value } : { value: v.value.toString('base64'), bytes: true };
      return `${JSON.stringify({ name: v.name, source: v.source, ...value })}\n`;
    });
  if (lines.length === 0) return;
  const handle = await openAppend(path.join(root, SIDE_VALUES_FILE));
  try {
    // One write: with O_APPEND the lines of one call never interleave with another writer's.
    await handle.write(lines.join(''));
  } finally {
    await handle.close();
  }
}

/** The text of `file` (undefined when there is none): only a regular 0600 file of this user. */
async function readOurs(file: string): Promise<string | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    if ((await checkOurs(handle)) > SIDE_MAX_BYTES) throw new Error(`larger than ${SIDE_MAX_BYTES} bytes`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * The values of the side-values file of `root` (none when it has none). A line that is not one of
 * ours is counted in `unreadable`, never echoed (it may hold a value).
 */
export async function readSideValues(root: string): Promise<{ values: SideValue[]; unreadable: number }> {
  const text = await readOurs(path.join(root, SIDE_VALUES_FILE));
  if (text === undefined) return { values: [], unreadable: 0 };
  const values: SideValue[] = [];
  let unreadable = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const v = JSON.parse(line) as { name?: unknown; source?: unknown; value?: unknown; bytes?: unknown };
      if (typeof v.name !== 'string' || typeof v.value !== 'string' || !SOURCES.includes(v.source as SideSource)) throw new Error();
      const value = v.bytes === true ? Buffer.from(v.value, 'base64') : v.value;
      values.push({ name: v.name, source: v.source as SideSource, value });
    } catch {
      unreadable++;
    }
  }
  return { values, unreadable };
}

function sha256(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Records files main wrote to the secrets directory whose content is public (a certificate, a CA, a chain). */
export async function appendPublicFiles(root: string, files: ReadonlyArray<{ name: string; value: string | Buffer }>): Promise<void> {
  if (files.length === 0) return;
  const handle = await openAppend(path.join(root, PUBLIC_FILES_FILE));
  try {
    await handle.write(files.map((f) => `${JSON.stringify({ name: f.name, sha256: sha256(f.value) })}\n`).join(''));
  } finally {
    await handle.close();
  }
}

/** The public files of `root`: a name and what its content must hash to. Lines not ours are ignored (they only keep a file a secret). */
export async function readPublicFiles(root: string): Promise<PublicFiles> {
  const text = await readOurs(path.join(root, PUBLIC_FILES_FILE));
  const files = new Map<string, Set<string>>();
  for (const line of (text ?? '').split('\n')) {
    try {
      const v = JSON.parse(line) as { name?: unknown; sha256?: unknown };
      if (typeof v.name === 'string' && typeof v.sha256 === 'string') files.set(v.name, (files.get(v.name) ?? new Set()).add(v.sha256));
    } catch {
      // Not ours: nothing is made public by it.
    }
  }
  return files;
}

/** File name -> the sha256 of the content main wrote under it. */
export type PublicFiles = ReadonlyMap<string, ReadonlySet<string>>;

/** Whether the file `name` of the secrets directory, holding `content`, is one main wrote as public. */
export function isPublicFile(files: PublicFiles, name: string, content: string | Buffer): boolean {
  return files.get(name)?.has(sha256(content)) === true;
}

const SOURCES: readonly SideSource[] = ['registry-password', 'vault-token', 'superseded'];

/** A private root proven ours, and what its marker says (trusted: nobody else can write the 0700 root). */
export interface ProvenRoot {
  readonly root: string;
  readonly secretsDir: string;
  readonly userSecretsDir: boolean;
}

/**
 * `root` when it is provably a private root this user's main step made: an absolute path named
 * pipeline-secrets-* directly in one of `bases` (/dev/shm, RUNNER_TEMP), a directory (not a
 * symlink) owned by this user, mode 0700, whose marker (a small regular file, not followed) names
 * this directory by path and device:inode; and its secrets directory, still the one the marker
 * names. Otherwise the reason, naming no content.
 */
export async function proveRoot(root: string, bases: readonly string[]): Promise<ProvenRoot | string> {
  if (!path.isAbsolute(root) || path.normalize(root) !== root || !path.basename(root).startsWith(ROOT_PREFIX))
    return 'not a Pipeline Secrets private directory (an absolute pipeline-secrets-* path)';
  const real = bases.filter((b) => b !== '').map((b) => path.resolve(b));
  if (!real.includes(path.dirname(root))) return `not directly in ${real.join(' or ')}, where Pipeline Secrets creates it`;
  let stat;
  try {
    stat = await fs.lstat(root, { bigint: true });
  } catch (error) {
    return `cannot inspect it (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (!stat.isDirectory()) return 'not a directory (a symlink or a file)';
  if (process.getuid !== undefined && stat.uid !== BigInt(process.getuid())) return 'not owned by this user';
  if ((stat.mode & 0o777n) !== 0o700n) return 'not mode 0700';
  let marker: RootMarker;
  try {
    const handle = await fs.open(path.join(root, ROOT_MARKER), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const markerStat = await handle.stat();
      if (!markerStat.isFile() || markerStat.size > MARKER_MAX_BYTES) return 'its marker is not a small regular file';
      marker = JSON.parse(await handle.readFile('utf8')) as RootMarker;
    } finally {
      await handle.close();
    }
  } catch (error) {
    return `it carries no readable marker (${(error as NodeJS.ErrnoException).code ?? 'not JSON'})`;
  }
  if (marker.v !== 1 || marker.root !== root || marker.rootId !== fileId(stat)) return 'its marker was made for another directory';
  if (typeof marker.secretsDir !== 'string' || !path.isAbsolute(marker.secretsDir)) return 'its marker names no secrets directory';
  const dir = await fs.lstat(marker.secretsDir, { bigint: true }).catch(() => undefined);
  if (!dir?.isDirectory() || fileId(dir) !== marker.secretsDirId) return `its secrets directory ${marker.secretsDir} is gone or replaced`;
  return { root, secretsDir: marker.secretsDir, userSecretsDir: marker.userSecretsDir === true };
}
