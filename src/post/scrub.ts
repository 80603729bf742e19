// Workspace scrub, in post: a self-hosted runner keeps its workspace between jobs, so a value a step
// wrote there (an .npmrc holding the token, a debug dump) would outlive the job. The same engine as
// the leak scan finds every value in every encoding; `scrub` decides what happens to each file.
//
// Links. GITHUB_WORKSPACE itself may be a symlink (self-hosted runners often link the work dir to
// another disk): it is resolved (realpath) and the real tree is scrubbed, paths reported under the
// workspace as given. Inside the tree, symlinks are NOT followed, by decision: following one that
// points outside the workspace would let redact or delete change a file that is not the job's (a
// planted link to ~/.ssh/config, the tool cache); one that points inside needs no following, its
// target is scrubbed where it is. A link pointing outside is reported (its target was not scanned).
// A file with more than one hard link (st_nlink > 1) shares its bytes with a name elsewhere, maybe
// outside the workspace: redact never writes to it and reports it, not scrubbed; delete removes only
// the workspace's name (unlink never writes through) and reports that the other names keep it.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText } from '../core/errors.ts';
import { isPublicFile, readPublicFiles, readSideValues } from '../core/job-values.ts';
import type { Ledger } from '../core/ledger.ts';
import type { Runner } from '../core/runner.ts';
import type { ScrubMode } from '../inputs/main.ts';
import { buildPatterns } from '../scan/patterns.ts';
import { scan, type Finding } from '../scan/scanner.ts';
import type { CleanupReport } from './summary.ts';

export interface ScrubbedFile {
  /** Under the workspace as given (not its realpath). */
  readonly path: string;
  readonly findings: number;
  readonly names: string[];
  readonly action: string;
  /** The value is gone from this file (false when reported, or left in an archive or a hard link). */
  readonly scrubbed: boolean;
}

export interface ScrubResult {
  readonly files: ScrubbedFile[];
  readonly problems: string[];
  /** Paths not scanned (a symlink out of the workspace, an unreadable file): also in problems. */
  readonly notScanned: number;
  readonly bytes: number;
}

/**
 * Post's scrub phase: the values to look for are the delivered files and the token, read before
 * they are deleted (remove.ts runs after this). Each file found is logged (a warning when the value
 * is left there); what could not be scanned is a problem.
 */
export async function scrubJobWorkspace(
  runner: Runner,
  ledger: Ledger,
  mode: ScrubMode,
  workspace: string | undefined,
): Promise<Pick<CleanupReport, 'scrubbed' | 'problems'>> {
  if (mode === 'off' || !workspace) return { scrubbed: undefined, problems: [] };
  const values: Array<{ name: string; value: string | Buffer }> = [];
  // A `pki` entry's certificate, CA and chain are public (a CA in the workspace is normal): not
  // looked for, when the file still holds what main wrote (core/job-values.ts).
  const publicFiles = ledger.root ? await readPublicFiles(ledger.root).catch(() => new Map()) : new Map();
  for (const file of ledger.files) {
    if (!ledger.secretsDir || path.dirname(file) !== ledger.secretsDir) continue;
    // As bytes: a decoded keystore is not text (scan/patterns.ts searches it and its base64 and hex).
    const value = await fs.readFile(file).catch(() => undefined);
    if (value !== undefined && !isPublicFile(publicFiles, path.basename(file), value)) values.push({ name: path.basename(file), value });
  }
  if (ledger.tokenFile) {
    const token = await fs.readFile(ledger.tokenFile, 'utf8').catch(() => undefined);
    if (token !== undefined) values.push({ name: 'vault-token', value: token });
  }
  // The values no file holds (a registry password given as an input, those the agent superseded).
  const side = ledger.root ? await readSideValues(ledger.root).catch(() => undefined) : undefined;
  for (const v of side?.values ?? []) if (!values.some((known) => known.value === v.value)) values.push(v);
  if (values.length === 0) return { scrubbed: undefined, problems: [] };
  try {
    const result = await scrubWorkspace(workspace, values, mode);
    for (const file of result.files) {
      const message = `scrub: ${file.names.join(', ')} found ${file.findings} time(s) in ${path.relative(workspace, file.path) || file.path}: ${file.action}`;
      if (mode === 'report' || !file.scrubbed) runner.warning(message);
      else runner.info(message);
    }
    const problems = result.problems.map((p) => `scrub: ${p}`);
    if (result.notScanned > 0)
      problems.push(`scrub: the workspace was not scanned completely: ${result.notScanned} path(s) not scanned (listed above)`);
    // "no secret value found" only when everything was scanned; otherwise the problems say what was not.
    return { scrubbed: result.files.length === 0 && result.notScanned > 0 ? undefined : result.files, problems };
  } catch (error) {
    return { scrubbed: undefined, problems: [`scrub: ${errorText(error)}`] };
  }
}

const LEFT_IN_ARCHIVE = 'left (inside an archive: cannot redact in place)';

export async function scrubWorkspace(
  workspace: string,
  values: ReadonlyArray<{ name: string; value: string | Buffer }>,
  mode: ScrubMode,
): Promise<ScrubResult> {
  const patterns = buildPatterns(values.filter((v) => v.value.length > 0));
  const lengths = new Map(patterns.map((p) => [`${p.name}\0${p.encoding}`, p.bytes.length]));
  const byFile = new Map<string, Finding[]>();
  const problems: string[] = [];
  let notScanned = 0;
  let bytes = 0;
  // The real tree (see the header); a workspace that cannot be resolved is not scanned at all.
  let real: string;
  try {
    real = await fs.realpath(workspace);
  } catch (error) {
    throw new Error(`the workspace ${workspace} was not scanned: cannot resolve it (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause: error,
    });
  }
  const shown = (p: string): string => (p === real || p.startsWith(`${real}/`) ? workspace + p.slice(real.length) : p);
  const links: string[] = [];
  const onSkip = (p: string, what: 'symlink' | 'special'): void => {
    if (what === 'symlink') links.push(p);
  };
  for await (const event of scan([real], patterns, { followSymlinks: false, onSkip })) {
    if (event.kind === 'finding') {
      const file = event.path.split('!')[0] ?? event.path;
      byFile.set(file, [...(byFile.get(file) ?? []), event]);
    } else if (event.kind === 'done') bytes = event.bytes;
    else {
      if (event.kind !== 'notice') notScanned += 1;
      problems.push(`${shown(event.path)}: ${event.message}`);
    }
  }
  for (const link of links) {
    const target = await fs.realpath(link).catch(() => undefined);
    // Dangling: nothing to scan. Inside the tree: the target is scanned (and scrubbed) where it is.
    if (target === undefined || target === real || target.startsWith(`${real}/`)) continue;
    notScanned += 1;
    problems.push(`${shown(link)}: a symlink to ${target}, outside the workspace: not followed, its target not scanned`);
  }
  const files: ScrubbedFile[] = [];
  for (const [file, findings] of byFile) {
    const names = [...new Set(findings.map((f) => f.name))];
    const inArchive = findings.some((f) => f.path.includes('!'));
    let action = 'reported';
    let scrubbed = false;
    try {
      if (mode === 'delete') {
        const nlink = (await fs.lstat(file)).nlink;
        await fs.unlink(file);
        action = 'deleted';
        scrubbed = nlink <= 1;
        if (!scrubbed)
          action = `deleted this name, but left under its ${nlink - 1} other hard link(s) (not scrubbed: the value stays on disk)`;
      } else if (mode === 'redact' && !inArchive) {
        const nlink = await redact(
          file,
          findings.map((f) => [f.offset, lengths.get(`${f.name}\0${f.encoding}`) ?? 0] as const),
        );
        scrubbed = nlink <= 1;
        action = scrubbed
          ? 'redacted'
          : `left (a hard link: ${nlink} names share these bytes, some maybe outside the workspace; not written through, not scrubbed)`;
      } else if (mode === 'redact') {
        action = LEFT_IN_ARCHIVE;
      }
    } catch (error) {
      problems.push(`${shown(file)}: ${mode} failed (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    files.push({ path: shown(file), findings: findings.length, names, action, scrubbed });
  }
  return { files, problems, notScanned, bytes };
}

/**
 * Overwrites each occurrence in place with '*' of the same length: every other byte stays put.
 * Returns the file's link count; when it is more than 1 nothing is written (see the header).
 */
async function redact(file: string, spans: ReadonlyArray<readonly [number, number]>): Promise<number> {
  // O_NOFOLLOW: the scan never follows symlinks, and neither does the write.
  const handle = await fs.open(file, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    // Checked on the open file, not the path: a link made between the scan and now counts too.
    const st = await handle.stat();
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    if (st.nlink > 1) return st.nlink;
    for (const [offset, length] of spans) {
      if (length > 0) await handle.write(Buffer.alloc(length, 0x2a), 0, length, offset);
    }
    return st.nlink;
  } finally {
    await handle.close();
  }
}
