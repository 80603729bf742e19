// Unit checks behind the masking-rules e2e: where the summary says the files are, the export guard
// at the Runner edge, and the empty name a `*` key can give.
import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPrivateDir } from '../../../src/core/private-dir.ts';
import { SecretError } from '../../../src/core/errors.ts';
import { select } from '../../../src/vault/fetch.ts';
import { actionsRunner } from '../../../src/core/runner.ts';
import { deliverySummary, type DeliveryReport } from '../../../src/main/summary.ts';

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-masking-rules-'));
  made.push(dir);
  return dir;
}

const report = (over: Partial<DeliveryReport>): DeliveryReport => ({
  secrets: [],
  secretsDir: '/x/secrets',
  onTmpfs: true,
  exportEnv: false,
  exportOutputs: false,
  envFileSkipped: [],
  leases: [],
  tokenRevocable: false,
  registries: [],
  dockerConfig: undefined,
  buildSecrets: [],
  ...over,
});

describe('where the files are', () => {
  it('a user secrets-dir on disk is not on tmpfs, even when the private root is', async () => {
    const runnerTemp = tmp();
    const userDir = path.join(tmp(), 'mine');
    const dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, userDir);
    made.push(dir.root);
    expect(dir.root.startsWith('/dev/shm/')).toBe(true);
    expect(dir.secretsDir).toBe(userDir);
    expect(dir.onTmpfs).toBe(false);
  });

  it('a user secrets-dir on tmpfs is reported as such', async () => {
    const userDir = path.join('/dev/shm', `ps-masking-rules-${process.pid}-${Date.now()}`);
    const dir = await createPrivateDir({ RUNNER_TEMP: tmp() }, userDir);
    made.push(dir.root, userDir);
    expect(dir.onTmpfs).toBe(true);
  });

  it('the summary names tmpfs only when the secrets directory is on it', () => {
    expect(deliverySummary(report({ onTmpfs: true }))).toContain('in memory (tmpfs /dev/shm)');
    expect(deliverySummary(report({ onTmpfs: false }))).toContain('under RUNNER_TEMP on disk');
    const userOnDisk = deliverySummary(report({ onTmpfs: false, userSecretsDir: true }));
    expect(userOnDisk).toContain('the secrets-dir you gave, on disk');
    expect(userOnDisk).not.toMatch(/tmpfs|RUNNER_TEMP/);
    expect(deliverySummary(report({ onTmpfs: true, userSecretsDir: true }))).toContain('the secrets-dir you gave, in memory');
  });
});

describe('exports without the runner file commands', () => {
  for (const [file, call] of [
    ['GITHUB_ENV', () => actionsRunner.exportVariable('SOME_VAR', 'value-never-printed')],
    ['GITHUB_OUTPUT', () => actionsRunner.setOutput('some-output', 'value-never-printed')],
  ] as const) {
    it(`refuses when ${file} is unset, printing nothing`, () => {
      const saved = process.env[file];
      const write = process.stdout.write.bind(process.stdout);
      const printed: string[] = [];
      delete process.env[file];
      process.stdout.write = (chunk: string | Uint8Array) => (printed.push(String(chunk)), true);
      try {
        expect(call).toThrow(new RegExp(`file command ${file} is not set`));
      } finally {
        process.stdout.write = write;
        if (saved !== undefined) process.env[file] = saved;
      }
      expect(printed.join('')).not.toContain('value-never-printed');
    });
  }
});

describe("a '*' key that gives an empty name", () => {
  it('is refused with one line naming the line, path and key', () => {
    const line = {
      line: 3,
      path: 'secret/data/ci/odd',
      version: undefined,
      selector: { kind: 'all', keepCase: false, prefix: 'P_' },
      optional: false,
      name: undefined,
      body: undefined,
    } as const;
    const result = { data: { '@@\n': 'value-of-odd-key', ok: 'v' }, readPath: 'secret/data/ci/odd' } as unknown as Parameters<
      typeof select
    >[1];
    let error: unknown;
    try {
      select(line, result, []);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SecretError);
    const message = (error as Error).message;
    expect(message).toMatch(/^secrets line 3: key "@@\\n" at 'secret\/data\/ci\/odd' gives an empty name under '\*'/);
    expect(message).not.toContain('\n');
    expect(message).not.toContain('value-of-odd-key');
  });
});
