// Minimal archive writers for the scan tests: exact control over headers (long names, pax, absurd
// sizes, data descriptors) without depending on the tools installed.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

export interface TarEntry {
  name: string;
  data?: Buffer | string;
  /** Typeflag, default '0'. */
  type?: string;
  /** Header size field override (octal digits, or a bigint written base-256). */
  size?: string | bigint;
  /** Write the name with a GNU 'L' long-name entry. */
  gnuLong?: boolean;
  /** Write the name with a pax 'x' header. */
  pax?: boolean;
}

function header(name: string, size: number | string | bigint, type: string, ustar = true): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  if (typeof size === 'bigint') {
    let v = size;
    for (let i = 11; i >= 1; i--) {
      h[124 + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    h[124] = 0x80;
  } else {
    const text = typeof size === 'string' ? size : size.toString(8).padStart(11, '0');
    h.write(`${text}\0`, 124, 'latin1');
  }
  h.write('00000000000\0', 136, 'latin1');
  h.write(type, 156, 'latin1');
  if (ustar) h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);

export function tar(entries: TarEntry[], opts: { end?: boolean; ustar?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    let name = e.name;
    if (e.gnuLong) {
      const long = Buffer.from(`${name}\0`);
      parts.push(header('././@LongLink', long.length, 'L'), long, pad(long.length));
      name = name.slice(0, 99);
    }
    if (e.pax) {
      const record = (k: string, v: string): string => {
        const body = ` ${k}=${v}\n`;
        let len = body.length + 1;
        while (`${len}${body}`.length !== len) len += 1;
        return `${len}${body}`;
      };
      const paxData = Buffer.from(record('path', name));
      parts.push(header('PaxHeaders/x', paxData.length, 'x'), paxData, pad(paxData.length));
      name = name.slice(0, 99);
    }
    parts.push(header(name, e.size ?? data.length, e.type ?? '0', opts.ustar ?? true), data, pad(data.length));
  }
  if (opts.end ?? true) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface ZipEntry {
  name: string;
  data: Buffer | string;
  method?: 0 | 8;
  /** Sizes in a data descriptor after the data (flag bit 3), zeros in the local header. */
  descriptor?: boolean;
  /** Leave out the optional data descriptor signature. */
  bareDescriptor?: boolean;
  /** Lie about the sizes in the local header. */
  claim?: { csize?: number; usize?: number };
}

export function zip(entries: ZipEntry[], opts: { central?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data;
    const method = e.method ?? 8;
    const body = method === 8 ? zlib.deflateRawSync(data) : data;
    const crc = zlib.crc32(data);
    const name = Buffer.from(e.name);
    const flags = (e.descriptor ? 8 : 0) | 0x800;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(e.descriptor ? 0 : crc, 14);
    local.writeUInt32LE(e.claim?.csize ?? (e.descriptor ? 0 : body.length), 18);
    local.writeUInt32LE(e.claim?.usize ?? (e.descriptor ? 0 : data.length), 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, body);
    let descriptorLength = 0;
    if (e.descriptor) {
      const d = Buffer.alloc(16);
      d.writeUInt32LE(0x08074b50, 0);
      d.writeUInt32LE(crc, 4);
      d.writeUInt32LE(body.length, 8);
      d.writeUInt32LE(data.length, 12);
      const written = e.bareDescriptor ? d.subarray(4) : d;
      parts.push(written);
      descriptorLength = written.length;
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    central.push(c, name);
    offset += 30 + name.length + body.length + descriptorLength;
  }
  if (opts.central === false) return Buffer.concat(parts);
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, eocd]);
}

export const gzip = (data: Buffer | string): Buffer => zlib.gzipSync(data);

export function tempDir(): { dir: string; file: (name: string) => string; dispose: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-scan-'));
  return { dir, file: (name) => path.join(dir, name), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
