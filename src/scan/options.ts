// The options of a scan (scanner.ts's scan(), pool.ts's workers), their defaults, and the progress
// callback's rate limit, in one place so the scan's own thread and the worker pool read them alike.
import { DEFAULT_LIMITS, type Limits } from './containers/index.ts';
import { DEFAULT_LINK_LIMITS, type LinkLimits } from './walk.ts';

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
  /**
   * Worker threads scanning files (default 0: all in this thread). Streams are scanned in this
   * thread while the workers scan files. See pool.ts.
   */
  workers?: number;
  /**
   * With workers: the first files are scanned in this thread while they add up to at most this
   * many bytes (default 16 MiB), so a small scan starts no worker (each costs 40-100 ms to start).
   */
  inThreadBytes?: number;
}

/** The scan's settings with defaults applied; shared with pool.ts. */
export interface Settings {
  chunkSize: number;
  limits: Limits;
  cwd: string;
  linkLimits: LinkLimits;
}

export function settings(opts: ScanOptions): Settings {
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  if (opts.maxDepth !== undefined) limits.maxDepth = opts.maxDepth;
  return {
    chunkSize: Math.max(1, Math.floor(opts.chunkSize ?? 2 ** 20)),
    limits,
    cwd: opts.cwd ?? process.cwd(),
    linkLimits: { ...DEFAULT_LINK_LIMITS, ...opts.links },
  };
}

/** Calls onProgress at most once per interval; `files` and `bytes` are read when it fires. */
export function progressReporter(opts: ScanOptions, started: number, read: () => { files: number; bytes: number }): () => void {
  const interval = opts.progressIntervalMs ?? 1000;
  let last = started;
  return () => {
    if (!opts.onProgress) return;
    const now = performance.now();
    if (now - last < interval) return;
    last = now;
    opts.onProgress({ ...read(), elapsedMs: now - started });
  };
}
