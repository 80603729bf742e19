// The leak scan knows every value the job was given, end to end through dist/ and the
// runner harness against a real OpenBao, a real docker registry and the real renewal agent: every
// Pipeline Secrets step of the job (PIPELINE_SECRETS_ROOTS), the values that have no file (a
// registry password given as an input, the Vault token, a value the agent superseded), and a scan
// in a job that never ran main, fetching from Vault itself and leaving no token alive.
// Artifacts are planted by the test process outside the job's directories (a build step would put
// the value in the job's files, which assertNoLeak rightly refuses).
import { existsSync, mkdtempSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent/launch.ts';
import { BASE_PATH } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { sharedEngine, startRegistry, type DockerEngine, type Registry } from '../support/services/docker.ts';
import { startFaultProxy } from '../support/services/fault-proxy.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import { ALL_VALUES, createdToken, ledgerOf, MAIN, POST, privateDirsOf, repo, startVault, VALUES, newJob } from './setup.ts';

const SCAN = path.join(repo, 'dist/scan.js');
const SCAN_YML = path.join(repo, 'scan/action.yml');
const NPM_TOKEN = 'npm_FirstStepToken_8c21d0e4';
const REGISTRY_PASSWORD = 'registry-Direct-Pa55-3e9a';
const ROTATED_OLD = 'rotate-me-Pa55-v1-77a1';
const ROTATED_NEW = 'rotated-Pa55-v2-1c4e';

let vault: OpenBao;
let job: Job;
const outside: string[] = [];
const mains: StepResult[] = [];

beforeAll(async () => {
  vault = await startVault();
}, 120_000);
afterAll(async () => {
  await vault?.stop();
});
afterEach(async () => {
  // Never leave an agent running if a test failed before its post.
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
  }
  await job?.cleanup();
  for (const dir of outside.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A directory of artifacts outside the job's dirs, each file holding one planted text. */
function artifacts(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-scanvals-artifacts-'));
  outside.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

async function main(inputs: Record<string, string>, env?: Record<string, string>): Promise<StepResult> {
  const step = await job.runMain(MAIN, inputs, env ? { env } : {});
  mains.push(step);
  expect(step.exitCode, step.log).toBe(0);
  return step;
}

const errorsOf = (step: StepResult): string[] => step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
const found = (step: StepResult, name: string, file: string): boolean =>
  errorsOf(step).some((m) => m.includes(`secret '${name}' found as raw in `) && m.includes(file));

const approle = { url: '', method: 'approle', 'role-id': VALUES.roleId, 'secret-id': VALUES.roleSecretId };
const login = (): Record<string, string> => ({ ...approle, url: vault.url });

describe('the leak scan knows every value the job was given', () => {
  it('two Pipeline Secrets steps: the scan finds a value of each, and the token of the Vault step; secrets-dir narrows to one step', async () => {
    job = await newJob();
    const first = await main({ 'env-secrets': 'NPM_TOKEN' }, { NPM_TOKEN });
    const second = await main({ ...login(), secrets: 'secret/ci/app password | DB_PASSWORD' });
    const token = createdToken(second);
    expect(token).not.toBe('');
    // The job-wide list names both steps' roots, in order.
    expect(job.env.PIPELINE_SECRETS_ROOTS).toBe(`${ledgerOf(first).root}:${ledgerOf(second).root}`);
    // The side values are next to the secrets directory, never inside it.
    expect(existsSync(path.join(ledgerOf(second).root, 'side-values'))).toBe(true);
    expect(await fs.readdir(ledgerOf(second).secretsDir)).toEqual(['DB_PASSWORD']);

    const dir = artifacts({
      'npmrc.txt': `//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n`,
      'db.env': `DB=${VALUES.password}\n`,
      'debug.log': `token ${token}\n`,
    });
    const scan = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML });
    expect(scan.exitCode, scan.log).toBe(1);
    expect(found(scan, 'NPM_TOKEN', 'npmrc.txt'), errorsOf(scan).join('\n')).toBe(true);
    expect(found(scan, 'DB_PASSWORD', 'db.env'), errorsOf(scan).join('\n')).toBe(true);
    expect(found(scan, 'vault-token', 'debug.log'), errorsOf(scan).join('\n')).toBe(true);
    expect(scan.outputs.leaks).toBe('3');
    // The summary names the sources by step and count, never a value.
    expect(scan.summary).toContain('The values came from:');
    expect(scan.summary).toContain(`Pipeline Secrets step ${ledgerOf(first).root}: 1 secret file(s)`);
    expect(scan.summary).toContain(`Pipeline Secrets step ${ledgerOf(second).root}: 1 secret file(s), 1 Vault token(s)`);

    const narrowed = await job.runMain(SCAN, { paths: dir, 'secrets-dir': ledgerOf(first).secretsDir }, { actionYml: SCAN_YML });
    expect(narrowed.exitCode).toBe(1);
    expect(narrowed.outputs.leaks).toBe('1');
    expect(found(narrowed, 'NPM_TOKEN', 'npmrc.txt')).toBe(true);

    const posts = [await job.runPost(POST, second), await job.runPost(POST, first)];
    for (const post of posts) expect(post.exitCode, post.log).toBe(0);
    expect(await vault.tokenAlive(token)).toBe(false);
    expect(existsSync(ledgerOf(second).root)).toBe(false);
    const steps = [first, second, scan, narrowed, ...posts];
    assertNoLeak(job, steps, [NPM_TOKEN, token, ...ALL_VALUES], { privateDirs: privateDirsOf(steps) });
  }, 60_000);

  describe('a registry password given directly', () => {
    let engine: DockerEngine;
    let registry: Registry;
    beforeAll(async () => {
      engine = await sharedEngine();
      registry = await startRegistry({ engine, password: REGISTRY_PASSWORD });
    }, 180_000);
    afterAll(async () => {
      await registry?.stop();
    });

    it('has no file, and is found in an artifact all the same', async () => {
      job = await newJob();
      const env = { ...engine.env, PATH: `${path.dirname(process.execPath)}:${BASE_PATH}` };
      const step = await main(
        { registry: registry.host, 'registry-username': registry.username, 'registry-password': REGISTRY_PASSWORD },
        env,
      );
      expect(await fs.readdir(ledgerOf(step).secretsDir)).toEqual([]);
      const dir = artifacts({ 'login.sh': `echo '${REGISTRY_PASSWORD}' | docker login ${registry.host} -u ci --password-stdin\n` });
      const scan = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML, env });
      expect(scan.exitCode, scan.log).toBe(1);
      expect(found(scan, `registry-password (${registry.host})`, 'login.sh'), errorsOf(scan).join('\n')).toBe(true);
      expect(scan.summary).toContain(
        `Pipeline Secrets step ${ledgerOf(step).root}: 0 secret file(s), 1 registry password(s) given as inputs`,
      );
      const post = await job.runPost(POST, step, { env });
      expect(post.exitCode, post.log).toBe(0);
      expect(existsSync(ledgerOf(step).root)).toBe(false);
      assertNoLeak(job, [step, scan, post], [REGISTRY_PASSWORD], { privateDirs: privateDirsOf([step]) });
    }, 60_000);
  });

  it('a value the renewal agent rotated away, planted before the rotation, is found after it', async () => {
    job = await newJob();
    await vault.putKv('secret', 'ci/rotate', { password: ROTATED_OLD });
    const step = await main({
      ...login(),
      secrets: 'secret/ci/rotate password | APP_PASSWORD',
      renew: 'true',
      'refresh-interval': '1',
      'agent-max-lifetime': '120',
    });
    const file = path.join(ledgerOf(step).secretsDir, 'APP_PASSWORD');
    expect(readFileSync(file, 'utf8')).toBe(ROTATED_OLD);
    // The build: an artifact made while the old value was current.
    const dir = artifacts({ 'bundle.js': `const password = "${ROTATED_OLD}";\n` });
    await vault.putKv('secret', 'ci/rotate', { password: ROTATED_NEW });
    const deadline = Date.now() + 20_000;
    while (readFileSync(file, 'utf8') !== ROTATED_NEW) {
      if (Date.now() > deadline)
        throw new Error(`the agent did not rotate the file: ${readFileSync(path.join(ledgerOf(step).root, 'agent.log'), 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const scan = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML });
    expect(scan.exitCode, scan.log).toBe(1);
    expect(found(scan, 'APP_PASSWORD (superseded)', 'bundle.js'), errorsOf(scan).join('\n')).toBe(true);
    expect(scan.summary).toContain('1 value(s) the renewal agent superseded');
    const token = createdToken(step);
    const post = await job.runPost(POST, step);
    expect(post.exitCode, post.log).toBe(0);
    expect(existsSync(ledgerOf(step).root)).toBe(false);
    assertNoLeak(job, [step, scan, post], [ROTATED_OLD, ROTATED_NEW, token, ...ALL_VALUES], { privateDirs: privateDirsOf([step]) });
  }, 60_000);

  it('a check job that never ran main: the scan fetches from Vault itself, finds the planted value, and leaves no token alive', async () => {
    job = await newJob();
    const before = new Set(await vault.liveAccessors());
    const dir = artifacts({ 'app.log': `connecting with ${VALUES.password}\n`, 'clean.txt': 'nothing here\n' });
    const scan = await job.runMain(
      SCAN,
      { paths: dir, ...login(), secrets: 'secret/ci/app password | DB_PASSWORD\nsecret/ci/tls key | TLS_KEY' },
      { actionYml: SCAN_YML },
    );
    expect(scan.exitCode, scan.log).toBe(1);
    expect(found(scan, 'DB_PASSWORD', 'app.log'), errorsOf(scan).join('\n')).toBe(true);
    expect(scan.outputs.leaks).toBe('1');
    expect(scan.summary).toContain('Vault secrets line 1 (secret/ci/app): 1 value(s)');
    expect(scan.summary).toContain('Vault secrets line 2 (secret/ci/tls): 1 value(s)');
    // Masked on arrival, nothing delivered: no env var, no output with a value, no private directory.
    expect(scan.masks).toContain(VALUES.password);
    expect(job.env).toEqual({});
    expect(Object.keys(scan.outputs).sort()).toEqual(['leaks', 'report', 'sarif-file']);
    // The token this step logged in for is revoked before the step ended.
    expect((await vault.liveAccessors()).filter((a) => !before.has(a))).toEqual([]);

    // A clean artifact passes, with no token left either; a write line is refused before any login.
    const clean = await job.runMain(
      SCAN,
      { paths: path.join(dir, 'clean.txt'), ...login(), secrets: 'secret/ci/app password | DB_PASSWORD' },
      { actionYml: SCAN_YML },
    );
    expect(clean.exitCode, clean.log).toBe(0);
    const write = await job.runMain(
      SCAN,
      { paths: dir, ...login(), secrets: 'write pki/issue/ci {"common_name": "a.example"} certificate | CERT' },
      { actionYml: SCAN_YML },
    );
    expect(write.exitCode).toBe(1);
    expect(errorsOf(write)[0]).toMatch(/^input 'secrets': line 1: a 'write' entry issues a new credential/);
    expect((await vault.liveAccessors()).filter((a) => !before.has(a))).toEqual([]);
    assertNoLeak(job, [scan, clean, write], ALL_VALUES);
  }, 60_000);

  it('a check job cancelled while the scan reads from Vault: the token it logged in for is revoked before the step ends', async () => {
    const proxy = await startFaultProxy(vault.url);
    try {
      proxy.inject({ path: /^secret\/data\/ci\/app/, kind: 'latency', latencyMs: 3000 });
      job = await newJob();
      const before = new Set(await vault.liveAccessors());
      const dir = artifacts({ 'app.log': `connecting with ${VALUES.password}\n` });
      const pidFile = path.join(artifacts({}), 'pid');
      const running = job.runMain(
        SCAN,
        { paths: dir, ...login(), url: proxy.url, secrets: 'secret/ci/app password | DB_PASSWORD' },
        // The step keeps the shell's pid (exec), so the test can signal it as the runner would; bash,
        // since dash drops env vars whose names hold '-' (INPUT_ROLE-ID).
        { actionYml: SCAN_YML, wrap: ['bash', '-c', `echo $$ > ${pidFile}; exec "$@"`, 'sh'] },
      );
      const until = Date.now() + 10_000;
      while (proxy.count('GET', /^secret\/data\/ci\/app/) < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(proxy.count('GET', /^secret\/data\/ci\/app/)).toBe(1);
      // Logged in: the token is alive while the read waits.
      expect((await vault.liveAccessors()).filter((a) => !before.has(a))).toHaveLength(1);
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
      const scan = await running;
      expect(scan.exitCode).toBe(1);
      expect(errorsOf(scan).join('\n')).toContain(
        'the job was cancelled (SIGTERM) while this step read from Vault; the token it logged in for is revoked, and nothing was scanned',
      );
      expect((await vault.liveAccessors()).filter((a) => !before.has(a))).toEqual([]);
      assertNoLeak(job, [scan], ALL_VALUES);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});
