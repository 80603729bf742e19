// Main's job summary: where each secret went and its byte count, leases and what post will do;
// never a value.
import { describe, expect, it } from 'vitest';
import { deliverySummary, type DeliveryReport } from '../../../src/main/summary.ts';
import type { Secret } from '../../../src/vault/fetch.ts';

const VALUE = 'summary-secret-value-Kq8!';
const report: DeliveryReport = {
  secrets: [
    {
      name: 'DB_PASSWORD',
      envName: 'DB_PASSWORD',
      value: VALUE,
      source: {
        kind: 'vault',
        line: 1,
        requestKey: 'database/creds/app',
        path: 'database/creds/app',
        readPath: 'database/creds/app',
        key: 'password',
        kvVersion: undefined,
        version: undefined,
        leaseId: 'database/creds/app/l1',
      },
    },
    { name: 'PEM', envName: 'PEM', value: 'a\nb', source: { kind: 'env', line: 1, envVar: 'PEM' } },
  ],
  secretsDir: '/dev/shm/pipeline-secrets-x/secrets',
  onTmpfs: true,
  exportEnv: true,
  exportOutputs: false,
  envFileSkipped: ['PEM'],
  leases: [{ leaseId: 'database/creds/app/l1', path: 'database/creds/app', duration: 600, renewable: true }],
  tokenRevocable: true,
  registries: [],
  dockerConfig: undefined,
  buildSecrets: [],
};

describe('deliverySummary', () => {
  // Table cells escape Markdown: `_` reads `\_`.
  it('rows of name, source, kind, delivery and bytes; the leases; what post will do; no value', () => {
    const text = deliverySummary(report);
    expect(text).toContain('2 secret(s) delivered as 0600 files in `/dev/shm/pipeline-secrets-x/secrets`, in memory (tmpfs /dev/shm).');
    expect(text).toContain(
      `| DB\\_PASSWORD | database/creds/app → password | engine, lease | file, env-file, env DB\\_PASSWORD | ${VALUE.length} |`,
    );
    expect(text).toContain('| PEM | env PEM | workflow secret | file, env PEM | 3 |');
    expect(text).toContain('| database/creds/app/l1 | database/creds/app | 600 | yes |');
    expect(text).toContain('Post will revoke the Vault token, revoke 1 lease(s), delete these files and the directory.');
    expect(text).not.toContain(VALUE);
  });

  it('says post will revoke by serial the certificates of pki entries that carry no lease', () => {
    const source = (key: string, leaseId?: string) =>
      ({
        kind: 'vault',
        line: 1,
        requestKey: 'pki x',
        path: 'pki/issue/ci',
        readPath: 'pki/issue/ci',
        key,
        kvVersion: undefined,
        version: undefined,
        leaseId,
      }) as const;
    const pem = (name: string, key: string, leaseId?: string): Secret => ({
      name,
      envName: name,
      value: 'x',
      pem: true,
      source: source(key, leaseId),
    });
    const secrets = [pem('a.crt', 'certificate'), pem('a.key', 'private_key'), pem('b.crt', 'certificate', 'pki/issue/ci/l')];
    const text = deliverySummary({ ...report, secrets, leases: [], tokenRevocable: false });
    expect(text).toContain('Post will revoke 1 certificate(s) by serial, delete these files and the directory.');
  });

  it('a batch token: not revoked, its end named; a secrets-dir of the user on disk is said so', () => {
    const text = deliverySummary({
      ...report,
      leases: [],
      tokenRevocable: false,
      batchTokenExpires: '2030-01-02T03:19:05.000Z',
      userSecretsDir: true,
      onTmpfs: false,
    });
    expect(text).toContain('the secrets-dir you gave, on disk');
    expect(text).toContain('Post will delete these files and the directory.');
    expect(text).toContain('batch token: it cannot be revoked and expires by its TTL at 2030-01-02T03:19:05.000Z');
  });
});

/** A report with no secrets, for where the summary says the files are. */
const at = (over: Partial<DeliveryReport>): DeliveryReport => ({ ...report, secrets: [], ...over });

describe('where the files are', () => {
  it('the summary names tmpfs only when the secrets directory is on it', () => {
    expect(deliverySummary(at({ onTmpfs: true }))).toContain('in memory (tmpfs /dev/shm)');
    expect(deliverySummary(at({ onTmpfs: false }))).toContain('under RUNNER_TEMP on disk');
    const userOnDisk = deliverySummary(at({ onTmpfs: false, userSecretsDir: true }));
    expect(userOnDisk).toContain('the secrets-dir you gave, on disk');
    expect(userOnDisk).not.toMatch(/tmpfs|RUNNER_TEMP/);
    expect(deliverySummary(at({ onTmpfs: true, userSecretsDir: true }))).toContain('the secrets-dir you gave, in memory');
  });
});
