// The worker pool against the single-thread scan on one planted corpus: directories, text and binary
// files, tar.gz with a tar inside, zip, an image-like uncompressed tar whose big members (and a big
// tar inside one of them) are handed to other workers, damaged archives, a missing input, a depth
// limit and a stream: every event the same and in the same order, with 1, 2 and 3 workers.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { HAND_OFF_MIN } from '../../../src/scan/pool.ts';
import { scan, scanAll, type ScanEvent, type ScanOptions } from '../../../src/scan/scanner.ts';
import type { ToWorker } from '../../../src/scan/worker.ts';
import { gzip, tar, tempDir, zip } from './fixtures.ts';

const SECRETS = [
  { name: 'API_TOKEN', value: 'tok_9f8e7d6c5b4a39281706' },
  { name: 'DB_PASSWORD', value: 'p@ss "w0rd" ü/+=?&%' },
];
const patterns = buildPatterns(SECRETS);
const tmp = tempDir();
const [token, password] = SECRETS.map((s) => s.value) as [string, string];

/** Log-like text of n bytes with the given strings planted at fixed places. */
function text(n: number, seed: number, plants: string[] = []): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 16) % 50 === 0 ? 10 : 97 + ((x >>> 16) % 26);
  }
  plants.forEach((p, k) => out.write(p, Math.floor(((k + 1) * n) / (plants.length + 2)), 'utf8'));
  return out;
}

function binary(n: number, seed: number, plants: string[] = []): Buffer {
  const out = text(n, seed, plants);
  out[3] = 0; // a NUL in the first 8 KiB: binary, no line numbers
  return out;
}

const big = HAND_OFF_MIN + 123_456; // members this big are handed to another worker
const b64 = (s: string): string => Buffer.from(s).toString('base64');

beforeAll(() => {
  mkdirSync(tmp.file('artifacts/sub/deeper'), { recursive: true });
  writeFileSync(tmp.file('artifacts/a.log'), text(300_000, 1, [token, `"${JSON.stringify(password).slice(1, -1)}"`]));
  writeFileSync(tmp.file('artifacts/sub/b.bin'), binary(200_000, 2, [b64(token)]));
  writeFileSync(tmp.file('artifacts/sub/deeper/clean.txt'), text(100_000, 3));
  for (let i = 0; i < 12; i++) writeFileSync(tmp.file(`artifacts/sub/many-${i}.txt`), text(5_000 + i * 997, 10 + i, i % 3 ? [] : [token]));
  writeFileSync(
    tmp.file('artifacts/bundle.tar.gz'),
    gzip(
      tar([
        { name: 'etc/npmrc', data: `//registry/:_authToken=${token}\n` },
        { name: 'inner.tar', data: tar([{ name: 'x', data: password }]) },
      ]),
    ),
  );
  writeFileSync(
    tmp.file('artifacts/app.zip'),
    zip([
      { name: 'stored.txt', data: `k=${password}\n`, method: 0 },
      { name: 'deflated.txt', data: text(50_000, 4, [token]) },
    ]),
  );
  // An image as `docker save -o` writes it: big layers (plain text, a tar with big members, gzip).
  const layerTar = tar([
    { name: 'usr/lib/big-1', data: text(big, 5, [token, password]) },
    { name: 'usr/lib/small', data: `${token}\n` },
    { name: 'usr/lib/big-2', data: binary(big, 6, [password]) },
  ]);
  writeFileSync(
    tmp.file('image.tar'),
    tar([
      { name: 'manifest.json', data: '{"Layers":["l1/layer.tar","l2/layer.tar","l3/layer.tar.gz"]}' },
      { name: 'l1/layer.tar', data: layerTar },
      { name: 'l2/plain', data: text(big, 7, [token, token, password]) },
      { name: 'l3/layer.tar.gz', data: gzip(tar([{ name: 'app/config.json', data: `{"password":${JSON.stringify(password)}}` }])) },
      { name: 'config.json', data: `{"Env":["TOKEN=${token}"]}` },
    ]),
  );
  // Damage: a tar cut inside a big member (not handed off: the walk must stop as it does in one
  // thread), a gzip cut short, and a tar nested past the depth bound.
  const whole = tar([
    { name: 'first', data: text(big, 8, [token]) },
    { name: 'second', data: text(big, 9, [password]) },
  ]);
  writeFileSync(tmp.file('cut.tar'), whole.subarray(0, whole.length - 200_000));
  const gz = gzip(text(400_000, 11, [token, password]));
  writeFileSync(tmp.file('cut.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
  writeFileSync(
    tmp.file('deep.tar'),
    tar([{ name: 'l1', data: tar([{ name: 'l2', data: tar([{ name: 'l3', data: tar([{ name: 's', data: token }]) }]) }]) }]),
  );
});
afterAll(() => tmp.dispose());

const INPUTS = ['artifacts', 'image.tar', 'missing-file', 'cut.tar', 'cut.gz', 'deep.tar', 'art*/*.zip', 'nothing-*.txt'];
const streams = [
  {
    path: 'image:app',
    open: () =>
      (async function* () {
        yield Buffer.from(`ENV TOKEN=${token}\n`);
      })(),
  },
];
const base = (): ScanOptions => ({ cwd: tmp.dir, maxDepth: 3, streams });
/** The events with the done event's time left out (it is the only thing allowed to differ). */
const comparable = (events: ScanEvent[]): unknown[] => events.map((e) => (e.kind === 'done' ? { ...e, elapsedMs: 0 } : e));

describe('scan with worker threads', () => {
  let single: ScanEvent[] = [];
  beforeAll(async () => {
    single = await scanAll(INPUTS, patterns, base());
  });

  it('the single-thread scan of the corpus finds what was planted, and the damage', () => {
    const kinds = single.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'finding').length).toBeGreaterThan(20);
    expect(single.filter((e) => e.kind === 'error').map((e) => e.path)).toEqual(
      expect.arrayContaining(['missing-file', 'cut.tar', 'cut.gz']),
    );
    expect(single.some((e) => e.kind === 'limit' && e.path.startsWith('deep.tar!'))).toBe(true);
    const paths = single.filter((e) => e.kind === 'finding').map((e) => e.path);
    for (const p of [
      'image.tar!l1/layer.tar!usr/lib/big-1',
      'image.tar!l1/layer.tar!usr/lib/big-2',
      'image.tar!l2/plain',
      'image.tar!l3/layer.tar.gz!app/config.json',
      'image:app',
    ])
      expect(paths).toContain(p);
    expect(single.at(-1)).toMatchObject({ kind: 'done', unmatched: ['nothing-*.txt'] });
  });

  it.each([1, 2, 3])('%i worker(s): exactly the same events in the same order', async (workers) => {
    const events = await scanAll(INPUTS, patterns, { ...base(), workers, inThreadBytes: 0 });
    expect(comparable(events)).toEqual(comparable(single));
  });

  it('the same when the first files are scanned in this thread (the default 16 MiB), then by workers', async () => {
    const spy = vi.spyOn(Worker.prototype, 'postMessage');
    try {
      const events = await scanAll(INPUTS, patterns, { ...base(), workers: 2 });
      expect(comparable(events)).toEqual(comparable(single));
      const jobs = spy.mock.calls.map(([m]) => (m as ToWorker).job);
      expect(jobs.some((j) => j.kind === 'file' && j.display === 'artifacts/a.log')).toBe(false); // the first file: here
      expect(jobs.some((j) => j.kind === 'file' && j.display === 'cut.tar')).toBe(true); // past the budget: a worker
    } finally {
      spy.mockRestore();
    }
  });

  it('a small scan starts no worker', async () => {
    const spy = vi.spyOn(Worker.prototype, 'postMessage');
    try {
      const events = await scanAll(['artifacts'], patterns, { cwd: tmp.dir, workers: 2 });
      expect(comparable(events)).toEqual(comparable(await scanAll(['artifacts'], patterns, { cwd: tmp.dir })));
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('hands the big members of an archive on disk to other workers (and only those)', async () => {
    const spy = vi.spyOn(Worker.prototype, 'postMessage');
    try {
      const events = await scanAll(['image.tar', 'cut.tar'], patterns, { cwd: tmp.dir, workers: 2, inThreadBytes: 0 });
      const ranges = spy.mock.calls.map(([m]) => (m as ToWorker).job).filter((j) => j.kind === 'range');
      expect(ranges.map((j) => [j.path, j.size]).sort()).toEqual([
        // sorted as strings: '!' before ','
        ['cut.tar!first', big], // the second member is cut: walked where it lies, to report the damage
        ['image.tar!l1/layer.tar!usr/lib/big-1', big],
        ['image.tar!l1/layer.tar!usr/lib/big-2', big],
        ['image.tar!l1/layer.tar', 3 * 512 + 2 * (big + 512 - (big % 512)) + 512 + 1024],
        ['image.tar!l2/plain', big],
      ]);
      expect(comparable(events)).toEqual(comparable(await scanAll(['image.tar', 'cut.tar'], patterns, { cwd: tmp.dir })));
    } finally {
      spy.mockRestore();
    }
  });

  it('the same with small reads (matches and members across read buffers)', async () => {
    const events = await scanAll(INPUTS, patterns, { ...base(), workers: 2, chunkSize: 4093, inThreadBytes: 0 });
    expect(comparable(events)).toEqual(comparable(single));
  });

  it('reports progress from the workers', async () => {
    const seen: number[] = [];
    await scanAll(['image.tar', 'artifacts'], patterns, {
      cwd: tmp.dir,
      workers: 2,
      progressIntervalMs: 0,
      onProgress: (p) => seen.push(p.bytes),
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(Math.max(...seen)).toBeGreaterThan(HAND_OFF_MIN);
  });

  it('stops the workers when the caller stops early, and scans again after', async () => {
    let first: ScanEvent | undefined;
    for await (const event of scan(INPUTS, patterns, { ...base(), workers: 2 })) {
      first = event;
      break;
    }
    expect(first).toEqual(single[0]);
    const again = await scanAll(INPUTS, patterns, { ...base(), workers: 2 });
    expect(comparable(again)).toEqual(comparable(single));
  });

  it('a worker that dies is an error for the file it was scanning; the others are scanned', async () => {
    const send = Object.getOwnPropertyDescriptor(Worker.prototype, 'postMessage')?.value as (this: Worker, m: unknown) => void;
    const spy = vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, m: unknown) {
      const message = m as ToWorker;
      // A job the worker cannot read: it throws outside the scan of an input, and the thread dies.
      const broken = message.job.kind === 'file' && message.job.display.endsWith('a.log');
      send.call(this, broken ? { id: message.id, job: null } : message);
    });
    try {
      const events = await scanAll(['artifacts'], patterns, { cwd: tmp.dir, workers: 2, inThreadBytes: 0 });
      const expected = (await scanAll(['artifacts'], patterns, { cwd: tmp.dir })).filter(
        (e) => !(e.kind === 'finding' && e.path === 'artifacts/a.log') && e.kind !== 'done',
      );
      const died = events.filter((e) => e.kind === 'error');
      expect(died).toEqual([
        {
          kind: 'error',
          path: 'artifacts/a.log',
          message: expect.stringMatching(/^internal error \(scan worker TypeError: .*\); not scanned completely$/),
        },
      ]);
      expect(events.filter((e) => e.kind !== 'error' && e.kind !== 'done')).toEqual(expected);
    } finally {
      spy.mockRestore();
    }
  });

  it('stopping early closes a stream being scanned', async () => {
    let closed = false;
    let chunks = 0;
    const endless = async function* (): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          chunks += 1;
          yield Buffer.alloc(65536, 0x61);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      } finally {
        closed = true;
      }
    };
    for await (const event of scan(['missing-file'], patterns, {
      cwd: tmp.dir,
      workers: 2,
      streams: [{ path: 'image:x', open: endless }],
    })) {
      expect(event).toMatchObject({ kind: 'error', path: 'missing-file' });
      break;
    }
    for (let i = 0; i < 200 && !closed; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toBe(true);
    const seen = chunks;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(chunks).toBe(seen);
  });

  it('with no patterns, counts the bytes and finds nothing', async () => {
    const none = await scanAll(['artifacts'], [], { cwd: tmp.dir, workers: 2 });
    const done = none.at(-1);
    expect(none.filter((e) => e.kind === 'finding')).toEqual([]);
    expect(done).toMatchObject({ kind: 'done', files: 17 });
  });
});
