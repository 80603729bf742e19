// The services that the rendered-template tests (test/e2e/templates-*.test.ts) prove files against
// work, and enforce what those tests rely on: a real Verdaccio that a real npm can install from only
// when it authenticates (and which logs who did), a real nginx behind basic auth that curl and git
// reach only with the right .netrc credentials, and the Kubernetes API stand-in that a real kubectl
// reaches only over TLS with the CA it was given and a known token or client certificate. Each
// check has its failing twin, so none of them can pass by accident. stop() leaves nothing behind.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectlPath, missingPackages } from './services/install.ts';
import { isRunning } from './services/lifecycle.ts';
import { startBasicAuthServer, type BasicAuthServer } from './services/nginx.ts';
import { makePki, type Pki } from './services/tls.ts';
import { startKubeApi, type KubeApiServer } from './services/token-review.ts';
import { NPM_VERSION, VERDACCIO_VERSION } from './services/verdaccio-install.ts';
import { startVerdaccio, type Verdaccio } from './services/verdaccio.ts';

const temps: string[] = [];
function temp(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file` with exactly `env` (asynchronously: the servers under test live in this process). */
function run(file: string, args: string[], env: Record<string, string>, cwd?: string): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd, timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const pidIn = (file: string): number => Number(readFileSync(file, 'utf8'));

describe('Verdaccio (npm registry)', () => {
  let registry: Verdaccio;
  let publisher = '';
  beforeAll(async () => {
    registry = await startVerdaccio();
    registry.addUser('publisher', 'publisher-pw-1');
    publisher = await registry.login('publisher', 'publisher-pw-1');
    await registry.publish(publisher, '@ps-test/private-pkg', '1.0.0');
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
  });

  /** A fresh project dir that depends on nothing yet. */
  function project(): string {
    const dir = temp('ps-npm-project-');
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    return dir;
  }

  function npmrc(token: string): string {
    const file = path.join(temp('ps-npmrc-'), 'npmrc');
    writeFileSync(file, `//${registry.host}/:_authToken=${token}\n`, { mode: 0o600 });
    return file;
  }

  it(`is Verdaccio ${VERDACCIO_VERSION} on 127.0.0.1, and the npm is ${NPM_VERSION}`, async () => {
    expect(registry.url).toBe(`http://127.0.0.1:${registry.port}/`);
    const ping = await registry.status('-/ping');
    expect(ping).toBe(200);
    const version = await registry.npm(['--version'], { cwd: temp('ps-npm-') });
    expect(version).toEqual({ code: 0, out: `${NPM_VERSION}\n` });
  });

  it('refuses an install without a token, and a wrong or made-up one', async () => {
    for (const userconfig of [undefined, npmrc('not-a-token'), npmrc(Buffer.from('a:b').toString('base64'))]) {
      const dir = project();
      const res = await registry.npm(['install', '@ps-test/private-pkg', '--registry', registry.url], {
        cwd: dir,
        ...(userconfig === undefined ? {} : { userconfig }),
      });
      expect(res.code, res.out).not.toBe(0);
      expect(res.out).toMatch(/E401|Unable to authenticate/);
      expect(existsSync(path.join(dir, 'node_modules', '@ps-test', 'private-pkg'))).toBe(false);
    }
    expect(await registry.status('@ps-test%2fprivate-pkg')).toBe(401);
    expect(await registry.status('@ps-test/private-pkg/-/private-pkg-1.0.0.tgz')).toBe(401);
  });

  it('installs with a token from login, as the user of that token', async () => {
    registry.addUser('ci-reader', 'reader-pw-2');
    const token = await registry.login('ci-reader', 'reader-pw-2');
    expect(token).not.toBe(publisher);
    const dir = project();
    const before = registry.requests().length;
    const res = await registry.npm(['install', '@ps-test/private-pkg', '--registry', registry.url], { cwd: dir, userconfig: npmrc(token) });
    expect(res.code, res.out).toBe(0);
    const installed = await run(process.execPath, ['-p', "require('@ps-test/private-pkg')"], { PATH: '/usr/bin:/bin' }, dir);
    expect(installed.stdout).toBe('@ps-test/private-pkg@1.0.0\n');
    // The registry saw the packument and the tarball requested as ci-reader, and nothing anonymous.
    const seen = registry.requests().slice(before);
    expect(seen.filter((r) => r.status === 200).map((r) => [r.user, r.url])).toEqual([
      ['ci-reader', '/@ps-test%2fprivate-pkg'],
      ['ci-reader', '/@ps-test/private-pkg/-/private-pkg-1.0.0.tgz'],
    ]);
    // Verdaccio logs the Authorization header classified, never the token
    expect(registry.log()).not.toContain(token);
  });

  it('gives a new valid token on each login; a wrong password gets none', async () => {
    registry.addUser('rotating', 'rotating-pw-3');
    const first = await registry.login('rotating', 'rotating-pw-3');
    const second = await registry.login('rotating', 'rotating-pw-3');
    expect(second).not.toBe(first);
    for (const token of [first, second]) expect(await registry.status('@ps-test%2fprivate-pkg', token)).toBe(200);
    await expect(registry.login('rotating', 'wrong')).rejects.toThrow(/login of rotating refused: HTTP 40\d/);
    await expect(registry.login('nobody', 'rotating-pw-3')).rejects.toThrow(/refused/);
  });

  it('stop() ends the registry and removes its dir', async () => {
    const pid = pidIn(path.join(registry.dir, 'verdaccio.pid'));
    expect(isRunning(pid)).toBe(true);
    const dir = registry.dir;
    await registry.stop();
    expect(isRunning(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await expect(registry.status('-/ping')).rejects.toThrow(/ECONNREFUSED|ECONNRESET/); // a kept-alive socket is reset, a new one refused
    await registry.stop(); // a second stop is fine
  });
});

describe('nginx with basic auth (.netrc for curl and git)', () => {
  let web: BasicAuthServer;
  const env = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
  beforeAll(async () => {
    web = await startBasicAuthServer();
    web.addUser('ci-bot', 'Netrc-Pa55:w0rd!');
    web.addFile('/hello.txt', 'hello from behind basic auth\n');
    await web.addGitRepo('app', { 'README.md': '# app\n' });
  }, 60_000);
  afterAll(async () => {
    await web?.stop();
  });

  function netrc(login: string, password: string): string {
    const file = path.join(temp('ps-netrc-'), 'netrc');
    writeFileSync(file, `machine 127.0.0.1 login ${login} password ${password}\n`, { mode: 0o600 });
    return file;
  }

  it('is nginx and curl and git from Debian, on 127.0.0.1', () => {
    expect(missingPackages(['nginx', 'curl', 'git'])).toEqual([]);
    expect(web.url).toBe(`http://127.0.0.1:${web.port}`);
  });

  it('curl --netrc-file gets 200 with the right credentials, 401 without or with a wrong password', async () => {
    const before = web.access().length;
    const curl = (args: string[]): Promise<Ran> =>
      run('/usr/bin/curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', ...args, `${web.url}/hello.txt`], env);
    expect((await curl(['--netrc-file', netrc('ci-bot', 'Netrc-Pa55:w0rd!')])).stdout).toBe('hello from behind basic auth\n\n200');
    expect((await curl([])).stdout).toMatch(/\n401$/);
    expect((await curl(['--netrc-file', netrc('ci-bot', 'wrong')])).stdout).toMatch(/\n401$/);
    expect((await curl(['--netrc-file', netrc('someone', 'Netrc-Pa55:w0rd!')])).stdout).toMatch(/\n401$/);
    expect(
      web
        .access()
        .slice(before)
        .map((a) => [a.user, a.status]),
    ).toEqual([
      ['ci-bot', 200],
      ['-', 401],
      ['ci-bot', 401],
      ['someone', 401],
    ]);
    expect(await web.status('/hello.txt', { user: 'ci-bot', password: 'Netrc-Pa55:w0rd!' })).toBe(200);
  });

  it('git clones over HTTP with the .netrc in HOME, and fails without it', async () => {
    const home = temp('ps-git-home-');
    const denied = await run('/usr/bin/git', ['clone', '-q', `${web.url}/app.git`, path.join(home, 'denied')], { ...env, HOME: home });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/could not read Username|Authentication failed|401/);
    writeFileSync(path.join(home, '.netrc'), readFileSync(netrc('ci-bot', 'Netrc-Pa55:w0rd!')), { mode: 0o600 });
    const clone = await run('/usr/bin/git', ['clone', '-q', `${web.url}/app.git`, path.join(home, 'app')], { ...env, HOME: home });
    expect(clone.code, clone.stderr).toBe(0);
    expect(readFileSync(path.join(home, 'app', 'README.md'), 'utf8')).toBe('# app\n');
  });

  it('stop() ends nginx (master and worker) and removes its dir', async () => {
    const pid = pidIn(path.join(web.dir, 'master.pid'));
    const dir = web.dir;
    await web.stop();
    expect(isRunning(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await expect(web.status('/hello.txt')).rejects.toThrow(/ECONNREFUSED|ECONNRESET/); // a kept-alive socket is reset, a new one refused
  });
});

describe('Kubernetes API stand-in (kubeconfig for kubectl)', () => {
  let pki: Pki;
  let api: KubeApiServer;
  let dir: string;
  const TOKEN = 'k8s-deployer-token-5d1c';
  beforeAll(async () => {
    pki = await makePki({ clientCn: 'deployer-cert' });
    api = await startKubeApi({
      certPem: pki.serverCertPem,
      keyPem: pki.serverKeyPem,
      clientCaPem: pki.caPem,
      tokens: { [TOKEN]: 'deployer' },
      pods: { default: ['web-1', 'web-2'] },
    });
    dir = temp('ps-kube-');
  });
  afterAll(async () => {
    await api?.stop();
    await pki?.cleanup();
  });

  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  function kubeconfig(name: string, user: string[], ca = pki.caPem): string {
    const file = path.join(dir, name);
    const text = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: ci',
      '  cluster:',
      `    server: ${api.url}`,
      `    certificate-authority-data: ${b64(ca)}`,
      'users:',
      '- name: deployer',
      '  user:',
      ...user.map((l) => `    ${l}`),
      'contexts:',
      '- name: ci',
      '  context: {cluster: ci, user: deployer, namespace: default}',
      'current-context: ci',
      '',
    ].join('\n');
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  }
  function anonymousGet(urlPath: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      https
        .get(`${api.url}${urlPath}`, { ca: pki.caPem, timeout: 10_000 }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
        })
        .once('error', reject);
    });
  }
  const kubectl = (config: string, args: string[]): Promise<Ran> =>
    run(kubectlPath() ?? 'kubectl', args, { PATH: '/usr/bin:/bin', HOME: dir, KUBECONFIG: config });

  it('has a kubectl', () => {
    expect(kubectlPath()).toBeDefined();
  });

  it('kubectl lists pods with the bearer token, and gets one with the client certificate', async () => {
    const byToken = await kubectl(kubeconfig('token', [`token: ${TOKEN}`]), ['get', 'pods', '-o', 'name']);
    expect(byToken.stdout, byToken.stderr).toBe('pod/web-1\npod/web-2\n');
    const byCert = await kubectl(
      kubeconfig('cert', [`client-certificate-data: ${b64(pki.clientCertPem)}`, `client-key-data: ${b64(pki.clientKeyPem)}`]),
      ['get', 'pod', 'web-2', '-o', 'name'],
    );
    expect(byCert.stdout, byCert.stderr).toBe('pod/web-2\n');
    const users = new Set(api.requests.map((r) => `${r.auth}:${r.user ?? '-'}:${r.status}`));
    expect(users).toEqual(new Set(['token:deployer:200', 'certificate:deployer-cert:200']));
  });

  it('refuses a wrong token and no credentials (401), and kubectl refuses a server its CA did not sign', async () => {
    const wrong = await kubectl(kubeconfig('wrong', ['token: not-the-token']), ['get', 'pods', '-o', 'name']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/You must be logged in to the server/);
    // no credentials at all (kubectl would ask for a user name at a terminal): the API answers 401
    expect(await anonymousGet('/api/v1/namespaces/default/pods')).toMatchObject({ status: 401, body: { reason: 'Unauthorized' } });
    const otherCa = await kubectl(kubeconfig('other-ca', [`token: ${TOKEN}`], pki.otherCaPem), ['get', 'pods', '-o', 'name']);
    expect(otherCa.code).not.toBe(0);
    expect(otherCa.stderr).toMatch(/certificate signed by unknown authority|x509/);
    expect(api.requests.filter((r) => r.status === 401).every((r) => r.user === undefined)).toBe(true);
  });
});
