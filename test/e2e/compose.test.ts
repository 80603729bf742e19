// The compose override (`compose-services`, output `compose-file`) end to end through dist/ and the
// runner harness, with real OpenBao and the real engine: `docker compose -f compose.yml -f
// <compose-file> up` (the v2 plugin when the machine has it, else Debian's docker-compose 1.29) as a
// job step. Each service reads exactly its own secrets at /run/secrets/NAME (byte counts only, never
// a value), a service given none sees none, a non-root service user reads its file through
// `file-owner` (compose bind-mounts the host file, so its owner and mode are what the container
// sees: chowned by a root runner, an ACL entry from one that is not) and another uid cannot; post
// removes the override and the files. The engine has no bridge
// network, so every service runs with `network_mode: none`, on the local busybox image.
import { randomBytes } from 'node:crypto';
import { promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BASE_PATH } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { ensureBaseImage, ensurePackages, sharedEngine, type DockerEngine } from '../support/services/docker.ts';
import { composeCommand } from '../support/services/install.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, VALUES, exists, ledgerOf, newJob, privateDirsOf, startVault } from './setup.ts';

const DB_PASSWORD = 'compose-db-Pa55-value-71c3e9';
const API_KEY = 'compose-api-key-value-0b8d2f6a44';
const NAMES = ['DB_PASSWORD', 'API_KEY'];

let engine: DockerEngine;
let image: string;
let vault: OpenBao;
let compose: string;
let job: Job;
const projects: string[] = [];
const mains: StepResult[] = [];

beforeAll(async () => {
  await ensurePackages(['docker-compose']);
  compose = (composeCommand() ?? []).join(' ');
  engine = await sharedEngine();
  image = await ensureBaseImage(engine);
  vault = await startVault();
  await vault.putKv('secret', 'ci/compose', { db: DB_PASSWORD, api: API_KEY });
}, 180_000);

afterAll(async () => {
  await vault?.stop();
});

afterEach(async () => {
  // A test that failed before its `down` leaves no container behind.
  for (const project of projects.splice(0)) {
    const ids = (await engine.run(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).stdout
      .split('\n')
      .filter(Boolean);
    if (ids.length > 0) await engine.run(['rm', '-f', '--', ...ids]);
  }
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.root) await fs.rm(ledger.root, { recursive: true, force: true });
  }
  await job?.cleanup();
});

/** The step's env: the test engine as DOCKER_HOST, the machine's docker and compose on PATH. */
const stepEnv = (): Record<string, string> => ({ ...engine.env, PATH: `${path.dirname(process.execPath)}:${BASE_PATH}` });

/**
 * A compose.yml of the user's: each service prints, for every name, whether /run/secrets/NAME is
 * missing, unreadable, or how many bytes it has (`$$` is compose's escape for the shell's `$`).
 */
function composeYml(services: Record<string, { user?: string }>): string {
  const probe = NAMES.map(
    (n) =>
      `if [ ! -e /run/secrets/${n} ]; then echo "RESULT $$S ${n} missing"; elif b=$$(wc -c < /run/secrets/${n} 2>/dev/null); then echo "RESULT $$S ${n} bytes=$$b"; else echo "RESULT $$S ${n} unreadable"; fi`,
  ).join('; ');
  return [
    'services:',
    ...Object.entries(services).flatMap(([name, s]) => [
      `  ${name}:`,
      `    image: ${image}`,
      '    network_mode: none',
      ...(s.user !== undefined ? [`    user: "${s.user}"`] : []),
      `    environment: { S: ${name} }`,
      `    command: ["sh", "-c", ${JSON.stringify(probe)}]`,
    ]),
    '',
  ].join('\n');
}

/** What each service reported, as `service NAME -> missing | unreadable | bytes=N`. */
function results(up: StepResult): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [, service = '', name = '', what = ''] of up.stdout.matchAll(/RESULT (\S+) (\S+) (\S+)/g)) {
    (out[service] ??= {})[name] = what;
  }
  return out;
}

/** `up` then `down` of a project in the job's workspace, as workflow steps; returns both steps. */
async function upAndDown(composeFile: string, yml: string): Promise<{ up: StepResult; down: StepResult; project: string }> {
  const project = `ps-compose-${randomBytes(4).toString('hex')}`;
  projects.push(project);
  const file = path.join(job.workspace, 'compose.yml');
  await fs.writeFile(file, yml);
  const files = `-p ${project} -f compose.yml -f '${composeFile}'`;
  const up = await job.runShell(`cd '${job.workspace}' && ${compose} ${files} up --no-color`, { env: stepEnv() });
  const down = await job.runShell(`cd '${job.workspace}' && ${compose} ${files} down -t 0`, { env: stepEnv() });
  expect(down.exitCode, down.log).toBe(0);
  const left = await engine.run(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
  expect(left.stdout.trim(), 'containers left after down').toBe('');
  return { up, down, project };
}

const approle = (): Record<string, string> => ({
  url: vault.url,
  method: 'approle',
  'role-id': VALUES.roleId,
  'secret-id': VALUES.roleSecretId,
});
const secrets = 'secret/data/ci/compose db | DB_PASSWORD\nsecret/data/ci/compose api | API_KEY';

describe('compose-services: a compose override with each service`s secrets', () => {
  it('app reads its secret, other sees none, a uid-1000 service reads its own through file-owner and uid 1001 cannot; post removes all', async () => {
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      {
        ...approle(),
        secrets,
        'file-owner': '1000',
        'compose-services': 'app: DB_PASSWORD\nworker: API_KEY\nstranger: API_KEY',
      },
      { env: stepEnv() },
    );
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const ledger = ledgerOf(main);
    const composeFile = main.outputs['compose-file'] ?? '';
    expect(composeFile).toBe(path.join(ledger.root, 'compose.secrets.yml'));
    expect((statSync(composeFile).mode & 0o777).toString(8)).toBe('600');
    expect(ledger.files).toContain(composeFile);
    expect(main.summary).toContain('(output compose-file)');

    const { up, down } = await upAndDown(
      composeFile,
      composeYml({ app: {}, worker: { user: '1000:1000' }, stranger: { user: '1001:1001' }, other: {} }),
    );
    expect(up.exitCode, up.log).toBe(0);
    expect(results(up)).toEqual({
      // root in the container reads the 0400 file of uid 1000 (as root may); the name it was not given is not there
      app: { DB_PASSWORD: `bytes=${DB_PASSWORD.length}`, API_KEY: 'missing' },
      // uid 1000, as `file-owner: 1000` made the host file's owner
      worker: { DB_PASSWORD: 'missing', API_KEY: `bytes=${API_KEY.length}` },
      // the same file, another uid: 0400 keeps it out
      stranger: { DB_PASSWORD: 'missing', API_KEY: 'unreadable' },
      other: { DB_PASSWORD: 'missing', API_KEY: 'missing' },
    });

    const post = await job.runPost(POST, main, { env: stepEnv() });
    expect(post.exitCode, post.log).toBe(0);
    expect(await exists(composeFile), 'post removed the override').toBe(false);
    for (const name of NAMES) expect(await exists(path.join(ledger.secretsDir, name))).toBe(false);
    expect(await exists(ledger.root)).toBe(false);
    const steps = [main, up, down, post];
    assertNoLeak(job, steps, [DB_PASSWORD, API_KEY, VALUES.roleSecretId], { privateDirs: privateDirsOf(steps) });
  }, 180_000);

  it('not root: main and post as uid 2000, the uid-1000 service reads its file through the ACL, uid 1001 cannot', async () => {
    await ensurePackages(['acl']);
    job = await newJob();
    // The harness creates each step's files as root: hand the job to the runner user, then drop to it
    // (bash, not sh: dash drops env names with '-', and every INPUT_ROLE-ID is one). The compose
    // steps stay root: the test engine's socket is root's.
    const wrap = ['bash', '-c', 'chown -R 2000:2000 "$0" && exec setpriv --reuid=2000 --regid=2000 --clear-groups -- "$@"', job.root];
    const main = await job.runMain(
      MAIN,
      { ...approle(), secrets, 'file-owner': '1000', 'compose-services': 'worker: API_KEY\nstranger: API_KEY' },
      { env: stepEnv(), wrap },
    );
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const composeFile = main.outputs['compose-file'] ?? '';
    expect(statSync(composeFile).uid, 'the runner user owns the override').toBe(2000);
    expect(statSync(path.join(ledgerOf(main).secretsDir, 'API_KEY')).uid, 'no chown without root').toBe(2000);
    const { up, down } = await upAndDown(composeFile, composeYml({ worker: { user: '1000:1000' }, stranger: { user: '1001:1001' } }));
    expect(up.exitCode, up.log).toBe(0);
    expect(results(up)).toEqual({
      worker: { DB_PASSWORD: 'missing', API_KEY: `bytes=${API_KEY.length}` },
      stranger: { DB_PASSWORD: 'missing', API_KEY: 'unreadable' },
    });
    const post = await job.runPost(POST, main, { env: stepEnv(), wrap });
    expect(post.exitCode, post.log).toBe(0);
    expect(await exists(ledgerOf(main).root)).toBe(false);
    const steps = [main, up, down, post];
    assertNoLeak(job, steps, [DB_PASSWORD, API_KEY, VALUES.roleSecretId], { privateDirs: privateDirsOf(steps) });
  }, 180_000);

  it('a secrets-dir with $, a space and a quote in its path: compose reads the paths as written', async () => {
    job = await newJob();
    const dir = path.join(job.root, 'sec $HOME "x"');
    const main = await job.runMain(
      MAIN,
      { ...approle(), secrets, 'secrets-dir': dir, 'compose-services': 'app: DB_PASSWORD, API_KEY' },
      { env: stepEnv() },
    );
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    const { up, down } = await upAndDown(main.outputs['compose-file'] ?? '', composeYml({ app: {} }));
    expect(up.exitCode, up.log).toBe(0);
    expect(results(up)).toEqual({ app: { DB_PASSWORD: `bytes=${DB_PASSWORD.length}`, API_KEY: `bytes=${API_KEY.length}` } });
    const post = await job.runPost(POST, main, { env: stepEnv() });
    expect(post.exitCode, post.log).toBe(0);
    expect(await exists(dir)).toBe(false);
    const steps = [main, up, down, post];
    assertNoLeak(job, steps, [DB_PASSWORD, API_KEY, VALUES.roleSecretId], { privateDirs: [...privateDirsOf(steps), dir] });
  }, 180_000);

  it('a name that is no secret of the step fails main naming the input and line; nothing is delivered', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { ...approle(), secrets, 'compose-services': 'app: DB_PASSWORD\nweb: DB_PASS' });
    mains.push(main);
    expect(main.exitCode).not.toBe(0);
    expect(main.annotations.find((a) => a.level === 'error')?.message).toMatch(
      /^input 'compose-services': line 2: service 'web' gets 'DB_PASS', which is no secret of this step \(secrets: DB_PASSWORD, API_KEY\)/,
    );
    expect(main.outputs['compose-file']).toBeUndefined();
    expect(await fs.readdir(ledgerOf(main).secretsDir)).toEqual([]);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    const steps = [main, post];
    assertNoLeak(job, steps, [DB_PASSWORD, API_KEY, VALUES.roleSecretId], { privateDirs: privateDirsOf(steps) });
  }, 60_000);
});
