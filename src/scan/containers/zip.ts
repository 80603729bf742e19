// Zip, streamed from its local file headers (the central directory at the end is read only when it
// must be, below): stored and deflate entries, UTF-8 or CP437 names, zip64 sizes. Nested archives
// (a jar in a tar, a zip in a wheel) are handed back to the walk, like tar members.
//
// Entries with a data descriptor (flag bit 3) do not give their compressed size up front:
// - deflate is self-terminating: the entry is inflated until the deflate stream ends, which tells
//   where the descriptor and the next header begin;
// - stored: when the zip is a contiguous byte range of a file on disk (a top-level zip, or a zip kept
//   stored in an uncompressed tar) the size is read from the central directory by random access;
//   otherwise (a zip inside a compressed stream) the data is streamed until a descriptor whose sizes
//   and CRC-32 agree with the bytes seen so far.
//
// Bounds against zip bombs, each naming the entry or the archive:
// - an entry that claims more than maxBytes, or (deflate) a ratio above maxRatio: `limit`, skipped
//   unread; one that lies about its size is stopped by the inflate bounds (inflate.ts);
// - more than maxMembers entries, or more than maxBytes read out of the archive: `limit`;
// - a central directory over 256 MiB is not read (it would be held in memory);
// - encrypted entries and methods other than stored and deflate: `error`, not scanned;
// - a problem inside an entry whose end is known: reported, and the walk goes on after the entry;
//   when its end is not known (size only in the descriptor) the rest of the archive cannot be found
//   and is reported as not scanned.
// Entry names are only reported (`archive!name`), never used to write: see cleanName.
import { open as openFile } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { Reader, ScanStop } from '../reader.ts';
import { cleanName, type Blob, type InputContext, type Notice, type OpenMember } from './blob.ts';
import { decompress, type Inflater } from './inflate.ts';

const MiB = 2 ** 20;

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

/** Walks a zip's entries; `open` walks each entry with data. Throws ScanStop for the zip itself. */
export async function* walkZip<E>(blob: Blob, ctx: InputContext, open: OpenMember<E>): AsyncGenerator<E | Notice> {
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
        yield* open(child);
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
  const handle = await openFile(disk.file, 'r');
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
