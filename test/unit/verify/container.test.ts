// verifyContainer and expectedFromDir: sizes from the host directory (files only), names that are
// not safe names never reach docker's argv, and the summary table says what was seen.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Exec } from '../../../src/core/exec.ts';
import { expectedFromDir, verifyContainer, verifySummary } from '../../../src/verify/container.ts';
import { tempDir } from '../../support/temp.ts';

describe('expectedFromDir', () => {
  it('lists the regular files with their byte counts, sorted; directories and links are not secrets', async () => {
    const dir = tempDir('ps-expected-');
    writeFileSync(path.join(dir, 'B'), '12345');
    writeFileSync(path.join(dir, 'A'), '');
    mkdirSync(path.join(dir, 'sub'));
    symlinkSync('/etc/hostname', path.join(dir, 'link'));
    expect(await expectedFromDir(dir)).toEqual([
      { name: 'A', bytes: 0 },
      { name: 'B', bytes: 5 },
    ]);
  });
});

describe('verifyContainer', () => {
  it('passes only safe names to docker, as arguments; the others are reported missing', async () => {
    const calls: string[][] = [];
    const exec: Exec = async (_file, args) => {
      calls.push([...args]);
      return { exitCode: 0, stdout: 'GOOD 4\n', stderr: '' };
    };
    const results = await verifyContainer(exec, 'app', '/run/secrets', [
      { name: 'GOOD', bytes: 4 },
      { name: '$(touch x)', bytes: 1 },
      { name: '-n', bytes: 1 },
    ]);
    expect(calls[0]?.slice(-2)).toEqual(['/run/secrets', 'GOOD']);
    expect(results).toEqual([
      { name: 'GOOD', expected: 4, seen: 4 },
      { name: '$(touch x)', expected: 1, seen: undefined },
      { name: '-n', expected: 1, seen: undefined },
    ]);
  });

  it('the summary gives each secret, its sizes and a mark, never more', () => {
    const text = verifySummary('app', '/run/secrets', [
      { name: 'A', expected: 3, seen: 3 },
      { name: 'B', expected: 2, seen: undefined },
    ]);
    expect(text).toContain('1 of 2 secret(s) present at /run/secrets');
    expect(text).toContain('| A | 3 | 3 | ✅ |');
    expect(text).toContain('| B | 2 | missing or empty | ❌ |');
  });
});
