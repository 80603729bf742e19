// Opens containers while streaming, never extracting to disk: tar (tar.ts), gzip and zstd streams
// (inflate.ts), zip (zip.ts). What a blob holds is told by its first bytes (sniff), never by its
// name. Nesting is followed to a bounded depth, so a `docker save` tar (layer tars, gzip or not,
// plus JSON) is just tar-in-tar. This file sniffs, opens input files and dispatches; the shared
// types and bounds are in blob.ts.
//
// Bounds (Limits) stop archive bombs with a `limit` event naming the archive and the bound:
// archive depth (here), bytes read out of one container, decompression ratio (per stream and for a
// whole input against its size on disk, enforced after the first MiB: inflate.ts), members per
// archive, and the size of pax/long-name headers (tar.ts, zip.ts). A limit or corruption abandons
// the container it concerns; the enclosing archive skips to its next member (it knows the member's
// size) and scanning goes on.
//
// Compression layers (gzip, zstd) do not count as archive levels: `a.tar.gz!etc/npmrc` is one
// level; at most two compression layers may be stacked directly.
import { open } from 'node:fs/promises';
import { Reader, ScanStop } from '../reader.ts';
import { errorCode, type Blob, type InputContext, type LeafHandler, type Notice } from './blob.ts';
import { decompress } from './inflate.ts';
import { isTarHeader, walkTar } from './tar.ts';
import { walkZip } from './zip.ts';

export { Reader, ScanStop } from '../reader.ts';
export { DEFAULT_LIMITS, errorCode, type Blob, type InputContext, type LeafHandler, type Limits, type Notice } from './blob.ts';

export type ContainerKind = 'gzip' | 'zstd' | 'tar' | 'zip';

/** What a blob holds, from its first bytes. */
export function sniff(head: Buffer): ContainerKind | undefined {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b) {
    const sig = head.readUInt32LE(0);
    if (sig === 0x04034b50 || sig === 0x08074b50 || sig === 0x06054b50) return 'zip';
  }
  if (isTarHeader(head)) return 'tar';
  return undefined;
}

/**
 * Opens a file on disk as a Blob; reads are prefetched one chunk ahead into a ring of 4 buffers
 * (a fresh 1 MiB buffer per read costs page faults and GC: reads ran at half the speed). A chunk is
 * therefore only valid until the reader has been pulled twice more: whoever keeps bytes copies them.
 * With `range`, the blob is bytes [start, start + size) of the file (a tar member handed to another
 * worker): named `range.path`, at archive depth `range.depth`; a read failure is still the file's.
 */
export async function openFile(
  file: string,
  displayPath: string,
  chunkSize: number,
  range?: { start: number; size: number; path: string; depth: number },
): Promise<{ blob: Blob; size: number; close: () => Promise<void> }> {
  const handle = await open(file, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (e) {
    await handle.close();
    throw e;
  }
  const start = range ? Math.min(range.start, size) : 0;
  const end = range ? Math.min(size, range.start + range.size) : size;
  let position = start;
  let inflight: Promise<Buffer | null> | undefined;
  const ring = [0, 1, 2, 3].map(() => Buffer.allocUnsafe(chunkSize));
  let turn = 0;
  const readAt = async (at: number): Promise<Buffer | null> => {
    const want = range ? Math.min(chunkSize, end - at) : chunkSize;
    if (want <= 0) return null;
    const buf = ring[turn++ % ring.length] as Buffer;
    const { bytesRead } = await handle.read(buf, 0, want, at);
    return bytesRead > 0 ? buf.subarray(0, bytesRead) : null;
  };
  const pull = async (): Promise<Buffer | null> => {
    const pending = inflight ?? readAt(position);
    inflight = undefined;
    let chunk: Buffer | null;
    try {
      chunk = await pending;
    } catch (e) {
      throw new ScanStop('error', displayPath, 0, `read failed (${errorCode(e)})`);
    }
    if (chunk !== null) {
      position += chunk.length;
      inflight = readAt(position);
      inflight.catch(() => {});
    }
    return chunk;
  };
  // Passing over bytes (a tar member another worker scans) moves the position instead of reading;
  // the read already in flight is waited for first (its buffer is in the ring) and dropped.
  const seek = async (n: number): Promise<number> => {
    if (inflight) await inflight.catch(() => null);
    inflight = undefined;
    const passed = Math.max(0, Math.min(n, end - position));
    position += passed;
    return passed;
  };
  const close = async (): Promise<void> => {
    if (inflight) await inflight.catch(() => null);
    inflight = undefined;
    await handle.close();
  };
  const blob: Blob = range
    ? { path: range.path, reader: new Reader(pull, seek), depth: range.depth, disk: { file, start, size: end - start } }
    : { path: displayPath, reader: new Reader(pull, seek), depth: 0, disk: { file, start: 0, size } };
  return { blob, size: end - start, close };
}

/**
 * Walks a blob: opens it if it is a container (recursively) and hands every leaf to `leaf`, whose
 * events are passed through, with the container's own notices. Must be driven to the end; throws
 * ScanStop for problems that concern `blob` itself or its ancestors.
 */
export async function* walk<E>(blob: Blob, ctx: InputContext, leaf: LeafHandler<E>): AsyncGenerator<E | Notice> {
  const head = await blob.reader.peek(512);
  const kind = sniff(head);
  if (kind === 'gzip' || kind === 'zstd') {
    if ((blob.layers ?? 0) >= 2) {
      yield { kind: 'limit', path: blob.path, message: `more than 2 stacked compression layers; not decompressed, scanned as raw bytes` };
      yield* leaf(blob);
      return;
    }
    const inner = decompress(blob, kind, ctx);
    try {
      yield* walk(inner.blob, ctx, leaf);
      await inner.blob.reader.drain();
    } finally {
      inner.close();
    }
    return;
  }
  if (kind === 'tar' || kind === 'zip') {
    if (blob.depth >= ctx.limits.maxDepth) {
      yield {
        kind: 'limit',
        path: blob.path,
        message: `${kind} nested deeper than ${ctx.limits.maxDepth} archive levels (max depth); not opened, scanned as raw bytes`,
      };
      yield* leaf(blob);
      return;
    }
    const open = (child: Blob): AsyncGenerator<E | Notice> => walk(child, ctx, leaf);
    yield* kind === 'tar' ? walkTar(blob, ctx, open) : walkZip(blob, ctx, open);
    return;
  }
  yield* leaf(blob);
}
