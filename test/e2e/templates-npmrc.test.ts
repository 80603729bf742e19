// The `.npmrc` worked example of docs/templates.md, end to end through dist/ and the runner harness,
// run as the page writes it: a real OpenBao (jwt login with the job's OIDC token, KV v2, a fault
// proxy in front that counts the agent's reads) holds the npm token; the action renders the `.npmrc`
// from it; a real npm installs a private package from a real Verdaccio where every package needs an
// authenticated user. The test then rotates the token in Vault: the agent replaces the file
// atomically (a new inode, no partial read), on-change runs once, and the next install is made as
// the new token's user. Post removes the file; the leak scan and the invariant find nothing.
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopAgent } from '../../src/agent/launch.ts';
import { BASE_PATH, OWNER } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { startVerdaccio, type Verdaccio } from '../support/services/verdaccio.ts';
import { DocRun, docSteps } from './doc-workflow.ts';
import { createdToken, ledgerOf, newJob, repo } from './setup.ts';

const PACKAGE = '@example/private-pkg';

let bao: OpenBao;
let proxy: FaultProxy;
let registry: Verdaccio;
/** The publisher's token, and the two tokens of the rotation (each of its own registry user). */
let publisher: string;
let first: string;
let second: string;
let job: Job | undefined;
const mains: StepResult[] = [];

beforeAll(async () => {
  [bao, registry] = await Promise.all([OpenBao.start(), startVerdaccio()]);
  proxy = await startFaultProxy(bao.url);
  for (const [user, password] of [
    ['publisher', 'publisher-pw-7c1f'],
    ['ci-first', 'first-pw-90ab'],
    ['ci-second', 'second-pw-3e5d'],
  ] as const)
    registry.addUser(user, password);
  [publisher, first, second] = await Promise.all([
    registry.login('publisher', 'publisher-pw-7c1f'),
    registry.login('ci-first', 'first-pw-90ab'),
    registry.login('ci-second', 'second-pw-3e5d'),
  ]);
  await registry.publish(publisher, PACKAGE, '1.0.0');
  await bao.enableKv('secret', 2);
  await bao.putKv('secret', 'ci/npm', { token: first });
  await bao.addPolicy('ci', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await bao?.stop();
});

afterEach(async () => {
  // Never leave an agent running: one a failed test left is stopped before the job goes.
  for (const main of mains.splice(0)) {
    const ledger = ledgerOf(main);
    if (ledger.agentPid && ledger.root) await stopAgent(ledger.agentPid, ledger.root, 2000);
  }
  await job?.cleanup();
  job = undefined;
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
const readText = (file: string): Promise<string> => fs.readFile(file, 'utf8').catch(() => '');

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, describe: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${await describe()}`);
    await sleep(50);
  }
}

/** The job's OIDC tokens log in as Vault role `ci` (jwt auth at jwt/), bound to this repository. */
async function trustJob(j: Job): Promise<void> {
  if (!j.oidc) throw new Error('the job has no OIDC issuer');
  await bao.addJwtRole('jwt', 'ci', {
    publicKeyPem: j.oidc.publicKeyPem,
    boundIssuer: j.oidc.issuer,
    // what the action asks for when jwt-audience is not given: GitHub's default audience
    boundAudiences: [`https://github.com/${OWNER}`],
    boundClaims: { repository: String(j.oidc.claims['repository']) },
    policies: ['ci'],
    ttl: '600s',
  });
}

/** The version of the package npm installed in the workspace, or undefined. */
function installedVersion(j: Job): string | undefined {
  const file = path.join(j.workspace, 'node_modules', ...PACKAGE.split('/'), 'package.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : undefined;
}

/** Who the registry served (200) since request number `from`. */
const servedTo = (from: number): Array<string | null> =>
  registry
    .requests()
    .slice(from)
    .filter((r) => r.status === 200)
    .map((r) => r.user);

describe('.npmrc rendered from Vault, used by a real npm against Verdaccio (docs/templates.md)', () => {
  it('installs with it, follows a rotation atomically with on-change once, and leaves nothing after post', async () => {
    job = await newJob({ oidc: true });
    const j = job;
    await trustJob(j);
    // The checked-out repository: a package.json.
    await fs.writeFile(path.join(j.workspace, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const steps = docSteps('npmrc-later-step', [
      ['https://vault.example.com:8200', proxy.url],
      ['https://npm.example.com/', registry.url],
      ['npm.example.com', registry.host],
    ]);
    // npm from the registry tools (the pinned Node's dir next), a fresh npm cache per step, so
    // every install asks the registry; the one input changed: a rotation seen within seconds.
    const npmPath = `${registry.tools.npmBinDir}:${path.dirname(process.execPath)}:${BASE_PATH}`;
    const cache = (n: number): { env: Record<string, string> } => ({
      env: { npm_config_cache: path.join(j.runnerTemp, `npm-cache-${n}`) },
    });
    const run = new DocRun(j, steps, { env: { PATH: npmPath }, overrides: { 'refresh-interval': '1' } });

    const main = await run.until('secrets');
    mains.push(main);
    expect(main.exitCode, main.log).toBe(0);
    expect(main.annotations.filter((a) => /Unexpected input/.test(a.message))).toEqual([]);
    const ledger = ledgerOf(main);
    const npmrc = path.join(ledger.root, 'rendered', 'npmrc');
    expect(main.outputs['rendered-files']).toBe(`npmrc=${npmrc}`);
    expect(j.env.NPM_CONFIG_USERCONFIG).toBe(npmrc);
    const rendered = (token: string): string => `//${registry.host}/:_authToken=${token}\n`;
    expect(await fs.readFile(npmrc, 'utf8')).toBe(rendered(first));
    expect((statSync(npmrc).mode & 0o777).toString(8)).toBe('600');
    expect(alive(ledger.agentPid ?? 0), 'no agent after main').toBe(true);
    const vaultToken = createdToken(main);
    const inode = statSync(npmrc).ino;

    // The control: the same install with no user config is refused by the registry.
    const refused = await j.runShell(`npm install ${PACKAGE} --registry ${registry.url}`, {
      env: { PATH: npmPath, NPM_CONFIG_USERCONFIG: '/dev/null', ...cache(0).env },
    });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/E401|Unable to authenticate/);
    expect(installedVersion(j)).toBeUndefined();

    let from = registry.requests().length;
    const install = await run.until('install', cache(1));
    expect(install.exitCode, install.log).toBe(0);
    expect(installedVersion(j)).toBe('1.0.0');
    expect(new Set(servedTo(from)), 'the install was not made with the rendered token').toEqual(new Set(['ci-first']));

    // Rotation: a new version of the package, and a new token in Vault. A reader polls the file
    // meanwhile: every read is one whole file, the old or the new.
    await registry.publish(publisher, PACKAGE, '1.1.0');
    const rotations = path.join(j.runnerTemp, 'rotations.log');
    const reads = new Map<string, number>();
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const text = await readText(npmrc);
        reads.set(text, (reads.get(text) ?? 0) + 1);
        await sleep(2);
      }
    })();
    const kvReads = (): number => proxy.count('GET', 'secret/data/ci/npm');
    try {
      expect(await bao.putKv('secret', 'ci/npm', { token: second })).toBe(2);
      const agentLog = (): Promise<string> => readText(path.join(ledger.root, 'agent.log'));
      await waitFor('the rendered file with the second token', async () => (await readText(npmrc)) === rendered(second), agentLog);
      await waitFor('on-change', async () => (await readText(rotations)) !== '', agentLog);
      // Two more refreshes (reads of the KV path) without a change: on-change does not run again.
      const after = kvReads();
      await waitFor('two more refreshes', () => Promise.resolve(kvReads() >= after + 2), agentLog);
    } finally {
      reading = false;
      await reader;
    }
    expect([...reads.keys()].sort()).toEqual([rendered(first), rendered(second)].sort());
    expect(await readText(rotations)).toBe('rendered again - npmrc\n');
    expect(statSync(npmrc).ino, 'written over in place (same inode), not replaced by a rename').not.toBe(inode);
    expect((statSync(npmrc).mode & 0o777).toString(8)).toBe('600');
    console.log(`reads of the .npmrc during the rotation: ${[...reads.values()].join(' + ')} (old + new)`);

    from = registry.requests().length;
    const upgrade = await run.until('upgrade', cache(2));
    expect(upgrade.exitCode, upgrade.log).toBe(0);
    expect(installedVersion(j)).toBe('1.1.0');
    expect(new Set(servedTo(from)), 'the later install did not use the rotated token').toEqual(new Set(['ci-second']));

    const scan = await run.until('scan');
    expect(scan.exitCode, scan.log).toBe(0);
    expect(scan.outputs.leaks).toBe('0');

    const [post] = await run.post();
    expect(post?.exitCode, post?.log).toBe(0);
    expect(existsSync(npmrc)).toBe(false);
    expect(existsSync(ledger.root)).toBe(false);
    expect(alive(ledger.agentPid ?? 0), 'agent alive after post').toBe(false);
    expect(await bao.tokenAlive(vaultToken), 'the login token outlived post').toBe(false);

    // After post: the scan again, given both tokens (the secrets directory is gone), over the workspace.
    const again = await j.runMain(
      path.join(repo, 'dist', 'scan.js'),
      { paths: '.', 'secret-env-names': 'FIRST_NPM_TOKEN, SECOND_NPM_TOKEN' },
      {
        actionYml: path.join(repo, 'scan', 'action.yml'),
        env: { FIRST_NPM_TOKEN: first, SECOND_NPM_TOKEN: second, PIPELINE_SECRETS_DIR: '' },
      },
    );
    expect(again.exitCode, again.log).toBe(0);
    expect(again.outputs.leaks).toBe('0');
    assertNoLeak(j, [...run.all, refused, again], [first, second, publisher, vaultToken], {
      privateDirs: [ledger.root, ledger.secretsDir],
    });
  }, 120_000);
});
