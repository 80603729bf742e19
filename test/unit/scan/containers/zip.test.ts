import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gzip, tar, zip } from '../fixtures.ts';
import { AT, DOCKER_CONFIG, docker, NPMRC, npmrc, scanHarness } from './support.ts';

const { tmp, run, quick } = scanHarness();

/** Sets the first local header's flags (|=) or compression method. */
function patchFirst(archive: Buffer, patch: { flags?: number; method?: number }): Buffer {
  const out = Buffer.from(archive);
  if (patch.flags !== undefined) out.writeUInt16LE(out.readUInt16LE(6) | patch.flags, 6);
  if (patch.method !== undefined) out.writeUInt16LE(patch.method, 8);
  return out;
}

describe('zip: entries', () => {
  it.each([
    ['stored', { method: 0 as const }],
    ['deflate', { method: 8 as const }],
    ['stored with data descriptor', { method: 0 as const, descriptor: true }],
    ['deflate with data descriptor', { method: 8 as const, descriptor: true }],
  ])('zip: %s, on disk, stored in a tar (random access) and nested in tar.gz (none)', async (_label, how) => {
    const archive = zip([
      { name: 'first.txt', data: 'x'.repeat(5000), ...how },
      { name: 'dir/', data: '', method: 0 },
      { name: '.npmrc', data: NPMRC, ...how },
      { name: 'config.json', data: DOCKER_CONFIG, ...how },
    ]);
    const inTar = tar([{ name: 'inner.jar', data: archive }]);
    expect(await run({ 'a.zip': archive, 'a.tar': inTar, 'a.tgz': gzip(inTar) })).toEqual([
      npmrc('a.zip!.npmrc'),
      docker('a.zip!config.json'),
      npmrc('a.tar!inner.jar!.npmrc'),
      docker('a.tar!inner.jar!config.json'),
      npmrc('a.tgz!inner.jar!.npmrc'),
      docker('a.tgz!inner.jar!config.json'),
    ]);
  });

  it('zip: stored entry with a signature-less data descriptor needs the central directory (random access)', async () => {
    const archive = zip([
      { name: '.npmrc', data: NPMRC, method: 0, descriptor: true, bareDescriptor: true },
      { name: 'after.txt', data: NPMRC, method: 0 },
    ]);
    expect(await run({ 'bare.zip': archive, 'bare.tgz': gzip(tar([{ name: 'bare.zip', data: archive }])) })).toEqual([
      npmrc('bare.zip!.npmrc'),
      npmrc('bare.zip!after.txt'),
      // Streaming cannot delimit it: all bytes to the end of the zip (headers included, so not text)
      // are scanned as that entry, then the archive is given up.
      ['bare.tgz!bare.zip!.npmrc', AT, undefined, 'raw'],
      ['bare.tgz!bare.zip!.npmrc', NPMRC.length + 12 + 30 + 'after.txt'.length + AT, undefined, 'raw'],
      ['error', 'bare.tgz!bare.zip', 'truncated zip entry at offset 0'],
    ]);
  });

  it('zip on disk without a central directory: a stored entry of unknown size is streamed to its descriptor', async () => {
    const archive = zip(
      [
        { name: '.npmrc', data: NPMRC, method: 0, descriptor: true },
        { name: 'after.txt', data: NPMRC, method: 0 },
      ],
      { central: false },
    );
    expect(await run({ 'no-central.zip': archive })).toEqual([npmrc('no-central.zip!.npmrc'), npmrc('no-central.zip!after.txt')]);
  });

  it('zip streamed by Info-ZIP to a pipe (deflate, data descriptors, zip64 local sizes)', async () => {
    if (spawnSync('zip', ['-v']).status !== 0) return;
    writeFileSync(tmp.file('npmrc'), NPMRC);
    const archive = execFileSync('sh', ['-c', `cd '${tmp.dir}' && head -c 100000 /dev/zero | zip -q - - npmrc | cat`]);
    expect(archive.readUInt16LE(6) & 8).toBe(8);
    expect(await run({ 'piped.whl': archive, 'piped.tar': tar([{ name: 'x.whl', data: archive }]) })).toEqual([
      npmrc('piped.whl!npmrc'),
      npmrc('piped.tar!x.whl!npmrc'),
    ]);
  });

  it('reports encrypted entries and unsupported methods as not scanned, and goes on after them', async () => {
    const two = (how: { method: 0 | 8; descriptor?: boolean }): Buffer =>
      zip([
        { name: 'first.bin', data: NPMRC, ...how },
        { name: '.npmrc', data: NPMRC, ...how },
      ]);
    expect(
      await run({
        'encrypted.zip': patchFirst(two({ method: 0 }), { flags: 1 }),
        'bzip2.zip': patchFirst(two({ method: 0 }), { method: 12 }),
        // Sizes only in the descriptor: on disk the central directory gives them.
        'encrypted-descriptor.zip': patchFirst(two({ method: 8, descriptor: true }), { flags: 1 }),
      }),
    ).toEqual([
      ['error', 'encrypted.zip!first.bin', 'encrypted zip entry; not scanned'],
      npmrc('encrypted.zip!.npmrc'),
      ['error', 'bzip2.zip!first.bin', 'zip compression method 12 not supported; not scanned'],
      npmrc('bzip2.zip!.npmrc'),
      ['error', 'encrypted-descriptor.zip!first.bin', 'encrypted zip entry; not scanned'],
      npmrc('encrypted-descriptor.zip!.npmrc'),
    ]);
  });

  it('gives up the rest of an archive when an entry it cannot read has no size to skip', async () => {
    const archive = patchFirst(
      zip([
        { name: 'first.bin', data: NPMRC, method: 8, descriptor: true },
        { name: '.npmrc', data: NPMRC, method: 8, descriptor: true },
      ]),
      { flags: 1 },
    );
    // In a compressed stream there is no central directory to look the size up in.
    expect(await run({ 'e.tgz': gzip(tar([{ name: 'e.zip', data: archive }])) })).toEqual([
      ['error', 'e.tgz!e.zip!first.bin', 'encrypted zip entry; not scanned'],
      ['error', 'e.tgz!e.zip', 'cannot find the end of entry at offset 0 (size unknown); rest of archive not scanned'],
    ]);
  });
});

describe('zip: bounds and damage', () => {
  it('stops a zip entry that claims a huge size or ratio, and one that inflates beyond its claim', async () => {
    const zeros = Buffer.alloc(32 * 2 ** 20);
    const archive = zip([
      { name: 'claims-huge.bin', data: 'tiny', method: 0, claim: { usize: 0xfffffff0 } },
      { name: 'claims-ratio.bin', data: zeros },
      { name: 'lies.bin', data: zeros, claim: { usize: 1000 } },
      { name: '.npmrc', data: NPMRC },
    ]);
    expect(await quick({ 'bomb.zip': archive }, { limits: { maxBytes: 2 ** 30 } })).toEqual([
      ['limit', 'bomb.zip!claims-huge.bin', 'zip entry claims 4294967280 bytes, beyond 1073741824 bytes per container (max bytes)'],
      ['limit', 'bomb.zip!claims-ratio.bin', 'zip entry claims a decompression ratio above 200:1 (max ratio)'],
      ['limit', 'bomb.zip!lies.bin', 'deflate decompression ratio above 200:1 (max ratio)'],
      npmrc('bomb.zip!.npmrc'),
    ]);
  });

  it('bounds the entries per archive', async () => {
    const many = zip(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, data: 'x' })));
    expect(await quick({ 'many.zip': many, 'next.txt': NPMRC }, { limits: { maxMembers: 10 } })).toEqual([
      ['limit', 'many.zip', 'more than 10 members (max members)'],
      npmrc('next.txt'),
    ]);
  });

  it('reports a garbled archive by path after the entries it could read', async () => {
    const garbledZip = zip([{ name: 'a.txt', data: NPMRC }]);
    garbledZip.fill(0x55, 10, 20);
    const badSignature = Buffer.concat([zip([{ name: 'a.txt', data: NPMRC }], { central: false }), Buffer.from('PK\x05\x05 junk')]);
    expect(await quick({ 'garbled.zip': garbledZip, 'bad-signature.zip': badSignature, 'next.txt': NPMRC })).toEqual([
      npmrc('garbled.zip!a.txt'), // the compressed size is garbled, the deflate stream is not
      ['error', 'garbled.zip', 'truncated zip entry at offset 0'],
      npmrc('bad-signature.zip!a.txt'),
      ['error', 'bad-signature.zip', `bad zip local header signature at offset ${badSignature.length - 9}`],
      npmrc('next.txt'),
    ]);
  });
});
