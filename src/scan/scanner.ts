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
// only the enclosing one is reported. One input is scanned by input-scan.ts; with `workers`, files
// (and large tar members on disk) are scanned by worker threads (pool.ts), with the same events in
// the same order.
import * as path from 'node:path';
import { InputScanner, type ScanEvent } from './input-scan.ts';
import { progressReporter, settings, type ScanOptions } from './options.ts';
import type { Pattern } from './patterns.ts';
import { scanWithWorkers } from './pool.ts';
import { expand } from './walk.ts';

export { DEFAULT_LINK_LIMITS, type LinkLimits } from './walk.ts';
export type { Done, Finding, ScanEvent } from './input-scan.ts';
export type { Progress, ScanOptions } from './options.ts';

/** Scans inputs (files, directories, globs) for the patterns. Ends with one `done` event. */
export async function* scan(
  inputs: ReadonlyArray<string>,
  patterns: ReadonlyArray<Pattern>,
  opts: ScanOptions = {},
): AsyncGenerator<ScanEvent> {
  if ((opts.workers ?? 0) > 0) {
    yield* scanWithWorkers(inputs, patterns, opts);
    return;
  }
  const started = performance.now();
  const { chunkSize, limits, cwd, linkLimits } = settings(opts);
  const walked = { skipped: 0, followed: 0, linkedBytes: 0, unmatched: [] as string[] };
  let scanner: InputScanner | undefined = undefined;
  const progress = progressReporter(opts, started, () => scanner?.counters ?? { files: 0, bytes: 0 });
  scanner = new InputScanner(patterns, { limits, chunkSize, progress });
  for await (const item of expand(inputs, cwd, walked, opts, linkLimits)) {
    if (typeof item !== 'string') yield item;
    else yield* scanner.file(path.resolve(cwd, item), item);
  }
  for (const stream of opts.streams ?? []) yield* scanner.stream(stream.path, stream.open);
  const { files, bytes, members } = scanner.counters;
  const { skipped, followed, unmatched } = walked;
  yield { kind: 'done', files, bytes, elapsedMs: performance.now() - started, members, skipped, followed, unmatched };
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
