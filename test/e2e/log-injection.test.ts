// Workflow-command injection into the log, end to end through dist/ and the runner harness: outside
// text (a workspace file name, a Vault key name, the secrets-dir input, an archive member name) that
// holds line breaks, `::command::` lines and terminal escapes reaches the log, annotations and the
// summary only inert (src/core/log-safe.ts): the harness, which processes output as the runner does,
// sees no forged annotation, no extra mask, no stop-commands and no escape.
//
// PS_DIST_DIR runs the same tests against another build (an older dist/, to show they fail there).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent/launch.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { parseCommand, RUNNER_COMMANDS } from '../support/harness/commands.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { ledgerOf, newJob, repo, VALUES } from './setup.ts';

const DIST = process.env.PS_DIST_DIR ?? path.join(repo, 'dist');
const MAIN = path.join(DIST, 'main.js');
const POST = path.join(DIST, 'post.js');
const SCAN = path.join(DIST, 'scan.js');
const SCAN_YML = path.join(repo, 'scan/action.yml');
const TOKEN = 'npm_LogInjection_Token_7d2e91';

/** The hostile tail: a forged error annotation titled X, a forged mask, and (for Vault) stop-commands. */
const FORGED = '\n::error title=X::forged\n::add-mask::Files removed';
const ESC = '\u001b';
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/;
const REGISTERED = new Set(RUNNER_COMMANDS);

let job: Job | undefined;
let bao: OpenBao | undefined;
const mains: StepResult[] = [];
const outside: string[] = [];
afterEach(async () => {
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
    if (ledger.root) await fs.rm(ledger.root, { recursive: true, force: true });
  }
  await job?.cleanup();
  job = undefined;
  await bao?.stop();
  bao = undefined;
  for (const dir of outside.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** What the runner took from a step's output as commands (stdout and stderr, line by line). */
function commands(step: StepResult): Array<{ command: string; title?: string; data: string }> {
  return `${step.stdout}\n${step.stderr}`
    .split(/\r\n|\r|\n/)
    .map((line) => parseCommand(line, REGISTERED))
    .filter((c) => c !== undefined)
    .map((c) => ({ command: c.command, data: c.data, ...(c.properties.title !== undefined ? { title: c.properties.title } : {}) }));
}

/** No forged command took effect: no annotation titled X or saying 'forged', no forged mask, no stop-commands, no escape. */
function expectNothingForged(step: StepResult): void {
  const cmds = commands(step);
  expect(
    cmds.filter((c) => c.title === 'X' || c.command === 'stop-commands'),
    step.log,
  ).toEqual([]);
  expect(
    step.annotations.filter((a) => a.message === 'forged' || a.message.startsWith('forged')),
    step.log,
  ).toEqual([]);
  expect(step.masks.filter((m) => /Files removed|Pipeline|stop|tok/.test(m))).toEqual([]);
  for (const a of step.annotations) expect(a.message, `annotation ${JSON.stringify(a.message)}`).not.toMatch(CONTROLS);
  expect(step.stdout).not.toContain(ESC);
  expect(step.stderr).not.toContain(ESC);
  expect(step.summary).not.toContain(ESC);
}

describe('workflow-command injection: outside text reaches the log inert', () => {
  it.each(['redact', 'delete'] as const)(
    'a workspace file name with line breaks and commands, scrubbed by post (scrub: %s)',
    async (mode) => {
      job = await newJob();
      const main = await job.runMain(MAIN, { 'env-secrets': 'NPM_TOKEN', scrub: mode }, { env: { NPM_TOKEN: TOKEN } });
      expect(main.exitCode, main.log).toBe(0);
      const name = `leak${FORGED}`;
      writeFileSync(path.join(job.workspace, name), `token=${TOKEN}\n`);
      const post = await job.runPost(POST, main);
      expect(post.exitCode, post.log).toBe(0);
      expectNothingForged(post);
      const shown = 'leak\\n::error title=X::forged\\n::add-mask::Files removed';
      const verb = mode === 'redact' ? 'redacted' : 'deleted';
      expect(post.log).toContain(`scrub: NPM_TOKEN found 1 time(s) in ${shown}: ${verb}`);
      // The summary names the file on one line of its list.
      expect(post.summary.split('\n').some((l) => l.includes('/leak\\n::error title=X::forged') && l.endsWith(verb))).toBe(true);
      if (mode === 'redact') expect(readFileSync(path.join(job.workspace, name), 'utf8')).toBe(`token=${'*'.repeat(TOKEN.length)}\n`);
      else expect(existsSync(path.join(job.workspace, name))).toBe(false);
      assertNoLeak(job, [main, post], [TOKEN], { privateDirs: [ledgerOf(main).root, ledgerOf(main).secretsDir] });
    },
    60_000,
  );

  it('the secrets-dir input with a line break and commands', async () => {
    job = await newJob();
    const dir = path.join(job.runnerTemp, `out${FORGED}`);
    const main = await job.runMain(MAIN, { 'env-secrets': 'NPM_TOKEN', 'secrets-dir': dir }, { env: { NPM_TOKEN: TOKEN } });
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    expectNothingForged(main);
    expect(main.log).toContain(
      `Pipeline Secrets: 1 secret(s) delivered to ${job.runnerTemp}/out\\n::error title=X::forged\\n::add-mask::Files removed`,
    );
    expect(main.summary).toContain(`delivered as 0600 files in \`${job.runnerTemp}/out\\n::error title=X::forged`);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expectNothingForged(post);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);

  describe('a Vault key name with line breaks, stop-commands and a forged annotation', () => {
    const hostileKey = `k${FORGED}\n::stop-commands::tok`;
    const shown = 'k\\n::error title=X::forged\\n::add-mask::Files removed\\n::stop-commands::tok';
    const login = (): Record<string, string> => ({
      url: bao?.url ?? '',
      method: 'approle',
      'role-id': VALUES.roleId,
      'secret-id': VALUES.roleSecretId,
    });
    beforeEach(async () => {
      bao = await OpenBao.start();
      await bao.enableKv('secret', 2);
      await bao.putKv('secret', 'ci/evil', { ok: VALUES.apiKey, [hostileKey]: VALUES.legacy });
      await bao.putKv('secret', 'ci/app', { password: VALUES.password });
      await bao.addPolicy('ci', [
        { path: 'secret/data/ci/*', capabilities: ['read'] },
        { path: 'sys/leases/renew', capabilities: ['update'] },
        { path: 'sys/leases/revoke', capabilities: ['update'] },
      ]);
      await bao.addAppRole('approle', 'ci', {
        roleId: VALUES.roleId,
        secretId: VALUES.roleSecretId,
        policies: ['ci'],
        ttl: '60s',
        maxTtl: '300s',
      });
      job = await newJob();
    });

    it('read with * (every key): file and env names are derived from it, so it reaches no name', async () => {
      const main = await job!.runMain(MAIN, { ...login(), secrets: 'secret/ci/evil *' });
      mains.push(main);
      expect(main.exitCode, main.log).toBe(0);
      expectNothingForged(main);
      const names = (await fs.readdir(ledgerOf(main).secretsDir)).sort();
      expect(names).toEqual(['kerrortitleXforgedaddmaskFilesremovedstopcommandstok', 'ok']);
      expect(main.summary.split('\n').filter((l) => l.startsWith('| kerror'))).toHaveLength(1);
      const post = await job!.runPost(POST, main);
      expect(post.exitCode, post.log).toBe(0);
      expectNothingForged(post);
      assertNoLeak(job!, [main, post], [VALUES.apiKey, VALUES.legacy, VALUES.roleSecretId]);
    }, 60_000);

    it('a key that is not there: the error lists the keys that are, inert', async () => {
      const main = await job!.runMain(MAIN, { ...login(), secrets: 'secret/ci/evil missing | X' });
      mains.push(main);
      expect(main.exitCode).toBe(1);
      expectNothingForged(main);
      expect(main.annotations.find((a) => a.level === 'error')?.message).toBe(
        `secrets line 1: key 'missing' not found at 'secret/data/ci/evil' (keys there: ${shown}, ok)`,
      );
      const post = await job!.runPost(POST, main);
      expectNothingForged(post);
      assertNoLeak(job!, [main, post], [VALUES.apiKey, VALUES.legacy, VALUES.roleSecretId]);
    }, 60_000);

    it('the agent finds the key gone and logs why; post prints that log inert, line by line', async () => {
      const main = await job!.runMain(MAIN, {
        ...login(),
        secrets: 'secret/ci/app password | APP_PASSWORD',
        renew: 'true',
        'refresh-interval': '1',
      });
      mains.push(main);
      expect(main.exitCode, main.log).toBe(0);
      await bao!.putKv('secret', 'ci/app', { [hostileKey]: 'rotated-away-0193' });
      const log = path.join(ledgerOf(main).root, 'agent.log');
      const deadline = Date.now() + 20_000;
      while (!(await fs.readFile(log, 'utf8').catch(() => '')).includes('keys there')) {
        if (Date.now() > deadline) throw new Error(`no failed refresh in the agent log: ${await fs.readFile(log, 'utf8').catch(() => '')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const agentLog = await fs.readFile(log, 'utf8');
      const post = await job!.runPost(POST, main);
      expect(post.exitCode, post.log).toBe(0);
      expect(post.log).toContain('Renewal agent log:');
      expectNothingForged(post);
      expect(post.log).toContain(`key 'password' not found at 'secret/data/ci/app' (keys there: ${shown})`);
      // Nothing after the agent log was swallowed by a forged stop-commands.
      expect(post.log).toMatch(/Pipeline Secrets cleanup: token revoked/);
      // The agent's own log file holds the failure on one line.
      expect(agentLog.split('\n').filter((l) => l.includes('::'))).toHaveLength(1);
      assertNoLeak(job!, [main, post], [VALUES.password, VALUES.roleSecretId, 'rotated-away-0193']);
    }, 60_000);
  });

  it('an archive member named with ESC[31m and a forged warning, scanned by the scan sub-action', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { 'env-secrets': 'NPM_TOKEN' }, { env: { NPM_TOKEN: TOKEN } });
    expect(main.exitCode, main.log).toBe(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-inject-'));
    outside.push(dir);
    const inner = path.join(dir, 'inner');
    await fs.mkdir(inner);
    const member = `${ESC}[31mred${ESC}[0m\n::warning::x${FORGED}`;
    writeFileSync(path.join(inner, member), `token ${TOKEN}\n`);
    execFileSync('tar', ['-cf', path.join(dir, 'bundle.tar'), '-C', inner, member]);
    rmSync(inner, { recursive: true });
    const scan = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML });
    expect(scan.exitCode, scan.log).toBe(1);
    expectNothingForged(scan);
    expect(commands(scan).filter((c) => c.command === 'warning' && c.data === 'x')).toEqual([]);
    const shown = '\\x1b[31mred\\x1b[0m\\n::warning::x\\n::error title=X::forged\\n::add-mask::Files removed';
    const leak = scan.annotations.find((a) => a.level === 'error' && a.message.includes("secret 'NPM_TOKEN' found as raw"));
    expect(leak?.message).toBe(`secret 'NPM_TOKEN' found as raw in ${path.join(dir, 'bundle.tar')}!${shown} line 1 at byte 6`);
    // The report files keep the true name.
    const report = JSON.parse(readFileSync(scan.outputs.report ?? '', 'utf8')) as { findings: Array<{ path: string }> };
    expect(report.findings.map((f) => f.path)).toEqual([`${path.join(dir, 'bundle.tar')}!${member}`]);
    const sarif = JSON.parse(readFileSync(scan.outputs['sarif-file'] ?? '', 'utf8')) as {
      runs: Array<{ results: Array<{ properties?: { member?: string } }> }>;
    };
    expect(sarif.runs[0]?.results[0]?.properties?.member).toBe(member);
    const post = await job.runPost(POST, main);
    assertNoLeak(job, [main, scan, post], [TOKEN], { privateDirs: [ledgerOf(main).root, ledgerOf(main).secretsDir] });
  }, 60_000);
});
