// The body of a scan worker thread (pool.ts starts them): it builds the same matcher from the
// patterns it is handed and scans one job at a time with input-scan.ts, the code the scan's own
// thread runs, posting the events back in order.
//
// The worker is this same module re-entered: WORKER_URL is the URL of the file this code is in,
// which is src/scan/worker.ts when run from source and dist/scan.js once bundled (so the dist file
// names stay what they are). A thread started with the marker in workerData serves jobs; any other
// load of the module (the main thread, or some other worker) does nothing here, and the leak-scan
// entry does not run the action in a scan worker (inScanWorker).
//
// The patterns (the secret values, encoded) reach the worker in workerData, which is in-process
// memory copied between threads: never argv, never the environment, never a file.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Limits } from './containers/index.ts';
import { InputScanner, type Counters, type Range, type ScanEvent } from './input-scan.ts';
import type { Encoding, Pattern } from './patterns.ts';

export const WORKER_URL = import.meta.url;

const MARK = 'pipeline-secrets-scan-worker';

export interface WorkerSetup {
  mark: typeof MARK;
  patterns: Array<{ bytes: Uint8Array; name: string; encoding: Encoding }>;
  limits: Limits;
  chunkSize: number;
  /** Tar members on disk of at least this many bytes are handed back to be scanned by any worker (0: never). */
  handOffMin: number;
}

export type Job = { kind: 'file'; abs: string; display: string } | ({ kind: 'range' } & Range);

export interface ToWorker {
  id: number;
  job: Job;
}

/** An event of the job, or a member handed off at this point of the job's events. */
export type Item = ScanEvent | { kind: 'handoff'; range: Range };

export type FromWorker =
  | { t: 'items'; id: number; items: Item[] }
  /** Cumulative counters of this worker (all its jobs so far). */
  | { t: 'progress'; counters: Counters }
  | { t: 'done'; id: number; counters: Counters };

/** True in a thread started by pool.ts: the leak-scan entry must not run the action there. */
export const inScanWorker: boolean = !isMainThread && (workerData as Partial<WorkerSetup> | null)?.mark === MARK;

export function workerSetup(patterns: ReadonlyArray<Pattern>, limits: Limits, chunkSize: number, handOffMin: number): WorkerSetup {
  // A copy of each pattern's bytes: a Buffer may be a view of a shared pool, which would be cloned whole.
  const copies = patterns.map((p) => ({ bytes: new Uint8Array(p.bytes), name: p.name, encoding: p.encoding }));
  return { mark: MARK, patterns: copies, limits, chunkSize, handOffMin };
}

/** Bytes between progress messages. */
const PROGRESS_BYTES = 32 * 2 ** 20;
/** Events per message at most (findings come in bursts when an artifact holds many). */
const BATCH = 256;

function serve(setup: WorkerSetup): void {
  const port = parentPort;
  if (!port) return;
  const patterns: Pattern[] = setup.patterns.map((p) => ({
    bytes: Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.length),
    name: p.name,
    encoding: p.encoding,
  }));
  let items: Item[] = [];
  let current = -1;
  let reported = 0;
  const post = (message: FromWorker): void => port.postMessage(message);
  const flush = (): void => {
    if (items.length === 0) return;
    post({ t: 'items', id: current, items });
    items = [];
  };
  const scanner = new InputScanner(patterns, {
    limits: setup.limits,
    chunkSize: setup.chunkSize,
    progress: () => {
      if (scanner.counters.bytes - reported < PROGRESS_BYTES) return;
      reported = scanner.counters.bytes;
      post({ t: 'progress', counters: { ...scanner.counters } });
    },
    handOff:
      setup.handOffMin > 0
        ? (range) => {
            if (range.size < setup.handOffMin) return false;
            items.push({ kind: 'handoff', range });
            flush(); // at once: another worker can start on it
            return true;
          }
        : undefined,
  });
  const run = async ({ id, job }: ToWorker): Promise<void> => {
    current = id;
    const events = job.kind === 'file' ? scanner.file(job.abs, job.display) : scanner.range(job);
    for await (const event of events) {
      items.push(event);
      if (items.length >= BATCH) flush();
    }
    flush();
    post({ t: 'done', id, counters: { ...scanner.counters } });
  };
  // One job at a time: pool.ts sends the next only after `done`; a queue keeps the order regardless.
  let chain = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    chain = chain.then(() => run(message));
  });
}

if (inScanWorker) serve(workerData as WorkerSetup);
