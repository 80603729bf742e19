// Post's report (summary.ts): the warnings and the log line of reportCleanup, and the job summary
// with the renewal agent's section, from an agent-status.json.
import { describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../../src/agent/agent.ts';
import { agentEnding, cleanupSummary, reportCleanup, type CleanupReport } from '../../../src/post/summary.ts';
import { fakeRunner } from '../../support/fake-runner.ts';

const status: AgentStatus = {
  format: 1,
  pid: 42,
  started: '2026-01-01T00:00:00.000Z',
  updated: '2026-01-01T00:01:00.000Z',
  state: 'running',
  renewals: { token: 3, leases: 5 },
  failures: [
    { what: 'token renewal', reason: 'Vault answered 403 permission denied', count: 2, last: '2026-01-01T00:00:10.000Z' },
    { what: 'KV refresh (secret/data/x)', reason: 'line one\n::error::forged | `tick` <b>', count: 1, last: '2026-01-01T00:00:20.000Z' },
  ],
  replaced: 1,
  kvChanges: [{ path: 'secret/data/x', from: 1, to: 2, at: '2026-01-01T00:00:05.000Z' }],
  kvChangesTotal: 1,
  onChange: [{ names: ['A_B'], rendered: ['npmrc'], exitCode: 3, ms: 12, at: '2026-01-01T00:00:06.000Z' }],
  onChangeTotal: 1,
  rendered: [{ name: 'npmrc', path: '/w/.npmrc', bytes: 40, renders: 2, id: '64769:1234' }],
  secrets: [
    { name: 'A_B', path: 'secret/data/x', version: 2, bytes: 15 },
    { name: 'FROM_ENV', path: null, version: null, bytes: 4 },
  ],
};

const base: CleanupReport = {
  agent: 'stopped',
  scrubbed: undefined,
  tokenRevoked: true,
  tokenBatchExpires: undefined,
  leasesRevoked: 0,
  leasesWithToken: 0,
  leasesLeft: [],
  filesRemoved: 2,
  dirsRemoved: [],
  loggedOut: [],
  problems: [],
};

describe('cleanup summary: rendered files in the workspace', () => {
  it('counts and names each one post deleted, and counts them in the log line', async () => {
    const text = cleanupSummary({ ...base, workspaceFilesRemoved: ['/w/.npmrc', '/w/.kube/config'] });
    expect(text).toContain('- Files removed: 2\n- Rendered files removed from the workspace: 2\n  - `/w/.npmrc`\n  - `/w/.kube/config`');
    expect(cleanupSummary(base)).not.toContain('Rendered files');
    const runner = fakeRunner();
    await reportCleanup(runner, { ...base, agent: undefined, workspaceFilesRemoved: ['/w/.npmrc'] });
    expect(runner.infos.at(-1)).toContain('3 file(s) and 0 director(ies) removed');
  });
});

describe('cleanup summary: renewal agent section', () => {
  it('lists renewals, failures with their reason, replacements, KV changes, on-change exit codes and the current secrets', () => {
    const text = cleanupSummary({ ...base, agentStatus: status });
    expect(text).toContain('- Renewal agent: stopped by post');
    expect(text).toContain('- Renewals: token 3, leases 5');
    expect(text).toContain('- Failures: 3');
    expect(text).toContain('⚠️ token renewal failed 2 time(s), last at 2026-01-01T00:00:10.000Z: `Vault answered 403 permission denied`');
    expect(text).toContain('- Credentials replaced: 1');
    expect(text).toContain('`secret/data/x`: version 1 → 2');
    expect(text).toContain('- on-change runs: 1 (1 with a non-zero exit code)');
    expect(text).toContain('⚠️ A\\_B (rendered npmrc): exit code 3 after 12 ms');
    expect(text).toContain('- Rendered again: npmrc 2 time(s), now 40 bytes');
    expect(text).toContain('| A\\_B | secret/data/x | 2 | 15 |');
    expect(text).toContain('| FROM\\_ENV | env |  | 4 |');
  });

  it('keeps an outside reason inert: one line, no workflow command, no markup', () => {
    const text = cleanupSummary({ ...base, agentStatus: status });
    const line = text.split('\n').find((l) => l.includes('KV refresh')) ?? '';
    expect(line).toContain('``line one\\n::error::forged | `tick` <b>``');
    expect(text.split('\n').some((l) => l.trimStart().startsWith('::'))).toBe(false);
  });

  it('says when the agent died before post, with the last reason; not when it exited at its max lifetime', () => {
    expect(agentEnding('gone', status)).toEqual({
      text: 'died before post stopped it (renewals stopped then); last reason: KV refresh (secret/data/x): line one\n::error::forged | `tick` <b>',
      early: true,
    });
    expect(agentEnding('not ours', { ...status, state: 'failed', reason: 'boom' }).text).toMatch(/died before post .*last reason: boom$/);
    expect(agentEnding('gone', undefined).text).toMatch(/last reason: it wrote no status$/);
    expect(agentEnding('gone', { ...status, state: 'exited', reason: 'max lifetime reached' })).toEqual({
      text: 'exited by itself before post: max lifetime reached',
      early: false,
    });
    expect(cleanupSummary({ ...base, agent: 'gone', agentStatus: status })).toContain('- ⚠️ Agent: died before post stopped it');
  });
});

describe('reportCleanup', () => {
  it('warns for each lease left alive and each problem, logs the counts, and writes the summary', async () => {
    const runner = fakeRunner();
    const report: CleanupReport = {
      ...base,
      agent: undefined,
      leasesRevoked: 1,
      leasesWithToken: 2,
      leasesLeft: [
        { leaseId: 'l/3', expires: '2030-01-01T00:00:00.000Z', reason: 'not revoked: timeout' },
        { leaseId: 'l/4', expires: undefined, reason: 'refused' },
      ],
      dirsRemoved: ['/dev/shm/pipeline-secrets-x'],
      problems: ['docker logout ghcr.io failed (exit 1)'],
    };
    await reportCleanup(runner, report);
    expect(runner.warnings).toEqual([
      'cleanup: lease l/3 left alive until 2030-01-01T00:00:00.000Z: not revoked: timeout',
      'cleanup: lease l/4 left alive: refused',
      'cleanup: docker logout ghcr.io failed (exit 1)',
    ]);
    expect(runner.infos).toEqual([
      'Pipeline Secrets cleanup: token revoked, 3 lease(s) revoked, 2 lease(s) left alive, 2 file(s) and 1 director(ies) removed',
    ]);
    expect(runner.summaries).toEqual([cleanupSummary(report)]);
    expect(runner.summaries[0]).toContain('- Leases: 1 revoked, 2 revoked with the Vault token, 2 left alive');
  });

  it('says a batch token was left to expire, and nothing of a token there was none of', async () => {
    const batch = fakeRunner();
    await reportCleanup(batch, { ...base, tokenRevoked: undefined, tokenBatchExpires: '2030-01-01T00:00:00.000Z' });
    expect(batch.infos[0]).toBe(
      'Pipeline Secrets cleanup: batch token left to expire, 0 lease(s) revoked, 2 file(s) and 0 director(ies) removed',
    );
    expect(batch.summaries[0]).toContain('a batch token, which cannot be revoked; it expires by its TTL at 2030-01-01T00:00:00.000Z');
    const none = fakeRunner();
    await reportCleanup(none, { ...base, tokenRevoked: undefined });
    expect(none.infos[0]).toBe('Pipeline Secrets cleanup: 0 lease(s) revoked, 2 file(s) and 0 director(ies) removed');
    expect(none.summaries[0]).not.toContain('Vault token');
  });
});

describe('cleanup summary: leases and the token', () => {
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
  it('counts the certificates revoked by serial, and names each one left valid by name, mount and expiry, also as a warning', async () => {
    const left = { name: 'client', mount: 'pki', expires: '2030-01-01T00:00:00.000Z', reason: 'Vault refused pki/revoke' };
    const report = { ...base, certsRevoked: 1, certsLeft: [left] };
    const text = cleanupSummary(report);
    expect(text).toContain('- Certificates: 1 revoked by serial, 1 left valid');
    expect(text).toContain('certificate client from pki left valid until 2030-01-01T00:00:00.000Z: Vault refused pki/revoke');
    const runner = fakeRunner();
    await reportCleanup(runner, report);
    expect(runner.warnings).toEqual([
      'cleanup: certificate client from pki left valid until 2030-01-01T00:00:00.000Z: Vault refused pki/revoke',
    ]);
    expect(cleanupSummary(base)).not.toContain('Certificates');
  });
  it('counts the leases revoked with the token apart from those revoked by id', () => {
    expect(cleanupSummary({ ...base, tokenRevoked: true, leasesWithToken: 2 })).toContain(
      '- Leases: 0 revoked, 2 revoked with the Vault token, 0 left alive',
    );
  });
});
