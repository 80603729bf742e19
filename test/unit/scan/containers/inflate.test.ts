import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gzip, tar } from '../fixtures.ts';
import { AT, NPMRC, npmrc, scanHarness, VALUE } from './support.ts';

const { run, quick } = scanHarness();

describe('inflate: gzip and zstd streams', () => {
  it('gzip: .gz file, .tgz, and a gzip stream with any name (by magic bytes)', async () => {
    const archive = tar([{ name: 'etc/npmrc', data: NPMRC }]);
    expect(
      await run({
        'npmrc.gz': gzip(NPMRC),
        'a.tgz': gzip(archive),
        'b.tar.gz': gzip(archive),
        'layer-without-extension': gzip(archive),
        'concatenated.gz': Buffer.concat([gzip('first member\n'), gzip(NPMRC)]),
      }),
    ).toEqual([
      npmrc('npmrc.gz'),
      npmrc('a.tgz!etc/npmrc'),
      npmrc('b.tar.gz!etc/npmrc'),
      npmrc('layer-without-extension!etc/npmrc'),
      ['concatenated.gz', AT + 13, 3, 'raw'],
    ]);
  });

  it('zstd stream (by magic bytes)', async () => {
    const archive = tar([{ name: 'etc/npmrc', data: NPMRC }]);
    expect(await run({ 'layer.zst': zlib.zstdCompressSync(archive) })).toEqual([npmrc('layer.zst!etc/npmrc')]);
  });

  it('reports line numbers inside decompressed members, across chunks', async () => {
    const text = `${'filler line\n'.repeat(5000)}${NPMRC}`;
    const found = await run({ 'lines.tgz': gzip(tar([{ name: 'big.txt', data: text }])) }, { chunkSize: 1000 });
    expect(found).toEqual([['lines.tgz!big.txt', text.indexOf(VALUE), 5002, 'raw']]);
  });
});

describe('inflate: bounds and damage', () => {
  it('stops a gzip bomb on the ratio bound and goes on with the next member and input', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 2 ** 20), { level: 9 }); // 64 MiB of zeros in ~64 KiB
    expect(bomb.length).toBeLessThan(100_000);
    const archive = tar([
      { name: 'bomb.gz', data: bomb },
      { name: 'etc/npmrc', data: NPMRC },
    ]);
    expect(await quick({ 'bomb.gz': bomb, 'with-bomb.tar': archive, 'next.txt': NPMRC })).toEqual([
      ['limit', 'bomb.gz', 'gzip decompression ratio above 200:1 (max ratio)'],
      ['limit', 'with-bomb.tar!bomb.gz', 'gzip decompression ratio above 200:1 (max ratio)'],
      npmrc('with-bomb.tar!etc/npmrc'),
      npmrc('next.txt'),
    ]);
  });

  it('stops nested amplification (each stream under 200:1, the input over it) on the per-input ratio', async () => {
    const data = Buffer.alloc(2 * 2 ** 20);
    randomBytes(data.length / 300).forEach((b, i) => (data[i * 300] = b)); // deflates about 94:1
    const inner = zlib.gzipSync(data, { level: 9 });
    expect(data.length / inner.length).toBeLessThan(200);
    const tarred = tar(Array.from({ length: 40 }, (_, i) => ({ name: `copy${i}.gz`, data: inner })));
    const outer = gzip(tarred); // identical copies within the deflate window: about 40:1
    expect(tarred.length / outer.length).toBeLessThan(200);
    const found = await quick({ 'amp.tgz': outer, 'next.txt': NPMRC });
    expect(found).toEqual([
      ['limit', expect.stringMatching(/^amp\.tgz!copy\d+\.gz$/), 'input decompresses to more than 200 times its size (max ratio)'],
      npmrc('next.txt'),
    ]);
  });

  it('stops a stream at the bytes bound even under the ratio bound', async () => {
    const big = gzip(randomBytes(3 * 2 ** 20));
    expect(await quick({ 'big.gz': big, 'next.txt': NPMRC }, { limits: { maxBytes: 2 * 2 ** 20 } })).toEqual([
      ['limit', 'big.gz', 'more than 2097152 bytes decompressed (max bytes per container)'],
      npmrc('next.txt'),
    ]);
  });

  it('reports a truncated or broken stream by path after what it held, and goes on', async () => {
    const archive = gzip(
      tar([
        { name: 'etc/npmrc', data: NPMRC },
        { name: 'noise', data: randomBytes(200_000) },
      ]),
    );
    const truncatedGz = archive.subarray(0, archive.length - 1000);
    expect(
      await quick({
        'cut.tgz': truncatedGz,
        'not-gzip.gz': Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(100, 0xff)]),
        'not-zstd.zst': Buffer.concat([zlib.zstdCompressSync(Buffer.from(NPMRC)).subarray(0, 4), Buffer.alloc(100, 0xff)]),
        'next.txt': NPMRC,
      }),
    ).toEqual([
      npmrc('cut.tgz!etc/npmrc'),
      ['error', 'cut.tgz', 'gzip: unexpected end of file'],
      ['error', 'not-gzip.gz', expect.stringMatching(/^gzip: /)],
      ['error', 'not-zstd.zst', expect.stringMatching(/^zstd: /)],
      npmrc('next.txt'),
    ]);
  });
});
