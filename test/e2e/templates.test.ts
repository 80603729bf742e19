// Rendered config files (`templates`), end to end through dist/ and the runner harness against a
// real OpenBao: an inline and a file template with filters rendered into the private root and the
// workspace; a later `run:` step that cats them shows no value in the job's log (the runner's
// masker); env= exported with export-env; the workspace file deleted by post and not reported by
// the scrub; a placeholder naming no secret; and the renewal agent rendering a file again,
// atomically, when the KV secret it uses is rotated, with on-change run once naming it. Every job
// asserts the invariant (assertNoLeak).
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent/launch.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { base64Needles, secretNeedles } from '../support/harness/leak.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import { ALL_VALUES, MAIN, POST, VALUES, ledgerOf, mode, newJob, privateDirsOf, startVault } from './setup.ts';

let vault: OpenBao;
let token: string;
let job: Job;
const mains: StepResult[] = [];

beforeAll(async () => {
  vault = await startVault();
  token = await vault.createToken({ policies: ['ci'], ttl: '600s' });
});
afterAll(async () => {
  await vault?.stop();
});
afterEach(async () => {
  // Never leave an agent running after a failed test.
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
  }
  await job?.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** Nothing of a value, nor of what a filter made of it, in text the job's log shows. */
function expectNoValue(text: string, values: readonly string[]): void {
  for (const value of values) {
    for (const needle of secretNeedles(value)) expect(text, 'a value in the log').not.toContain(needle);
    for (const needle of secretNeedles(value).flatMap(base64Needles)) expect(text, 'a value in base64 in the log').not.toContain(needle);
  }
}

async function writeRepoFile(rel: string, text: string): Promise<void> {
  const file = path.join(job.workspace, rel);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
}

describe('rendered config files', () => {
  it('renders an inline and a file template with filters; a later step that cats them shows no value; post deletes the workspace file', async () => {
    job = await newJob();
    await writeRepoFile('.github/netrc.tmpl', 'machine git.example.com\n  login ci\n  password {{#url}}{{DB_PASSWORD}}{{/url}}\n');
    await writeRepoFile(
      'deploy/kubeconfig.tmpl',
      'users:\n- name: ci\n  user:\n    token: "{{#json}}{{SA}}{{/json}}"\n    client-key-data: {{#base64}}{{TLS_KEY}}{{/base64}}\n',
    );
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets:
        'secret/data/ci/app password | DB_PASSWORD\nsecret/ci/app api-key | API_KEY\nsecret/ci/tls key | TLS_KEY\nsecret/ci/tls sa | SA',
      'export-env': 'true',
      templates: [
        'npmrc <<EOF env=NPM_CONFIG_USERCONFIG',
        '//registry.example.com/:_authToken={{API_KEY}}',
        '_auth={{#base64}}ci:{{DB_PASSWORD}}{{/base64}}',
        'always-auth=true',
        'EOF',
        'netrc < .github/netrc.tmpl env=NETRC mode=0400',
        'kubeconfig < deploy/kubeconfig.tmpl path=.kube/config',
      ].join('\n'),
    });
    expect(main.exitCode, main.log).toBe(0);
    const { root } = ledgerOf(main);
    const npmrc = path.join(root, 'rendered', 'npmrc');
    const netrc = path.join(root, 'rendered', 'netrc');
    const kube = path.join(job.workspace, '.kube', 'config');
    const auth = b64(`ci:${VALUES.password}`);
    const keyData = b64(VALUES.multiline);
    const saJson = JSON.stringify(VALUES.json).slice(1, -1);
    const texts = {
      npmrc: `//registry.example.com/:_authToken=${VALUES.apiKey}\n_auth=${auth}\nalways-auth=true\n`,
      netrc: `machine git.example.com\n  login ci\n  password ${encodeURIComponent(VALUES.password)}\n`,
      kube: `users:\n- name: ci\n  user:\n    token: "${saJson}"\n    client-key-data: ${keyData}\n`,
    };
    expect(await fs.readFile(npmrc, 'utf8')).toBe(texts.npmrc);
    expect(await fs.readFile(netrc, 'utf8')).toBe(texts.netrc);
    expect(await fs.readFile(kube, 'utf8')).toBe(texts.kube);
    expect([mode(path.dirname(npmrc)), mode(npmrc), mode(netrc), mode(kube)]).toEqual(['700', '600', '400', '600']);
    expect(main.outputs['rendered-files']).toBe(`npmrc=${npmrc}\nnetrc=${netrc}\nkubeconfig=${kube}`);
    expect([job.env.NPM_CONFIG_USERCONFIG, job.env.NETRC]).toEqual([npmrc, netrc]);
    // The filter outputs were registered before the files were written.
    for (const form of [auth, saJson]) expect(main.masks).toContain(form);
    // The summary: names, paths and byte counts, never content.
    expect(main.summary).toContain(`| npmrc | \`${npmrc}\` | ${Buffer.byteLength(texts.npmrc)} |`);
    expect(main.summary).toContain(`| kubeconfig | \`${kube}\` (workspace) | ${Buffer.byteLength(texts.kube)} |`);

    // A later step prints every rendered file: the values are in its raw output, the log shows none.
    const cat = await job.runShell('cat "$NPM_CONFIG_USERCONFIG" "$NETRC" .kube/config');
    expect(cat.exitCode, cat.log).toBe(0);
    expect(cat.stdout).toContain(auth);
    expect(cat.stdout).toContain(VALUES.apiKey);
    expect(cat.log).toContain('_auth=***');
    expect(cat.log).toContain('always-auth=true');
    expectNoValue(cat.log, [...ALL_VALUES, auth, saJson, keyData]);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(existsSync(kube)).toBe(false);
    expect(existsSync(root)).toBe(false);
    expect(post.summary).toContain(`- Rendered files removed from the workspace: 1\n  - \`${kube}\``);
    // The user's explicit destination is no leak: the scrub never met it.
    expect(post.log).not.toMatch(/scrub: .*config/);
    expect(post.summary).toContain('- Workspace scrub: no secret value found');
    assertNoLeak(job, [main, post], [...ALL_VALUES, auth, saJson, keyData], { privateDirs: privateDirsOf([main]) });
  });

  it('a placeholder naming no secret fails main before anything is written, naming the template, the line and the placeholder', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/app password | DB_PASSWORD',
      templates: 'netrc <<EOF path=.netrc\nmachine h\npassword {{DB_PASWORD}}\nEOF',
    });
    expect(main.exitCode).not.toBe(0);
    const errors = main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    expect(errors).toEqual([
      "input 'templates': template 'netrc' line 2 (input line 3): {{DB_PASWORD}} names no secret of this step (this step's secrets are DB_PASSWORD)",
    ]);
    expect(existsSync(path.join(job.workspace, '.netrc'))).toBe(false);
    expect(ledgerOf(main).files).toEqual([]);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    assertNoLeak(job, [main, post], ALL_VALUES, { privateDirs: privateDirsOf([main]) });
  });

  it('the renewal agent renders a file again, atomically, when the KV secret it uses is rotated; on-change runs once, naming it', async () => {
    job = await newJob();
    await vault.putKv('secret', 'ci/rotating', { password: 'rotating-Pa55-v1' });
    const changes = path.join(job.runnerTemp, 'changes.log');
    const wsFile = path.join(job.workspace, 'config', 'app.ini');
    // What on-change saw: the names, and the rendered files' sha256 (no value lands in the job's files).
    const onChange = `echo "$PIPELINE_SECRETS_CHANGED|$PIPELINE_SECRETS_RENDERED|$(sha256sum < "$PIPELINE_SECRETS_DIR/../rendered/app" | cut -c1-64)|$(sha256sum < "${wsFile}" | cut -c1-64)" >> ${changes}`;
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/rotating password | APP_PASSWORD\nsecret/data/ci/app api-key | API_KEY',
      renew: 'true',
      'refresh-interval': '1',
      'agent-max-lifetime': '120',
      'on-change': onChange,
      templates:
        'app <<EOF mode=0400\npassword={{APP_PASSWORD}}\nauth={{#base64}}u:{{APP_PASSWORD}}{{/base64}}\nEOF\nws <<EOF path=config/app.ini\n[auth]\nsecret = {{APP_PASSWORD}}\nEOF\nkey <<EOF\n{{API_KEY}}\nEOF',
    });
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const { root } = ledgerOf(main);
    const file = path.join(root, 'rendered', 'app');
    const keyFile = path.join(root, 'rendered', 'key');
    const before = `password=rotating-Pa55-v1\nauth=${b64('u:rotating-Pa55-v1')}\n`;
    const after = `password=rotated-Pa55-v2\nauth=${b64('u:rotated-Pa55-v2')}\n`;
    expect(await fs.readFile(file, 'utf8')).toBe(before);
    const inode = statSync(file).ino;
    const keyInode = statSync(keyFile).ino;

    await vault.putKv('secret', 'ci/rotating', { password: 'rotated-Pa55-v2' });
    // Read as fast as an app would until the new file is there: never a partial or empty one.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const text = readFileSync(file, 'utf8');
      expect([before, after], 'a partial or empty read').toContain(text);
      if (text === after) break;
      if (Date.now() > deadline) throw new Error(`not rendered again: ${await fs.readFile(path.join(root, 'agent.log'), 'utf8')}`);
      await sleep(5);
    }
    expect(statSync(file).ino).not.toBe(inode);
    expect(mode(file)).toBe('400');
    // The template that does not use the rotated secret was left alone.
    expect(statSync(keyFile).ino).toBe(keyInode);
    let lines: string[] = [];
    for (let waited = 0; lines.length === 0 && waited < 10_000; waited += 50) {
      await sleep(50);
      lines = (await fs.readFile(changes, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    }
    // Two more refresh intervals: still one on-change run.
    await sleep(2500);
    lines = (await fs.readFile(changes, 'utf8')).split('\n').filter((l) => l !== '');
    expect(lines).toEqual([`APP_PASSWORD|app,ws|${sha256(after)}|${sha256('[auth]\nsecret = rotated-Pa55-v2\n')}`]);
    expect(await fs.readFile(wsFile, 'utf8')).toBe('[auth]\nsecret = rotated-Pa55-v2\n');

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(post.log).toContain('rendered app again');
    // The workspace file the agent replaced is still proven (by the agent's record of it) and deleted.
    expect(existsSync(wsFile)).toBe(false);
    expect(post.summary).toContain(`- Rendered files removed from the workspace: 1\n  - \`${wsFile}\``);
    expect(post.summary).toContain('- Rendered again: ws 1 time(s)');
    assertNoLeak(
      job,
      [main, post],
      [...ALL_VALUES, 'rotating-Pa55-v1', 'rotated-Pa55-v2', b64('u:rotating-Pa55-v1'), b64('u:rotated-Pa55-v2')],
      { privateDirs: privateDirsOf([main]) },
    );
  }, 60_000);
});
