import { writeFileSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, openFile, Reader, sniff, walk, type Blob, type InputContext } from '../../../../src/scan/containers/index.ts';
import { gzip, tar, zip } from '../fixtures.ts';
import { DOCKER_CONFIG, docker, NPMRC, npmrc, scanHarness, VALUE, AT } from './support.ts';

const { tmp, run, quick } = scanHarness();

/** A Reader over a buffer, in chunks of `size` bytes. */
function readerOf(data: Buffer, size = data.length): Reader {
  let at = 0;
  return new Reader(async () => {
    if (at >= data.length) return null;
    const chunk = data.subarray(at, at + size);
    at += chunk.length;
    return chunk;
  });
}

const context = (): InputContext => ({ limits: { ...DEFAULT_LIMITS }, inputSize: 1 << 20, inflated: 0, chunkSize: 1 << 20 });

describe('containers: sniffing and dispatch', () => {
  it.each([
    [Buffer.from([0x1f, 0x8b, 8, 0]), 'gzip'],
    [Buffer.from('PK\x03\x04', 'latin1'), 'zip'],
    [tar([{ name: 'a', data: 'b' }]), 'tar'],
    [Buffer.from('plain text'), undefined],
    [Buffer.alloc(1024), undefined],
  ])('sniff %#', (head, kind) => {
    expect(sniff(head)).toBe(kind);
  });

  it.each([
    ['zstd frame', zlib.zstdCompressSync(Buffer.from('x')), 'zstd'],
    ['empty zip (end of central directory only)', zip([]), 'zip'],
    ['spanned zip marker', Buffer.from('PK\x07\x08rest', 'latin1'), 'zip'],
    ['PK then another signature', Buffer.from('PK\x01\x02rest', 'latin1'), undefined],
    ['gzip magic with another method', Buffer.from([0x1f, 0x8b, 7, 0]), undefined],
    ['v7 tar (no magic)', tar([{ name: 'a', data: 'b' }], { ustar: false }), 'tar'],
    ['a tar header cut short', tar([{ name: 'a', data: 'b' }]).subarray(0, 511), undefined],
  ])('sniff: %s', (_label, head, kind) => {
    expect(sniff(head)).toBe(kind);
  });

  it('hands every leaf to the handler with its member path, depth and compression layers', async () => {
    const archive = tar([
      { name: 'a.txt', data: 'text' },
      { name: 'b.gz', data: gzip('zipped') },
      { name: 'c.zip', data: zip([{ name: 'd/e.txt', data: 'inside' }]) },
    ]);
    const leaves: unknown[] = [];
    const blob: Blob = { path: 't.tar', reader: readerOf(archive, 100), depth: 0 };
    for await (const notice of walk(blob, context(), async function* (leaf) {
      leaves.push([leaf.path, leaf.depth, leaf.layers, (await leaf.reader.exact(100)).toString()]);
      yield* [];
    }))
      leaves.push(notice);
    expect(leaves).toEqual([
      ['t.tar!a.txt', 1, undefined, 'text'],
      ['t.tar!b.gz', 1, 1, 'zipped'],
      ['t.tar!c.zip!d/e.txt', 2, undefined, 'inside'],
    ]);
  });

  it('finds the base64 core in a docker config.json', async () => {
    expect(await run({ 'config.json': DOCKER_CONFIG })).toEqual([docker('config.json')]);
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

  it('opens a file on disk as a blob read in chunks, with its place on disk for random access', async () => {
    const data = Buffer.from('0123456789abcdefghij');
    writeFileSync(tmp.file('chunks.bin'), data);
    const opened = await openFile(tmp.file('chunks.bin'), 'shown/as.bin', 3);
    const chunks: string[] = [];
    for (let c = await opened.blob.reader.next(); c !== null; c = await opened.blob.reader.next()) chunks.push(c.toString());
    await opened.close();
    expect(chunks).toEqual(['012', '345', '678', '9ab', 'cde', 'fgh', 'ij']);
    expect(opened.size).toBe(20);
    expect(opened.blob).toMatchObject({ path: 'shown/as.bin', depth: 0, disk: { file: tmp.file('chunks.bin'), start: 0, size: 20 } });
  });
});

describe('containers: bounds', () => {
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

  it('decompresses two stacked compression layers, not a third (scanned as raw bytes)', async () => {
    const two = gzip(zlib.zstdCompressSync(Buffer.from(NPMRC)));
    expect(await quick({ 'two.zst.gz': two, 'three.gz': gzip(gzip(gzip(NPMRC))), 'next.txt': NPMRC })).toEqual([
      npmrc('two.zst.gz'),
      ['limit', 'three.gz', 'more than 2 stacked compression layers; not decompressed, scanned as raw bytes'],
      npmrc('next.txt'),
    ]);
    // An archive level in between resets the count: gzip, gzip, tar, gzip is opened to the end.
    const layered = gzip(gzip(tar([{ name: 'npmrc.gz', data: gzip(NPMRC) }])));
    expect(await quick({ 'layered.tgz.gz': layered })).toEqual([npmrc('layered.tgz.gz!npmrc.gz')]);
  });
});
