// Secrets for containers that do not run as root (`file-owner`, `file-mode`), end to end through
// dist/ and the runner harness: real containers on the private dockerd, run as uid 1000
// (`docker run --user 1000:1000`, as an image with `USER node` does), read the files they were
// granted and nothing else. Both ways of granting: chown when the runner is root (this harness),
// and POSIX ACLs through setfacl when it is not (main, the renewal agent and post run as uid 2000
// under setpriv), the agent's atomic rewrite included.
import { execFileSync } from 'node:child_process';
import { promises as fs, statSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent/launch.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { ensureBaseImage, ensurePackages, sharedEngine, type DockerEngine } from '../support/services/docker.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, VALUES, exists, ledgerOf, newJob, privateDirsOf, startVault } from './setup.ts';

const GRANTED = 'granted-to-uid-1000-value-5c1e';
const NOT_GRANTED = 'not-granted-value-8d2f07';
/** The uid main and post run as on the ACL path: not root, not the container's uid. */
const RUNNER_UID = 2000;

let engine: DockerEngine;
let image: string;
let vault: OpenBao;
let job: Job;
const mains: StepResult[] = [];

beforeAll(async () => {
  await ensurePackages(['acl']);
  engine = await sharedEngine();
  image = await ensureBaseImage(engine);
  vault = await startVault();
}, 180_000);

afterAll(async () => {
  await vault?.stop();
});

afterEach(async () => {
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
    if (ledger.root) await fs.rm(ledger.root, { recursive: true, force: true });
  }
  await job?.cleanup();
});

/** `sh -c script` in a container as `user` with `dir` mounted read-only at `at`, no network. */
function inContainer(user: string, dir: string, at: string, script: string): Promise<{ code: number | null; stdout: string }> {
  return engine.run(['run', '--rm', '--network', 'none', '--user', user, '-v', `${dir}:${at}:ro`, image, 'sh', '-c', script]);
}

/** The byte count the container's user reads from /run/secrets/NAME (never the value), or undefined when it cannot. */
async function bytesRead(user: string, dir: string, name: string): Promise<number | undefined> {
  const result = await inContainer(user, dir, '/run/secrets', `wc -c < /run/secrets/${name}`);
  return result.code === 0 ? Number(result.stdout.trim()) : undefined;
}

/** What a container user sees of the private root: none of it may be listed or read. */
async function expectRootClosed(user: string, root: string, file: string): Promise<void> {
  expect((await inContainer(user, root, '/r', 'ls /r')).code, 'the private root was listed').not.toBe(0);
  expect((await inContainer(user, root, '/r', `wc -c < /r/${file}`)).code, `${file} in the private root was read`).not.toBe(0);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('file-owner / file-mode: a container running as uid 1000', () => {
  it('as root: the granted files are chowned and readable by uid 1000, another step`s and the private root are not', async () => {
    job = await newJob();
    const granted = await job.runMain(
      MAIN,
      { 'env-secrets': 'APP_PW', 'file-owner': '1000:1000', 'file-mode': '0440' },
      { env: { APP_PW: GRANTED } },
    );
    mains.push(granted);
    expect(granted.exitCode, granted.log).toBe(0);
    const other = await job.runMain(MAIN, { 'env-secrets': 'OTHER_PW' }, { env: { OTHER_PW: NOT_GRANTED } });
    mains.push(other);
    expect(other.exitCode, other.log).toBe(0);
    const dir = ledgerOf(granted).secretsDir;
    const file = `${dir}/APP_PW`;
    const stat = statSync(file);
    expect([stat.uid, stat.gid, (stat.mode & 0o777).toString(8)]).toEqual([1000, 1000, '440']);

    expect(await bytesRead('1000:1000', dir, 'APP_PW')).toBe(GRANTED.length);
    // Another uid, and a secret of a step without file-owner: nothing.
    expect(await bytesRead('1001:1001', dir, 'APP_PW')).toBeUndefined();
    expect(await bytesRead('1000:1000', ledgerOf(other).secretsDir, 'OTHER_PW')).toBeUndefined();
    await expectRootClosed('1000:1000', ledgerOf(granted).root, 'secrets.env');

    const posts = [await job.runPost(POST, granted), await job.runPost(POST, other)];
    for (const post of posts) expect(post.exitCode, post.log).toBe(0);
    for (const main of [granted, other]) expect(await exists(ledgerOf(main).root)).toBe(false);
    const steps = [granted, other, ...posts];
    assertNoLeak(job, steps, [GRANTED, NOT_GRANTED], { privateDirs: privateDirsOf(steps) });
  });

  it('not root: an ACL for exactly uid 1000, kept by the agent`s rewrite; the token file stays closed; post removes all', async () => {
    job = await newJob();
    // The harness creates each step's files as root: hand the job to the runner user, then drop to it.
    // bash, not sh: dash drops env names with '-', and every INPUT_ROLE-ID is one.
    const wrap = [
      'bash',
      '-c',
      `chown -R ${RUNNER_UID}:${RUNNER_UID} "$0" && exec setpriv --reuid=${RUNNER_UID} --regid=${RUNNER_UID} --clear-groups -- "$@"`,
      job.root,
    ];
    await vault.putKv('secret', 'ci/nonroot', { password: GRANTED });
    const main = await job.runMain(
      MAIN,
      {
        url: vault.url,
        method: 'approle',
        'role-id': VALUES.roleId,
        'secret-id': VALUES.roleSecretId,
        secrets: 'secret/data/ci/nonroot password | APP_PW',
        'file-owner': '1000',
        renew: 'true',
        'refresh-interval': '1',
      },
      { wrap },
    );
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const ledger = ledgerOf(main);
    const file = `${ledger.secretsDir}/APP_PW`;
    expect(statSync(file).uid).toBe(RUNNER_UID);
    expect((statSync(file).mode & 0o007).toString(8), 'world bits').toBe('0');
    const acl = (target: string): string[] =>
      execFileSync('getfacl', ['-cpn', target], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l !== '');
    expect(acl(file)).toEqual([`user::r--`, 'user:1000:r--', 'group::---', 'mask::r--', 'other::---']);
    expect(acl(ledger.secretsDir)).toEqual(['user::rwx', 'user:1000:--x', 'group::---', 'mask::--x', 'other::---']);

    expect(await bytesRead('1000:1000', ledger.secretsDir, 'APP_PW')).toBe(GRANTED.length);
    expect(await bytesRead('1001:1001', ledger.secretsDir, 'APP_PW')).toBeUndefined();
    expect(ledger.tokenFile, 'approle creates a token file').toBeDefined();
    await expectRootClosed('1000:1000', ledger.root, String(ledger.tokenFile).split('/').pop() ?? '');

    // The agent re-reads KV and rewrites the file (temp + rename): the new file carries the ACL too.
    const rotated = 'rotated-value-for-uid-1000-longer-7e';
    await vault.putKv('secret', 'ci/nonroot', { password: rotated });
    const deadline = Date.now() + 20_000;
    let read: number | undefined;
    while ((read = await bytesRead('1000:1000', ledger.secretsDir, 'APP_PW')) !== rotated.length && Date.now() < deadline) await sleep(250);
    expect(read, 'uid 1000 reads the rewritten file').toBe(rotated.length);
    expect(acl(file)).toEqual([`user::r--`, 'user:1000:r--', 'group::---', 'mask::r--', 'other::---']);

    const post = await job.runPost(POST, main, { wrap });
    expect(post.exitCode, post.log).toBe(0);
    expect(await exists(ledger.root), 'post removed the private root with its ACL`d files').toBe(false);
    assertNoLeak(job, [main, post], [GRANTED, rotated, VALUES.roleSecretId], { privateDirs: privateDirsOf([main]) });
  }, 90_000);

  it('refuses a world-readable mode, a group mode without a GID, and a user name, naming the input', async () => {
    job = await newJob();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'file-mode': '0644' }, /^input 'file-mode': '0644' is not one of 0400, 0440, 0600, 0640/],
      [
        { 'file-owner': '1000', 'file-mode': '0440' },
        /^input 'file-mode': '0440' lets a group read: name the group in file-owner as UID:GID/,
      ],
      [{ 'file-owner': 'node' }, /^input 'file-owner': 'node' is not UID or UID:GID in numbers/],
    ];
    for (const [inputs, expected] of cases) {
      const main = await job.runMain(MAIN, { 'env-secrets': 'APP_PW', ...inputs }, { env: { APP_PW: GRANTED } });
      mains.push(main);
      expect(main.exitCode).not.toBe(0);
      expect(main.annotations.find((a) => a.level === 'error')?.message).toMatch(expected);
    }
  });
});
