// The `.netrc`, kubeconfig and BuildKit worked examples of docs/templates.md, end to end through
// dist/ and the runner harness, each run as the page writes it (doc-workflow.ts) against a real
// OpenBao (jwt login with the job's OIDC token, KV v2) and a real consumer of the rendered file:
// curl and git against nginx with basic auth; kubectl against the Kubernetes API stand-in
// (test/support/services/token-review.ts: no cluster can run here), over TLS with the CA the
// kubeconfig carries; a BuildKit build on the real docker engine that mounts the `.npmrc` as a
// secret. Each test asserts the invariant after post.
import { chmodSync, existsSync, promises as fs, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BASE_PATH, OWNER, SHA } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { ensureBaseImage, sharedEngine, type DockerEngine } from '../support/services/docker.ts';
import { startBasicAuthServer, type BasicAuthServer } from '../support/services/nginx.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { makePki, type Pki } from '../support/services/tls.ts';
import { startKubeApi, type KubeApiServer } from '../support/services/token-review.ts';
import { DocRun, docBlock, docSteps, replaceAll } from './doc-workflow.ts';
import { createdToken, ledgerOf, newJob } from './setup.ts';

const GIT_USER = 'netrc-user-4f2a';
const GIT_PASSWORD = 'Netrc-Pa55:w0rd!-8d3e';
const K8S_TOKEN = 'k8s-deploy-token-61b7e0c2';
const NPM_TOKEN = 'npm_buildkitTemplate_0c9f41d7';

let bao: OpenBao;
let pki: Pki;
let job: Job | undefined;

beforeAll(async () => {
  [bao, pki] = await Promise.all([OpenBao.start(), makePki({ clientCn: 'deployer-cert' })]);
  await bao.enableKv('secret', 2);
  await bao.putKv('secret', 'ci/git', { username: GIT_USER, password: GIT_PASSWORD });
  await bao.putKv('secret', 'ci/k8s', { token: K8S_TOKEN, ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem });
  await bao.putKv('secret', 'ci/npm', { token: NPM_TOKEN });
  await bao.addPolicy('ci', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
}, 60_000);

afterAll(async () => {
  await bao?.stop();
  await pki?.cleanup();
});

afterEach(async () => {
  await job?.cleanup();
  job = undefined;
});

/** A job whose OIDC tokens log in as Vault role `role` (jwt auth at jwt/), bound to this repository. */
async function trustedJob(role: string): Promise<Job> {
  const j = await newJob({ oidc: true });
  job = j;
  if (!j.oidc) throw new Error('the job has no OIDC issuer');
  await bao.addJwtRole('jwt', role, {
    publicKeyPem: j.oidc.publicKeyPem,
    boundIssuer: j.oidc.issuer,
    // what the action asks for when jwt-audience is not given: GitHub's default audience
    boundAudiences: [`https://github.com/${OWNER}`],
    boundClaims: { repository: String(j.oidc.claims['repository']) },
    policies: ['ci'],
    ttl: '600s',
  });
  return j;
}

/** The main step went well, with the `templates` input known to action.yml; returns the rendered file's path. */
function renderedFile(main: StepResult, name: string): string {
  expect(main.exitCode, main.log).toBe(0);
  expect(main.annotations.filter((a) => /Unexpected input/.test(a.message))).toEqual([]);
  const file = path.join(ledgerOf(main).root, 'rendered', name);
  expect(main.outputs['rendered-files']).toBe(`${name}=${file}`);
  return file;
}

/** Post went well and took the rendered file with the private directory; then the invariant. */
async function finish(run: DocRun, file: string, secrets: string[], extra: StepResult[] = [], env?: Record<string, string>): Promise<void> {
  const j = run.job;
  const ledger = ledgerOf(run.main);
  const token = createdToken(run.main);
  const [post] = await run.post(env ? { env } : {});
  expect(post?.exitCode, post?.log).toBe(0);
  expect(existsSync(file)).toBe(false);
  expect(existsSync(ledger.root)).toBe(false);
  expect(await bao.tokenAlive(token), 'the login token outlived post').toBe(false);
  assertNoLeak(j, [...run.all, ...extra], [...secrets, token], { privateDirs: [ledger.root, ledger.secretsDir] });
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

describe('.netrc for curl and git (nginx with basic auth)', () => {
  let web: BasicAuthServer;
  beforeAll(async () => {
    web = await startBasicAuthServer();
    web.addUser(GIT_USER, GIT_PASSWORD);
    web.addFile('/notes.txt', 'release notes of app\n');
    await web.addGitRepo('app', { 'README.md': '# app\n' });
  }, 60_000);
  afterAll(async () => {
    await web?.stop();
  });

  it('curl --netrc-file gets the file (401 without it), git clones with it as its ~/.netrc, and nginx saw the user from Vault', async () => {
    const j = await trustedJob('ci');
    const steps = docSteps('netrc', [
      ['https://vault.example.com:8200', bao.url],
      ['https://git.example.com', web.url],
      ['git.example.com', '127.0.0.1'],
    ]);
    const run = new DocRun(j, steps, { env: { PATH: BASE_PATH, GIT_TERMINAL_PROMPT: '0' } });
    const main = await run.until('secrets');
    const netrc = renderedFile(main, 'netrc');
    expect(j.env.NETRC).toBe(netrc);
    expect(await fs.readFile(netrc, 'utf8')).toBe(`machine 127.0.0.1 login ${GIT_USER} password ${GIT_PASSWORD}\n`);

    const from = web.access().length;
    const curl = await run.until('curl');
    expect(curl.exitCode, curl.log).toBe(0);
    expect(await fs.readFile(path.join(j.workspace, 'notes.txt'), 'utf8')).toBe('release notes of app\n');
    // The control: the same request without the .netrc is refused.
    const refused = await j.runShell(`curl --silent --output /dev/null --write-out '%{http_code}' ${web.url}/notes.txt`, {
      env: { PATH: BASE_PATH },
    });
    expect(refused.stdout).toBe('401');

    const git = await run.until('git');
    expect(git.exitCode, git.log).toBe(0);
    expect(await fs.readFile(path.join(j.workspace, 'app', 'README.md'), 'utf8')).toBe('# app\n');
    const seen = web.access().slice(from);
    expect(seen.filter((a) => a.status === 200).length).toBeGreaterThan(2); // notes.txt, info/refs, objects
    expect(new Set(seen.filter((a) => a.status === 200).map((a) => a.user))).toEqual(new Set([GIT_USER]));

    await finish(run, netrc, [GIT_USER, GIT_PASSWORD], [refused]);
  }, 90_000);
});

describe('a kubeconfig for kubectl (the Kubernetes API stand-in)', () => {
  let api: KubeApiServer;
  beforeAll(async () => {
    api = await startKubeApi({
      certPem: pki.serverCertPem,
      keyPem: pki.serverKeyPem,
      clientCaPem: pki.caPem,
      tokens: { [K8S_TOKEN]: 'deployer' },
      pods: { default: ['web-1', 'web-2'] },
    });
  });
  afterAll(async () => {
    await api?.stop();
  });
  afterEach(() => {
    api.requests.length = 0;
  });

  /** The repository's deploy/kubeconfig.tmpl, as the page shows it (its user part changed by `user`). */
  async function checkout(j: Job, user?: readonly [string, string]): Promise<string> {
    const template = replaceAll(docBlock('kubeconfig-template'), [['https://k8s.example.com:6443', api.url], ...(user ? [user] : [])]);
    await fs.mkdir(path.join(j.workspace, 'deploy'));
    await fs.writeFile(path.join(j.workspace, 'deploy', 'kubeconfig.tmpl'), template);
    return template;
  }
  const steps = (): ReturnType<typeof docSteps> => docSteps('kubeconfig', [['https://vault.example.com:8200', bao.url]]);

  it('kubectl lists the pods with the rendered kubeconfig: TLS checked against its CA data, the token accepted', async () => {
    const j = await trustedJob('deploy');
    const template = await checkout(j);
    const run = new DocRun(j, steps(), { env: { PATH: BASE_PATH } });
    const main = await run.until('secrets');
    const kubeconfig = renderedFile(main, 'kubeconfig');
    expect(j.env.KUBECONFIG).toBe(kubeconfig);
    expect(await fs.readFile(kubeconfig, 'utf8')).toBe(
      template.replace('{{#base64}}{{K8S_CA}}{{/base64}}', b64(pki.caPem)).replace('{{K8S_TOKEN}}', K8S_TOKEN),
    );
    // The filter's output is a new string: masked before the file was written.
    expect(main.masks).toContain(b64(pki.caPem));

    const pods = await run.until('pods');
    expect(pods.exitCode, pods.log).toBe(0);
    expect(pods.stdout).toBe('pod/web-1\npod/web-2\n');
    expect(api.requests.length).toBeGreaterThan(0);
    expect(new Set(api.requests.map((r) => `${r.auth} ${r.user ?? '-'} ${r.status}`))).toEqual(new Set(['token deployer 200']));
    await finish(run, kubeconfig, [K8S_TOKEN, pki.caPem]);
  }, 90_000);

  it('with a wrong token in Vault the same step fails: the API server refuses it (401)', async () => {
    await bao.putKv('secret', 'ci/k8s', {
      token: 'not-the-deploy-token-5e21',
      ca: pki.caPem,
      cert: pki.clientCertPem,
      key: pki.clientKeyPem,
    });
    try {
      const j = await trustedJob('deploy');
      await checkout(j);
      const run = new DocRun(j, steps(), { env: { PATH: BASE_PATH } });
      const kubeconfig = renderedFile(await run.until('secrets'), 'kubeconfig');
      const pods = await run.until('pods');
      expect(pods.exitCode).not.toBe(0);
      expect(pods.stderr).toMatch(/You must be logged in to the server/);
      expect(api.requests.some((r) => r.status === 401 && r.user === undefined)).toBe(true);
      await finish(run, kubeconfig, ['not-the-deploy-token-5e21', pki.caPem]);
    } finally {
      await bao.putKv('secret', 'ci/k8s', { token: K8S_TOKEN, ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem });
    }
  }, 90_000);

  it('the client-certificate form: both base64 outputs masked, kubectl authenticated by the certificate', async () => {
    const j = await trustedJob('deploy');
    // The page's variation: the user's token line becomes the certificate and key lines, and the
    // step's secrets are those two with the CA.
    await checkout(j, [
      'token: {{K8S_TOKEN}}',
      'client-certificate-data: {{#base64}}{{K8S_CERT}}{{/base64}}\n      client-key-data: {{#base64}}{{K8S_KEY}}{{/base64}}',
    ]);
    const run = new DocRun(j, steps(), {
      env: { PATH: BASE_PATH },
      overrides: { secrets: 'secret/data/ci/k8s cert | K8S_CERT\nsecret/data/ci/k8s key | K8S_KEY\nsecret/data/ci/k8s ca | K8S_CA' },
    });
    const main = await run.until('secrets');
    const kubeconfig = renderedFile(main, 'kubeconfig');
    expect(main.masks).toEqual(expect.arrayContaining([b64(pki.caPem), b64(pki.clientCertPem), b64(pki.clientKeyPem)]));
    const pods = await run.until('pods');
    expect(pods.exitCode, pods.log).toBe(0);
    expect(pods.stdout).toBe('pod/web-1\npod/web-2\n');
    expect(new Set(api.requests.map((r) => `${r.auth} ${r.user ?? '-'} ${r.status}`))).toEqual(new Set(['certificate deployer-cert 200']));
    await finish(run, kubeconfig, [pki.clientKeyPem, pki.clientCertPem, pki.caPem]);
  }, 90_000);
});

describe('.npmrc inside a BuildKit build (the real docker engine)', () => {
  let engine: DockerEngine;
  let spyDir: string;
  beforeAll(async () => {
    engine = await sharedEngine();
    await ensureBaseImage(engine);
    // `docker` first on PATH: records every argv, and adds --network none to a build (this engine
    // has no bridge network); everything else goes to the real CLI as it is.
    spyDir = mkdtempSync(path.join(os.tmpdir(), 'ps-docker-spy-'));
    writeFileSync(
      path.join(spyDir, 'docker'),
      `#!/bin/bash\nprintf '%s\\0' "$@" >> "${spyDir}/argv"; printf '\\n' >> "${spyDir}/argv"\nif [ "$1" = build ]; then shift; exec /usr/bin/docker build --network none "$@"; fi\nexec /usr/bin/docker "$@"\n`,
    );
    chmodSync(path.join(spyDir, 'docker'), 0o755);
  }, 180_000);
  afterAll(() => {
    rmSync(spyDir, { recursive: true, force: true });
  });

  /** The docker CLI from the test process (not a job step): raw stdout bytes, or an error on failure. */
  async function dockerBytes(args: string[]): Promise<Buffer> {
    const r = await engine.run(args);
    if (r.code !== 0) throw new Error(`docker ${args[0]} exited ${String(r.code)}: ${r.stderr.trim()}`);
    return r.stdoutBytes;
  }

  it('the build sees the whole .npmrc at /root/.npmrc; no layer, no history entry holds it; the image scan passes', async () => {
    const j = await trustedJob('ci');
    // The repository: the page's Dockerfile, with `wc -c` for `npm ci` (busybox has no npm).
    await fs.writeFile(
      path.join(j.workspace, 'Dockerfile'),
      'FROM ps-busybox:latest\nRUN --mount=type=secret,id=npmrc,target=/root/.npmrc wc -c < /root/.npmrc > /npmrc-bytes\n',
    );
    const env = { ...engine.env, PATH: `${spyDir}:${path.dirname(process.execPath)}:${BASE_PATH}` };
    const run = new DocRun(j, docSteps('npmrc-buildkit', [['https://vault.example.com:8200', bao.url]]), { env });
    const image = `app:${SHA}`;
    try {
      const main = await run.until('secrets');
      const npmrc = renderedFile(main, 'npmrc');
      const content = `//npm.example.com/:_authToken=${NPM_TOKEN}\n`;
      expect(await fs.readFile(npmrc, 'utf8')).toBe(content);

      const build = await run.until('build');
      expect(build.exitCode, build.log).toBe(0);
      const size = await j.runShell(`docker run --rm --network none ${image} cat /npmrc-bytes`, { env });
      expect(size.stdout.trim()).toBe(String(Buffer.byteLength(content)));
      const saved = await dockerBytes(['save', image]);
      const history = await dockerBytes(['history', '--no-trunc', image]);
      expect(saved.length).toBeGreaterThan(1000);
      for (const [what, bytes] of [
        ['docker save', saved],
        ['docker history', history],
      ] as const) {
        expect(bytes.includes(NPM_TOKEN), `${what} holds the token`).toBe(false);
        expect(bytes.includes(b64(NPM_TOKEN)), `${what} holds the token in base64`).toBe(false);
      }

      const scan = await run.until('scan');
      expect(scan.exitCode, scan.log).toBe(0);
      expect(scan.outputs.leaks).toBe('0');
      // Every docker command line the job ran: none carries the token.
      const argv = readFileSync(path.join(spyDir, 'argv'), 'utf8');
      expect(argv).toContain(`id=npmrc,src=${npmrc}`);
      expect(argv.includes(NPM_TOKEN)).toBe(false);
      await finish(run, npmrc, [NPM_TOKEN], [size], env);
    } finally {
      await engine.run(['rmi', '-f', image]);
    }
  }, 180_000);
});
