// The leak scan on every core: worker threads (worker.ts) scan the files the walk finds, one file
// per job, while this thread walks, hands out jobs and scans the byte streams (a `docker save` is
// read from a pipe here). The first files, up to 16 MiB, are scanned here too: a scan of a few
// small artifacts never pays for starting a worker. A tar member on disk of 4 MiB or more (a layer of a saved image, a tar
// inside an artifact tar) is handed back by the worker walking its archive and scanned by whichever
// worker is free, as bytes of the file: the archive's worker passes over it without reading it.
//
// Same events as the single-thread scan, in the same order: each job's events are kept in a slot,
// slots are emitted in walk order, and a handed-off member's events are emitted where the member
// lies in its archive (a reference in the archive's slot). Memory is bounded: jobs are started only
// on free workers, at most 2 per worker wait in the queue and at most MAX_SLOTS slots wait to be
// emitted; what a slot holds is events (findings, errors), never file content. Stopping the
// iteration early terminates the workers.
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { InputScanner, type Counters, type ScanEvent } from './input-scan.ts';
import { progressReporter, settings, type ScanOptions } from './options.ts';
import type { Pattern } from './patterns.ts';
import { expand } from './walk.ts';
import { WORKER_URL, workerSetup, type FromWorker, type Job, type ToWorker } from './worker.ts';

/** Tar members on disk at least this big are scanned by any free worker (smaller: not worth a message). */
export const HAND_OFF_MIN = 4 * 2 ** 20;
/** Bytes of the first files scanned in this thread (ScanOptions.inThreadBytes). */
export const IN_THREAD_BYTES = 16 * 2 ** 20;
/** Slots (one per file, walk event or stream) waiting to be emitted before the walk waits. */
const MAX_SLOTS = 1024;

interface Slot {
  events: Array<ScanEvent | { kind: 'ref'; slot: Slot }>;
  /** Events emitted so far. */
  at: number;
  done: boolean;
}

interface Unit {
  id: number;
  slot: Slot;
  job: Job;
}

interface Handle {
  worker: Worker;
  unit: Unit | undefined;
  counters: Counters;
}

const newSlot = (events: Slot['events'] = [], done = false): Slot => ({ events, at: 0, done });

/** scan() with `workers` worker threads; see the top of this file. */
export async function* scanWithWorkers(
  inputs: ReadonlyArray<string>,
  patterns: ReadonlyArray<Pattern>,
  opts: ScanOptions,
): AsyncGenerator<ScanEvent> {
  const started = performance.now();
  const { chunkSize, limits, cwd, linkLimits } = settings(opts);
  const max = Math.max(1, Math.floor(opts.workers ?? 1));
  const usable = patterns.filter((p) => p.bytes.length > 0);
  // With one worker, handing a member off would only queue it behind its own archive.
  const setup = workerSetup(usable, limits, chunkSize, max > 1 ? HAND_OFF_MIN : 0);
  const walked = { skipped: 0, followed: 0, linkedBytes: 0, unmatched: [] as string[] };
  const handles: Handle[] = [];
  const gone: Counters[] = []; // counters of workers that exited
  const totals = (): Counters => {
    const sum: Counters = { ...local.counters };
    for (const c of [...gone, ...handles.map((h) => h.counters)]) {
      sum.files += c.files;
      sum.bytes += c.bytes;
      sum.members += c.members;
    }
    return sum;
  };
  const progress = progressReporter(opts, started, totals);
  const local = new InputScanner(patterns, { limits, chunkSize, progress });

  const order: Slot[] = []; // top-level slots not yet being emitted, in walk order
  const files: Unit[] = []; // jobs waiting for a worker
  const handOffs: Unit[] = []; // members handed off: before files, the emitter waits for them
  let nextId = 0;
  let produced = false;
  let cancelled = false;
  let failure: { error: unknown } | undefined;

  let wakeConsumer: (() => void) | undefined;
  const wake = (): void => {
    const w = wakeConsumer;
    wakeConsumer = undefined;
    w?.();
  };
  let wakeProducer: (() => void) | undefined;
  const space = (): void => {
    const w = wakeProducer;
    wakeProducer = undefined;
    w?.();
  };

  const finish = (h: Handle, unit: Unit): void => {
    unit.slot.done = true;
    h.unit = undefined;
    h.worker.unref(); // an idle worker never keeps the process alive
    dispatch();
    space();
    wake();
  };

  const spawn = (): Handle => {
    // A small young generation: what a worker allocates per chunk is small and short-lived (the bytes
    // are off-heap), and with V8's default each worker added ~45 MiB of peak RSS (measured with
    // bench/scan-rss.ts: 155 MiB with one worker, 126-136 MiB with 4 MiB, 107 MiB in one thread).
    const worker = new Worker(new URL(WORKER_URL), { workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    const h: Handle = { worker, unit: undefined, counters: { files: 0, bytes: 0, members: 0 } };
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'progress') {
        h.counters = m.counters;
        progress();
        return;
      }
      const unit = h.unit;
      if (unit === undefined || unit.id !== m.id) return;
      if (m.t === 'items') {
        for (const item of m.items) {
          if (item.kind !== 'handoff') unit.slot.events.push(item);
          else {
            const child = newSlot();
            unit.slot.events.push({ kind: 'ref', slot: child });
            handOffs.push({ id: nextId++, slot: child, job: { kind: 'range', ...item.range } });
          }
        }
        dispatch();
        wake();
        return;
      }
      h.counters = m.counters;
      finish(h, unit);
      progress();
    });
    const lost = (why: string): void => {
      const at = handles.indexOf(h);
      if (at < 0) return;
      handles.splice(at, 1);
      gone.push(h.counters);
      void worker.terminate();
      const unit = h.unit;
      if (unit === undefined) return;
      const where = unit.job.kind === 'file' ? unit.job.display : unit.job.path;
      unit.slot.events.push({ kind: 'error', path: where, message: `internal error (scan worker ${why}); not scanned completely` });
      finish(h, unit);
    };
    worker.on('error', (e) => lost(e instanceof Error ? `${e.name}: ${e.message}` : 'failed'));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    handles.push(h);
    return h;
  };

  function dispatch(): void {
    if (cancelled) return;
    for (;;) {
      const queue = handOffs.length > 0 ? handOffs : files;
      const unit = queue[0];
      if (unit === undefined) return;
      let h = handles.find((x) => x.unit === undefined);
      if (h === undefined) {
        if (handles.length >= max) return;
        h = spawn();
      }
      queue.shift();
      h.unit = unit;
      h.worker.ref();
      h.worker.postMessage({ id: unit.id, job: unit.job } satisfies ToWorker);
    }
  }

  /** Scans in this thread into `slot` (streams, and the first files of a scan). */
  async function here(slot: Slot, events: AsyncIterable<ScanEvent>): Promise<void> {
    for await (const event of events) {
      if (cancelled) return;
      slot.events.push(event);
      wake();
    }
    slot.done = true;
    wake();
  }

  async function produce(): Promise<void> {
    const full = (): boolean => files.length >= 2 * max || order.length >= MAX_SLOTS;
    // A small scan starts no worker: the first files are scanned here while they fit the budget.
    let budget = Math.max(0, opts.inThreadBytes ?? IN_THREAD_BYTES);
    for await (const item of expand(inputs, cwd, walked, opts, linkLimits)) {
      while (full() && !cancelled) await new Promise<void>((resolve) => (wakeProducer = resolve));
      if (cancelled) return;
      if (typeof item !== 'string') order.push(newSlot([item], true));
      else {
        const slot = newSlot();
        order.push(slot);
        const abs = path.resolve(cwd, item);
        const size = budget > 0 ? ((await stat(abs).catch(() => undefined))?.size ?? 0) : Infinity;
        if (size <= budget) {
          budget -= size;
          await here(slot, local.file(abs, item));
          if (cancelled) return;
        } else {
          budget = 0;
          files.push({ id: nextId++, slot, job: { kind: 'file', abs, display: item } });
          dispatch();
        }
      }
      wake();
    }
    // Streams here, in this thread, while the workers scan the files.
    for (const stream of opts.streams ?? []) {
      const slot = newSlot();
      order.push(slot);
      // Stopped early: the stream is closed at its next chunk (a `docker save` is killed then).
      const open = (): AsyncIterable<Buffer> =>
        (async function* () {
          for await (const chunk of stream.open()) {
            if (cancelled) return;
            yield chunk;
          }
        })();
      await here(slot, local.stream(stream.path, open));
      if (cancelled) return;
    }
  }

  const producer = produce().then(
    () => {
      produced = true;
      wake();
    },
    (error: unknown) => {
      failure = { error };
      wake();
    },
  );
  const stack: Slot[] = [];
  try {
    for (;;) {
      // Emit what is ready, in order.
      for (;;) {
        let slot = stack.at(-1);
        if (slot === undefined) {
          slot = order.shift();
          if (slot === undefined) break;
          stack.push(slot);
          space();
        }
        const event = slot.events[slot.at];
        if (event !== undefined) {
          slot.at += 1;
          if (event.kind === 'ref') stack.push(event.slot);
          else yield event;
          continue;
        }
        if (!slot.done) break;
        slot.events = [];
        stack.pop();
      }
      if (failure !== undefined) throw failure.error;
      if (produced && stack.length === 0 && order.length === 0) break;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    cancelled = true;
    space();
    for (const h of handles) gone.push(h.counters);
    await Promise.all(handles.splice(0).map((h) => h.worker.terminate()));
    void producer;
  }
  const { files: nFiles, bytes, members } = totals();
  const { skipped, followed, unmatched } = walked;
  yield { kind: 'done', files: nFiles, bytes, elapsedMs: performance.now() - started, members, skipped, followed, unmatched };
}
