import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gzip, tar } from '../fixtures.ts';
import { AT, DOCKER_CONFIG, docker, NPMRC, npmrc, scanHarness } from './support.ts';

const { tmp, run, quick } = scanHarness();

describe('tar: formats', () => {
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

  it('reads links, devices and fifos as carrying no data, whatever their size field says', async () => {
    // A symlink entry claiming 512 bytes: taken at its word, the next member's header would be
    // skipped as its data and the npmrc never seen.
    const archive = tar([
      { name: 'link', type: '2', size: '00000001000' },
      { name: 'fifo', type: '6', size: '00000001000' },
      { name: 'etc/npmrc', data: NPMRC },
    ]);
    expect(await run({ 'links.tar': archive })).toEqual([npmrc('links.tar!etc/npmrc')]);
  });

  it('reports a member line by line from its own start (a member on disk is counted lazily)', async () => {
    const archive = tar([
      { name: 'first.txt', data: 'one\ntwo\nthree\n'.repeat(100) },
      { name: 'etc/npmrc', data: NPMRC },
    ]);
    expect(await run({ 'plain.tar': archive }, { chunkSize: 700 })).toEqual([npmrc('plain.tar!etc/npmrc')]);
  });
});

describe('tar: bounds and damage', () => {
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

  it('bounds the pax and long-name headers it holds in memory', async () => {
    const name = `${'n/'.repeat(100)}npmrc`;
    const files = {
      'pax.tar': tar([{ name, data: NPMRC, pax: true }]),
      'long.tar': tar([{ name, data: NPMRC, gnuLong: true }]),
      'next.txt': NPMRC,
    };
    expect(await quick(files, { limits: { maxHeader: 100 } })).toEqual([
      ['limit', 'pax.tar', expect.stringMatching(/^tar pax header of 2\d\d bytes at offset 0 \(max header 100\)$/)],
      ['limit', 'long.tar', `tar long name header of ${name.length + 1} bytes at offset 0 (max header 100)`],
      npmrc('next.txt'),
    ]);
    expect(await run(files, { limits: { maxHeader: 1000 } })).toEqual([
      npmrc(`pax.tar!${name}`),
      npmrc(`long.tar!${name}`),
      npmrc('next.txt'),
    ]);
  });

  it('reports a damaged header by offset after the members before it, and a truncated or unreadable one', async () => {
    const good = tar([{ name: 'etc/npmrc', data: NPMRC }]);
    const badSum = Buffer.from(good);
    badSum[0] = 0x41; // name changed, checksum not
    const afterGoodMember = tar([
      { name: 'ok/npmrc', data: NPMRC },
      { name: 'x', data: 'y' },
    ]);
    afterGoodMember.fill(0x42, 1024 + 100, 1024 + 110); // second header damaged
    const cutHeader = Buffer.concat([
      tar([{ name: 'ok/npmrc', data: NPMRC }], { end: false }),
      tar([{ name: 'c', data: 'd' }]).subarray(0, 100),
    ]);
    expect(
      await quick({
        'bad-sum.tar': tar([
          { name: 'inner.tar', data: badSum },
          { name: 'etc/npmrc', data: NPMRC },
        ]),
        'damaged.tar': afterGoodMember,
        'cut-header.tar': cutHeader,
        'bad-size.tar': tar([{ name: 'a', size: 'zzzzzzzzzzz' }]),
        'next.txt': NPMRC,
      }),
    ).toEqual([
      // A member with a broken tar header is not taken for a tar: scanned as raw bytes.
      ['bad-sum.tar!inner.tar', 512 + AT, undefined, 'raw'],
      npmrc('bad-sum.tar!etc/npmrc'),
      npmrc('damaged.tar!ok/npmrc'),
      ['error', 'damaged.tar', 'bad tar header checksum at offset 1024'],
      npmrc('cut-header.tar!ok/npmrc'),
      ['error', 'cut-header.tar', 'truncated tar header at offset 1024'],
      ['error', 'bad-size.tar', 'bad size field in tar header at offset 0'],
      npmrc('next.txt'),
    ]);
  });
});
