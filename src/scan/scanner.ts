// The leak scan: files, directories and globs in, findings out. A finding names the secret and the
// encoding it was found in, with the path (archive members joined with '!'), the byte offset in the
// (decompressed) member or file and, for text (no NUL in the first 8 KiB), the 1-based line. Never
// the value, nor anything around it.
//
// Inputs are files, directories (walked recursively, in name order) and globs (fs.glob, relative to
// cwd; a glob that matches nothing is not an error, it is listed in `done.unmatched`). Paths are
// reported as given. A path that does not exist or cannot be opened is an `error` event and the scan
// goes on. Symlinks are not followed by default: met while walking they are skipped and counted in
// `done.skipped` (as are fifos, sockets and devices) and passed to onSkip; named as an input, they
// are an `error` (an input is never skipped silently). With followSymlinks they are resolved and
// scanned under the link's path, each real file and directory once, with bounds on the links
// followed and the bytes reached through them (see expand). Each file is scanned once however many
// inputs name it.
//
// Memory is bounded: files and members are streamed in chunks (1 MiB by default) and only
// maxLen - 1 bytes are carried between chunks. When matches of the same secret overlap and one lies inside the
// other (the whole value and one of its lines, a base64 core inside the full base64), only the
// enclosing one is reported.
//
// Line numbers cost nothing until something is found in a file on disk (or a member stored
// contiguously in one, such as the files of an uncompressed tar): the bytes before the first finding
// are then read again and counted, and the rest of that file is counted as it passes (see Lines).
// Decompressed streams count newlines as they pass.
import type { Dirent, Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_LIMITS, errorCode, openFile, Reader, ScanStop, walk, type Blob, type InputContext, type Limits } from './containers.ts';
import { Matcher } from './matcher.ts';
import type { Pattern } from './patterns.ts';

export interface Finding {
  kind: 'finding';
  /** File path, then archive members joined with '!', e.g. 'dist/app.tar.gz!etc/npmrc'. */
  path: string;
  /** Byte offset within the (decompressed) member or file. */
  offset: number;
  /** 1-based line, for text files (no NUL in the first 8 KiB). */
  line?: number;
  name: string;
  encoding: string;
}

export interface Done {
  kind: 'done';
  /** Input files opened. */
  files: number;
  /** Bytes scanned (decompressed content of files and members). */
  bytes: number;
  elapsedMs: number;
  /** Archive members scanned. */
  members: number;
  /** Symlinks and special files left alone. */
  skipped: number;
  /** Symlinks followed (followSymlinks). */
  followed: number;
  /** Globs that matched nothing (not an error here: the caller decides). */
  unmatched: string[];
}

export type ScanEvent =
  | Finding
  | { kind: 'error'; path: string; message: string }
  | { kind: 'limit'; path: string; message: string }
  /** Worth telling, but nothing went unscanned (a symlink loop not walked twice, a dangling link). */
  | { kind: 'notice'; path: string; message: string }
  | Done;

export interface Progress {
  files: number;
  bytes: number;
  elapsedMs: number;
}

export interface ScanOptions {
  /** Archive levels opened (default 3). */
  maxDepth?: number;
  onProgress?: (p: Progress) => void;
  /** At most one onProgress call per interval (default 1000 ms). */
  progressIntervalMs?: number;
  /**
   * Follow symlinks (default false). Off: a symlink met while walking is skipped and counted (and
   * passed to onSkip), one named as an input is an `error` (never skipped silently). On: links are
   * resolved and their targets scanned under the link's path, bounded by `links`.
   */
  followSymlinks?: boolean;
  /** Bounds on following symlinks. */
  links?: Partial<LinkLimits>;
  /** Called for each symlink or special file skipped while walking. */
  onSkip?: (path: string, what: 'symlink' | 'special') => void;
  /** Bytes per file read (default 1 MiB). */
  chunkSize?: number;
  /** Other bounds for containers (see containers.ts). */
  limits?: Partial<Limits>;
  /** Base for relative inputs and globs (default process.cwd()). */
  cwd?: string;
  /** Byte streams to scan after the paths, e.g. `docker save IMAGE` read as it is produced. */
  streams?: ReadonlyArray<{ path: string; open: () => AsyncIterable<Buffer> }>;
}

export interface LinkLimits {
  /** Symlinks followed per scan. Default 10,000. */
  maxLinks: number;
  /** Bytes of files reached through symlinks (on disk, before decompression). Default 4 GiB. */
  maxLinkedBytes: number;
}

export const DEFAULT_LINK_LIMITS: Readonly<LinkLimits> = { maxLinks: 10_000, maxLinkedBytes: 4 * 2 ** 30 };

const TEXT_SNIFF = 8192;

/** Scans inputs (files, directories, globs) for the patterns. Ends with one `done` event. */
export async function* scan(
  inputs: ReadonlyArray<string>,
  patterns: ReadonlyArray<Pattern>,
  opts: ScanOptions = {},
): AsyncGenerator<ScanEvent> {
  const started = performance.now();
  const usable = patterns.filter((p) => p.bytes.length > 0);
  const matcher = new Matcher(usable.map((p) => p.bytes));
  const chunkSize = Math.max(1, Math.floor(opts.chunkSize ?? 2 ** 20));
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  if (opts.maxDepth !== undefined) limits.maxDepth = opts.maxDepth;
  const cwd = opts.cwd ?? process.cwd();
  const interval = opts.progressIntervalMs ?? 1000;
  const state = { files: 0, bytes: 0, members: 0, skipped: 0, followed: 0, linkedBytes: 0, unmatched: [] as string[] };
  const linkLimits: LinkLimits = { ...DEFAULT_LINK_LIMITS, ...opts.links };
  let lastProgress = started;
  const progress = (): void => {
    if (!opts.onProgress) return;
    const now = performance.now();
    if (now - lastProgress < interval) return;
    lastProgress = now;
    opts.onProgress({ files: state.files, bytes: state.bytes, elapsedMs: now - started });
  };

  async function* leaf(blob: Blob): AsyncGenerator<ScanEvent> {
    if (blob.depth > 0) state.members += 1;
    const head = await blob.reader.peek(TEXT_SNIFF);
    const lines = head.indexOf(0) >= 0 ? undefined : new Lines(matcher.maxLen, blob.disk);
    const found: number[] = [];
    const stream = matcher.stream((offset, index) => {
      found.push(offset, index);
    });
    const maxEnd = new Map<string, number>();
    async function* emit(): AsyncGenerator<Finding> {
      for (let i = 0; i < found.length; i += 2) {
        const offset = found[i] as number;
        const pattern = usable[found[i + 1] as number] as Pattern;
        const end = offset + pattern.bytes.length;
        if (end <= (maxEnd.get(pattern.name) ?? -1)) continue; // inside a match of the same secret
        maxEnd.set(pattern.name, end);
        const finding: Finding = { kind: 'finding', path: blob.path, offset, name: pattern.name, encoding: pattern.encoding };
        if (lines) finding.line = await lines.lineAt(offset);
        yield finding;
      }
      found.length = 0;
    }
    for (;;) {
      const chunk = await blob.reader.next();
      if (chunk === null) break;
      lines?.feed(chunk);
      stream.write(chunk);
      state.bytes += chunk.length;
      if (found.length > 0) yield* emit();
      progress();
    }
    stream.end();
    if (found.length > 0) yield* emit();
  }

  for await (const item of expand(inputs, cwd, state, opts, linkLimits)) {
    if (typeof item !== 'string') {
      yield item;
      continue;
    }
    let opened: Awaited<ReturnType<typeof openFile>>;
    try {
      opened = await openFile(path.resolve(cwd, item), item, chunkSize);
    } catch (e) {
      yield { kind: 'error', path: item, message: `cannot open (${errorCode(e)})` };
      continue;
    }
    state.files += 1;
    const ctx: InputContext = { limits, inputSize: opened.size, inflated: 0, chunkSize };
    try {
      yield* walk<ScanEvent>(opened.blob, ctx, leaf);
    } catch (e) {
      if (e instanceof ScanStop) yield { kind: e.kind, path: e.path, message: e.message };
      else yield { kind: 'error', path: item, message: `internal error (${e instanceof Error ? `${e.name}: ${e.message}` : 'unknown'})` };
    } finally {
      await opened.close().catch(() => {});
    }
    progress();
  }
  for (const input of opts.streams ?? []) {
    state.files += 1;
    let iterator: AsyncIterator<Buffer> | undefined;
    const pull = async (): Promise<Buffer | null> => {
      try {
        iterator ??= input.open()[Symbol.asyncIterator]();
        const step = await iterator.next();
        return step.done ? null : step.value;
      } catch (e) {
        throw new ScanStop('error', input.path, 0, `read failed (${e instanceof Error ? e.message : errorCode(e)})`);
      }
    };
    // A stream has no size on disk: the per-stream ratio bound still guards against bombs.
    const ctx: InputContext = { limits, inputSize: Number.MAX_SAFE_INTEGER, inflated: 0, chunkSize };
    try {
      yield* walk<ScanEvent>({ path: input.path, reader: new Reader(pull), depth: 0 }, ctx, leaf);
    } catch (e) {
      if (e instanceof ScanStop) yield { kind: e.kind, path: e.path, message: e.message };
      else
        yield {
          kind: 'error',
          path: input.path,
          message: `internal error (${e instanceof Error ? `${e.name}: ${e.message}` : 'unknown'})`,
        };
    } finally {
      await iterator?.return?.().catch(() => {});
    }
    progress();
  }
  yield {
    kind: 'done',
    files: state.files,
    bytes: state.bytes,
    elapsedMs: performance.now() - started,
    members: state.members,
    skipped: state.skipped,
    followed: state.followed,
    unmatched: state.unmatched,
  };
}

/** Collects all events of a scan (convenience for tests and small inputs). */
export async function scanAll(
  inputs: ReadonlyArray<string>,
  patterns: ReadonlyArray<Pattern>,
  opts: ScanOptions = {},
): Promise<ScanEvent[]> {
  const out: ScanEvent[] = [];
  for await (const event of scan(inputs, patterns, opts)) out.push(event);
  return out;
}

// ---------------------------------------------------------------------------------------------
// inputs

function countNewlines(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  let at = b.indexOf(10, from);
  while (at >= 0 && at < to) {
    n += 1;
    at = b.indexOf(10, at + 1);
  }
  return n;
}

/**
 * Line numbers for one text blob. Counting newlines of every chunk costs about as much as matching
 * on log-like text, so blobs that are a range of a file on disk start lazy: nothing is counted until
 * the first finding, then the bytes before the current chunk are read again from disk and counted
 * once, and from there on chunks are counted as they pass. Other blobs (decompressed streams) count
 * from the start. A match may start up to maxLen - 1 bytes before the current chunk, so a copy of
 * the bytes just before it is kept (readers reuse a chunk's memory later on).
 */
class Lines {
  private readonly keep: number;
  private readonly disk: { file: string; start: number } | undefined;
  private counting: boolean;
  private tail: Buffer = Buffer.alloc(0); // the last `keep` bytes before the current chunk
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;
  private chunkLines = 0; // newlines before the current chunk (while counting)

  constructor(maxLen: number, disk?: { file: string; start: number }) {
    this.keep = Math.max(1, maxLen);
    this.disk = disk;
    this.counting = disk === undefined;
  }

  feed(chunk: Buffer): void {
    const prev = this.chunk;
    if (prev.length >= this.keep) this.tail = Buffer.from(prev.subarray(prev.length - this.keep));
    else if (prev.length > 0) {
      const joined = Buffer.concat([this.tail, prev]);
      this.tail = joined.subarray(Math.max(0, joined.length - this.keep));
    }
    if (this.counting) this.chunkLines += countNewlines(prev, 0, prev.length);
    this.chunkStart += prev.length;
    this.chunk = chunk;
  }

  async lineAt(offset: number): Promise<number> {
    if (!this.counting) {
      this.chunkLines = this.disk ? await countOnDisk(this.disk.file, this.disk.start, this.chunkStart) : 0;
      this.counting = true;
    }
    if (offset >= this.chunkStart) return this.chunkLines + countNewlines(this.chunk, 0, offset - this.chunkStart) + 1;
    const tailStart = this.chunkStart - this.tail.length;
    const tailLines = this.chunkLines - countNewlines(this.tail, 0, this.tail.length);
    return tailLines + countNewlines(this.tail, 0, Math.max(0, offset - tailStart)) + 1;
  }
}

/** Newlines in bytes [start, start + length) of a file, read in 4 MiB pieces one ahead. */
async function countOnDisk(file: string, start: number, length: number): Promise<number> {
  if (length <= 0) return 0;
  const handle = await fs.open(file, 'r');
  try {
    const size = Math.min(4 * 2 ** 20, length);
    const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    let lines = 0;
    let at = 0;
    let turn = 0;
    const readPiece = (pos: number): Promise<{ bytesRead: number; buffer: Buffer }> =>
      handle.read(bufs[turn++ % 2] as Buffer, 0, Math.min(size, length - pos), start + pos);
    let next: Promise<{ bytesRead: number; buffer: Buffer }> | undefined = readPiece(0);
    while (next) {
      const { bytesRead, buffer } = await next;
      if (bytesRead === 0) break;
      at += bytesRead;
      next = at < length ? readPiece(at) : undefined;
      lines += countNewlines(buffer, 0, bytesRead);
    }
    await next?.catch(() => undefined);
    return lines;
  } finally {
    await handle.close();
  }
}

const GLOB_MAGIC = /[*?[{]/;

/** Directories a followed symlink is never walked into: endless or blocking pseudo-files. */
const SYSTEM_DIRS = ['/proc', '/sys', '/dev'];

interface ExpandState {
  skipped: number;
  followed: number;
  linkedBytes: number;
  unmatched: string[];
}

/**
 * Files to scan, in order, once each; errors for inputs that do not exist.
 *
 * Each file and directory is visited once by its real path (plain entries: the real path of their
 * input plus the relative path, as a plain walk never crosses a link; followed links: realpath).
 * With followSymlinks, a link met while walking is followed after the rest of its input, so content
 * is reported under its plain path where it has one; a link into a directory already walked is not
 * walked again (that is what bounds a loop and a fan of links to the same tree) and one to an
 * ancestor of itself is reported as a loop.
 */
async function* expand(
  inputs: ReadonlyArray<string>,
  cwd: string,
  state: ExpandState,
  opts: Pick<ScanOptions, 'followSymlinks' | 'onSkip'>,
  limits: LinkLimits,
): AsyncGenerator<string | ScanEvent> {
  const seen = new Set<string>();
  const follow = opts.followSymlinks === true;
  const pending: Array<{ display: string; link: string }> = [];
  let overLinks = 0;
  const skip = (display: string, what: 'symlink' | 'special'): void => {
    state.skipped += 1;
    opts.onSkip?.(display, what);
  };

  async function* visit(display: string, real: string, info: Stats | Dirent, viaLink: boolean): AsyncGenerator<string | ScanEvent> {
    if (seen.has(real)) return;
    seen.add(real);
    if (info.isSymbolicLink()) {
      if (follow) pending.push({ display, link: real });
      else skip(display, 'symlink');
    } else if (info.isFile()) {
      if (viaLink) {
        // Bytes reached through links are bounded: a link to /usr or to a disk of build caches would
        // otherwise scan far more than the artifacts the step named.
        const size = 'size' in info ? info.size : ((await fs.stat(real).catch(() => undefined))?.size ?? 0);
        if (state.linkedBytes + size > limits.maxLinkedBytes) {
          yield {
            kind: 'limit',
            path: display,
            message: `not scanned: files reached through symlinks passed the ${limits.maxLinkedBytes}-byte bound`,
          };
          return;
        }
        state.linkedBytes += size;
      }
      yield display;
    } else if (info.isDirectory()) {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(real, { withFileTypes: true });
      } catch (e) {
        yield { kind: 'error', path: display, message: `cannot read directory (${errorCode(e)})` };
        return;
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) yield* visit(path.join(display, entry.name), path.join(real, entry.name), entry, viaLink);
    } else skip(display, 'special');
  }

  /** Follows the links met so far (and those met behind them), each once. */
  async function* drain(): AsyncGenerator<string | ScanEvent> {
    for (let item = pending.shift(); item !== undefined; item = pending.shift()) {
      const { display, link } = item;
      if (state.followed >= limits.maxLinks) {
        if (overLinks++ === 0)
          yield {
            kind: 'limit',
            path: display,
            message: `symlink not followed, not scanned: the bound of ${limits.maxLinks} symlinks was reached`,
          };
        continue;
      }
      let target: string;
      let st: Stats;
      try {
        target = await fs.realpath(link);
        st = await fs.stat(target);
      } catch (e) {
        const code = errorCode(e);
        if (code === 'ELOOP') yield { kind: 'error', path: display, message: 'symlink loop (ELOOP): not scanned' };
        else if (code === 'ENOENT') yield { kind: 'notice', path: display, message: 'dangling symlink: nothing to scan' };
        else yield { kind: 'error', path: display, message: `cannot follow the symlink (${code}): not scanned` };
        continue;
      }
      state.followed += 1;
      if (SYSTEM_DIRS.some((d) => target === d || target.startsWith(`${d}/`))) {
        yield { kind: 'limit', path: display, message: `symlink to ${target}: not followed into a system directory, not scanned` };
        continue;
      }
      if (st.isDirectory()) {
        const from = path.relative(target, path.dirname(link));
        if (from === '' || (!from.startsWith('..') && !path.isAbsolute(from))) {
          yield { kind: 'notice', path: display, message: `symlink loop: points to ${target}, which holds the link; not followed again` };
          continue;
        }
      }
      yield* visit(display, target, st, true);
    }
    if (overLinks > 1)
      yield {
        kind: 'limit',
        path: '(symlinks)',
        message: `${overLinks - 1} more symlink(s) not followed, not scanned (bound of ${limits.maxLinks})`,
      };
    overLinks = 0;
  }

  /** A named input or a glob match: lstat'ed, its real path found, links followed or reported. */
  async function* top(display: string, st: Stats): AsyncGenerator<string | ScanEvent> {
    const abs = path.resolve(cwd, display);
    if (st.isSymbolicLink()) {
      if (!follow) {
        state.skipped += 1;
        // Named by the user: leaving it unscanned silently would read as "clean".
        yield { kind: 'error', path: display, message: 'a symlink: not followed, not scanned (name its target instead)' };
        return;
      }
      // The link's own location, real, for the loop check.
      const parent = await fs.realpath(path.dirname(abs)).catch(() => path.dirname(abs));
      pending.push({ display, link: path.join(parent, path.basename(abs)) });
    } else {
      const real = await fs.realpath(abs).catch(() => abs);
      yield* visit(display, real, st, false);
    }
    yield* drain();
  }

  for (const input of inputs) {
    let st: Stats | undefined;
    let code = '';
    try {
      st = await fs.lstat(path.resolve(cwd, input));
    } catch (e) {
      code = errorCode(e);
    }
    if (st) {
      yield* top(input, st);
      continue;
    }
    if (GLOB_MAGIC.test(input)) {
      const matches: string[] = [];
      for await (const match of globFiles(input, cwd)) matches.push(match);
      matches.sort();
      if (matches.length === 0) state.unmatched.push(input);
      for (const match of matches) {
        let info: Stats;
        try {
          info = await fs.lstat(path.resolve(cwd, match));
        } catch (e) {
          yield { kind: 'error', path: match, message: `cannot stat (${errorCode(e)})` };
          continue;
        }
        yield* top(match, info);
      }
      continue;
    }
    yield { kind: 'error', path: input, message: code === 'ENOENT' ? 'no such file or directory' : `cannot stat (${code})` };
  }
}

/** Paths matching a glob, relative to cwd when the glob is relative. fs.glob when there is one. */
async function* globFiles(pattern: string, cwd: string): AsyncGenerator<string> {
  if (typeof fs.glob === 'function') {
    yield* fs.glob(pattern, { cwd });
    return;
  }
  const re = globToRegExp(pattern);
  const magicAt = pattern.search(GLOB_MAGIC);
  const base = pattern.slice(0, pattern.lastIndexOf('/', magicAt) + 1);
  async function* walkDir(dir: string): AsyncGenerator<string> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(path.resolve(cwd, dir || '.'), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = dir + entry.name;
      if (re.test(rel)) yield rel;
      if (entry.isDirectory()) yield* walkDir(`${rel}/`);
    }
  }
  yield* walkDir(base);
}

/** A small glob: `**` (any depth), `*`, `?`, `[...]`, `{a,b}`; `/` separates. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:[^/]*/)*' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        const body = glob
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = close;
      }
    } else if (c === '{') {
      braces += 1;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces -= 1;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
