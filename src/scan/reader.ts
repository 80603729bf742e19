// Pull-based byte streams for the scanner: a Reader hands out chunks in order, can take bytes back
// (unread) and can be bounded to the next n bytes of another Reader (a tar or zip member). Everything
// is sequential: one read in flight at a time, so nested containers never race on their parent.

/** A limit or an error tied to a blob. `level` is the archive depth of the blob it concerns. */
export class ScanStop extends Error {
  override readonly name = 'ScanStop';
  readonly kind: 'error' | 'limit';
  readonly path: string;
  readonly level: number;
  constructor(kind: 'error' | 'limit', path: string, level: number, message: string) {
    super(message);
    this.kind = kind;
    this.path = path;
    this.level = level;
  }
}

export type Pull = () => Promise<Buffer | null>;

/**
 * Moves a source past up to n bytes without handing them out; returns how many it passed. A file
 * seeks (a tar member scanned by another worker is passed over, not read twice).
 */
export type Seek = (n: number) => Promise<number>;

export class Reader {
  /** Bytes handed out so far (minus bytes taken back). */
  pos = 0;
  private readonly pull: Pull;
  private readonly seek: Seek | undefined;
  private readonly stack: Buffer[] = [];
  private eof = false;
  /** A failed pull, kept for the read after the bytes gathered before it (boxed: anything may be thrown). */
  private failure: { error: unknown } | undefined;

  constructor(pull: Pull, seek?: Seek) {
    this.pull = pull;
    this.seek = seek;
  }

  /** The next chunk (at most `max` bytes), or null at the end. */
  async next(max = Infinity): Promise<Buffer | null> {
    let chunk = this.stack.pop();
    while (chunk === undefined) {
      if (this.failure !== undefined) throw this.failure.error;
      if (this.eof) return null;
      const got = await this.pull();
      if (got === null) {
        this.eof = true;
        return null;
      }
      if (got.length > 0) chunk = got;
    }
    if (chunk.length > max) {
      this.stack.push(chunk.subarray(max));
      chunk = chunk.subarray(0, max);
    }
    this.pos += chunk.length;
    return chunk;
  }

  /** Gives bytes back; they are the next ones read. */
  unread(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.stack.push(chunk);
    this.pos -= chunk.length;
  }

  /**
   * Exactly n bytes, or fewer at the end. Bytes gathered over several chunks are copied (chunks may
   * be reused by their source after a few reads). When reading fails after some bytes, those are
   * returned and the failure is thrown by the read that follows them (data before a break is kept).
   */
  async exact(n: number): Promise<Buffer> {
    const first = await this.next(n);
    if (first === null) return Buffer.alloc(0);
    if (first.length === n) return first;
    const out = Buffer.allocUnsafe(n);
    first.copy(out, 0);
    let got = first.length;
    while (got < n) {
      let chunk: Buffer | null;
      try {
        chunk = await this.next(n - got);
      } catch (e) {
        this.failure = { error: e };
        break;
      }
      if (chunk === null) break;
      chunk.copy(out, got);
      got += chunk.length;
    }
    return out.subarray(0, got);
  }

  /** Up to n bytes without consuming them. */
  async peek(n: number): Promise<Buffer> {
    const head = await this.exact(n);
    this.unread(head);
    return head;
  }

  /** Discards up to n bytes; returns how many were discarded. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.seek !== undefined && this.stack.length === 0 && this.failure === undefined && !this.eof) {
        const passed = await this.seek(left);
        this.pos += passed;
        left -= passed;
        if (passed === 0 || left === 0) break;
        continue;
      }
      const chunk = await this.next(left);
      if (chunk === null) break;
      left -= chunk.length;
    }
    return n - left;
  }

  /** Discards everything left. */
  async drain(): Promise<void> {
    await this.skip(Infinity);
  }

  /** The next `size` bytes of this reader as a Reader; `short()` is thrown if they are not there. */
  sub(size: number, short: () => Error): Reader {
    let left = size;
    const seek: Seek | undefined =
      this.seek &&
      (async (n) => {
        const want = Math.min(n, left);
        const passed = await this.skip(want);
        left -= passed;
        if (passed < want) throw short();
        return passed;
      });
    return new Reader(async () => {
      if (left <= 0) return null;
      const chunk = await this.next(left);
      if (chunk === null) throw short();
      left -= chunk.length;
      return chunk;
    }, seek);
  }
}
