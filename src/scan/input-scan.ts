// One input scanned to its end: a file on disk, a byte range of one (a tar member handed to another
// worker) or a byte stream, each opened as a container if it is one (containers/) and every leaf
// matched (matcher.ts) with line numbers for text (lines.ts). The scan's own thread (scanner.ts)
// and each worker thread (worker.ts) run this same code, so both find the same things.
//
// What stops an input (a container's limit or damage, a read failure) is an event under the path
// it concerns, never thrown. When matches of the same secret overlap and one lies inside the other
// (the whole value and one of its lines, a base64 core inside the full base64), only the enclosing
// one is reported.
import { errorCode, openFile, Reader, ScanStop, walk, type Blob, type InputContext, type Limits } from './containers/index.ts';
import { linesFor, TEXT_SNIFF } from './lines.ts';
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

/** A tar member on disk handed to another worker: scanned there as bytes [start, start + size) of file. */
export interface Range {
  file: string;
  /** The input file's path as reported (read failures are the file's). */
  display: string;
  start: number;
  size: number;
  /** The member's path as reported, e.g. 'image.tar!blobs/sha256/ab...'. */
  path: string;
  depth: number;
}

/** What an input scan adds to as it goes (the `done` event reports the sums). */
export interface Counters {
  files: number;
  bytes: number;
  members: number;
}

export interface InputScannerOptions {
  limits: Limits;
  chunkSize: number;
  /** Called after each chunk and input (the caller rate-limits). */
  progress?: (() => void) | undefined;
  /** Offered each tar member on disk big enough to be worth another worker; true when taken. */
  handOff?: ((member: Range) => boolean) | undefined;
}

export class InputScanner {
  readonly counters: Counters = { files: 0, bytes: 0, members: 0 };
  private readonly usable: Pattern[];
  private readonly matcher: Matcher;
  private readonly opts: InputScannerOptions;

  constructor(patterns: ReadonlyArray<Pattern>, opts: InputScannerOptions) {
    this.usable = patterns.filter((p) => p.bytes.length > 0);
    this.matcher = new Matcher(this.usable.map((p) => p.bytes));
    this.opts = opts;
  }

  /** A file on disk: `abs` opened, reported as `display`; one that cannot be opened is an `error`. */
  async *file(abs: string, display: string): AsyncGenerator<ScanEvent> {
    let opened: Awaited<ReturnType<typeof openFile>>;
    try {
      opened = await openFile(abs, display, this.opts.chunkSize);
    } catch (e) {
      yield { kind: 'error', path: display, message: `cannot open (${errorCode(e)})` };
      return;
    }
    this.counters.files += 1;
    yield* this.input(opened.blob, opened.size, opened.close, display);
  }

  /**
   * A tar member handed off by the worker walking its archive. Its bound on the inflated:on-disk
   * ratio is its own size (the per-stream bound is unchanged), and it is not counted as a file.
   */
  async *range(r: Range): AsyncGenerator<ScanEvent> {
    let opened: Awaited<ReturnType<typeof openFile>>;
    try {
      opened = await openFile(r.file, r.display, this.opts.chunkSize, r);
    } catch (e) {
      yield { kind: 'error', path: r.display, message: `cannot open (${errorCode(e)})` };
      return;
    }
    yield* this.input(opened.blob, opened.size, opened.close, r.display);
  }

  /** A byte stream (`docker save IMAGE` read as it is produced). */
  async *stream(name: string, open: () => AsyncIterable<Buffer>): AsyncGenerator<ScanEvent> {
    let iterator: AsyncIterator<Buffer> | undefined;
    const pull = async (): Promise<Buffer | null> => {
      try {
        iterator ??= open()[Symbol.asyncIterator]();
        const step = await iterator.next();
        return step.done ? null : step.value;
      } catch (e) {
        throw new ScanStop('error', name, 0, `read failed (${e instanceof Error ? e.message : errorCode(e)})`);
      }
    };
    this.counters.files += 1;
    // A stream has no size on disk: the per-stream ratio bound still guards against bombs.
    yield* this.input({ path: name, reader: new Reader(pull), depth: 0 }, Number.MAX_SAFE_INTEGER, async () => iterator?.return?.(), name);
  }

  /** Walks one input to its end; whatever stops it is reported under its path, never thrown. */
  private async *input(blob: Blob, inputSize: number, close: () => Promise<unknown>, display: string): AsyncGenerator<ScanEvent> {
    const { limits, chunkSize, handOff } = this.opts;
    const ctx: InputContext = { limits, inputSize, inflated: 0, chunkSize };
    if (handOff) {
      ctx.handOff = (member) =>
        handOff({
          file: member.disk.file,
          display,
          start: member.disk.start,
          size: member.disk.size,
          path: member.path,
          depth: member.depth,
        });
    }
    try {
      yield* walk<ScanEvent>(blob, ctx, (leaf) => this.leaf(leaf));
    } catch (e) {
      yield stopped(e, blob.path);
    } finally {
      await close().catch(() => {});
    }
    this.opts.progress?.();
  }

  private async *leaf(blob: Blob): AsyncGenerator<ScanEvent> {
    const { matcher, usable, counters } = this;
    if (blob.depth > 0) counters.members += 1;
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
      counters.bytes += chunk.length;
      if (found.length > 0) yield* emit();
      this.opts.progress?.();
    }
    stream.end();
    if (found.length > 0) yield* emit();
  }
}

/** The event for what stopped an input: a container's limit or damage as it said, anything else a bug. */
function stopped(e: unknown, path: string): ScanEvent {
  if (e instanceof ScanStop) return { kind: e.kind, path: e.path, message: e.message };
  return { kind: 'error', path, message: `internal error (${e instanceof Error ? `${e.name}: ${e.message}` : 'unknown'})` };
}
