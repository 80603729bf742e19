// A scan worker thread on its own: started on WORKER_URL (this module, as the pool starts it) with
// the patterns in workerData, it scans a job and posts the events, the hand-offs and its counters.
import { writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../src/scan/containers/index.ts';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { inScanWorker, WORKER_URL, workerSetup, type FromWorker, type ToWorker } from '../../../src/scan/worker.ts';
import { tar, tempDir } from './fixtures.ts';

const value = 'w0rker-thread-s3cret';
const patterns = buildPatterns([{ name: 'W', value }]);
const tmp = tempDir();
afterAll(() => tmp.dispose());

/** Runs one job in a fresh worker; resolves with every message up to `done`. */
async function job(message: ToWorker, handOffMin: number): Promise<FromWorker[]> {
  const worker = new Worker(new URL(WORKER_URL), { workerData: workerSetup(patterns, { ...DEFAULT_LIMITS }, 4096, handOffMin) });
  try {
    return await new Promise<FromWorker[]>((resolve, reject) => {
      const got: FromWorker[] = [];
      worker.on('message', (m: FromWorker) => {
        got.push(m);
        if (m.t === 'done') resolve(got);
      });
      worker.on('error', reject);
      worker.postMessage(message);
    });
  } finally {
    await worker.terminate();
  }
}

describe('scan worker', () => {
  it('is not a scan worker in the main thread', () => {
    expect(inScanWorker).toBe(false);
  });

  it('hands the patterns over as copies of their bytes (never a shared pool)', () => {
    const setup = workerSetup(patterns, { ...DEFAULT_LIMITS }, 1, 0);
    expect(setup.patterns.map((p) => Buffer.from(p.bytes).toString('latin1'))).toEqual(patterns.map((p) => p.bytes.toString('latin1')));
    for (const p of setup.patterns) expect(p.bytes.buffer.byteLength).toBe(p.bytes.length);
  });

  it('scans a file job and posts its events, then its counters', async () => {
    writeFileSync(tmp.file('f.txt'), `a\n${value}\n`);
    const got = await job({ id: 7, job: { kind: 'file', abs: tmp.file('f.txt'), display: 'f.txt' } }, 0);
    expect(got).toEqual([
      { t: 'items', id: 7, items: [{ kind: 'finding', path: 'f.txt', offset: 2, line: 2, name: 'W', encoding: 'raw' }] },
      { t: 'done', id: 7, counters: { files: 1, bytes: value.length + 3, members: 0 } },
    ]);
  });

  it('hands off tar members of at least handOffMin bytes, in place among the events', async () => {
    const big = `${value}${'.'.repeat(600)}`;
    writeFileSync(
      tmp.file('t.tar'),
      tar([
        { name: 'small', data: value },
        { name: 'big', data: big },
        { name: 'after', data: value },
      ]),
    );
    const got = await job({ id: 1, job: { kind: 'file', abs: tmp.file('t.tar'), display: 't.tar' } }, 512);
    const items = got.flatMap((m) => (m.t === 'items' ? m.items : []));
    expect(items).toEqual([
      { kind: 'finding', path: 't.tar!small', offset: 0, name: 'W', encoding: 'raw', line: 1 },
      {
        kind: 'handoff',
        range: { file: tmp.file('t.tar'), display: 't.tar', start: 3 * 512, size: big.length, path: 't.tar!big', depth: 1 },
      },
      { kind: 'finding', path: 't.tar!after', offset: 0, name: 'W', encoding: 'raw', line: 1 },
    ]);
    expect(got.at(-1)).toEqual({ t: 'done', id: 1, counters: { files: 1, bytes: 2 * value.length, members: 2 } });
  });
});
