// The ledger: what main created, saved as step state for post. State is a plaintext file the runner
// also debug-logs, so it holds paths, lease ids and flags, never a value; the Vault token post must
// revoke waits in a 0600 file of the private directory instead.
// Post treats the ledger as untrusted input (checkLedger): it acts only on paths under the private
// root it can prove main created, and sends a token only to the Vault address main was given.
// About 390 lines: checkLedger's proof is one chain of checks, each leaning on the one before, and
// reads best in one place.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileId, markerHash, ROOT_MARKER, ROOT_PREFIX, type RootMarker } from './private-dir.ts';
import type { Runner } from './runner.ts';

export interface Ledger {
  root?: string;
  /** sha256 of the root's marker file content (private-dir.ts RootMarker): ties this state to that root. */
  marker?: string;
  secretsDir?: string;
  userSecretsDir?: boolean;
  /** Every file main wrote or was about to write (in the root, secrets/ and rendered/). */
  files: string[];
  /**
   * Rendered files main wrote in the workspace (`templates` with `path=`), each recorded before it
   * was written and its device:inode once it exists: post deletes only the file that still has it.
   */
  workspaceFiles?: Array<{ path: string; id?: string }>;
  /** File holding a token this run created; post revokes it (unless it is a batch token). */
  tokenFile?: string;
  /** The created token is a batch token: not revocable, it ends at tokenExpires. */
  tokenBatch?: boolean;
  tokenExpires?: string;
  vaultUrl?: string;
  namespace?: string;
  /** Every lease id Vault issued to this run, recorded as each answer arrived. */
  leases: string[];
  /** When each lease ends unless renewed (ISO time, from its TTL at issue): what post reports for one it cannot revoke. */
  leaseExpires?: Record<string, string>;
  /**
   * Certificates `pki` entries issued, recorded as each answer arrived: post revokes each by serial
   * (`<mount>/revoke`) unless its lease was revoked. The serial is masked like a secret, so it waits
   * in a 0600 file of the private root (serialFile), never in state.
   */
  certs?: LedgerCert[];
  /** The per-job DOCKER_CONFIG directory, and the registries a login was attempted for. */
  dockerConfig?: string;
  registries?: string[];
  /** The renewal agent's pid (post stops it first). */
  agentPid?: number;
}

export interface LedgerCert {
  readonly name: string;
  readonly mount: string;
  readonly serialFile: string;
  /** When it expires (ISO time): what post reports for one it cannot revoke. */
  readonly expires?: string;
  /** The lease it came with (a role with generate_lease): revoking the lease revokes the certificate. */
  readonly leaseId?: string;
}

const KEY = 'ledger';

export function emptyLedger(): Ledger {
  return { files: [], leases: [] };
}

export class LedgerWriter {
  readonly ledger: Ledger = emptyLedger();
  private readonly runner: Runner;
  constructor(runner: Runner) {
    this.runner = runner;
  }
  /** Saves after every change, so a main step that dies half-way still tells post what to remove. */
  update(change: (ledger: Ledger) => void): void {
    change(this.ledger);
    this.runner.saveState(KEY, JSON.stringify(this.ledger));
  }
}

export function loadLedger(runner: Runner): Ledger | undefined {
  const raw = runner.getState(KEY);
  if (raw === '') return undefined;
  const parsed = JSON.parse(raw) as Partial<Ledger>;
  return { ...parsed, files: parsed.files ?? [], leases: parsed.leases ?? [] };
}

/** What post knows for itself, to check the ledger against: from its inputs and the runner. */
export interface LedgerExpected {
  /** The Vault address the `url` input (or VAULT_ADDR) gives, normalised as main records it. */
  readonly vaultUrl: string | undefined;
  /** The `namespace` input, without leading or trailing slashes. */
  readonly namespace: string | undefined;
  /** RUNNER_TEMP: with /dev/shm, where main creates its private root. */
  readonly runnerTemp: string | undefined;
}

export interface CheckedLedger {
  /** What post may act on: only what it could prove main created. */
  readonly ledger: Ledger;
  /** What was refused, each named by its path or address (never a file's content). */
  readonly refused: string[];
}

/** How many refused paths one warning names before it counts the rest. */
const NAMED = 10;
const MARKER_MAX_BYTES = 4096;
/**
 * A directory that no longer exists, and one that is no longer the directory main created: symbols,
 * so that neither can be mistaken for a path or a refusal reason (both strings).
 */
const GONE = Symbol('gone');
const REPLACED = Symbol('replaced');

/**
 * Checks the ledger against what post can prove (state is untrusted: a step can tamper with it):
 * - the root: a directory (not a symlink) named pipeline-secrets-* directly in /dev/shm or
 *   RUNNER_TEMP, owned by this user, mode 0700, whose marker's sha256 is the ledger's and whose
 *   marker names this root and its device:inode. What the marker holds is then trusted (nobody
 *   else can write the 0700 root): the secrets directory, whether the user named it, its identity;
 * - every file, the token file and the docker config: their parent directory, resolved with
 *   realpath (no symlink escapes), is the root or the proven secrets directory (the token file and
 *   docker config: the root);
 * - the Vault address and namespace: the ones the `url` (or VAULT_ADDR) and `namespace` inputs give,
 *   which the runner hands post again; no token or lease id is sent anywhere else.
 * A root that no longer exists is a post that ran before (or a main that got nowhere): no path is
 * kept, and that is not a refusal.
 */
export async function checkLedger(raw: Ledger, expected: LedgerExpected): Promise<CheckedLedger> {
  const refused: string[] = [];
  const out: Ledger = { files: [], leases: strings(raw.leases) };
  if (raw.tokenBatch === true) out.tokenBatch = true;
  if (typeof raw.tokenExpires === 'string') out.tokenExpires = raw.tokenExpires;
  if (raw.leaseExpires !== null && typeof raw.leaseExpires === 'object') {
    out.leaseExpires = Object.fromEntries(Object.entries(raw.leaseExpires).filter(([, v]) => typeof v === 'string'));
  }
  if (Array.isArray(raw.registries)) out.registries = strings(raw.registries);

  if (raw.vaultUrl !== undefined) {
    const { vaultUrl: url, namespace } = expected;
    if (raw.vaultUrl !== url) {
      refused.push(
        `the Vault address ${String(raw.vaultUrl)}: not the address the 'url' input (or VAULT_ADDR) gives (${url ?? 'none'}); no token or lease id was sent to it`,
      );
    } else if ((raw.namespace ?? undefined) !== namespace) {
      refused.push(
        `the Vault namespace '${String(raw.namespace)}': not the one the 'namespace' input gives ('${namespace ?? ''}'); no token or lease id was sent`,
      );
    } else {
      out.vaultUrl = url;
      if (namespace !== undefined) out.namespace = namespace;
    }
  }

  const proven = await provenRoot(raw, expected.runnerTemp);
  const paths = pathEntries(raw);
  // Workspace files are proven one by one by their device:inode (post/remove.ts), but only for a
  // root that is main's or already gone (a post that ran before may not have reached them all).
  const workspaceFiles = workspaceEntries(raw.workspaceFiles);
  if (workspaceFiles.length > 0 && (proven === GONE || (typeof proven === 'object' && proven !== null)))
    out.workspaceFiles = workspaceFiles;
  if (proven === GONE) return { ledger: out, refused };
  if (typeof proven === 'string') {
    refused.push(`the private directory ${String(raw.root)}: ${proven}; nothing in it or named by the saved state was touched`);
    if (paths.length > 0) refused.push(`${named(paths)}: no proven private directory to hold them; left in place`);
    if (raw.agentPid !== undefined)
      refused.push(`the renewal agent pid ${String(raw.agentPid)}: no proven private directory; not signalled`);
    return { ledger: out, refused };
  }
  if (proven === undefined) {
    if (paths.length > 0) refused.push(`${named(paths)}: the saved state names no private directory; left in place`);
    return { ledger: out, refused };
  }

  const { marker, realRoot } = proven;
  out.root = marker.root;
  out.userSecretsDir = marker.userSecretsDir;
  // Each directory of ours by its real path (what a path must resolve into) and as main named it
  // (how post names it on: the files it removes, and what scrub reads, keep main's spelling).
  const dirs: Dir[] = [{ real: realRoot, named: marker.root }];
  // rendered/ (main/render.ts): a directory main made in the root, by its real path (no symlink).
  dirs.push({ real: path.join(realRoot, 'rendered'), named: path.join(marker.root, 'rendered') });
  if (raw.secretsDir !== undefined && raw.secretsDir !== marker.secretsDir) {
    refused.push(`the secrets directory ${String(raw.secretsDir)}: not the one main created (${marker.secretsDir}); that one is used`);
  }
  const secrets = await sameDir(marker.secretsDir, marker.secretsDirId);
  if (secrets === REPLACED) {
    refused.push(`the secrets directory ${marker.secretsDir}: replaced since main created it; nothing in it was touched`);
  } else if (secrets !== GONE) {
    out.secretsDir = marker.secretsDir;
    dirs.push({ real: secrets, named: marker.secretsDir });
  }

  const outside: string[] = [];
  for (const file of Array.isArray(raw.files) ? raw.files : []) {
    const resolved = await inside(file, dirs, [marker.root, marker.secretsDir, path.join(marker.root, 'rendered')]);
    if (resolved === undefined) outside.push(String(file));
    else if (resolved !== GONE && !out.files.includes(resolved)) out.files.push(resolved);
  }
  if (outside.length > 0) refused.push(`${named(outside, 'file path')}: not in the private directory main created; left in place`);

  const certs = await provenCerts(raw.certs, dirs.slice(0, 1), refused);
  if (certs.length > 0) out.certs = certs;

  if (raw.tokenFile !== undefined) {
    const resolved = await inside(raw.tokenFile, dirs.slice(0, 1));
    if (resolved === undefined)
      refused.push(`the token file ${String(raw.tokenFile)}: not in the private directory main created; not read, no token sent`);
    else if (resolved !== GONE) out.tokenFile = resolved;
  }

  if (raw.dockerConfig !== undefined) {
    // main creates it as <root>/docker; a symlink there is not a directory of ours.
    const resolved = await inside(raw.dockerConfig, dirs.slice(0, 1));
    const ours = resolved !== undefined && resolved !== GONE && path.basename(resolved) === 'docker';
    const stat = ours ? await fs.lstat(resolved).catch(() => undefined) : undefined;
    if (ours && stat?.isDirectory()) out.dockerConfig = resolved;
    else if (!(resolved === GONE || (ours && stat === undefined))) {
      refused.push(
        `the docker config ${String(raw.dockerConfig)}: not the one main created in its private directory; no docker logout run with it`,
      );
    }
  }

  if (typeof raw.agentPid === 'number' && Number.isSafeInteger(raw.agentPid) && raw.agentPid > 1) out.agentPid = raw.agentPid;
  else if (raw.agentPid !== undefined) refused.push(`the renewal agent pid ${String(raw.agentPid)}: not a process id; not signalled`);
  return { ledger: out, refused };
}

/**
 * The root, proven main's by the checks of checkLedger; GONE when it does not exist; a reason
 * when it is refused; undefined when the ledger names none.
 */
async function provenRoot(
  raw: Ledger,
  runnerTemp: string | undefined,
): Promise<{ marker: RootMarker; realRoot: string } | typeof GONE | string | undefined> {
  const root = raw.root;
  if (root === undefined) return undefined;
  if (typeof root !== 'string' || !path.isAbsolute(root) || !path.basename(root).startsWith(ROOT_PREFIX)) {
    return 'not a Pipeline Secrets directory';
  }
  const bases = ['/dev/shm', runnerTemp].filter((b): b is string => b !== undefined && b !== '').map((b) => path.resolve(b));
  if (!bases.includes(path.dirname(path.resolve(root)))) return `not directly in ${bases.join(' or ')}, where main creates it`;
  let stat;
  try {
    stat = await fs.lstat(root, { bigint: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? GONE : `cannot inspect it (${code ?? 'error'})`;
  }
  if (!stat.isDirectory()) return 'not a directory (a symlink or a file)';
  if (process.platform !== 'win32') {
    if (process.getuid !== undefined && stat.uid !== BigInt(process.getuid())) return 'not owned by this user';
    if ((stat.mode & 0o777n) !== 0o700n) return 'not mode 0700';
  }
  if (typeof raw.marker !== 'string') return 'the saved state holds no marker for it';
  let text: string;
  try {
    const handle = await fs.open(path.join(root, ROOT_MARKER), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      const markerStat = await handle.stat();
      if (!markerStat.isFile() || markerStat.size > MARKER_MAX_BYTES) return 'its marker is not a small regular file';
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    return `it carries no readable marker (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (markerHash(text) !== raw.marker) return 'its marker is not the one the saved state names';
  let marker: RootMarker;
  try {
    marker = JSON.parse(text) as RootMarker;
  } catch {
    return 'its marker is not readable';
  }
  if (
    marker.v !== 1 ||
    typeof marker.secretsDir !== 'string' ||
    !path.isAbsolute(marker.secretsDir) ||
    typeof marker.secretsDirId !== 'string' ||
    typeof marker.userSecretsDir !== 'boolean'
  ) {
    return 'its marker is not readable';
  }
  // A copied marker names the directory it was made for, by path and by device:inode.
  if (marker.root !== root || marker.rootId !== fileId(stat)) return 'its marker was made for another directory';
  return { marker, realRoot: await fs.realpath(root) };
}

/** The real path of `dir` when it is still the directory `id` names; GONE or REPLACED otherwise. */
async function sameDir(dir: string, id: string): Promise<string | typeof GONE | typeof REPLACED> {
  try {
    const stat = await fs.lstat(dir, { bigint: true });
    if (!stat.isDirectory() || fileId(stat) !== id) return REPLACED;
    return await fs.realpath(dir);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? GONE : REPLACED;
  }
}

interface Dir {
  readonly real: string;
  readonly named: string;
}

/**
 * `file` in the directory of `dirs` its parent directory resolves (realpath) into, spelled as main
 * named that directory; the last component is kept as it is (a symlink there is removed, never
 * followed). GONE when its parent is one of `ours` (as main named them) and no longer exists;
 * undefined when it is not ours.
 */
async function inside(
  file: unknown,
  dirs: readonly Dir[],
  ours: readonly string[] = dirs.map((d) => d.named),
): Promise<string | typeof GONE | undefined> {
  if (typeof file !== 'string' || !path.isAbsolute(file) || file.endsWith('/') || file.endsWith(path.sep)) return undefined;
  const name = path.basename(file);
  if (name === '' || name === '.' || name === '..' || name === ROOT_MARKER) return undefined;
  let parent: string;
  try {
    parent = await fs.realpath(path.dirname(file));
  } catch (error) {
    // A directory of ours (as main named it) that is gone took the file with it; any other is not ours.
    const gone = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return gone && ours.includes(path.dirname(file)) ? GONE : undefined;
  }
  const dir = dirs.find((d) => d.real === parent);
  return dir === undefined ? undefined : path.join(dir.named, name);
}

/**
 * The certificates whose serial file lies in the root (like the token file) and whose mount is a
 * Vault path: post sends `<mount>/revoke` only to the proven Vault address, with the serial the file holds.
 */
async function provenCerts(value: unknown, root: readonly Dir[], refused: string[]): Promise<LedgerCert[]> {
  const out: LedgerCert[] = [];
  for (const c of Array.isArray(value) ? (value as unknown[]) : []) {
    const cert = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
    const { name, mount, expires, leaseId } = cert;
    const file = await inside(cert.serialFile, root);
    const mountOk = typeof mount === 'string' && mount !== '' && mount.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
    if (file === GONE) continue;
    if (typeof name !== 'string' || !mountOk || file === undefined) {
      refused.push(
        `the certificate record ${JSON.stringify(name ?? null)}: not a serial file in the private directory main created at a Vault mount; not revoked`,
      );
      continue;
    }
    out.push({
      name,
      mount,
      serialFile: file,
      ...(typeof expires === 'string' ? { expires } : {}),
      ...(typeof leaseId === 'string' ? { leaseId } : {}),
    });
  }
  return out;
}

/** The well-formed workspace entries: an absolute path, and the device:inode when main recorded one. */
function workspaceEntries(value: unknown): Array<{ path: string; id?: string }> {
  if (!Array.isArray(value)) return [];
  return value.flatMap((e: unknown) => {
    const entry = (typeof e === 'object' && e !== null ? e : {}) as { path?: unknown; id?: unknown };
    if (typeof entry.path !== 'string' || !path.isAbsolute(entry.path)) return [];
    return [{ path: entry.path, ...(typeof entry.id === 'string' ? { id: entry.id } : {}) }];
  });
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Every path the ledger names besides the root, for a refusal that covers them all. */
function pathEntries(raw: Ledger): string[] {
  const out = Array.isArray(raw.files) ? raw.files.map(String) : [];
  for (const w of workspaceEntries(raw.workspaceFiles)) out.push(w.path);
  for (const entry of [raw.tokenFile, raw.dockerConfig, raw.userSecretsDir ? raw.secretsDir : undefined]) {
    if (entry !== undefined) out.push(String(entry));
  }
  return out;
}

function named(paths: readonly string[], what = 'path'): string {
  const shown = paths.slice(0, NAMED).join(', ');
  return `${paths.length} ${what}(s) ${shown}${paths.length > NAMED ? ` and ${paths.length - NAMED} more` : ''}`;
}
