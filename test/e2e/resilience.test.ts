// End to end under faults and odd environments: retries that succeed, failures that stay clean,
// no tmpfs, names that collide, multi-line values masked line by line. The server is a real OpenBao
// dev server; the action talks to it through a fault proxy, which injects the faults and counts
// the requests, while what is alive afterwards is asked of OpenBao itself.
import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import {
  ALL_VALUES,
  MAIN,
  POST,
  VALUES,
  createdToken,
  exists,
  ledgerOf,
  newAccessors,
  newJob,
  privateDirsOf,
  startVault,
} from './setup.ts';

let vault: OpenBao;
/** In front of `vault`: the action's `url`. */
let proxy: FaultProxy;
let job: Job;
beforeAll(async () => {
  vault = await startVault();
  proxy = await startFaultProxy(vault.url);
});
afterAll(async () => {
  await proxy?.stop();
  await vault?.stop();
});
afterEach(async () => {
  proxy.clearFaults();
  await job?.cleanup();
});

const approle = (): Record<string, string> => ({
  url: proxy.url,
  method: 'approle',
  'role-id': VALUES.roleId,
  'secret-id': VALUES.roleSecretId,
});

function check(steps: StepResult[], extra: string[] = []): void {
  const dirs = privateDirsOf(steps);
  assertNoLeak(job, steps, [...ALL_VALUES, ...extra], { privateDirs: dirs });
}

describe('transient faults are retried', () => {
  it.each([
    ['503 on a read', { method: 'GET', path: 'secret/data/ci/app', kind: 'status', status: 503, times: 1 }],
    ['412 from a performance standby', { method: 'GET', path: 'secret/data/ci/app', kind: 'status', status: 412, times: 2 }],
    ['a reset connection on a read', { method: 'GET', path: 'secret/data/ci/app', kind: 'reset', times: 1 }],
    ['a malformed body on a read', { method: 'GET', path: 'secret/data/ci/app', kind: 'malformed', times: 1 }],
    [
      '429 with Retry-After on the login',
      { method: 'POST', path: 'auth/approle/login', kind: 'status', status: 429, retryAfter: 1, times: 1 },
    ],
    ['503 on the token revocation in post', { method: 'POST', path: 'auth/token/revoke-self', kind: 'status', status: 503, times: 1 }],
  ] as const)('%s', async (_name, fault) => {
    job = await newJob();
    proxy.inject({ ...fault });
    const before = new Set(await vault.liveAccessors());
    const seen = proxy.requests.length;
    const started = Date.now();
    const main = await job.runMain(MAIN, { ...approle(), secrets: 'secret/data/ci/app password | DB_PASSWORD' });
    expect(main.exitCode, main.log).toBe(0);
    const token = createdToken(main);
    expect(token).not.toBe('');
    if ('retryAfter' in fault) expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(await fs.readFile(path.join(main.outputs['secrets-dir'] ?? '', 'DB_PASSWORD'), 'utf8')).toBe(VALUES.password);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    // A quota's 429 is retried on its own budget (transport.ts), logged as a quota retry.
    expect(main.log + post.log).toMatch(/(quota retry 1\/20|retry 1\/4) of (GET|POST) /);
    // The fault hit its request, and the retry of it was answered by OpenBao itself.
    const hits = proxy.requests.slice(seen).filter((r) => r.method === fault.method && r.path === fault.path);
    expect(hits.filter((r) => r.faults.length > 0)).toHaveLength('times' in fault ? fault.times : 1);
    expect(hits.at(-1)?.upstreamStatus).toBeLessThan(300);
    expect(post.annotations.filter((a) => a.level === 'warning')).toEqual([]);
    expect(await vault.tokenAlive(token)).toBe(false);
    expect(await newAccessors(vault, before)).toEqual([]);
    check([main, post], [token]);
  });
});

describe('faults that do not pass fail cleanly', () => {
  it('a Vault that never answers fails within the timeout, names the path, and post still revokes the token', async () => {
    job = await newJob();
    proxy.inject({ method: 'GET', path: 'secret/data/ci/app', kind: 'hang' });
    const before = new Set(await vault.liveAccessors());
    const started = Date.now();
    const main = await job.runMain(MAIN, { ...approle(), timeout: '2', secrets: 'secret/data/ci/app password' });
    expect(main.exitCode).toBe(1);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(main.annotations.find((a) => a.level === 'error')?.message).toMatch(/GET secret\/data\/ci\/app: .*timeout/);
    const token = createdToken(main);
    expect(token).not.toBe('');
    expect(await vault.tokenAlive(token)).toBe(true);
    proxy.clearFaults();
    const post = await job.runPost(POST, main);
    expect(post.exitCode).toBe(0);
    expect(await vault.tokenAlive(token)).toBe(false);
    expect(await newAccessors(vault, before)).toEqual([]);
    expect(await exists(ledgerOf(main).root)).toBe(false);
    check([main, post], [token]);
  });

  it('a 403 is not retried', async () => {
    job = await newJob();
    const token = await vault.createToken({ policies: ['default'] });
    const count = proxy.count(undefined, 'secret/data/ci/app');
    const main = await job.runMain(MAIN, { url: proxy.url, token, secrets: 'secret/data/ci/app password' });
    expect(main.exitCode).toBe(1);
    expect(main.annotations.find((a) => a.level === 'error')?.message).toMatch(/secret\/data\/ci\/app: Vault answered 403/);
    expect(proxy.count(undefined, 'secret/data/ci/app') - count).toBe(1);
    check([main], [token]);
  });

  it('an unreachable Vault names the host', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: 'http://127.0.0.1:9',
      token: 'hvs.unused-token-x',
      secrets: 'secret/data/ci/app password',
      timeout: '3',
    });
    expect(main.exitCode).toBe(1);
    expect(main.annotations.find((a) => a.level === 'error')?.message).toMatch(/cannot reach Vault at 127\.0\.0\.1:9: connection refused/);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post], ['hvs.unused-token-x']);
  });
});

describe('delivery details', () => {
  it('two entries giving one name is an error naming both lines', async () => {
    job = await newJob();
    const before = new Set(await vault.liveAccessors());
    const main = await job.runMain(MAIN, { ...approle(), secrets: 'secret/data/ci/app password | X\nkv1/legacy key | X' });
    expect(main.exitCode).toBe(1);
    expect(main.annotations.find((a) => a.level === 'error')?.message).toMatch(
      /two secrets are named 'X' \(secrets line 1 and secrets line 2\)/,
    );
    const token = createdToken(main);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await newAccessors(vault, before)).toEqual([]);
    check([main, post], [token]);
  });

  it('masks every line of a multi-line value when a later step prints the file', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { ...approle(), secrets: 'secret/data/ci/tls key | TLS_KEY' });
    expect(main.exitCode, main.log).toBe(0);
    const printed = await job.runShell('cat "$PIPELINE_SECRETS_DIR/TLS_KEY"; base64 -w0 "$PIPELINE_SECRETS_DIR/TLS_KEY"; echo');
    for (const line of VALUES.multiline.split('\n').filter((l) => l.length >= 4)) expect(printed.log).not.toContain(line);
    expect(printed.log).toContain('***');
    const token = createdToken(main);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.tokenAlive(token)).toBe(false);
    // Not over `printed`: its raw stdout holds the value by design (the runner masks it in the log).
    check([main, post], [token]);
  });

  it('without a usable /dev/shm the directory goes under RUNNER_TEMP and the summary says so', async () => {
    job = await newJob();
    const notTmpfs = mkdtempSync(path.join(os.tmpdir(), 'not-tmpfs-'));
    // A private mount namespace where /dev/shm is an ordinary directory (needs root, as CI runs).
    // bash, not sh: dash drops env vars whose names hold '-', such as INPUT_ROLE-ID.
    const wrap = ['unshare', '-m', 'bash', '-c', 'mount --bind "$0" /dev/shm && exec "$@"', notTmpfs];
    const main = await job.runMain(MAIN, { ...approle(), secrets: 'secret/data/ci/app password | P' }, { wrap });
    expect(main.exitCode, `${main.log}\n${main.stderr}\n(this test needs root for unshare -m)`).toBe(0);
    expect(ledgerOf(main).root.startsWith(job.runnerTemp)).toBe(true);
    expect(main.summary).toContain('under RUNNER_TEMP on disk (no usable /dev/shm)');
    expect(await fs.readdir(notTmpfs)).toEqual([]);
    const token = createdToken(main);
    expect(token).not.toBe('');
    const post = await job.runPost(POST, main);
    expect(await exists(ledgerOf(main).root)).toBe(false);
    expect(await vault.tokenAlive(token)).toBe(false);
    check([main, post], [token]);
    await fs.rm(notTmpfs, { recursive: true });
  });
});
