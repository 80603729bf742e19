// stopRenewalAgent: post's first phase. The pid is this test's own process, which is alive but not
// a renewal agent for the root, so it is never signalled: what is asserted is what post reads from
// the agent's files (log, status, leases) and warns about.
import { symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../../src/agent/agent.ts';
import type { Ledger } from '../../../src/core/ledger.ts';
import { stopRenewalAgent } from '../../../src/post/agent-stop.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { tmp } from './fixtures.ts';

function ledgerFor(root: string): Ledger {
  return { root, files: [], leases: ['l/main-1', 'l/main-2'], agentPid: process.pid };
}

const status: AgentStatus = {
  format: 1,
  pid: 4242,
  started: '2030-01-01T00:00:00.000Z',
  updated: '2030-01-01T00:05:00.000Z',
  state: 'failed',
  reason: 'token renewal refused',
  renewals: { token: 2, leases: 1 },
  failures: [{ what: 'token renewal', reason: 'Vault answered 403 permission denied', count: 3, last: '2030-01-01T00:04:00.000Z' }],
  replaced: 0,
  kvChanges: [],
  kvChangesTotal: 0,
  onChange: [
    { names: ['A'], exitCode: 0, ms: 5, at: '2030-01-01T00:01:00.000Z' },
    { names: ['A', 'B'], rendered: ['npmrc'], exitCode: 2, ms: 7, at: '2030-01-01T00:02:00.000Z' },
  ],
  onChangeTotal: 2,
  rendered: [{ name: 'npmrc', path: '/w/.npmrc', bytes: 40, renders: 2, id: '64769:1234' }],
  secrets: [{ name: 'A', path: 'secret/data/a', version: 3, bytes: 12 }],
};

describe('stopRenewalAgent', () => {
  it('does nothing when main started no agent', async () => {
    const runner = fakeRunner();
    const ledger: Ledger = { root: tmp(), files: [], leases: ['l/1'] };
    expect(await stopRenewalAgent(runner, ledger)).toEqual({ agent: undefined, agentStatus: undefined, leases: ['l/1'], problems: [] });
    expect([...runner.infos, ...runner.warnings]).toEqual([]);
  });

  it("never signals a process that is not the root's agent, and reports the agent's status, log and problems", async () => {
    const root = tmp();
    writeFileSync(path.join(root, 'agent-status.json'), JSON.stringify(status));
    writeFileSync(path.join(root, 'agent.log'), 'renewed the token\nre-read secret/data/a: version 3\n');
    const runner = fakeRunner();
    const part = await stopRenewalAgent(runner, ledgerFor(root));
    expect(part.agent).toBe('not ours');
    expect(part.agentStatus).toEqual(status);
    expect(runner.infos).toEqual(['Renewal agent log:', '  renewed the token', '  re-read secret/data/a: version 3']);
    expect(runner.warnings).toEqual([
      'renewal agent: died before post stopped it (renewals stopped then); last reason: token renewal refused',
      'renewal agent: token renewal failed 3 time(s), last at 2030-01-01T00:04:00.000Z: Vault answered 403 permission denied',
      'renewal agent: on-change for A, B exited with code 2 (at 2030-01-01T00:02:00.000Z)',
    ]);
  });

  it('adds the leases the agent took and drops those it revoked', async () => {
    const root = tmp();
    writeFileSync(path.join(root, 'agent-leases.json'), JSON.stringify({ leases: ['l/agent-1', 'l/main-1'], revoked: ['l/main-2'] }));
    expect((await stopRenewalAgent(fakeRunner(), ledgerFor(root))).leases).toEqual(['l/main-1', 'l/agent-1']);
  });

  it('reads the status as untrusted: not through a symlink, only format 1, unknown fields dropped, wrong types defaulted', async () => {
    const root = tmp();
    const elsewhere = path.join(tmp(), 'status.json');
    writeFileSync(elsewhere, JSON.stringify(status));
    symlinkSync(elsewhere, path.join(root, 'agent-status.json'));
    expect((await stopRenewalAgent(fakeRunner(), ledgerFor(root))).agentStatus).toBeUndefined();

    const other = tmp();
    writeFileSync(path.join(other, 'agent-status.json'), JSON.stringify({ ...status, format: 2 }));
    expect((await stopRenewalAgent(fakeRunner(), ledgerFor(other))).agentStatus).toBeUndefined();

    const odd = tmp();
    const raw = {
      format: 1,
      state: 'dancing',
      pid: 'x',
      renewals: null,
      failures: [{ what: 1 }],
      extra: 'x',
      secrets: [{ name: 'A', path: 5 }],
    };
    writeFileSync(path.join(odd, 'agent-status.json'), JSON.stringify(raw));
    expect((await stopRenewalAgent(fakeRunner(), ledgerFor(odd))).agentStatus).toEqual({
      format: 1,
      pid: 0,
      started: '',
      updated: '',
      state: 'running',
      renewals: { token: 0, leases: 0 },
      failures: [{ what: '', reason: '', count: 0, last: '' }],
      replaced: 0,
      kvChanges: [],
      kvChangesTotal: 0,
      onChange: [],
      onChangeTotal: 0,
      secrets: [{ name: 'A', path: null, version: null, bytes: 0 }],
    });
  });
});
