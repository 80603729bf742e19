// Line numbers of findings. A blob is text when its first 8 KiB (TEXT_SNIFF) hold no NUL; only text
// gets line numbers. Lines are counted by LF (0x0a): a CRLF file counts the same as an LF one, a
// lone CR does not end a line. Lines are 1-based and relative to the blob: a member's line 1 is its
// own first line, not the archive's.
//
// Line numbers cost nothing until something is found in a file on disk (or a member stored
// contiguously in one, such as the files of an uncompressed tar): the bytes before the first finding
// are then read again and counted, and the rest of that file is counted as it passes.
// Decompressed streams count newlines as they pass.
import * as fs from 'node:fs/promises';

/** Bytes looked at for a NUL to tell text (line numbers) from binary (none). */
export const TEXT_SNIFF = 8192;

function countNewlines(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  let at = b.indexOf(10, from);
  while (at >= 0 && at < to) {
    n += 1;
    at = b.indexOf(10, at + 1);
  }
  return n;
}

/**
 * Line numbers for one text blob. Counting newlines of every chunk costs about as much as matching
 * on log-like text, so blobs that are a range of a file on disk start lazy: nothing is counted until
 * the first finding, then the bytes before the current chunk are read again from disk and counted
 * once, and from there on chunks are counted as they pass. Other blobs (decompressed streams) count
 * from the start. A match may start up to maxLen - 1 bytes before the current chunk, so a copy of
 * the bytes just before it is kept (readers reuse a chunk's memory later on).
 */
export class Lines {
  private readonly keep: number;
  private readonly disk: { file: string; start: number } | undefined;
  private counting: boolean;
  private tail: Buffer = Buffer.alloc(0); // the last `keep` bytes before the current chunk
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;
  private chunkLines = 0; // newlines before the current chunk (while counting)

  constructor(maxLen: number, disk?: { file: string; start: number }) {
    this.keep = Math.max(1, maxLen);
    this.disk = disk;
    this.counting = disk === undefined;
  }

  feed(chunk: Buffer): void {
    const prev = this.chunk;
    if (prev.length >= this.keep) this.tail = Buffer.from(prev.subarray(prev.length - this.keep));
    else if (prev.length > 0) {
      const joined = Buffer.concat([this.tail, prev]);
      this.tail = joined.subarray(Math.max(0, joined.length - this.keep));
    }
    if (this.counting) this.chunkLines += countNewlines(prev, 0, prev.length);
    this.chunkStart += prev.length;
    this.chunk = chunk;
  }

  async lineAt(offset: number): Promise<number> {
    if (!this.counting) {
      this.chunkLines = this.disk ? await countOnDisk(this.disk.file, this.disk.start, this.chunkStart) : 0;
      this.counting = true;
    }
    if (offset >= this.chunkStart) return this.chunkLines + countNewlines(this.chunk, 0, offset - this.chunkStart) + 1;
    const tailStart = this.chunkStart - this.tail.length;
    const tailLines = this.chunkLines - countNewlines(this.tail, 0, this.tail.length);
    return tailLines + countNewlines(this.tail, 0, Math.max(0, offset - tailStart)) + 1;
  }
}

/** Newlines in bytes [start, start + length) of a file, read in 1 MiB pieces one ahead (per worker thread: memory adds up). */
async function countOnDisk(file: string, start: number, length: number): Promise<number> {
  if (length <= 0) return 0;
  const handle = await fs.open(file, 'r');
  try {
    const size = Math.min(2 ** 20, length);
    const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    let lines = 0;
    let at = 0;
    let turn = 0;
    const readPiece = (pos: number): Promise<{ bytesRead: number; buffer: Buffer }> =>
      handle.read(bufs[turn++ % 2] as Buffer, 0, Math.min(size, length - pos), start + pos);
    let next: Promise<{ bytesRead: number; buffer: Buffer }> | undefined = readPiece(0);
    while (next) {
      const { bytesRead, buffer } = await next;
      if (bytesRead === 0) break;
      at += bytesRead;
      next = at < length ? readPiece(at) : undefined;
      lines += countNewlines(buffer, 0, bytesRead);
    }
    await next?.catch(() => undefined);
    return lines;
  } finally {
    await handle.close();
  }
}

/** Line numbers for a blob whose first bytes are `head`: none for binary (a NUL in TEXT_SNIFF bytes). */
export function linesFor(head: Buffer, maxLen: number, disk?: { file: string; start: number }): Lines | undefined {
  return head.subarray(0, TEXT_SNIFF).indexOf(0) >= 0 ? undefined : new Lines(maxLen, disk);
}
