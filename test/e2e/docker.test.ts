// Docker against real parts: Debian's docker.io engine with BuildKit and Debian's docker-registry
// with htpasswd (and TLS), started by test/services, and a real OpenBao dev server holding the
// registry passwords. The action's login goes through a PATH shim
// that records the docker CLI's argv and stdin, so the password is proven to travel on stdin only.
import { chmodSync, existsSync, promises as fs, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BASE_PATH } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { ensureBaseImage, sharedEngine, startRegistry, type DockerEngine, type Registry } from '../support/services/docker.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, newJob, ledgerOf, privateDirsOf } from './setup.ts';

const PASSWORD = 'registry-Pa55-for-ci-7b2f';
const TLS_PASSWORD = 'tls-registry-Pa55-41c9';
const NPM_TOKEN = 'npm_buildSecretToken_91af37c2';

let engine: DockerEngine;
let registry: Registry;
let tlsRegistry: Registry;
let vault: OpenBao;
let token: string;
let job: Job;
let spyDir: string;

beforeAll(async () => {
  engine = await sharedEngine();
  await ensureBaseImage(engine);
  registry = await startRegistry({ engine, password: PASSWORD });
  tlsRegistry = await startRegistry({ engine, tls: true, password: TLS_PASSWORD });
  vault = await OpenBao.start();
  await vault.enableKv('secret', 2);
  await vault.putKv('secret', 'ci/docker', { password: PASSWORD, tls: TLS_PASSWORD, npm: NPM_TOKEN, wrong: 'not-the-registry-password-1' });
  await vault.addPolicy('ci', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
  token = await vault.createToken({ policies: ['ci'], ttl: '3600s' });
  // The spy: a `docker` first on PATH that records argv and stdin, then runs the real CLI.
  spyDir = mkdtempSync(path.join(os.tmpdir(), 'ps-docker-spy-'));
  writeFileSync(
    path.join(spyDir, 'docker'),
    `#!/bin/bash\nprintf '%s\\0' "$@" >> "${spyDir}/argv"; printf '\\n' >> "${spyDir}/argv"\nif [ "$1" = login ]; then tee -a "${spyDir}/stdin" | exec /usr/bin/docker "$@"; else exec /usr/bin/docker "$@"; fi\n`,
  );
  chmodSync(path.join(spyDir, 'docker'), 0o755);
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  await tlsRegistry?.stop();
  await vault?.stop();
  rmSync(spyDir, { recursive: true, force: true });
});
afterEach(async () => {
  await job?.cleanup();
  rmSync(path.join(spyDir, 'argv'), { force: true });
  rmSync(path.join(spyDir, 'stdin'), { force: true });
});

const values = [PASSWORD, TLS_PASSWORD, NPM_TOKEN, 'not-the-registry-password-1'];
const stepEnv = (): Record<string, string> => ({ ...engine.env, PATH: `${spyDir}:${path.dirname(process.execPath)}:${BASE_PATH}` });
const secrets =
  'secret/data/ci/docker password | REGISTRY_PASSWORD\nsecret/data/ci/docker tls | TLS_PASSWORD\nsecret/data/ci/docker npm | npm_token\nsecret/data/ci/docker wrong | WRONG';

function check(steps: StepResult[]): void {
  const dirs = privateDirsOf(steps);
  assertNoLeak(job, steps, [...values, token], { privateDirs: dirs });
  // The spy saw every docker command line: none carries a value.
  const argv = existsSync(path.join(spyDir, 'argv')) ? readFileSync(path.join(spyDir, 'argv'), 'utf8') : '';
  for (const value of values) expect(argv.includes(value), 'a value reached docker argv').toBe(false);
}

/** The docker CLI from the test process (not a job step): raw stdout bytes, or an error on failure. */
async function dockerBytes(args: string[]): Promise<Buffer> {
  const r = await engine.run(args);
  if (r.code !== 0) throw new Error(`docker ${args[0]} exited ${String(r.code)}: ${r.stderr.trim()}`);
  return r.stdoutBytes;
}

describe('docker login into a per-job DOCKER_CONFIG', () => {
  it('logs in with the password on stdin, pushes, and after post the login is gone', async () => {
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      {
        url: vault.url,
        token,
        secrets,
        registry: registry.host,
        'registry-username': registry.username,
        'registry-password-secret': 'REGISTRY_PASSWORD',
      },
      { env: stepEnv() },
    );
    expect(main.exitCode, main.log).toBe(0);
    const dockerConfig = main.outputs['docker-config'] ?? '';
    expect(job.env.DOCKER_CONFIG).toBe(dockerConfig);
    expect(dockerConfig.startsWith(ledgerOf(main).root)).toBe(true);
    expect(JSON.parse(await fs.readFile(path.join(dockerConfig, 'config.json'), 'utf8')).auths[registry.host]).toBeDefined();
    // The password went to docker on stdin, exactly.
    expect(readFileSync(path.join(spyDir, 'stdin'), 'utf8')).toBe(PASSWORD);
    // base64(user:password), as config.json holds it, is masked whole.
    expect(main.masks).toContain(Buffer.from(`${registry.username}:${PASSWORD}`).toString('base64'));

    const image = `${registry.host}/app:1`;
    const push = await job.runShell(`docker tag ps-busybox:latest ${image} && docker push ${image}`, { env: stepEnv() });
    expect(push.exitCode, push.log).toBe(0);

    const post = await job.runPost(POST, main, { env: stepEnv() });
    expect(post.exitCode, post.log).toBe(0);
    expect(post.summary).toContain(`Logged out of: ${registry.host}`);
    expect(existsSync(dockerConfig)).toBe(false);
    const again = await job.runShell(`docker push ${image} 2>&1 || echo "push-failed"`, { env: stepEnv() });
    expect(again.stdout).toMatch(/push-failed/);
    expect(again.stdout).toMatch(/unauthorized|no basic auth credentials|authentication required/i);
    expect(existsSync(path.join(job.home, '.docker'))).toBe(false); // ~/.docker never written
    check([main, push, post, again]);
  });

  it('logs in to several registries (one over TLS) from the registries input', async () => {
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      {
        url: vault.url,
        token,
        secrets,
        registries: `${registry.host} ${registry.username} REGISTRY_PASSWORD\n# comment\n${tlsRegistry.host} ${tlsRegistry.username} TLS_PASSWORD`,
      },
      { env: stepEnv() },
    );
    expect(main.exitCode, main.log).toBe(0);
    const auths = JSON.parse(await fs.readFile(path.join(main.outputs['docker-config'] ?? '', 'config.json'), 'utf8')).auths;
    expect(Object.keys(auths).sort()).toEqual([registry.host, tlsRegistry.host].sort());
    const post = await job.runPost(POST, main, { env: stepEnv() });
    expect(post.summary).toContain(registry.host);
    expect(post.summary).toContain(tlsRegistry.host);
    check([main, post]);
  });

  it('a wrong password fails naming the registry; post logs out of the login that succeeded', async () => {
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      {
        url: vault.url,
        token,
        secrets,
        registries: `${tlsRegistry.host} ${tlsRegistry.username} TLS_PASSWORD\n${registry.host} ${registry.username} WRONG`,
      },
      { env: stepEnv() },
    );
    expect(main.exitCode).toBe(1);
    const error = main.annotations.find((a) => a.level === 'error')?.message ?? '';
    expect(error).toMatch(
      new RegExp(
        `docker login to registry '${registry.host.replace('.', '\\.')}' as '${registry.username}' \\(password from secret 'WRONG'`,
      ),
    );
    expect(error).toMatch(/401|unauthorized/i);
    const post = await job.runPost(POST, main, { env: stepEnv() });
    expect(post.exitCode).toBe(0);
    expect(post.summary).toContain(`Logged out of: ${tlsRegistry.host}`);
    expect(existsSync(ledgerOf(main).dockerConfig ?? '')).toBe(false);
    check([main, post]);
  });

  it.each([
    [
      { registry: '127.0.0.1:1', 'registry-username': 'u', 'registry-password-secret': 'REGISTRY_PASSWORD' },
      /docker login to registry '127\.0\.0\.1:1'/,
    ],
    [
      { registry: 'r.example', 'registry-username': 'u', 'registry-password-secret': 'NOPE' },
      /^input 'registry-password-secret': registry 'r\.example': no secret of this step has the given name \(secrets: /,
    ],
    [{ 'build-secrets': 'npm=npm_token\nother=MISSING' }, /^input 'build-secrets': line 2: no secret named 'MISSING'/],
    [{ registries: 'ghcr.io only-two' }, /^input 'registries': line 1: expected '<registry> <username> <password-secret-name>'/],
    [
      { registry: 'ghcr.io', 'registry-username': 'u', 'registry-password': 'x', 'registry-password-secret': 'y' },
      /^input 'registry-password': give exactly one of/,
    ],
  ])('bad docker input %j is one clear line', async (inputs, expected) => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets, timeout: '10', ...inputs }, { env: stepEnv() });
    expect(main.exitCode).toBe(1);
    const errors = main.annotations.filter((a) => a.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(expected);
    if (!('registry' in inputs && inputs.registry === '127.0.0.1:1')) expect(main.outputs['secrets-dir']).toBeUndefined();
    const post = await job.runPost(POST, main, { env: stepEnv() });
    expect(post.exitCode).toBe(0);
    check([main, post]);
  });
});

describe('BuildKit build secrets and container injection', () => {
  it('a RUN --mount=type=secret build reads the secret; neither the image archive nor its history holds it, while an ARG build does', async () => {
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      { url: vault.url, token, secrets, 'build-secrets': 'npm=npm_token', 'export-env': 'true' },
      { env: stepEnv() },
    );
    expect(main.exitCode, main.log).toBe(0);
    const dir = main.outputs['secrets-dir'] ?? '';
    expect(main.outputs['build-secret-files']).toBe(`npm=${path.join(dir, 'npm_token')}`);
    expect(main.outputs['build-secret-envs']).toBe('npm=npm_token'); // an explicit | name is the env name as written
    expect(main.outputs['build-secret-args']).toBe(`--secret id=npm,src=${path.join(dir, 'npm_token')}`);

    const context = path.join(job.workspace, 'ctx');
    await fs.mkdir(context);
    await fs.writeFile(
      path.join(context, 'Dockerfile'),
      'FROM ps-busybox:latest\nRUN --mount=type=secret,id=npm,required=true wc -c < /run/secrets/npm > /size\n',
    );
    const tag = `ps-secret-build-${Date.now()}`;
    const build = await job.runShell(`DOCKER_BUILDKIT=1 /usr/bin/docker build --network none --no-cache $BUILD_SECRET_ARGS -t ${tag} ctx`, {
      env: { ...stepEnv(), BUILD_SECRET_ARGS: main.outputs['build-secret-args'] ?? '' },
    });
    expect(build.exitCode, build.log).toBe(0);
    const size = await job.runShell(`docker run --rm --network none ${tag} cat /size`, { env: stepEnv() });
    expect(size.stdout.trim()).toBe(String(NPM_TOKEN.length));

    const saved = await dockerBytes(['save', tag]);
    const history = await dockerBytes(['history', '--no-trunc', tag]);
    expect(saved.length).toBeGreaterThan(1000);
    expect(saved.includes(NPM_TOKEN)).toBe(false);
    expect(history.includes(NPM_TOKEN)).toBe(false);

    // The control: the same value as a build ARG is in the image, so the checks above can fail.
    const leaky = path.join(job.workspace, 'leaky');
    await fs.mkdir(leaky);
    await fs.writeFile(path.join(leaky, 'Dockerfile'), 'FROM ps-busybox:latest\nARG NPM_TOKEN\nRUN echo "$NPM_TOKEN" | wc -c > /size\n');
    const control = await engine.run([
      'build',
      '--network',
      'none',
      '--no-cache',
      '--build-arg',
      `NPM_TOKEN=${NPM_TOKEN}`,
      '-t',
      `${tag}-arg`,
      leaky,
    ]);
    expect(control.code, control.stderr).toBe(0);
    const leakedHistory = await dockerBytes(['history', '--no-trunc', `${tag}-arg`]);
    expect(leakedHistory.includes(NPM_TOKEN)).toBe(true);
    await engine.run(['rmi', '-f', tag, `${tag}-arg`]);

    const post = await job.runPost(POST, main, { env: stepEnv() });
    check([main, build, size, post]);
  });

  it('docker run -v DIR:/run/secrets:ro and --env-file deliver the values inside a container, verified by byte count', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets }, { env: stepEnv() });
    expect(main.exitCode, main.log).toBe(0);
    const run = await job.runShell(
      [
        'docker run --rm --network none -v "$SECRETS_DIR:/run/secrets:ro" ps-busybox:latest sh -c \'[ -s /run/secrets/REGISTRY_PASSWORD ] && wc -c < /run/secrets/REGISTRY_PASSWORD\'',
        'docker run --rm --network none --env-file "$ENV_FILE" ps-busybox:latest sh -c \'printf %s "$REGISTRY_PASSWORD" | wc -c\'',
        'docker run --rm --network none -v "$SECRETS_DIR:/run/secrets:ro" ps-busybox:latest sh -c \'echo x > /run/secrets/new 2>/dev/null && echo writable || echo read-only\'',
      ].join('\n'),
      { env: { ...stepEnv(), SECRETS_DIR: main.outputs['secrets-dir'] ?? '', ENV_FILE: main.outputs['env-file'] ?? '' } },
    );
    expect(run.exitCode, run.log).toBe(0);
    expect(
      run.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim()),
    ).toEqual([String(PASSWORD.length), String(PASSWORD.length), 'read-only']);
    const post = await job.runPost(POST, main, { env: stepEnv() });
    check([main, run, post]);
  });

  it('verifies a running container by presence and byte count: the verify sub-action, and verify-container in post', async () => {
    job = await newJob();
    const name = `ps-app-${Date.now()}`;
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets, 'verify-container': name }, { env: stepEnv() });
    expect(main.exitCode, main.log).toBe(0);
    const start = await job.runShell(
      `docker run -d --name ${name} --network none -v "$PIPELINE_SECRETS_DIR:/run/secrets:ro" ps-busybox:latest sleep 120`,
      { env: stepEnv() },
    );
    expect(start.exitCode, start.log).toBe(0);
    try {
      const verify = await job.runMain(
        path.join(path.dirname(MAIN), 'verify.js'),
        { container: name },
        { env: stepEnv(), actionYml: path.join(path.dirname(MAIN), '../verify/action.yml') },
      );
      expect(verify.exitCode, verify.log).toBe(0);
      expect(verify.summary).toContain('4 of 4 secret(s) present at /run/secrets with the expected byte count');
      expect(verify.summary).toContain(`| REGISTRY_PASSWORD | ${PASSWORD.length} | ${PASSWORD.length} | ✅ |`);

      // A container without the mount: every secret reported missing, the step fails naming them.
      const empty = await job.runShell(
        `docker run -d --name ${name}-empty --network none ps-busybox:latest sh -c 'mkdir -p /run/secrets && sleep 120'`,
        { env: stepEnv() },
      );
      expect(empty.exitCode).toBe(0);
      const missing = await job.runMain(
        path.join(path.dirname(MAIN), 'verify.js'),
        { container: `${name}-empty` },
        { env: stepEnv(), actionYml: path.join(path.dirname(MAIN), '../verify/action.yml') },
      );
      expect(missing.exitCode).toBe(1);
      expect(missing.annotations.find((a) => a.level === 'error')?.message).toMatch(
        /4 secret\(s\) missing or of another size in container .*: REGISTRY_PASSWORD, TLS_PASSWORD, WRONG, npm_token/,
      );

      const post = await job.runPost(POST, main, { env: stepEnv() });
      expect(post.exitCode, post.log).toBe(0);
      expect(post.summary).toContain(`verified in container \`${name}\``);
      expect(post.summary).toContain('4 of 4 secret(s) present');
      check([main, start, verify, missing, post]);
    } finally {
      await engine.run(['rm', '-f', name, `${name}-empty`]);
    }
  });
});
