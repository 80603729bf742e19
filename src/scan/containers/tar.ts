// Tar, streamed member by member: ustar, v7 (no magic), GNU long names ('L') and base-256 sizes,
// pax headers ('x' for the next member, 'g' for all that follow: path and size). A `docker save`
// tar is tar-in-tar: each member is handed back to the walk, which opens it if it is a container.
//
// Bounds and damage, each naming the archive (its path) and, for a limit, the bound:
// - a member whose size (octal, base-256 or pax) passes maxBytes, or would end past maxBytes bytes
//   into the archive: `limit`, the archive is abandoned (the rest cannot be trusted to be reached);
// - more than maxMembers members: `limit`;
// - a pax or long-name header larger than maxHeader: `limit` (it is held in memory to be parsed);
// - a bad checksum, a bad size field, a truncated header or member: `error`.
// A problem inside a member (a bomb, a corrupt nested archive) is reported and the walk goes on
// with the next member: the member's size is known, so its end is.
// Links, devices, directories and fifos carry no data, whatever their size field says.
// Member names are only reported (`archive!name`), never used to write: see cleanName.
import { ScanStop } from '../reader.ts';
import { cleanName, type Blob, type InputContext, type Notice, type OpenMember } from './blob.ts';

/** A tar header: a valid checksum, and the ustar magic or (v7) an octal size and a name. */
export function isTarHeader(head: Buffer): boolean {
  if (head.length < 512 || !tarChecksumOk(head)) return false;
  if (head.toString('latin1', 257, 262) === 'ustar') return true;
  return head[0] !== 0 && parseOctal(head, 124, 12) !== undefined;
}

/** Walks a tar's members; `open` walks each member with data. Throws ScanStop for the tar itself. */
export async function* walkTar<E>(blob: Blob, ctx: InputContext, open: OpenMember<E>): AsyncGenerator<E | Notice> {
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
      // Handed off only when the member lies within the archive's range: a truncated one must stop
      // this walk as it does when read here.
      const whole = blob.disk !== undefined && dataStart + size <= blob.disk.size;
      if (!(whole && child.disk && ctx.handOff?.({ ...child, disk: child.disk }))) yield* member(blob, child, open);
      await sub.drain();
    }
    await r.skip(padding);
  }
}

/** Runs a member's walk; problems from deeper levels are reported and the member is skipped. */
async function* member<E>(parent: Blob, child: Blob, open: OpenMember<E>): AsyncGenerator<E | Notice> {
  try {
    yield* open(child);
  } catch (e) {
    if (!(e instanceof ScanStop) || e.level <= parent.depth) throw e;
    yield { kind: e.kind, path: e.path, message: e.message };
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
