// The leak scan: files, directories and globs in, findings out. A finding names the secret and the
// encoding it was found in, with the path (archive members joined with '!'), the byte offset in the
// (decompressed) member or file and, for text (no NUL in the first 8 KiB), the 1-based line. Never
// the value, nor anything around it.
//
// Inputs are files, directories and globs, expanded by walk.ts (each file once however many inputs
// name it; symlinks not followed unless asked, and bounded when they are), then byte streams given
// by the caller (a `docker save` read as it is produced). Each is opened as a container if it is one
// (containers/), and every leaf is matched (matcher.ts) with line numbers for text (lines.ts). A
// path that does not exist or cannot be opened is an `error` event and the scan goes on; so is a
// container's limit or damage, reported by the path it concerns.
//
// Memory is bounded: files and members are streamed in chunks (1 MiB by default) and only
// maxLen - 1 bytes are carried between chunks. When matches of the same secret overlap and one lies
// inside the other (the whole value and one of its lines, a base64 core inside the full base64),
// only the enclosing one is reported.
import * as path from 'node:path';
import {
  DEFAULT_LIMITS,
  errorCode,
  openFile,
  Reader,
  ScanStop,
  walk,
  type Blob,
  type InputContext,
  type Limits,
} from './containers/index.ts';
import { linesFor, TEXT_SNIFF } from './lines.ts';
import { Matcher } from './matcher.ts';
import type { Pattern } from './patterns.ts';
import { DEFAULT_LINK_LIMITS, expand, type LinkLimits } from './walk.ts';

export { DEFAULT_LINK_LIMITS, type LinkLimits } from './walk.ts';

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
  /** Other bounds for containers (see containers/index.ts). */
  limits?: Partial<Limits>;
  /** Base for relative inputs and globs (default process.cwd()). */
  cwd?: string;
  /** Byte streams to scan after the paths, e.g. `docker save IMAGE` read as it is produced. */
  streams?: ReadonlyArray<{ path: string; open: () => AsyncIterable<Buffer> }>;
}

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
    const lines = linesFor(await blob.reader.peek(TEXT_SNIFF), matcher.maxLen, blob.disk);
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

  /** Walks one input to its end; whatever stops it is reported under its path, never thrown. */
  async function* input(blob: Blob, inputSize: number, close: () => Promise<unknown>): AsyncGenerator<ScanEvent> {
    state.files += 1;
    const ctx: InputContext = { limits, inputSize, inflated: 0, chunkSize };
    try {
      yield* walk<ScanEvent>(blob, ctx, leaf);
    } catch (e) {
      yield stopped(e, blob.path);
    } finally {
      await close().catch(() => {});
    }
    progress();
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
    yield* input(opened.blob, opened.size, opened.close);
  }
  for (const stream of opts.streams ?? []) {
    let iterator: AsyncIterator<Buffer> | undefined;
    const pull = async (): Promise<Buffer | null> => {
      try {
        iterator ??= stream.open()[Symbol.asyncIterator]();
        const step = await iterator.next();
        return step.done ? null : step.value;
      } catch (e) {
        throw new ScanStop('error', stream.path, 0, `read failed (${e instanceof Error ? e.message : errorCode(e)})`);
      }
    };
    // A stream has no size on disk: the per-stream ratio bound still guards against bombs.
    yield* input({ path: stream.path, reader: new Reader(pull), depth: 0 }, Number.MAX_SAFE_INTEGER, async () => iterator?.return?.());
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

/** The event for what stopped an input: a container's limit or damage as it said, anything else a bug. */
function stopped(e: unknown, path: string): ScanEvent {
  if (e instanceof ScanStop) return { kind: e.kind, path: e.path, message: e.message };
  return { kind: 'error', path, message: `internal error (${e instanceof Error ? `${e.name}: ${e.message}` : 'unknown'})` };
}
