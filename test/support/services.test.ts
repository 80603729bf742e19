// The Docker test services work: a private dockerd (BuildKit) with a busybox base image, and
// htpasswd-protected registries over HTTP and TLS. Each check has a way to fail that matters to the
// tests built on these services (auth really enforced, the leak scan really finds a leak, ...).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImage,
  mountsUnder,
  processesMentioning,
  startEngine,
  startRegistry,
  type DockerEngine,
  type Registry,
} from './services/docker.ts';
import { isStaticElf, missingPackages } from './services/install.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let engine: DockerEngine;
let image: string;
const registries: Registry[] = [];
const temps: string[] = [];

function temp(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

beforeAll(async () => {
  engine = await startEngine();
  image = await ensureBaseImage(engine);
}, 90_000);

afterAll(async () => {
  for (const r of registries) await r.stop();
  await engine?.stop();
  for (const t of temps) rmSync(t, { recursive: true, force: true });
}, 60_000);

/** GET over https, resolving with the status or rejecting with the TLS error. */
function httpsGet(url: string, opts: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...opts, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

async function tagsOf(reg: Registry, repoName: string): Promise<string[]> {
  const url = `${reg.tls ? 'https' : 'http'}://${reg.host}/v2/${repoName}/tags/list`;
  const auth = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
  const res = await fetchWithCa(url, { authorization: `Basic ${auth}` }, reg.caPem);
  expect(res.status).toBe(200);
  return (JSON.parse(res.body) as { tags: string[] }).tags;
}

async function fetchWithCa(
  url: string,
  headers: Record<string, string>,
  ca: string | undefined,
): Promise<{ status: number; body: string }> {
  if (ca !== undefined) return httpsGet(url, { ca, headers });
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.text() };
}

/** login, tag, push, check the registry holds it; returns the DOCKER_CONFIG dir. */
async function loginAndPush(reg: Registry, repoName: string): Promise<{ config: string; ref: string }> {
  const config = temp('ps-dockercfg-');
  const env = { DOCKER_CONFIG: config };
  const login = await engine.run(['login', reg.host, '--username', reg.username, '--password-stdin'], { input: reg.password, env });
  expect(login.stderr + login.stdout).toContain('Login Succeeded');
  expect(login.code).toBe(0);
  const written = JSON.parse(readFileSync(path.join(config, 'config.json'), 'utf8')) as { auths: Record<string, { auth?: string }> };
  expect(written.auths[reg.host]?.auth).toBe(Buffer.from(`${reg.username}:${reg.password}`).toString('base64'));

  const ref = `${reg.host}/${repoName}:1`;
  expect((await engine.run(['tag', image, ref])).code).toBe(0);
  const push = await engine.run(['push', ref], { env, timeoutMs: 60_000 });
  expect(push.stderr).toBe('');
  expect(push.code).toBe(0);
  expect(await tagsOf(reg, repoName)).toEqual(['1']);
  return { config, ref };
}

describe('packages', () => {
  it('are all installed, busybox statically linked; the preflight passes fast', () => {
    expect(missingPackages()).toEqual([]);
    expect(isStaticElf('/bin/busybox')).toBe(true);
    expect(isStaticElf('/bin/sh')).toBe(false); // dash is dynamically linked: the check can say no
    const started = Date.now();
    const r = spawnSync(process.execPath, [path.join(repo, 'scripts/test-preflight.ts')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('docker engine', () => {
  it('answers version with the 20.10 engine and CLI, and runs the busybox image', async () => {
    expect(engine.cli).toBe('/usr/bin/docker');
    expect(engine.env).toEqual({ DOCKER_HOST: engine.host, DOCKER_BUILDKIT: '1' });
    expect(engine.host).toMatch(/^unix:\/\/\/.+\/docker\.sock$/);
    const v = await engine.run(['version', '--format', '{{.Client.Version}} {{.Server.Version}}']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^20\.10\.\S+ 20\.10\.\S+$/);
    const hi = await engine.run(['run', '--rm', '--network', 'none', image, 'sh', '-c', 'echo hi']);
    expect(hi.stderr).toBe('');
    expect(hi.stdout).toBe('hi\n');
    expect(hi.code).toBe(0);
    const fail = await engine.run(['run', '--rm', '--network', 'none', image, 'sh', '-c', 'exit 7']);
    expect(fail.code).toBe(7);
  });

  it('mounts a host dir read-only at /run/secrets', async () => {
    const dir = temp('ps-secrets-');
    const value = `file-secret-${Math.random().toString(36).slice(2)}`;
    writeFileSync(path.join(dir, 'db_password'), value);
    const args = ['run', '--rm', '--network', 'none', '-v', `${dir}:/run/secrets:ro`, image];
    const read = await engine.run([...args, 'cat', '/run/secrets/db_password']);
    expect(read.code).toBe(0);
    expect(read.stdout).toBe(value);
    const write = await engine.run([...args, 'sh', '-c', 'echo x > /run/secrets/db_password']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/read-only/i);
    expect(readFileSync(path.join(dir, 'db_password'), 'utf8')).toBe(value);
  });
});

describe('registry', () => {
  it('with htpasswd: login --password-stdin, push; after logout push is refused; a wrong password is refused', async () => {
    const reg = await startRegistry({ engine });
    registries.push(reg);
    expect(reg.tls).toBe(false);
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(reg.caPem).toBeUndefined();
    const { config, ref } = await loginAndPush(reg, 'ps/busybox');
    const env = { DOCKER_CONFIG: config };

    const logout = await engine.run(['logout', reg.host], { env });
    expect(logout.code).toBe(0);
    const after = JSON.parse(readFileSync(path.join(config, 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(after.auths).toEqual({});
    const denied = await engine.run(['push', ref], { env, timeoutMs: 60_000 });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/no basic auth credentials|unauthorized|authentication required/i);

    const wrong = await engine.run(['login', reg.host, '--username', reg.username, '--password-stdin'], { input: 'not-the-password', env });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/401 Unauthorized/);
    expect(existsSync(path.join(config, 'config.json'))).toBe(true);
    expect((JSON.parse(readFileSync(path.join(config, 'config.json'), 'utf8')) as { auths: object }).auths).toEqual({});
  });

  it('with TLS: a self-signed certificate for 127.0.0.1, trusted by the engine; login and push', async () => {
    const reg = await startRegistry({ tls: true, engine, username: 'tls-user', password: 'tls-Pa55!word' });
    registries.push(reg);
    expect(reg.tls).toBe(true);
    expect(reg.username).toBe('tls-user');
    expect(reg.caPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const caFile = `/etc/docker/certs.d/${reg.host}/ca.crt`;
    expect(readFileSync(caFile, 'utf8')).toBe(reg.caPem);
    // the certificate verifies for 127.0.0.1 with the CA, and not without it
    expect((await httpsGet(`https://${reg.host}/v2/`, reg.caPem === undefined ? {} : { ca: reg.caPem })).status).toBe(401);
    await expect(httpsGet(`https://${reg.host}/v2/`, {})).rejects.toThrow(/self[- ]signed/i);
    await loginAndPush(reg, 'ps/tls-busybox');
  });
});

describe('buildkit', () => {
  it('builds with a --secret mount; the value reaches RUN but not the image, its layers or history', async () => {
    const secretDir = temp('ps-buildsecret-');
    const secret = `bk-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    const secretFile = path.join(secretDir, 'tok');
    writeFileSync(secretFile, secret);
    const ctx = temp('ps-buildctx-');
    // no `# syntax=` line: that would make BuildKit pull docker/dockerfile, and nothing can be pulled
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${image}\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /size\n`);
    const build = await engine.run(
      ['build', '--network', 'none', '--progress', 'plain', '--secret', `id=tok,src=${secretFile}`, '-t', 'ps-secret-ok', ctx],
      {
        timeoutMs: 90_000,
      },
    );
    expect(build.stderr).toContain('RUN --mount=type=secret'); // BuildKit's plain progress, not the classic builder
    expect(build.code).toBe(0);
    const size = await engine.run(['run', '--rm', '--network', 'none', 'ps-secret-ok', 'cat', '/size']);
    expect(size.stdout.trim()).toBe(String(secret.length));

    // a positive control: an image that does leak (a RUN writes the secret, a build-arg carries it)
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      `FROM ${image}\nARG LEAK\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /leak && echo "$LEAK" > /dev/null\n`,
    );
    const leaky = await engine.run(
      [
        'build',
        '--network',
        'none',
        '--progress',
        'plain',
        '--secret',
        `id=tok,src=${secretFile}`,
        '--build-arg',
        `LEAK=${secret}`,
        '-t',
        'ps-secret-leak',
        ctx,
      ],
      { timeoutMs: 90_000 },
    );
    expect(leaky.code).toBe(0);

    const saved = (tag: string): Buffer => {
      const out = path.join(secretDir, `${tag}.tar`);
      const r = spawnSync(engine.cli, ['save', '-o', out, tag], { env: { ...process.env, ...engine.env }, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return readFileSync(out);
    };
    const history = async (tag: string): Promise<string> => {
      const r = await engine.run(['history', '--no-trunc', tag]);
      expect(r.code).toBe(0);
      return r.stdout;
    };
    expect(saved('ps-secret-leak').includes(secret)).toBe(true);
    expect(await history('ps-secret-leak')).toContain(secret);
    const clean = saved('ps-secret-ok');
    expect(clean.length).toBeGreaterThan(1_000_000); // the busybox layer is in there
    expect(clean.includes(secret)).toBe(false);
    expect(await history('ps-secret-ok')).not.toContain(secret);
  }, 120_000);
});

describe('stop()', () => {
  it('ends every process, mount, file and certs.d entry of the engine and registries', async () => {
    const dir = engine.host.replace(/^unix:\/\//, '').replace(/\/docker\.sock$/, '');
    expect(processesMentioning(dir).length).toBeGreaterThanOrEqual(2); // containerd and dockerd
    const tlsHosts = registries.filter((r) => r.tls).map((r) => r.host);
    for (const r of registries.splice(0)) {
      const port = Number(r.host.split(':')[1]);
      await r.stop();
      await expect(connects(port)).resolves.toBe(false);
    }
    for (const host of tlsHosts) expect(existsSync(`/etc/docker/certs.d/${host}`)).toBe(false);
    await engine.stop();
    expect(processesMentioning(dir)).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    await engine.stop(); // idempotent
  }, 60_000);
});

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
