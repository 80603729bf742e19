// What main hands the renewal agent and how: agentConfig (the token renewed and revoked only when
// this run created a service token; each source with its lines and lease), and launchAgent with a
// stand-in agent script that records what it got: the config on stdin, nothing but the script and
// the root on argv, an allow-listed env. stopAgent signals only a process that is that agent.
import { spawn } from 'node:child_process';
import { promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agentConfig, launchAgent, stopAgent } from '../../../src/agent/launch.ts';
import type { AgentConfig } from '../../../src/agent/agent.ts';
import { parseInputs } from '../../../src/inputs/main.ts';
import type { Secret, SourceState } from '../../../src/vault/fetch.ts';
import type { Session } from '../../../src/vault/auth.ts';
import { tempRoot, type TempRoot } from './fakes.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const TOKEN = 'hvs.launch-test-token';
const env = {
  INPUT_URL: 'https://vault.example:8200',
  INPUT_METHOD: 'approle',
  'INPUT_ROLE-ID': 'r',
  'INPUT_SECRET-ID': 's',
  INPUT_SECRETS:
    'secret/data/app password | APP_PASSWORD\ndatabase/creds/app username | DB_USER\ndatabase/creds/app password | DB_PASSWORD',
  INPUT_RENEW: 'true',
  'INPUT_REFRESH-INTERVAL': '30',
  'INPUT_ON-CHANGE': 'kill -HUP 1',
  'INPUT_AGENT-MAX-LIFETIME': '600',
};
const session: Session = { token: TOKEN, created: true, batch: false, method: 'approle', ttlSeconds: 600 };
const dir = { root: '/r', secretsDir: '/r/secrets', onTmpfs: true, userSecretsDir: false, marker: 'abc123' };
const vaultSecret = (name: string, requestKey: string): Secret => ({
  name,
  envName: name,
  value: 'never-in-config',
  source: {
    kind: 'vault',
    line: 1,
    requestKey,
    path: requestKey,
    readPath: requestKey,
    key: 'k',
    kvVersion: 2,
    version: 1,
    leaseId: undefined,
  },
});
const secrets: Secret[] = [
  vaultSecret('APP_PASSWORD', 'secret/data/app'),
  vaultSecret('DB_USER', 'database/creds/app'),
  vaultSecret('DB_PASSWORD', 'database/creds/app'),
  { name: 'FROM_ENV', envName: 'FROM_ENV', value: 'never-in-config-either', source: { kind: 'env', line: 1, envVar: 'X' } },
];
const sources: SourceState[] = [
  { key: 'secret/data/app', readPath: 'secret/data/app', kvVersion: 2, version: 3, lease: undefined },
  {
    key: 'database/creds/app',
    readPath: 'database/creds/app',
    kvVersion: undefined,
    version: undefined,
    lease: { leaseId: 'database/creds/app/L1', path: 'database/creds/app', duration: 60, renewable: true },
  },
];

describe('agentConfig', () => {
  it('hands the agent paths, names, sources with their lines and leases, the schedule and the token, and no value', () => {
    const cfg = agentConfig(parseInputs(env), session, dir, '/r/secrets.env', secrets, sources, 1000);
    expect(
      agentConfig(parseInputs({ ...env, 'INPUT_EXTRA-HEADERS': 'X-Gateway-Key: gw' }), session, dir, '/r/e', [], [], 0).headers,
    ).toEqual({
      'x-gateway-key': 'gw',
    });
    expect(cfg).toMatchObject({
      url: 'https://vault.example:8200',
      token: TOKEN,
      renewToken: true,
      revokeToken: true,
      marker: 'abc123',
      root: '/r',
      secretsDir: '/r/secrets',
      envFile: '/r/secrets.env',
      refreshMs: 30_000,
      onChange: 'kill -HUP 1',
      maxLifetimeMs: 600_000,
    });
    expect(cfg.secrets).toEqual([
      { name: 'APP_PASSWORD', envName: 'APP_PASSWORD', key: 'secret/data/app' },
      { name: 'DB_USER', envName: 'DB_USER', key: 'database/creds/app' },
      { name: 'DB_PASSWORD', envName: 'DB_PASSWORD', key: 'database/creds/app' },
      { name: 'FROM_ENV', envName: 'FROM_ENV', key: undefined },
    ]);
    expect(cfg.sources.map((s) => [s.key, s.lines.map((l) => l.name), s.version])).toEqual([
      ['secret/data/app', ['APP_PASSWORD'], 3],
      ['database/creds/app', ['DB_USER', 'DB_PASSWORD'], undefined],
    ]);
    expect(cfg.sources[1]?.lease).toEqual({
      id: 'database/creds/app/L1',
      duration: 60,
      renewable: true,
      obtainedAt: 1000,
      expiresAt: 61_000,
    });
    expect(JSON.stringify(cfg)).not.toContain('never-in-config');
    expect(cfg.templates).toBeUndefined();
  });

  it('hands the agent each rendered file: its template text and source, path, mode and place, never its content', () => {
    const rendered = [
      { name: 'npmrc', text: 'x={{APP_PASSWORD}}\n', source: { inputLine: 2 }, path: '/r/rendered/npmrc', mode: 0o400, inWorkspace: false },
      { name: 'kube', text: '{{DB_USER}}', source: { file: 'k.tmpl' }, path: '/w/.kube/config', mode: 0o600, inWorkspace: true },
    ];
    // What main has besides (bytes, envVar) stays with main.
    const withExtras = rendered.map((r) => ({ ...r, bytes: 99, envVar: 'KUBECONFIG' }));
    const cfg = agentConfig(parseInputs(env), session, dir, '/r/secrets.env', secrets, sources, 1000, withExtras);
    expect(cfg.templates).toEqual(rendered);
  });

  it.each([
    ['a token this run created', { created: true, batch: false }, true],
    ['a batch token', { created: true, batch: true }, false],
    ['a token the user passed in', { created: false, batch: false }, false],
  ])('renews and revokes %s: %s', (_what, kind, expected) => {
    const cfg = agentConfig(parseInputs(env), { ...session, ...kind }, dir, '/r/env', [], [], 0);
    expect([cfg.renewToken, cfg.revokeToken]).toEqual([expected, expected]);
  });

  it('needs renew settings', () => {
    const plain = parseInputs({ ...env, INPUT_RENEW: 'false', 'INPUT_ON-CHANGE': '' });
    expect(() => agentConfig(plain, session, dir, '/r/env', [], [], 0)).toThrow(/renew settings/);
  });
});

/** A stand-in for dist/agent.js: records argv, env and stdin, writes its pid file, waits for SIGTERM. */
const STAND_IN = `
const fs = require('node:fs');
const path = require('node:path');
const root = process.argv[process.argv.indexOf('--root') + 1];
let input = '';
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  fs.writeFileSync(path.join(root, 'seen.json'), JSON.stringify({ argv: process.argv.slice(1), env: process.env, stdin: input }));
  fs.writeFileSync(path.join(root, 'agent.pid'), String(process.pid));
});
process.on('SIGTERM', () => { if (!process.env.IGNORE_TERM) process.exit(0); });
setInterval(() => {}, 1000);
`;

async function standIn(): Promise<{ dir: TempRoot; script: string; cfg: AgentConfig }> {
  const temp = await tempRoot({});
  cleanup.push(() => temp.remove());
  const script = path.join(temp.root, 'bin', 'agent.js');
  await fs.mkdir(path.dirname(script));
  await fs.writeFile(script, STAND_IN);
  const cfg = agentConfig(parseInputs(env), session, { ...dir, root: temp.root, secretsDir: temp.secretsDir }, temp.envFile, [], [], 0);
  return { dir: temp, script, cfg };
}

/** At the test's end, SIGKILL the stand-in with `pid` if it is still running (and still the stand-in). */
function killLater(pid: number, script: string): void {
  cleanup.push(async () => {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (pid > 1 && cmdline.split('\0').includes(script)) process.kill(pid, 'SIGKILL');
  });
}

describe('launchAgent', () => {
  it('passes the config on stdin only: argv holds the script and the root, env only the allow-list', async () => {
    const { dir: temp, script, cfg } = await standIn();
    const parentEnv = {
      PATH: process.env.PATH,
      HOME: '/home/runner',
      RUNNER_TEMP: '/tmp/runner',
      RUNNER_TRACKING_ID: 'github_1234',
      https_proxy: 'http://proxy.test:3128',
      NO_PROXY: 'localhost',
      INPUT_TOKEN: TOKEN,
      'INPUT_SECRET-ID': 's',
      VAULT_TOKEN: TOKEN,
      GITHUB_TOKEN: 'ghs_workflow',
      ACTIONS_RUNTIME_TOKEN: 'runtime',
      MY_SECRET: 'from-a-workflow-secret',
    };
    const pid = await launchAgent(cfg, parentEnv, script);
    killLater(pid, script);
    const seen = JSON.parse(await fs.readFile(path.join(temp.root, 'seen.json'), 'utf8')) as {
      argv: string[];
      env: Record<string, string>;
      stdin: string;
    };
    expect(seen.argv).toEqual([script, '--root', temp.root]);
    expect(Object.keys(seen.env).sort()).toEqual(['HOME', 'NO_PROXY', 'PATH', 'RUNNER_TEMP', 'RUNNER_TRACKING_ID', 'https_proxy']);
    expect(JSON.parse(seen.stdin)).toEqual(cfg);
    // Its output goes to agent.log in the private root, 0600.
    expect((statSync(path.join(temp.root, 'agent.log')).mode & 0o777).toString(8)).toBe('600');
    expect(await stopAgent(pid, temp.root)).toBe('stopped');
  });
});

describe('stopAgent', () => {
  it('signals only our agent for this root; kills one that ignores SIGTERM; a pid gone is gone', async () => {
    const { dir: temp, script, cfg } = await standIn();
    const pid = await launchAgent(cfg, { PATH: process.env.PATH }, script);
    killLater(pid, script);
    expect(await stopAgent(pid, '/another/root')).toBe('not ours');
    expect(await stopAgent(process.pid, temp.root)).toBe('not ours');
    expect(await stopAgent(pid, temp.root)).toBe('stopped');
    // One that ignores SIGTERM is killed once the wait is over.
    const stubborn = spawn(process.execPath, [script, '--root', temp.root], {
      env: { IGNORE_TERM: '1' },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    stubborn.stdin.end('');
    const stubbornPid = stubborn.pid ?? 0;
    killLater(stubbornPid, script);
    await waitForFile(path.join(temp.root, 'seen.json'), stubbornPid);
    const exited = new Promise((resolve) => stubborn.once('exit', resolve));
    expect(await stopAgent(stubbornPid, temp.root, 100)).toBe('killed');
    await exited;
    expect(await stopAgent(stubbornPid, temp.root)).toBe('gone');
  });
});

/** Until the stand-in with `pid` has recorded what it got (it handles SIGTERM from then on). */
async function waitForFile(file: string, pid: number): Promise<void> {
  for (let i = 0; i < 250; i++) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    if (text.includes(`"argv"`) && (await fs.readFile(path.join(path.dirname(file), 'agent.pid'), 'utf8').catch(() => '')) === String(pid))
      return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the stand-in agent did not start');
}
