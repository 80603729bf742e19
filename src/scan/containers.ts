// Opens containers while streaming, never extracting to disk: tar (ustar, GNU long names and base-256
// sizes, pax headers), gzip and zstd streams (detected by magic bytes, never by names), zip (local
// file headers streamed; stored and deflate). Nesting is followed to a bounded depth, so a `docker
// save` tar (layer tars, gzip or not, plus JSON) is just tar-in-tar.
//
// Zip entries with a data descriptor (flag bit 3) do not give their compressed size up front:
// - deflate is self-terminating: the entry is inflated until the deflate stream ends, which tells
//   where the descriptor and the next header begin;
// - stored: when the zip is a contiguous byte range of a file on disk (a top-level zip, or a zip kept
//   stored in an uncompressed tar) the size is read from the central directory by random access;
//   otherwise (a zip inside a compressed stream) the data is streamed until a descriptor whose sizes
//   and CRC-32 agree with the bytes seen so far.
//
// Bounds (Limits) stop archive bombs with a `limit` event naming the archive and the bound:
// archive depth, bytes read out of one container, decompression ratio (per stream and for a whole
// input against its size on disk, enforced after the first MiB), members per archive, and the size
// of pax/long-name headers. A limit or corruption abandons the container it concerns; the enclosing
// archive skips to its next member (it knows the member's size) and scanning goes on.
//
// Compression layers (gzip, zstd) do not count as archive levels: `a.tar.gz!etc/npmrc` is one
// level; at most two compression layers may be stacked directly.
import { open } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { Reader, ScanStop } from './reader.ts';

export { Reader, ScanStop } from './reader.ts';

export interface Limits {
  /** Archive levels opened (tar, zip); deeper archives are scanned as raw bytes. Default 3. */
  maxDepth: number;
  /** Bytes read out of one container (decompressed). Default 32 GiB. */
  maxBytes: number;
  /** Decompressed:compressed ratio, per stream and per input. Default 200. */
  maxRatio: number;
  /** Output bytes of a stream before the ratio bound applies. Default 1 MiB. */
  ratioGrace: number;
  /** Members per archive. Default 100,000. */
  maxMembers: number;
  /** Size of one pax header or GNU long name. Default 1 MiB. */
  maxHeader: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxDepth: 3,
  maxBytes: 32 * 2 ** 30,
  maxRatio: 200,
  ratioGrace: 2 ** 20,
  maxMembers: 100_000,
  maxHeader: 2 ** 20,
};

/** A stream of bytes to scan or open: a file, an archive member, a decompressed stream. */
export interface Blob {
  /** File path, then archive members joined with '!'. */
  path: string;
  reader: Reader;
  /** Archive levels above this blob (0 for an input file). */
  depth: number;
  /** Set when the blob is a contiguous range of a file on disk (random access possible). */
  disk?: { file: string; start: number; size: number };
  /** Compression layers directly above (reset by each archive level). */
  layers?: number;
}

export interface Notice {
  kind: 'error' | 'limit';
  path: string;
  message: string;
}

/** Shared by everything under one input file. */
export interface InputContext {
  limits: Limits;
  /** Size of the input on disk and bytes inflated so far under it (for the per-input ratio). */
  inputSize: number;
  inflated: number;
  /** Chunk size for file reads. */
  chunkSize: number;
}

export type LeafHandler<E> = (blob: Blob) => AsyncIterable<E>;

export type ContainerKind = 'gzip' | 'zstd' | 'tar' | 'zip';

const MiB = 2 ** 20;
const ZSLICE = 64 * 1024; // compressed bytes per zlib write: bounds the output of one write (~1032x)

/** What a blob holds, from its first bytes. */
export function sniff(head: Buffer): ContainerKind | undefined {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b) {
    const sig = head.readUInt32LE(0);
    if (sig === 0x04034b50 || sig === 0x08074b50 || sig === 0x06054b50) return 'zip';
  }
  if (head.length >= 512 && tarChecksumOk(head)) {
    const magic = head.toString('latin1', 257, 262);
    if (magic === 'ustar') return 'tar';
    // v7 tar: no magic; a valid checksum plus an octal size and a name.
    if (head[0] !== 0 && parseOctal(head, 124, 12) !== undefined) return 'tar';
  }
  return undefined;
}

/**
 * Opens a file on disk as a Blob; reads are prefetched one chunk ahead into a ring of 4 buffers
 * (a fresh 1 MiB buffer per read costs page faults and GC: reads ran at half the speed). A chunk is
 * therefore only valid until the reader has been pulled twice more: whoever keeps bytes copies them.
 */
export async function openFile(
  file: string,
  displayPath: string,
  chunkSize: number,
): Promise<{ blob: Blob; size: number; close: () => Promise<void> }> {
  const handle = await open(file, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (e) {
    await handle.close();
    throw e;
  }
  let position = 0;
  let inflight: Promise<Buffer | null> | undefined;
  const ring = [0, 1, 2, 3].map(() => Buffer.allocUnsafe(chunkSize));
  let turn = 0;
  const readAt = async (at: number): Promise<Buffer | null> => {
    const buf = ring[turn++ % ring.length] as Buffer;
    const { bytesRead } = await handle.read(buf, 0, chunkSize, at);
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
  const close = async (): Promise<void> => {
    if (inflight) await inflight.catch(() => null);
    inflight = undefined;
    await handle.close();
  };
  return { blob: { path: displayPath, reader: new Reader(pull), depth: 0, disk: { file, start: 0, size } }, size, close };
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
    yield* kind === 'tar' ? walkTar(blob, ctx, leaf) : walkZip(blob, ctx, leaf);
    return;
  }
  yield* leaf(blob);
}

/** Runs a member's walk; notices from deeper levels are reported and the member is skipped. */
async function* member<E>(parent: Blob, child: Blob, ctx: InputContext, leaf: LeafHandler<E>): AsyncGenerator<E | Notice> {
  try {
    yield* walk(child, ctx, leaf);
  } catch (e) {
    if (!(e instanceof ScanStop) || e.level <= parent.depth) throw e;
    yield { kind: e.kind, path: e.path, message: e.message };
  }
}

// ---------------------------------------------------------------------------------------------
// gzip / zstd / raw deflate

interface Inflater {
  blob: Blob;
  close: () => void;
}

/**
 * A decompressing view of `source`. When the compressed stream ends before the source does (a zip
 * entry of unknown size, padding after a gzip member), the bytes after it are given back to `source`.
 * Bounds: bytes out per stream, ratio per stream, ratio of the whole input against its size on disk.
 */
function decompress(
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

// ---------------------------------------------------------------------------------------------
// tar

async function* walkTar<E>(blob: Blob, ctx: InputContext, leaf: LeafHandler<E>): AsyncGenerator<E | Notice> {
  const r = blob.reader;
  const level = blob.depth;
  const { limits } = ctx;
  const stop = (kind: 'error' | 'limit', message: string): ScanStop => new ScanStop(kind, blob.path, level, message);
  let members = 0;
  let longName: string | undefined;
  let pax: Map<string, string> | undefined;
  const globalPax = new Map<string, string>();
  for (;;) {
    const at = r.pos;
    const header = await r.exact(512);
    if (header.length === 0) return;
    if (header.length < 512) throw stop('error', `truncated tar header at offset ${at}`);
    if (isZero(header)) return; // end-of-archive marker; what follows is padding
    if (!tarChecksumOk(header)) throw stop('error', `bad tar header checksum at offset ${at}`);
    const type = header[156] === 0 ? '0' : String.fromCharCode(header[156] as number);
    let size = parseNumeric(header, 124, 12);
    const paxSize = pax?.get('size');
    if (paxSize !== undefined) size = /^\d+$/.test(paxSize) ? Number(paxSize) : undefined;
    if (size === undefined) throw stop('error', `bad size field in tar header at offset ${at}`);
    // Links, devices, directories and fifos carry no data whatever their size field says (as Go's
    // archive/tar, which writes docker save output, reads them).
    if ('123456'.includes(type)) size = 0;
    if (size > limits.maxBytes || r.pos + size > limits.maxBytes) {
      throw stop('limit', `tar member at offset ${at} claims ${size} bytes, beyond ${limits.maxBytes} bytes per container (max bytes)`);
    }
    const padding = (512 - (size % 512)) % 512;
    const short = (): ScanStop => stop('error', `truncated tar member at offset ${at}`);

    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > limits.maxHeader)
        throw stop(
          'limit',
          `tar ${type === 'x' || type === 'g' ? 'pax' : 'long name'} header of ${size} bytes at offset ${at} (max header ${limits.maxHeader})`,
        );
      const data = await r.exact(size);
      if (data.length < size) throw short();
      await r.skip(padding);
      if (type === 'L') longName = cString(data, 0, data.length, 'utf8');
      else if (type === 'x') pax = parsePax(data);
      else if (type === 'g') for (const [k, v] of parsePax(data)) globalPax.set(k, v);
      continue;
    }

    let name = longName ?? pax?.get('path') ?? globalPax.get('path') ?? tarName(header);
    longName = undefined;
    pax = undefined;
    name = cleanName(name);
    members += 1;
    if (members > limits.maxMembers) throw stop('limit', `more than ${limits.maxMembers} members (max members)`);
    if (size > 0) {
      const dataStart = r.pos;
      const sub = r.sub(size, short);
      const child: Blob = { path: `${blob.path}!${name}`, reader: sub, depth: level + 1 };
      if (blob.disk) child.disk = { file: blob.disk.file, start: blob.disk.start + dataStart, size };
      yield* member(blob, child, ctx, leaf);
      await sub.drain();
    }
    await r.skip(padding);
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function tarChecksumOk(h: Buffer): boolean {
  const stored = parseOctal(h, 148, 8);
  if (stored === undefined) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return sum === stored;
}

function parseOctal(h: Buffer, at: number, len: number): number | undefined {
  const text = h
    .toString('latin1', at, at + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

/** Octal, or GNU base-256 (high bit of the first byte set). */
function parseNumeric(h: Buffer, at: number, len: number): number | undefined {
  const first = h[at] as number;
  if ((first & 0x80) === 0) return parseOctal(h, at, len);
  if (first & 0x40) return undefined; // negative
  let v = first & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + (h[at + i] as number);
  return v;
}

function cString(b: Buffer, start: number, end: number, encoding: BufferEncoding): string {
  const nul = b.indexOf(0, start);
  return b.toString(encoding, start, nul >= 0 && nul < end ? nul : end);
}

function tarName(h: Buffer): string {
  const name = cString(h, 0, 100, 'utf8');
  const prefix = h.toString('latin1', 257, 262) === 'ustar' ? cString(h, 345, 500, 'utf8') : '';
  return prefix ? `${prefix}/${name}` : name;
}

function cleanName(name: string): string {
  const cleaned = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  return cleaned === '' ? '.' : cleaned;
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(data.toString('latin1', at, space));
    if (!Number.isSafeInteger(len) || len <= 0 || at + len > data.length) break;
    const record = data.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// zip

const SIG_LOCAL = 0x04034b50;
const SIG_DESCRIPTOR = 0x08074b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const U32 = 0xffffffff;

interface CentralEntry {
  csize: number;
  usize: number;
}

async function* walkZip<E>(blob: Blob, ctx: InputContext, leaf: LeafHandler<E>): AsyncGenerator<E | Notice> {
  const r = blob.reader;
  const level = blob.depth;
  const { limits } = ctx;
  const stop = (kind: 'error' | 'limit', message: string): ScanStop => new ScanStop(kind, blob.path, level, message);
  let central: Map<number, CentralEntry> | undefined;
  let members = 0;
  for (;;) {
    const at = r.pos;
    const sigBytes = await r.exact(4);
    if (sigBytes.length === 0) return;
    if (sigBytes.length < 4) throw stop('error', `truncated zip at offset ${at}`);
    const sig = sigBytes.readUInt32LE(0);
    if (sig === SIG_DESCRIPTOR && at === 0) continue; // spanning marker
    if (sig === SIG_CENTRAL || sig === SIG_EOCD || sig === SIG_EOCD64) return; // entries are done
    if (sig !== SIG_LOCAL) throw stop('error', `bad zip local header signature at offset ${at}`);
    if (at > limits.maxBytes) throw stop('limit', `more than ${limits.maxBytes} bytes read (max bytes per container)`);
    const h = await r.exact(26);
    if (h.length < 26) throw stop('error', `truncated zip local header at offset ${at}`);
    const flags = h.readUInt16LE(2);
    const method = h.readUInt16LE(4);
    let csize = h.readUInt32LE(14);
    let usize = h.readUInt32LE(18);
    const nameLen = h.readUInt16LE(22);
    const extraLen = h.readUInt16LE(24);
    const meta = await r.exact(nameLen + extraLen);
    if (meta.length < nameLen + extraLen) throw stop('error', `truncated zip local header at offset ${at}`);
    const rawName = meta.toString(flags & 0x800 ? 'utf8' : 'latin1', 0, nameLen);
    const name = cleanName(rawName);
    const zip64 = readZip64Extra(meta.subarray(nameLen), usize === U32, csize === U32);
    if (zip64.usize !== undefined) usize = zip64.usize;
    if (zip64.csize !== undefined) csize = zip64.csize;
    const hasDescriptor = (flags & 8) !== 0;
    // With a data descriptor the local sizes are usually zero and may be wrong (Info-ZIP writes the
    // uncompressed size but not the compressed one): only a nonzero compressed size is trusted.
    let known = !hasDescriptor || csize !== 0;
    const path = `${blob.path}!${name}`;

    if (!known && (method !== 8 || flags & 1) && blob.disk) {
      // A broken or missing central directory leaves the streaming fallback below.
      central ??= await readCentralDirectory(blob, stop).catch(() => new Map<number, CentralEntry>());
      const entry = central.get(at);
      if (entry) {
        csize = entry.csize;
        usize = entry.usize;
        known = true;
      }
    }

    members += 1;
    if (members > limits.maxMembers) throw stop('limit', `more than ${limits.maxMembers} members (max members)`);

    const skipKnown = async (): Promise<void> => {
      if ((await r.skip(csize)) < csize) throw stop('error', `truncated zip entry at offset ${at}`);
      if (hasDescriptor) await skipDescriptor(r, zip64.present);
    };
    let problem: Notice | undefined;
    if (flags & 1) problem = { kind: 'error', path, message: 'encrypted zip entry; not scanned' };
    else if (method !== 0 && method !== 8)
      problem = { kind: 'error', path, message: `zip compression method ${method} not supported; not scanned` };
    else if (known && usize > limits.maxBytes)
      problem = {
        kind: 'limit',
        path,
        message: `zip entry claims ${usize} bytes, beyond ${limits.maxBytes} bytes per container (max bytes)`,
      };
    else if (known && method === 8 && usize > limits.ratioGrace && usize > limits.maxRatio * csize) {
      problem = { kind: 'limit', path, message: `zip entry claims a decompression ratio above ${limits.maxRatio}:1 (max ratio)` };
    }
    if (problem) {
      yield problem;
      if (!known) throw stop('error', `cannot find the end of entry at offset ${at} (size unknown); rest of archive not scanned`);
      await skipKnown();
      continue;
    }
    if (rawName.endsWith('/') || (known && csize === 0 && usize === 0 && !hasDescriptor)) {
      await skipKnown();
      continue;
    }

    const dataStart = r.pos;
    const short = (): ScanStop => stop('error', `truncated zip entry at offset ${at}`);
    let raw: Reader;
    if (known) raw = r.sub(csize, short);
    else if (method === 8)
      raw = r; // deflate ends itself; the rest is given back to r
    else raw = storedUntilDescriptor(r, zip64.present, short);
    let child: Blob = { path, reader: raw, depth: level + 1 };
    let inflater: Inflater | undefined;
    if (method === 8) {
      inflater = decompress({ path, reader: raw, depth: level + 1 }, 'deflate-raw', ctx);
      child = { path, reader: inflater.blob.reader, depth: level + 1 };
    } else if (blob.disk && known) {
      child.disk = { file: blob.disk.file, start: blob.disk.start + dataStart, size: csize };
    }
    try {
      try {
        yield* walk(child, ctx, leaf);
      } catch (e) {
        if (!(e instanceof ScanStop) || e.level <= level) throw e;
        yield { kind: e.kind, path: e.path, message: e.message };
        if (!known)
          throw stop('error', `cannot find the end of entry at offset ${at} after the problem above; rest of archive not scanned`);
        await raw.drain();
        if (hasDescriptor) await skipDescriptor(r, zip64.present);
        continue;
      }
      await child.reader.drain();
    } finally {
      inflater?.close();
    }
    if (known) await raw.drain();
    if (hasDescriptor) await skipDescriptor(r, zip64.present);
  }
}

function readZip64Extra(extra: Buffer, wantU: boolean, wantC: boolean): { present: boolean; usize?: number; csize?: number } {
  let at = 0;
  while (at + 4 <= extra.length) {
    const id = extra.readUInt16LE(at);
    const len = extra.readUInt16LE(at + 2);
    if (id === 0x0001) {
      const out: { present: boolean; usize?: number; csize?: number } = { present: true };
      let p = at + 4;
      if (wantU && p + 8 <= at + 4 + len) {
        out.usize = Number(extra.readBigUInt64LE(p));
        p += 8;
      }
      if (wantC && p + 8 <= at + 4 + len) out.csize = Number(extra.readBigUInt64LE(p));
      return out;
    }
    at += 4 + len;
  }
  return { present: false };
}

/** Skips a data descriptor: optional signature, CRC-32, then 4- or 8-byte sizes. */
async function skipDescriptor(r: Reader, zip64: boolean): Promise<void> {
  const head = await r.peek(4);
  if (head.length === 4 && head.readUInt32LE(0) === SIG_DESCRIPTOR) await r.skip(4);
  await r.skip(zip64 ? 20 : 12);
}

/**
 * A stored entry of unknown size, streamed until a data descriptor (with signature) whose CRC-32
 * and sizes match the bytes before it; the descriptor is left in `r`.
 */
function storedUntilDescriptor(r: Reader, zip64: boolean, short: () => Error): Reader {
  const tail = zip64 ? 24 : 16;
  let hold = Buffer.alloc(0);
  let count = 0;
  let crc = 0;
  let done = false;
  return new Reader(async () => {
    if (done) return null;
    for (;;) {
      const chunk = await r.next(MiB);
      const buf = chunk === null ? hold : hold.length ? Buffer.concat([hold, chunk]) : chunk;
      let from = 0;
      for (;;) {
        const p = buf.indexOf('PK\x07\x08', from, 'latin1');
        if (p < 0 || p + tail > buf.length) break;
        const size = count + p;
        const sizesMatch = zip64
          ? buf.readBigUInt64LE(p + 8) === BigInt(size) && buf.readBigUInt64LE(p + 16) === BigInt(size)
          : buf.readUInt32LE(p + 8) === size % 2 ** 32 && buf.readUInt32LE(p + 12) === size % 2 ** 32;
        if (sizesMatch && zlib.crc32(buf.subarray(0, p), crc) === buf.readUInt32LE(p + 4)) {
          r.unread(buf.subarray(p));
          done = true;
          return buf.subarray(0, p);
        }
        from = p + 1;
      }
      if (chunk === null) throw short();
      const keep = Math.min(buf.length, tail - 1);
      const emit = buf.subarray(0, buf.length - keep);
      hold = Buffer.from(buf.subarray(buf.length - keep));
      if (emit.length > 0) {
        count += emit.length;
        crc = zlib.crc32(emit, crc);
        return emit;
      }
    }
  });
}

/** Central directory of a zip that is a contiguous range of a file: local header offset -> sizes. */
async function readCentralDirectory(
  blob: Blob,
  stop: (kind: 'error' | 'limit', message: string) => ScanStop,
): Promise<Map<number, CentralEntry>> {
  const disk = blob.disk;
  const out = new Map<number, CentralEntry>();
  if (!disk) return out;
  const handle = await open(disk.file, 'r');
  try {
    const read = async (at: number, len: number): Promise<Buffer> => {
      const buf = Buffer.alloc(Math.max(0, Math.min(len, disk.size - at)));
      if (buf.length > 0) await handle.read(buf, 0, buf.length, disk.start + at);
      return buf;
    };
    const tailLen = Math.min(disk.size, 22 + 65535 + 20);
    const tail = await read(disk.size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw stop('error', 'zip central directory not found');
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if ((cdSize === U32 || cdOffset === U32) && eocd >= 20 && tail.readUInt32LE(eocd - 20) === SIG_EOCD64_LOCATOR) {
      const e64 = await read(Number(tail.readBigUInt64LE(eocd - 12)), 56);
      if (e64.length === 56 && e64.readUInt32LE(0) === SIG_EOCD64) {
        cdSize = Number(e64.readBigUInt64LE(40));
        cdOffset = Number(e64.readBigUInt64LE(48));
      }
    }
    if (cdSize > 256 * MiB) throw stop('limit', `zip central directory of ${cdSize} bytes (max 256 MiB)`);
    const cd = await read(cdOffset, cdSize);
    let p = 0;
    while (p + 46 <= cd.length && cd.readUInt32LE(p) === SIG_CENTRAL) {
      let csize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let local = cd.readUInt32LE(p + 42);
      const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
      let e = 0;
      while (e + 4 <= extra.length) {
        const id = extra.readUInt16LE(e);
        const len = extra.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          const take = (): number => {
            const v = q + 8 <= e + 4 + len ? Number(extra.readBigUInt64LE(q)) : U32;
            q += 8;
            return v;
          };
          if (usize === U32) usize = take();
          if (csize === U32) csize = take();
          if (local === U32) local = take();
        }
        e += 4 + len;
      }
      out.set(local, { csize, usize });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return out;
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------

export function errorCode(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.name : 'unknown error';
}

/** zlib's messages are fixed strings ("incorrect header check"...), never data. */
function zlibMessage(e: unknown): string {
  if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('Z_')) return e.message;
  if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('ERR_ZSTD')) return e.message;
  return errorCode(e);
}
