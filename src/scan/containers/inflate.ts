// Decompressing views for the container walk: gzip and zstd streams (found by their magic bytes in
// index.ts, never by file names) and the raw deflate of zip entries (zip.ts). Nothing is written to
// disk: compressed bytes are fed to zlib 64 KiB at a time and its output handed on as chunks.
//
// Bounds (Limits), each a `limit` ScanStop naming the stream and the bound:
// - bytes out of one stream (maxBytes);
// - the stream's own decompression ratio (maxRatio, once ratioGrace bytes are out): a gzip bomb;
// - the ratio of everything inflated under one input against that input's size on disk, so nested
//   streams that each stay under the ratio (gzip in tar in gzip...) cannot multiply past it; this
//   one concerns the whole input (level 0).
// Each zlib write takes at most 64 KiB, which bounds what one write can produce (about 1032 times
// that) before the bounds above are checked again.
//
// A stream that ends before its source (a zip entry of unknown size, padding or another member
// after a gzip member) gives the bytes after its end back to the source.
import * as zlib from 'node:zlib';
import { Reader, ScanStop } from '../reader.ts';
import { errorCode, type Blob, type InputContext } from './blob.ts';

const ZSLICE = 64 * 1024; // compressed bytes per zlib write: bounds the output of one write (~1032x)

export interface Inflater {
  blob: Blob;
  close: () => void;
}

/**
 * A decompressing view of `source`. When the compressed stream ends before the source does (a zip
 * entry of unknown size, padding after a gzip member), the bytes after it are given back to `source`.
 * Bounds: bytes out per stream, ratio per stream, ratio of the whole input against its size on disk.
 */
export function decompress(
  source: Blob,
  kind: 'gzip' | 'zstd' | 'deflate-raw',
  ctx: InputContext,
  path = source.path,
  level = source.depth,
): Inflater {
  const z =
    kind === 'gzip'
      ? zlib.createGunzip({ chunkSize: 128 * 1024 })
      : kind === 'zstd'
        ? zlib.createZstdDecompress({ chunkSize: 128 * 1024 })
        : zlib.createInflateRaw({ chunkSize: 128 * 1024 });
  const label = kind === 'deflate-raw' ? 'deflate' : kind;
  const out: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let waiter: ((e?: Error) => void) | undefined;
  z.on('data', (chunk: Buffer) => out.push(chunk));
  z.on('end', () => {
    ended = true;
    waiter?.();
  });
  z.on('error', (e: Error) => {
    failure ??= e;
    waiter?.(e);
  });
  const settle = (run: (done: (e?: Error | null) => void) => void): Promise<void> =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      const done = (e?: Error | null): void => {
        if (waiter === done) waiter = undefined;
        if (e) reject(e);
        else resolve();
      };
      waiter = done;
      run(done);
    });
  const fail = (e: unknown): ScanStop => (e instanceof ScanStop ? e : new ScanStop('error', path, level, `${label}: ${zlibMessage(e)}`));

  let inBytes = 0;
  let outBytes = 0;
  let finished = false;
  const limits = ctx.limits;
  const pull = async (): Promise<Buffer | null> => {
    for (;;) {
      const chunk = out.shift();
      if (chunk !== undefined) {
        outBytes += chunk.length;
        ctx.inflated += chunk.length;
        if (outBytes > limits.maxBytes)
          throw new ScanStop('limit', path, level, `more than ${limits.maxBytes} bytes decompressed (max bytes per container)`);
        if (outBytes > limits.ratioGrace && outBytes > limits.maxRatio * inBytes) {
          throw new ScanStop('limit', path, level, `${label} decompression ratio above ${limits.maxRatio}:1 (max ratio)`);
        }
        if (ctx.inflated > limits.ratioGrace && ctx.inflated > limits.maxRatio * ctx.inputSize) {
          throw new ScanStop('limit', path, 0, `input decompresses to more than ${limits.maxRatio} times its size (max ratio)`);
        }
        return chunk;
      }
      if (finished) return null;
      if (ended) {
        finished = true;
        continue;
      }
      const slice = await source.reader.next(ZSLICE);
      try {
        if (slice === null) {
          await settle((done) => {
            z.end();
            if (ended) done();
          });
          finished = true;
          continue;
        }
        inBytes += slice.length;
        await settle((done) => z.write(slice, done));
      } catch (e) {
        throw fail(e);
      }
      const unused = inBytes - z.bytesWritten;
      if (unused > 0) {
        // The compressed stream ended inside this slice; what follows belongs to the source.
        source.reader.unread(slice.subarray(slice.length - unused));
        inBytes -= unused;
        finished = true;
      }
    }
  };
  const blob: Blob = { path, reader: new Reader(pull), depth: source.depth, layers: (source.layers ?? 0) + 1 };
  return { blob, close: () => z.destroy() };
}

/** zlib's messages are fixed strings ("incorrect header check"...), never data. */
function zlibMessage(e: unknown): string {
  if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('Z_')) return e.message;
  if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('ERR_ZSTD')) return e.message;
  return errorCode(e);
}
