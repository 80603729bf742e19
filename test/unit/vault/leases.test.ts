// Leases and tokens across the steps, beyond the Vault engine's own tests (the path forms and batch
// tokens are in kv.test.ts and auth.test.ts, the pool in core/pool.test.ts): the agent is not asked to renew a batch token, and what the cleanup summary says about leases.
import { describe, expect, it } from 'vitest';
import { cleanupSummary, type CleanupReport } from '../../../src/post/summary.ts';
import { agentConfig } from '../../../src/agent/launch.ts';
import { parseInputs } from '../../../src/inputs/main.ts';

describe('batch tokens', () => {
  it('the renewal agent is not asked to renew a batch token', () => {
    const config = parseInputs({
      INPUT_URL: 'https://vault.example:8200',
      INPUT_METHOD: 'approle',
      'INPUT_ROLE-ID': 'r',
      'INPUT_SECRET-ID': 's',
      INPUT_SECRETS: 'secret/data/app key',
      INPUT_RENEW: 'true',
    });
    const dir = { root: '/r', secretsDir: '/r/secrets', onTmpfs: true, userSecretsDir: false, marker: '' };
    const session = { token: 'b.AAAA', created: true, batch: true, method: 'approle' as const, ttlSeconds: 600 };
    expect(agentConfig(config, session, dir, '/r/env', [], [], 0).renewToken).toBe(false);
    expect(agentConfig(config, { ...session, token: 's.AAAA', batch: false }, dir, '/r/env', [], [], 0).renewToken).toBe(true);
  });
});

describe('cleanup summary', () => {
  const base: CleanupReport = {
    agent: undefined,
    scrubbed: undefined,
    tokenRevoked: undefined,
    tokenBatchExpires: undefined,
    leasesRevoked: 0,
    leasesWithToken: 0,
    leasesLeft: [],
    filesRemoved: 0,
    dirsRemoved: [],
    loggedOut: [],
    problems: [],
  };
  it('names each lease left alive and when it expires', () => {
    const text = cleanupSummary({
      ...base,
      leasesLeft: [{ leaseId: 'pki/issue/ci/abc', expires: '2030-01-01T00:00:00.000Z', reason: 'refused' }],
    });
    expect(text).toContain('- Leases: 0 revoked, 1 left alive');
    expect(text).toContain('pki/issue/ci/abc` left alive until 2030-01-01T00:00:00.000Z: refused');
  });
  it('says a batch token is left to its TTL, not that it was or was not revoked', () => {
    const text = cleanupSummary({ ...base, tokenBatchExpires: '2030-01-01T00:00:00.000Z' });
    expect(text).toContain('a batch token, which cannot be revoked; it expires by its TTL at 2030-01-01T00:00:00.000Z');
    expect(text).not.toContain('NOT revoked');
  });
  it('counts the leases revoked with the token apart from those revoked by id', () => {
    expect(cleanupSummary({ ...base, tokenRevoked: true, leasesWithToken: 2 })).toContain(
      '- Leases: 0 revoked, 2 revoked with the Vault token, 0 left alive',
    );
  });
});
