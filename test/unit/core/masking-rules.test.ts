// Unit checks behind the masking-rules e2e: where the summary says the files are (main/summary.ts)
// and the empty name a `*` key can give (vault/fetch.ts).
import { describe, expect, it } from 'vitest';
import { SecretError } from '../../../src/core/errors.ts';
import { select } from '../../../src/vault/fetch.ts';
import { deliverySummary, type DeliveryReport } from '../../../src/main/summary.ts';

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
  it('the summary names tmpfs only when the secrets directory is on it', () => {
    expect(deliverySummary(report({ onTmpfs: true }))).toContain('in memory (tmpfs /dev/shm)');
    expect(deliverySummary(report({ onTmpfs: false }))).toContain('under RUNNER_TEMP on disk');
    const userOnDisk = deliverySummary(report({ onTmpfs: false, userSecretsDir: true }));
    expect(userOnDisk).toContain('the secrets-dir you gave, on disk');
    expect(userOnDisk).not.toMatch(/tmpfs|RUNNER_TEMP/);
    expect(deliverySummary(report({ onTmpfs: true, userSecretsDir: true }))).toContain('the secrets-dir you gave, in memory');
  });
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
