// What every container module shares: the Blob being walked (a file, a member, a decompressed
// stream), the bounds against archive bombs (Limits), the notices a container reports, the context
// shared by everything under one input file, and the reporting of member names and error codes.
// It imports no container module, so inflate, tar and zip depend on it and never on each other's
// dispatcher (index.ts): the imports run one way.
import type { Reader } from '../reader.ts';

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
  /**
   * Offered each tar member that is a contiguous range of a file on disk, inside its archive's
   * range; true when it took the member (another worker scans it; the walk passes over its bytes).
   */
  handOff?: (member: Blob & { disk: NonNullable<Blob['disk']> }) => boolean;
}

export type LeafHandler<E> = (blob: Blob) => AsyncIterable<E>;

/** Walks one member of an archive (opening it if it is a container itself): index.ts's walk, bound. */
export type OpenMember<E> = (child: Blob) => AsyncGenerator<E | Notice>;

/**
 * A member's name as reported after the archive's path: leading './' and trailing '/' dropped.
 * Names are only ever reported, never used to write anything, so '../' or an absolute name is
 * harmless here and is kept as the archive spells it.
 */
export function cleanName(name: string): string {
  const cleaned = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  return cleaned === '' ? '.' : cleaned;
}

export function errorCode(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.name : 'unknown error';
}
