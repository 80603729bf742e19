// The leak scan's summary: the verdict says "no leak found" only when something was scanned and
// nothing was left out; findings give names, encodings and places, never a value.
import { describe, expect, it } from 'vitest';
import type { ScanOutcome } from '../../../src/leak-scan/scan-targets.ts';
import { findingText, scanSummary } from '../../../src/leak-scan/summary.ts';

const clean: ScanOutcome = {
  findings: [],
  problems: [],
  notices: [],
  lint: [],
  files: 3,
  bytes: 2_000_000,
  elapsedMs: 1000,
  followed: 0,
  leakScan: true,
};
const finding = { kind: 'finding' as const, name: 'DB_PASSWORD', encoding: 'base64' as const, path: '/ws/dist/a.js', offset: 7, line: 2 };

describe('scanSummary', () => {
  it.each<[string, Partial<ScanOutcome>, string]>([
    ['clean', {}, '**No leak found.**'],
    ['lint only', { leakScan: false }, '**Not scanned for leaks**'],
    ['a leak', { findings: [finding] }, '**1 leak(s) found:**'],
    ['nothing read', { files: 0 }, '**Nothing was scanned**'],
    ['a problem', { problems: [{ kind: 'error', path: 'x.tar', message: 'truncated' }] }, '**Incomplete**: 1 input(s) not scanned'],
  ])('%s', (_, outcome, verdict) => {
    const text = scanSummary({ ...clean, ...outcome }, '/ws', 2, 10);
    expect(text).toContain(verdict);
    expect(text).toMatch(/\d input\(s\), 2\.0 MB scanned in 1\.0 s for 2 value\(s\) in 10 encoded form\(s\)/);
  });

  it('says where the values came from: each step by its private directory and counts, env names, Vault lines', () => {
    const text = scanSummary({ ...clean }, '/ws', 5, 40, {
      steps: [
        {
          root: '/dev/shm/pipeline-secrets-a',
          secretsDir: '/dev/shm/pipeline-secrets-a/secrets',
          files: 2,
          publicFiles: 0,
          side: { 'registry-password': 1, 'vault-token': 1, superseded: 0 },
        },
        {
          root: undefined,
          secretsDir: '/ws/my-secrets',
          files: 1,
          publicFiles: 0,
          side: { 'registry-password': 0, 'vault-token': 0, superseded: 0 },
        },
      ],
      envNames: ['SLACK_WEBHOOK'],
      vaultLines: [{ line: 3, path: 'secret/ci/app', values: 2 }],
    });
    expect(text).toContain(
      [
        'The values came from:',
        '',
        '- Pipeline Secrets step /dev/shm/pipeline-secrets-a: 2 secret file(s), 1 registry password(s) given as inputs, 1 Vault token(s)',
        '- Pipeline Secrets step /ws/my-secrets: 1 secret file(s)',
        // Markdown-escaped (cell): renders as the name.
        '- 1 env var(s): SLACK\\_WEBHOOK',
        '- Vault secrets line 3 (secret/ci/app): 2 value(s)',
      ].join('\n'),
    );
    expect(scanSummary({ ...clean }, '/ws', 0, 0)).not.toContain('The values came from');
  });

  it('lists findings with workspace-relative paths, problems, symlink notices and Dockerfile warnings', () => {
    const text = scanSummary(
      {
        ...clean,
        findings: [finding],
        problems: [{ kind: 'limit', path: 'big.tar', message: 'too large' }],
        notices: [{ path: 'loop', message: 'symlink loop' }],
        lint: [{ file: 'Dockerfile', line: 2, rule: 'secret-arg', message: 'ARG NPM_TOKEN looks like a credential' }],
        followed: 1,
      },
      '/ws',
      1,
      5,
    );
    // Names are table cells, escaped for markdown.
    expect(text).toContain('| DB\\_PASSWORD | base64 | dist/a.js | 2 | 7 |');
    expect(text).toContain('- big.tar: too large');
    expect(text).toContain('- loop: symlink loop');
    expect(text).toContain('- Dockerfile:2 (secret-arg): ARG NPM\\_TOKEN looks like a credential');
    expect(text).toContain(', 1 symlink(s) followed.');
  });

  it('findingText names the secret, encoding, place and offset', () => {
    expect(findingText(finding)).toBe("secret 'DB_PASSWORD' found as base64 in /ws/dist/a.js line 2 at byte 7");
  });
});
