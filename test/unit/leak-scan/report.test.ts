// The SARIF report: what upload-sarif takes (rules, results with workspace-relative URIs and byte
// regions), and what was not scanned or a failure as execution notifications, never a clean bill.
import { describe, expect, it } from 'vitest';
import { sarifReport } from '../../../src/leak-scan/report.ts';

interface SarifRun {
  readonly invocations: unknown[];
  readonly results: Array<{
    readonly ruleId: string;
    readonly locations: Array<{ readonly physicalLocation: unknown }>;
    readonly properties?: unknown;
  }>;
}
const runOf = (report: object): SarifRun => (report as { runs: SarifRun[] }).runs[0] as SarifRun;

const finding = (p: string) => ({ kind: 'finding' as const, name: 'TOKEN', encoding: 'raw' as const, path: p, offset: 4, line: 1 });

describe('sarifReport', () => {
  it('results for leaks and lint, a byte region only into a file itself', () => {
    const report = sarifReport(
      {
        findings: [finding('/ws/a.txt'), finding('/ws/b.tar!inner/c.txt'), finding('image:app:1!history')],
        lint: [{ file: 'Dockerfile', line: 3, rule: 'secret-env', message: 'ENV TOKEN' }],
        problems: [],
      },
      '/ws',
      new Map([['TOKEN\0raw', 12]]),
    );
    const run = runOf(report);
    expect(report).toMatchObject({ version: '2.1.0' });
    expect(run.invocations).toEqual([{ executionSuccessful: true }]);
    expect(run.results.map((r) => [r.ruleId, r.locations[0]?.physicalLocation])).toEqual([
      ['leaked-secret', { artifactLocation: { uri: 'a.txt' }, region: { byteOffset: 4, byteLength: 12, startLine: 1 } }],
      ['leaked-secret', { artifactLocation: { uri: 'b.tar' } }],
      ['leaked-secret', { artifactLocation: { uri: 'image:app:1' } }],
      ['secret-env', { artifactLocation: { uri: 'Dockerfile' }, region: { startLine: 3 } }],
    ]);
    expect(run.results[1]?.properties).toEqual({ secret: 'TOKEN', encoding: 'raw', offset: 4, member: 'inner/c.txt' });
  });

  it('what was not scanned, and a failure, make the run unsuccessful', () => {
    const report = sarifReport(
      {
        findings: [],
        lint: [],
        problems: [{ kind: 'limit', path: 'big.tar', message: 'too large' }],
        failure: "input 'paths': nothing to scan",
      },
      '/ws',
      new Map(),
    );
    expect(runOf(report).invocations).toEqual([
      {
        executionSuccessful: false,
        toolExecutionNotifications: [
          { level: 'error', message: { text: "input 'paths': nothing to scan" } },
          { level: 'warning', message: { text: 'big.tar: too large' } },
        ],
      },
    ]);
  });
});
