// Multi-pattern exact matching over bytes: Wu-Manber with 3-byte blocks (2 or 1 byte for very short
// patterns).
//
// Every pattern is only looked at through its first m bytes (m = shortest pattern, at most 128). A
// window of m bytes slides over the text; the last B bytes of the window are hashed and SHIFT[hash]
// says how far the window can move without skipping over an occurrence of any pattern prefix. Blocks
// that occur in no prefix (most of them) move the window by m - B + 1 bytes, so the inner loop
// touches a few bytes per m - B + 1 bytes of input. A zero shift means the block ends some pattern
// prefix: the patterns in that hash bucket are filtered on their first 4 bytes and then compared in
// full. Each start position is examined at most once, so identical matches are never reported twice,
// and all patterns of a bucket are verified at a position, so overlapping matches of different
// patterns are all reported. Within one position, longer patterns are reported first; positions are
// reported in increasing order.
//
// Speed depends on m: shifts are at most m - 2. Measured on one core over the bench corpus (logs,
// minified JS, random bytes; 556 patterns from 50 secrets), in memory: m = 16: ~1.6 GB/s; add one
// 12-byte secret (m = 12): ~1.3 GB/s; an 8-byte one: ~0.8 GB/s; a 6-byte one (B = 2): ~0.7 GB/s.
// ripgrep -j1 -F does ~0.48 GB/s on the same files (bench/scan.ts).

export type MatchCallback = (offset: number, pattern: number) => void;

const MAX_WINDOW = 128;

export class Matcher {
  /** Number of patterns; pattern indexes are positions in the constructor's array. */
  readonly count: number;
  /** Shortest and longest pattern length in bytes (0 when there are no patterns). */
  readonly minLen: number;
  readonly maxLen: number;
  /** Window (m) and block (B) sizes in use. */
  readonly window: number;
  readonly block: number;

  private readonly bits: number;
  private readonly shift: Uint8Array;
  private readonly shiftAfter: Uint8Array;
  private readonly bucketStart: Int32Array;
  private readonly bucketPat: Int32Array;
  private readonly store: Uint8Array;
  private readonly patStart: Int32Array;
  private readonly patLen: Int32Array;
  private readonly patHead: Int32Array;
  private readonly headLen: number;

  constructor(patterns: ReadonlyArray<Uint8Array>) {
    this.count = patterns.length;
    let min = Infinity;
    let max = 0;
    for (const p of patterns) {
      if (p.length === 0) throw new Error('matcher: empty pattern');
      min = Math.min(min, p.length);
      max = Math.max(max, p.length);
    }
    this.minLen = patterns.length ? min : 0;
    this.maxLen = max;
    const m = Math.min(this.minLen, MAX_WINDOW);
    this.window = m;
    const B = m >= 8 ? 3 : m >= 3 ? 2 : Math.max(1, m);
    this.block = B;
    this.bits = B === 1 ? 8 : 16;
    this.headLen = Math.min(4, m);
    const size = 1 << this.bits;

    let total = 0;
    for (const p of patterns) total += p.length;
    this.store = new Uint8Array(total);
    this.patStart = new Int32Array(this.count);
    this.patLen = new Int32Array(this.count);
    this.patHead = new Int32Array(this.count);
    let at = 0;
    patterns.forEach((p, i) => {
      this.store.set(p, at);
      this.patStart[i] = at;
      this.patLen[i] = p.length;
      this.patHead[i] = head(p, 0, this.headLen);
      at += p.length;
    });

    const maxShift = m - B + 1;
    this.shift = new Uint8Array(size).fill(maxShift);
    this.shiftAfter = new Uint8Array(size).fill(maxShift);
    const counts = new Int32Array(size + 1);
    const bucketOf = new Int32Array(this.count);
    patterns.forEach((p, i) => {
      for (let q = 0; q + B <= m; q++) {
        const h = this.hash(p, q + B - 1);
        const s = m - B - q;
        if (s < (this.shift[h] as number)) this.shift[h] = s;
        if (s > 0 && s < (this.shiftAfter[h] as number)) this.shiftAfter[h] = s;
      }
      const h = this.hash(p, m - 1);
      bucketOf[i] = h;
      counts[h + 1] = (counts[h + 1] as number) + 1;
    });
    for (let h = 0; h < size; h++) counts[h + 1] = (counts[h + 1] as number) + (counts[h] as number);
    this.bucketStart = counts;
    this.bucketPat = new Int32Array(this.count);
    const order = [...patterns.keys()].sort((a, b) => (patterns[b] as Uint8Array).length - (patterns[a] as Uint8Array).length || a - b);
    const fill = counts.slice(0, size);
    for (const i of order) {
      const h = bucketOf[i] as number;
      this.bucketPat[fill[h] as number] = i;
      fill[h] = (fill[h] as number) + 1;
    }
  }

  /** Hash of the block ending at index `end` of `buf`. Must agree with the inlined hashes below. */
  private hash(buf: Uint8Array, end: number): number {
    if (this.block === 3) return hash3(buf[end - 2] as number, buf[end - 1] as number, buf[end] as number);
    if (this.block === 2) return ((buf[end - 1] as number) << 8) | (buf[end] as number);
    return buf[end] as number;
  }

  /**
   * Examines start positions [from, to) of `buf`; a pattern is verified at a position only when it
   * fits before `end`. Reports matches as (base + position, pattern index). Returns the next start
   * position that has not been examined (>= to; it may lie beyond `end`).
   */
  scan(buf: Uint8Array, from: number, to: number, end: number, base: number, onMatch: MatchCallback): number {
    if (this.count === 0) return Math.max(from, to);
    if (this.block === 3) return this.scan3(buf, from, to, end, base, onMatch);
    return this.scanSmall(buf, from, to, end, base, onMatch);
  }

  private scan3(buf: Uint8Array, from: number, to: number, end: number, base: number, onMatch: MatchCallback): number {
    const m = this.window;
    const shift = this.shift;
    let i = from + m - 1;
    const iEnd = to + m - 1;
    while (i < iEnd) {
      const h = hash3(buf[i - 2] as number, buf[i - 1] as number, buf[i] as number);
      const sh = shift[h] as number;
      if (sh !== 0) {
        i += sh;
        continue;
      }
      this.verify(buf, i - m + 1, end, base, h, onMatch);
      i += this.shiftAfter[h] as number;
    }
    return i - m + 1;
  }

  private scanSmall(buf: Uint8Array, from: number, to: number, end: number, base: number, onMatch: MatchCallback): number {
    const m = this.window;
    let i = from + m - 1;
    const iEnd = to + m - 1;
    while (i < iEnd) {
      const h = this.hash(buf, i);
      const sh = this.shift[h] as number;
      if (sh !== 0) {
        i += sh;
        continue;
      }
      this.verify(buf, i - m + 1, end, base, h, onMatch);
      i += this.shiftAfter[h] as number;
    }
    return i - m + 1;
  }

  private verify(buf: Uint8Array, s: number, end: number, base: number, h: number, onMatch: MatchCallback): void {
    const first = this.bucketStart[h] as number;
    const last = this.bucketStart[h + 1] as number;
    const textHead = head(buf, s, this.headLen);
    const store = this.store;
    for (let k = first; k < last; k++) {
      const p = this.bucketPat[k] as number;
      if (this.patHead[p] !== textHead) continue;
      const len = this.patLen[p] as number;
      if (s + len > end) continue;
      const ps = this.patStart[p] as number;
      let j = this.headLen;
      while (j < len && buf[s + j] === store[ps + j]) j++;
      if (j === len) onMatch(base + s, p);
    }
  }

  /** A streaming matcher: write chunks in order, then end(). */
  stream(onMatch: MatchCallback): MatchStream {
    return new MatchStream(this, onMatch);
  }

  /** All matches in one buffer, as [offset, pattern] pairs in order. */
  findAll(buf: Uint8Array): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const s = this.stream((offset, pattern) => out.push([offset, pattern]));
    s.write(buf);
    s.end();
    return out;
  }
}

function hash3(b0: number, b1: number, b2: number): number {
  return Math.imul((b0 << 16) | (b1 << 8) | b2, 0x9e3779b1) >>> 16;
}

function head(buf: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let j = 0; j < n; j++) v |= (buf[at + j] as number) << (8 * j);
  return v;
}

/**
 * Feeds a Matcher chunk by chunk. Matches that straddle chunk boundaries are found: at most
 * maxLen - 1 bytes are carried over between chunks, and the bulk of each chunk is scanned in place
 * (the caller may reuse a chunk's memory once write() returns).
 */
export class MatchStream {
  private readonly matcher: Matcher;
  private readonly onMatch: MatchCallback;
  private pending: Buffer = Buffer.alloc(0);
  private pendingBase = 0;
  private next = 0; // absolute start position not yet examined
  private total = 0;

  constructor(matcher: Matcher, onMatch: MatchCallback) {
    this.matcher = matcher;
    this.onMatch = onMatch;
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.total;
  }

  write(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const chunkBase = this.total;
    this.total += chunk.length;
    const maxLen = this.matcher.maxLen;
    if (this.matcher.count === 0) return;
    if (this.pending.length > 0) {
      if (chunk.length < maxLen) {
        const joined = Buffer.concat([this.pending, chunk]);
        this.keep(joined, this.pendingBase, this.scanPart(joined, this.pendingBase, false));
        return;
      }
      // Positions that start in the carried bytes, with enough of the new chunk to verify them.
      const joined = Buffer.concat([this.pending, chunk.subarray(0, maxLen - 1)]);
      this.scanPart(joined, this.pendingBase, false);
      this.pending = Buffer.alloc(0);
    }
    this.keep(chunk, chunkBase, this.scanPart(chunk, chunkBase, false));
  }

  end(): void {
    if (this.pending.length > 0) this.scanPart(this.pending, this.pendingBase, true);
    this.pending = Buffer.alloc(0);
    this.pendingBase = this.total;
  }

  /** Scans what can be decided in `data` (absolute offset `base`); returns the first index to keep. */
  private scanPart(data: Uint8Array, base: number, final: boolean): number {
    const m = this.matcher;
    const from = Math.max(0, this.next - base);
    const to = final ? data.length - m.minLen + 1 : data.length - m.maxLen + 1;
    if (from < to) this.next = base + m.scan(data, from, to, data.length, base, this.onMatch);
    return Math.min(Math.max(0, this.next - base), data.length);
  }

  private keep(data: Uint8Array, base: number, from: number): void {
    this.pending = Buffer.from(data.subarray(from)); // a copy: the caller may reuse `data`
    this.pendingBase = base + from;
  }
}
