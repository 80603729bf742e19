import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import * as zlib from 'node:zlib';
import { sniff } from '../../../src/scan/containers/index.ts';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { scanAll, type ScanEvent, type ScanOptions } from '../../../src/scan/scanner.ts';
import { gzip, tar, tempDir, zip } from './fixtures.ts';

const VALUE = 'npm_Xy7Qk2LmN9pR4sT6vW8zA1bC3dE5fG';
const patterns = buildPatterns([{ name: 'NPM_TOKEN', value: VALUE }]);
const tmp = tempDir();
afterAll(() => tmp.dispose());

const NPMRC = `registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=${VALUE}\nalways-auth=true\n`;
const AT = NPMRC.indexOf(VALUE); // 71, line 2
const B64 = Buffer.from(`octo:${VALUE}`).toString('base64');
const DOCKER_CONFIG = `{"auths":{"ghcr.io":{"auth":"${B64}"}}}\n`;
const B64_AT = DOCKER_CONFIG.indexOf(B64) + 7; // the value starts 5 bytes in: its core starts at char ceil(5 * 8 / 6)

/** Findings as [path relative to the temp dir, offset, line, encoding]; errors and limits as [kind, path, message]. */
function brief(events: ScanEvent[]): unknown[] {
  const rel = (p: string): string => p.replace(`${tmp.dir}/`, '');
  return events.flatMap((e) => {
    if (e.kind === 'finding') return [[rel(e.path), e.offset, e.line, e.encoding]];
    if (e.kind === 'done') return [];
    return [[e.kind, rel(e.path), e.message]];
  });
}

async function run(files: Record<string, Buffer | string>, opts: ScanOptions = {}): Promise<unknown[]> {
  const names = Object.keys(files);
  for (const [name, data] of Object.entries(files)) writeFileSync(tmp.file(name), data);
  return brief(
    await scanAll(
      names.map((n) => tmp.file(n)),
      patterns,
      opts,
    ),
  );
}

const npmrc = (path: string): unknown[] => [path, AT, 2, 'raw'];
const docker = (path: string): unknown[] => [path, B64_AT, 1, 'base64@2'];

describe('containers: formats', () => {
  it('finds the base64 core in a docker config.json', async () => {
    expect(await run({ 'config.json': DOCKER_CONFIG })).toEqual([docker('config.json')]);
  });

  it.each([
    ['ustar', { name: 'etc/npmrc', data: NPMRC }, 'etc/npmrc'],
    ['GNU long name', { name: `${'d/'.repeat(80)}npmrc`, data: NPMRC, gnuLong: true }, `${'d/'.repeat(80)}npmrc`],
    ['pax path', { name: `${'p/'.repeat(80)}npmrc`, data: NPMRC, pax: true }, `${'p/'.repeat(80)}npmrc`],
    ['leading ./', { name: './etc/npmrc', data: NPMRC }, 'etc/npmrc'],
  ])('tar: %s', async (_label, entry, inner) => {
    const archive = tar([
      { name: 'README', data: 'hello\n' },
      entry,
      { name: 'etc/', type: '5' },
      { name: 'docker/config.json', data: DOCKER_CONFIG },
    ]);
    expect(await run({ 'a.tar': archive })).toEqual([npmrc(`a.tar!${inner}`), docker('a.tar!docker/config.json')]);
  });

  it('tar written by GNU tar (gnu and pax formats), and v7 tar without magic', async () => {
    const src = tmp.file('src');
    mkdirSync(`${src}/${'long-directory-name/'.repeat(6)}`, { recursive: true });
    writeFileSync(`${src}/${'long-directory-name/'.repeat(6)}npmrc`, NPMRC);
    const out: Record<string, Buffer> = {};
    for (const format of ['gnu', 'pax']) {
      if (spawnSync('tar', ['--version']).status !== 0) return;
      out[`${format}.tar`] = execFileSync('tar', ['-C', src, `--format=${format}`, '-cf', '-', '.']);
    }
    out['v7.tar'] = tar([{ name: 'npmrc', data: NPMRC }], { ustar: false });
    const found = await run(out);
    expect(found).toEqual([
      npmrc(`gnu.tar!${'long-directory-name/'.repeat(6)}npmrc`),
      npmrc(`pax.tar!${'long-directory-name/'.repeat(6)}npmrc`),
      npmrc('v7.tar!npmrc'),
    ]);
  });

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

  it('nested: zip in tar.gz in tar', async () => {
    const inner = zip([{ name: 'app/.npmrc', data: NPMRC }]);
    const middle = gzip(tar([{ name: 'lib/app.zip', data: inner }]));
    const outer = tar([
      { name: 'notes.txt', data: 'nothing here\n' },
      { name: 'dist/app.tar.gz', data: middle },
    ]);
    expect(await run({ 'release.tar': outer })).toEqual([npmrc('release.tar!dist/app.tar.gz!lib/app.zip!app/.npmrc')]);
  });

  it('docker save output: layer tars (plain and gzip) and JSON config, with exact member paths', async () => {
    const layer1 = tar([{ name: 'etc/npmrc', data: NPMRC }]);
    const layer2 = gzip(tar([{ name: 'root/.docker/config.json', data: DOCKER_CONFIG }]));
    const config = JSON.stringify({ config: { Env: [`NPM_TOKEN=${VALUE}`] }, history: [] });
    const manifest = JSON.stringify([{ Config: 'blobs/sha256/c0ffee', Layers: ['blobs/sha256/aaa', 'blobs/sha256/bbb'] }]);
    const image = tar([
      { name: 'blobs/sha256/aaa', data: layer1 },
      { name: 'blobs/sha256/bbb', data: layer2 },
      { name: 'blobs/sha256/c0ffee', data: config },
      { name: 'manifest.json', data: manifest },
    ]);
    expect(await run({ 'image.tar': image })).toEqual([
      npmrc('image.tar!blobs/sha256/aaa!etc/npmrc'),
      docker('image.tar!blobs/sha256/bbb!root/.docker/config.json'),
      ['image.tar!blobs/sha256/c0ffee', config.indexOf(VALUE), 1, 'raw'],
    ]);
  });

  it('reports line numbers inside decompressed members, across chunks', async () => {
    const text = `${'filler line\n'.repeat(5000)}${NPMRC}`;
    const found = await run({ 'lines.tgz': gzip(tar([{ name: 'big.txt', data: text }])) }, { chunkSize: 1000 });
    expect(found).toEqual([['lines.tgz!big.txt', text.indexOf(VALUE), 5002, 'raw']]);
  });

  it.each([
    [Buffer.from([0x1f, 0x8b, 8, 0]), 'gzip'],
    [Buffer.from('PK\x03\x04', 'latin1'), 'zip'],
    [tar([{ name: 'a', data: 'b' }]), 'tar'],
    [Buffer.from('plain text'), undefined],
    [Buffer.alloc(1024), undefined],
  ])('sniff %#', (head, kind) => {
    expect(sniff(head)).toBe(kind);
  });
});

describe('containers: bounds and damage', () => {
  const quick = async (files: Record<string, Buffer | string>, opts: ScanOptions = {}): Promise<unknown[]> => {
    const started = performance.now();
    const result = await run(files, opts);
    expect(performance.now() - started).toBeLessThan(5000);
    return result;
  };

  it('stops at the archive depth bound, scans the deeper archive as raw bytes, goes on', async () => {
    let nested = tar([{ name: 'npmrc', data: NPMRC }]);
    for (let level = 5; level >= 1; level--) nested = tar([{ name: `level${level}.tar`, data: nested }]);
    expect(await quick({ 'deep.tar': nested, 'next.txt': NPMRC }, { maxDepth: 3 })).toEqual([
      [
        'limit',
        'deep.tar!level1.tar!level2.tar!level3.tar',
        'tar nested deeper than 3 archive levels (max depth); not opened, scanned as raw bytes',
      ],
      // The raw bytes of the unopened tars still hold the value (tar does not encode it).
      ['deep.tar!level1.tar!level2.tar!level3.tar', 3 * 512 + AT, undefined, 'raw'],
      npmrc('next.txt'),
    ]);
  });

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

  it('stops a tar header with an absurd size (base-256) and reports one that runs past the end', async () => {
    const absurd = tar([{ name: 'huge', size: 2n ** 60n }]);
    const pastEnd = tar([{ name: 'eight-gib', size: '77777777777', data: 'short' }], { end: false });
    expect(await quick({ 'absurd.tar': absurd, 'past-end.tar': pastEnd, 'next.txt': NPMRC })).toEqual([
      ['limit', 'absurd.tar', `tar member at offset 0 claims ${2 ** 60} bytes, beyond ${32 * 2 ** 30} bytes per container (max bytes)`],
      ['error', 'past-end.tar', 'truncated tar member at offset 0'],
      npmrc('next.txt'),
    ]);
  });

  it('bounds members per archive and bytes per container', async () => {
    const many = tar(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, data: 'x' })));
    const big = tar([{ name: 'big', data: Buffer.alloc(3 * 2 ** 20) }]);
    expect(await quick({ 'many.tar': many, 'big.tgz': gzip(big) }, { limits: { maxMembers: 10, maxBytes: 2 ** 20 } })).toEqual([
      ['limit', 'many.tar', 'more than 10 members (max members)'],
      ['limit', 'big.tgz', 'tar member at offset 0 claims 3145728 bytes, beyond 1048576 bytes per container (max bytes)'],
    ]);
  });

  it('reports corrupt archives by path and goes on', async () => {
    const good = tar([{ name: 'etc/npmrc', data: NPMRC }]);
    const badSum = Buffer.from(good);
    badSum[0] = 0x41; // name changed, checksum not
    const archive = gzip(
      tar([
        { name: 'etc/npmrc', data: NPMRC },
        { name: 'noise', data: randomBytes(200_000) },
      ]),
    );
    const truncatedGz = archive.subarray(0, archive.length - 1000);
    const garbledZip = zip([{ name: 'a.txt', data: NPMRC }]);
    garbledZip.fill(0x55, 10, 20);
    const afterGoodMember = tar([
      { name: 'ok/npmrc', data: NPMRC },
      { name: 'x', data: 'y' },
    ]);
    afterGoodMember.fill(0x42, 1024 + 100, 1024 + 110); // second header damaged
    expect(
      await quick({
        'bad-sum.tar': tar([
          { name: 'inner.tar', data: badSum },
          { name: 'etc/npmrc', data: NPMRC },
        ]),
        'cut.tgz': truncatedGz,
        'garbled.zip': garbledZip,
        'damaged.tar': afterGoodMember,
        'not-gzip.gz': Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(100, 0xff)]),
        'next.txt': NPMRC,
      }),
    ).toEqual([
      // A member with a broken tar header is not taken for a tar: scanned as raw bytes.
      ['bad-sum.tar!inner.tar', 512 + AT, undefined, 'raw'],
      npmrc('bad-sum.tar!etc/npmrc'),
      npmrc('cut.tgz!etc/npmrc'),
      ['error', 'cut.tgz', 'gzip: unexpected end of file'],
      npmrc('garbled.zip!a.txt'), // the compressed size is garbled, the deflate stream is not
      ['error', 'garbled.zip', 'truncated zip entry at offset 0'],
      npmrc('damaged.tar!ok/npmrc'),
      ['error', 'damaged.tar', 'bad tar header checksum at offset 1024'],
      ['error', 'not-gzip.gz', expect.stringMatching(/^gzip: /)],
      npmrc('next.txt'),
    ]);
  });
});
