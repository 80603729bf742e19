// Temp directories for tests, removed when the test that made one finishes. A module-level afterEach
// in a shared helper would run for the first test file that imported it only (unit test files share
// worker processes), so each directory is tied to its own test instead. Inside a test only: a
// beforeAll makes its own directory and removes it in afterAll.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onTestFinished } from 'vitest';

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`tempDir('${prefix}') outside a test: nothing would remove it`, { cause: error });
  }
  return dir;
}
