// What the container tests share: one secret in an .npmrc and in a docker config.json (as the
// base64 of "user:value"), and a scan of files written to a temporary directory, reduced to
// [path, offset, line, encoding] per finding and [kind, path, message] per error or limit.
import { writeFileSync } from 'node:fs';
import { afterAll, expect } from 'vitest';
import { buildPatterns } from '../../../../src/scan/patterns.ts';
import { scanAll, type ScanEvent, type ScanOptions } from '../../../../src/scan/scanner.ts';
import { tempDir } from '../fixtures.ts';

export const VALUE = 'npm_Xy7Qk2LmN9pR4sT6vW8zA1bC3dE5fG';
export const patterns = buildPatterns([{ name: 'NPM_TOKEN', value: VALUE }]);

export const NPMRC = `registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=${VALUE}\nalways-auth=true\n`;
export const AT = NPMRC.indexOf(VALUE); // 71, line 2
const B64 = Buffer.from(`octo:${VALUE}`).toString('base64');
export const DOCKER_CONFIG = `{"auths":{"ghcr.io":{"auth":"${B64}"}}}\n`;
export const B64_AT = DOCKER_CONFIG.indexOf(B64) + 7; // the value starts 5 bytes in: its core starts at char ceil(5 * 8 / 6)

export const npmrc = (path: string): unknown[] => [path, AT, 2, 'raw'];
export const docker = (path: string): unknown[] => [path, B64_AT, 1, 'base64@2'];

export type Run = (files: Record<string, Buffer | string>, opts?: ScanOptions) => Promise<unknown[]>;

/** A temporary directory (removed after the file's tests) and scans of files written into it. */
export function scanHarness(): { tmp: ReturnType<typeof tempDir>; run: Run; quick: Run } {
  const tmp = tempDir();
  afterAll(() => tmp.dispose());
  const brief = (events: ScanEvent[]): unknown[] => {
    const rel = (p: string): string => p.replace(`${tmp.dir}/`, '');
    return events.flatMap((e) => {
      if (e.kind === 'finding') return [[rel(e.path), e.offset, e.line, e.encoding]];
      if (e.kind === 'done') return [];
      return [[e.kind, rel(e.path), e.message]];
    });
  };
  const run: Run = async (files, opts = {}) => {
    const names = Object.keys(files);
    for (const [name, data] of Object.entries(files)) writeFileSync(tmp.file(name), data);
    return brief(
      await scanAll(
        names.map((n) => tmp.file(n)),
        patterns,
        opts,
      ),
    );
  };
  /** As run, and the scan must end within 5 s (a bound that works stops a bomb early). */
  const quick: Run = async (files, opts = {}) => {
    const started = performance.now();
    const result = await run(files, opts);
    expect(performance.now() - started).toBeLessThan(5000);
    return result;
  };
  return { tmp, run, quick };
}
