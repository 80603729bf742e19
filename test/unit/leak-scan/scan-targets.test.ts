// scanTargets and findDockerfiles: paths and images (through fake docker commands) scanned into
// one outcome; a stream that fails and a glob that matches nothing are problems, never clean.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findDockerfiles, MAX_THREADS, rate, scanTargets } from '../../../src/leak-scan/scan-targets.ts';
import { buildPatterns } from '../../../src/scan/patterns.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { tempDir } from '../../support/temp.ts';

const VALUE = 'value-for-scan-targets-42';

describe('findDockerfiles', () => {
  it('finds Dockerfiles and Containerfiles, not in dependency or build output folders', async () => {
    const ws = tempDir('ps-dockerfiles-');
    for (const file of [
      'Dockerfile',
      'app/Containerfile',
      'app/Dockerfile.dev',
      'svc/api.dockerfile',
      'node_modules/x/Dockerfile',
      'dist/Dockerfile',
      'README.md',
    ]) {
      mkdirSync(path.dirname(path.join(ws, file)), { recursive: true });
      writeFileSync(path.join(ws, file), 'FROM x\n');
    }
    expect((await findDockerfiles(ws)).map((f) => path.relative(ws, f))).toEqual([
      'Dockerfile',
      'app/Containerfile',
      'app/Dockerfile.dev',
      'svc/api.dockerfile',
    ]);
  });
});

describe('scanTargets', () => {
  it('finds a value in a file and an image, and reports a failed docker command and an unmatched glob', async () => {
    const ws = tempDir('ps-targets-');
    writeFileSync(path.join(ws, 'a.txt'), `x ${VALUE}`);
    const outcome = await scanTargets(
      {
        runner: fakeRunner(),
        exec: async (_file, args) =>
          args[0] === 'history' ? { exitCode: 0, stdout: VALUE, stderr: '' } : { exitCode: 1, stdout: '', stderr: 'daemon down' },
        dockerSave: async function* () {
          yield Buffer.from('nothing here');
        },
      },
      ws,
      ['a.txt', 'missing/*.zip'],
      ['app:1'],
      buildPatterns([{ name: 'TOKEN', value: VALUE }]),
    );
    expect(outcome.findings.map((f) => [f.name, f.path])).toEqual([
      ['TOKEN', 'a.txt'],
      ['TOKEN', 'image:app:1!history'],
    ]);
    expect(outcome.problems).toEqual([
      { kind: 'error', path: 'image:app:1!config', message: 'read failed (docker image app:1 failed: daemon down)' },
      { kind: 'error', path: 'missing/*.zip', message: 'matched no file: not scanned (check the glob, relative to GITHUB_WORKSPACE)' },
    ]);
    expect(outcome.files).toBeGreaterThanOrEqual(3);
  });

  it.each([1, 2, MAX_THREADS + 4])('the same outcome with threads: %i as with 1 (all in this thread)', async (threads) => {
    const ws = tempDir('ps-threads-');
    mkdirSync(path.join(ws, 'out/deep'), { recursive: true });
    for (let i = 0; i < 20; i++)
      writeFileSync(path.join(ws, 'out', i % 2 ? 'deep' : '', `f${i}.txt`), i % 3 ? 'clean\n' : `line\n${VALUE}\n`);
    const deps = (n?: number) => ({
      runner: fakeRunner(),
      exec: async () => ({ exitCode: 0, stdout: VALUE, stderr: '' }),
      dockerSave: async function* () {
        yield Buffer.from(`layer ${VALUE}`);
      },
      ...(n === undefined ? {} : { threads: n }),
    });
    const patterns = buildPatterns([{ name: 'TOKEN', value: VALUE }]);
    const strip = (o: Awaited<ReturnType<typeof scanTargets>>): unknown => ({ ...o, elapsedMs: 0 });
    const got = await scanTargets(deps(threads), ws, ['out', 'missing.txt'], ['app:1'], patterns);
    expect(got.findings).toHaveLength(7 + 3);
    expect(strip(got)).toEqual(strip(await scanTargets(deps(1), ws, ['out', 'missing.txt'], ['app:1'], patterns)));
  });

  it('rate', () => {
    expect(rate(5e6, 1000)).toBe('5 MB/s');
    expect(rate(5e6, 0)).toBe('n/a');
  });
});
