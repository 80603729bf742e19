// End to end, against a real OpenBao: what the action does with the leases and tokens Vault issues
// to it. Every lease is recorded the moment it arrives (even when the run then fails or is
// cancelled) and revoked by post, or reported alive with its expiry when Vault will not let post
// revoke it; batch tokens are left to expire, not "revoked"; a GET that mints a credential is not
// retried once Vault may have acted. What is alive afterwards is asked of OpenBao itself
// (liveLeases), and of PostgreSQL for the database engine's users.
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { startPostgres, type Postgres } from '../support/services/postgres.ts';
import { MAIN as BUILT_MAIN, POST as BUILT_POST, ledgerOf, newJob, privateDirsOf } from './setup.ts';

// LEASES_DIST=<dir> runs these against another build (e.g. the one before a fix, to see it fail).
const MAIN = process.env.LEASES_DIST ? path.join(process.env.LEASES_DIST, 'main.js') : BUILT_MAIN;
const POST = process.env.LEASES_DIST ? path.join(process.env.LEASES_DIST, 'post.js') : BUILT_POST;

const VALUES = {
  kv: 'kv-value-for-lease-tests-7d1',
  team: 'team-data-segment-value-5c2',
  rotated1: 'rotated-version-one-9a8',
  rotated2: 'rotated-version-two-9a8',
  rotated3: 'rotated-version-three-9a8',
  roleId: 'leases-role-id-3e4f',
  secretId: 'leases-secret-id-8b7a',
};
const ALL = Object.values(VALUES);
const GRANT = { path: 'sys/leases/revoke', capabilities: ['update'] };

let vault: OpenBao;
let proxy: FaultProxy;
let pg: Postgres;
let job: Job;
/** proxy.requests before the current test. */
let from = 0;

beforeAll(async () => {
  [vault, pg] = await Promise.all([OpenBao.start(), startPostgres()]);
  proxy = await startFaultProxy(vault.url);
  await vault.enableKv('secret', 2);
  await vault.putKv('secret', 'ci/app', { password: VALUES.kv });
  await vault.putKv('secret', 'ci/team/data/creds', { user: VALUES.team });
  for (const v of [VALUES.rotated1, VALUES.rotated2, VALUES.rotated3]) await vault.putKv('secret', 'ci/rotated', { key: v });
  await vault.deleteKvVersion('secret', 'ci/rotated', 3);
  await vault.destroyKvVersion('secret', 'ci/rotated', 2);
  await vault.addPkiRole('pki', 'ci');
  await vault.addPostgresRole('database', 'ci', {
    port: pg.port,
    adminUser: pg.adminUser,
    adminPassword: pg.adminPassword,
    ttl: '10m',
    maxTtl: '1h',
  });
  // The default policy has no sys/leases/revoke: `leases` is what a typical CI role gets.
  await vault.addPolicy('leases', [
    { path: 'secret/data/ci/*', capabilities: ['read'] },
    { path: 'pki/issue/ci', capabilities: ['update'] },
    { path: 'database/creds/ci', capabilities: ['read'] },
  ]);
  await vault.addPolicy('revoke', [GRANT]);
  const role = (name: string, policies: string[], tokenType?: 'batch') =>
    vault.addAppRole('approle', name, {
      roleId: `${VALUES.roleId}-${name}`,
      secretId: VALUES.secretId,
      policies,
      ttl: '10m',
      ...(tokenType ? { tokenType } : {}),
    });
  await role('svc', ['leases']);
  await role('svc-grant', ['leases', 'revoke']);
  await role('batch', ['leases']);
  await role('batch-grant', ['leases', 'revoke'], 'batch');
  await role('batch-nogrant', ['leases'], 'batch');
}, 120_000);
beforeEach(() => {
  from = proxy.requests.length;
});
afterAll(async () => {
  await proxy?.stop();
  await Promise.all([vault?.stop(), pg?.stop()]);
});
afterEach(async () => {
  proxy.clearFaults();
  await job?.cleanup();
  // Whatever a test left alive on purpose must not count against the next one.
  await vault.call('PUT', 'sys/leases/revoke-prefix/pki', { body: {} });
  await vault.call('PUT', 'sys/leases/revoke-prefix/database', { body: {} });
});

function approle(name: string): Record<string, string> {
  return { method: 'approle', 'role-id': `${VALUES.roleId}-${name}`, 'secret-id': VALUES.secretId };
}

function check(steps: StepResult[], extra: string[] = []): void {
  assertNoLeak(job, steps, [...ALL, ...extra], { privateDirs: privateDirsOf(steps) });
}

function warnings(step: StepResult): string[] {
  return step.annotations.filter((a) => a.level === 'warning' || a.level === 'error').map((a) => a.message);
}

/** Requests the proxy saw in this test, of `method` (any when undefined) on `path`. */
function seen(method: string | undefined, path: string | RegExp): number {
  return proxy.requests
    .slice(from)
    .filter((r) => (method === undefined || r.method === method) && (typeof path === 'string' ? r.path === path : path.test(r.path)))
    .length;
}

/** The values the delivered files hold, to check that none leaks. */
async function delivered(step: StepResult): Promise<string[]> {
  const dir = step.outputs['secrets-dir'];
  if (!dir) return [];
  const names = await fs.readdir(dir);
  return Promise.all(names.map((n) => fs.readFile(path.join(dir, n), 'utf8')));
}

const PKI_A = 'write pki/issue/ci {"common_name": "a.leases.test"} serial_number | SERIAL_A';
const PKI_B = 'write pki/issue/ci {"common_name": "b.leases.test"} serial_number | SERIAL_B';

describe('batch tokens', () => {
  it('a batch-token login is not revoked by post (nothing to revoke) and the summary says so, with no warning', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: proxy.url, ...approle('batch-grant'), secrets: `secret/ci/app password\n${PKI_A}` });
    expect(main.exitCode, main.log).toBe(0);
    expect(ledgerOf(main).tokenBatch).toBe(true);
    expect(main.summary).toMatch(/batch token: it cannot be revoked and expires by its TTL at \d{4}-/);
    const leases = ledgerOf(main).leases;
    expect(leases).toHaveLength(1);

    const values = await delivered(main);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(post.summary).toMatch(/Vault token: a batch token, which cannot be revoked; it expires by its TTL at \d{4}-/);
    expect(post.summary).not.toContain('NOT revoked');
    expect(seen('POST', 'auth/token/revoke-self')).toBe(0);
    // Its lease, with the grant, is revoked by id: a batch token's leases do not die with it.
    expect(post.summary).toContain('- Leases: 1 revoked, 0 left alive');
    expect(await vault.settledLeases('pki/')).toEqual([]);
    check([main, post], values);
  });

  it("a batch token's lease Vault will not let post revoke is reported alive with its expiry", async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, ...approle('batch-nogrant'), secrets: PKI_A });
    expect(main.exitCode, main.log).toBe(0);
    const [lease] = ledgerOf(main).leases;
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.liveLeases('pki/')).toEqual([lease]);
    const expires = ledgerOf(main).leaseExpires?.[lease ?? ''] ?? '';
    expect(expires).toMatch(/^\d{4}-/);
    expect(post.summary).toContain(`left alive until ${expires}`);
    expect(warnings(post).join('\n')).toContain(`lease ${lease} left alive until ${expires}`);
    expect(warnings(post).join('\n')).toContain('path "sys/leases/revoke" { capabilities = ["update"] }');
    check([main, post]);
  });
});

describe('every lease is recorded the moment it is issued', () => {
  it('a read failing while lease-issuing reads are in flight: their leases reach state and post revokes them', async () => {
    const token = await vault.createToken({ policies: ['leases', 'revoke'] });
    const roles = await pg.roles();
    // The dynamic answers come late, so the 404 arrives while both are in flight.
    proxy.inject({ path: /^pki\/issue\//, kind: 'latency', latencyMs: 700 });
    proxy.inject({ path: 'database/creds/ci', kind: 'latency', latencyMs: 700 });
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: proxy.url,
      token,
      secrets: ['database/creds/ci username | DB_USER', PKI_A, 'secret/data/ci/missing key'].join('\n'),
    });
    expect(main.exitCode).toBe(1);
    expect(warnings(main).join('\n')).toContain('secret/data/ci/missing');
    const live = [...(await vault.liveLeases('pki/')), ...(await vault.liveLeases('database/'))];
    expect(live).toHaveLength(2);
    expect(ledgerOf(main).leases.sort()).toEqual(live.sort());

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(post.log).toContain('2 lease(s) revoked');
    expect(await vault.settledLeases('pki/')).toEqual([]);
    expect(await vault.settledLeases('database/')).toEqual([]);
    expect(await pg.roles()).toEqual(roles);
    expect(await vault.tokenAlive(token)).toBe(true);
    check([main, post], [token]);
  });

  it('a job cancelled mid-read (SIGTERM) still records the leases of the requests in flight, and post revokes them', async () => {
    const token = await vault.createToken({ policies: ['leases', 'revoke'] });
    proxy.inject({ path: /^pki\/issue\//, kind: 'latency', latencyMs: 1500 });
    job = await newJob();
    const pidFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'leases-pid-')), 'pid');
    const running = job.runMain(
      MAIN,
      { url: proxy.url, token, secrets: `${PKI_A}\n${PKI_B}` },
      // The step process keeps the shell's pid (exec), so the test can signal it as the runner would.
      { wrap: ['sh', '-c', `echo $$ > ${pidFile}; exec "$@"`, 'sh'] },
    );
    const until = Date.now() + 10_000;
    while (seen(undefined, /^pki\/issue\//) < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(seen(undefined, /^pki\/issue\//)).toBe(2);
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    const main = await running;
    expect(main.exitCode).not.toBe(0);
    expect(warnings(main).join('\n')).toContain('cancelled (SIGTERM)');
    const live = await vault.liveLeases('pki/');
    expect(live).toHaveLength(2);
    expect(ledgerOf(main).leases.sort()).toEqual(live.sort());

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.settledLeases('pki/')).toEqual([]);
    check([main, post], [token]);
  });

  it('a lease on an answer that arrives malformed is still recorded and revoked (the write is not retried)', async () => {
    const token = await vault.createToken({ policies: ['leases', 'revoke'] });
    proxy.inject({ path: /^pki\/issue\//, kind: 'malformed', times: 1 });
    job = await newJob();
    const main = await job.runMain(MAIN, { url: proxy.url, token, secrets: PKI_A });
    expect(main.exitCode).toBe(1);
    expect(seen(undefined, /^pki\/issue\//)).toBe(1);
    const live = await vault.liveLeases('pki/');
    expect(live).toHaveLength(1);
    expect(ledgerOf(main).leases).toEqual(live);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.settledLeases('pki/')).toEqual([]);
    check([main, post], [token]);
  });
});

describe('a GET that issues a lease is retried only when Vault provably did not act', () => {
  it.each([
    { kind: 'reset-after' as const, retried: false },
    { kind: 'status-after' as const, status: 500, retried: false },
    { kind: 'malformed' as const, retried: false },
    { kind: 'reset' as const, retried: false },
    { kind: 'status' as const, status: 503, retried: true },
    { kind: 'status' as const, status: 429, retried: true },
    { kind: 'status' as const, status: 412, retried: true },
  ])('database/creds after $kind $status: retried = $retried, and one PostgreSQL user at most', async (fault) => {
    const token = await vault.createToken({ policies: ['leases', 'revoke'] });
    const before = await pg.roles();
    proxy.inject({ path: 'database/creds/ci', times: 1, ...fault });
    job = await newJob();
    const main = await job.runMain(MAIN, { url: proxy.url, token, secrets: 'database/creds/ci username | DB_USER' });
    expect(seen('GET', 'database/creds/ci')).toBe(fault.retried ? 2 : 1);
    expect(main.exitCode, main.log).toBe(fault.retried ? 0 : 1);
    const minted = (await pg.roles()).filter((r) => !before.includes(r));
    // A proxy-decided status or a reset before forwarding: Vault never saw the first try.
    expect(minted).toHaveLength(fault.kind === 'reset' ? 0 : 1);
    const values = await delivered(main);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    // A lease whose answer was lost entirely (reset-after, status-after) cannot be known; the rest are revoked.
    const lost = fault.kind === 'reset-after' || fault.kind === 'status-after';
    expect(await vault.liveLeases('database/')).toHaveLength(lost ? 1 : 0);
    check([main, post], [token, ...values]);
  });

  it('after a login, a credential whose answer was lost dies with the token post revokes (no grant needed)', async () => {
    const before = await pg.roles();
    proxy.inject({ path: 'database/creds/ci', kind: 'reset-after', times: 1 });
    job = await newJob();
    const main = await job.runMain(MAIN, { url: proxy.url, ...approle('svc'), secrets: 'database/creds/ci username | DB_USER' });
    expect(main.exitCode).toBe(1);
    expect(seen('GET', 'database/creds/ci')).toBe(1); // not retried: Vault had acted
    expect((await pg.roles()).filter((r) => !before.includes(r))).toHaveLength(1); // minted, answer lost
    expect(ledgerOf(main).leases).toEqual([]); // the action never learned its id
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    // The lease was issued under the login's token: revoking the token revokes it (in the background).
    expect(await vault.settledLeases('database/')).toEqual([]);
    const until = Date.now() + 5000;
    while ((await pg.roles()).length !== before.length && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await pg.roles()).toEqual(before);
    check([main, post]);
  });

  it('a KV read is retried after a reset after the server answered (it is idempotent)', async () => {
    const token = await vault.createToken({ policies: ['leases'] });
    proxy.inject({ path: 'secret/data/ci/app', kind: 'reset-after', times: 1 });
    job = await newJob();
    const main = await job.runMain(MAIN, { url: proxy.url, token, secrets: 'secret/ci/app password' });
    expect(main.exitCode, main.log).toBe(0);
    // Retried after the reset (at least once more; seen 3 times once on a loaded machine, where a
    // retry itself met a closed keep-alive socket), and the reset hit exactly one of them.
    const reads = proxy.requests.slice(from).filter((r) => r.method === 'GET' && r.path === 'secret/data/ci/app');
    expect(reads.length, JSON.stringify(reads.map((r) => [r.status, r.faults]))).toBeGreaterThanOrEqual(2);
    expect(reads.filter((r) => r.faults.includes('reset-after'))).toHaveLength(1);
    expect(reads.at(-1)?.status).toBe(200);
    check([main], [token]);
  });
});

describe('leases Vault will not let post revoke (the default policy lacks sys/leases/revoke)', () => {
  it('method token without the grant: the lease stays alive and the summary names it and its expiry', async () => {
    const token = await vault.createToken({ policies: ['leases'] });
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: PKI_A });
    expect(main.exitCode, main.log).toBe(0);
    const [lease] = ledgerOf(main).leases;
    const expires = ledgerOf(main).leaseExpires?.[lease ?? ''] ?? '';
    const info = await vault.leaseInfo(lease ?? '');
    // The expiry post reports is the server's, to within the run's few seconds.
    expect(Math.abs(Date.parse(expires) - Date.parse(info?.expire_time ?? ''))).toBeLessThan(10_000);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.liveLeases('pki/')).toEqual([lease]);
    expect(post.summary).toContain('- Leases: 0 revoked, 1 left alive');
    expect(post.summary).toContain(`left alive until ${expires}`);
    expect(post.log).not.toMatch(/[1-9]\d* lease\(s\) revoked/);
    expect(warnings(post).join('\n')).toContain('path "sys/leases/revoke" { capabilities = ["update"] }');
    expect(await vault.tokenAlive(token)).toBe(true);
    check([main, post], [token]);
  });

  it('method token with the grant: the lease is revoked by id', async () => {
    const token = await vault.createToken({ policies: ['leases', 'revoke'] });
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: PKI_A });
    expect(main.exitCode, main.log).toBe(0);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(post.summary).toContain('- Leases: 1 revoked, 0 left alive');
    expect(await vault.settledLeases('pki/')).toEqual([]);
    check([main, post], [token]);
  });

  it('an AppRole login without the grant: revoking the token takes its leases with it, and the summary says so', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, ...approle('svc'), secrets: `${PKI_A}\ndatabase/creds/ci username | DB_USER` });
    expect(main.exitCode, main.log).toBe(0);
    expect(ledgerOf(main).leases).toHaveLength(2);
    const values = await delivered(main);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(post.summary).toContain('- Vault token: revoked');
    expect(post.summary).toContain('- Leases: 0 revoked, 2 revoked with the Vault token, 0 left alive');
    expect(await vault.settledLeases('pki/')).toEqual([]);
    expect(await vault.settledLeases('database/')).toEqual([]);
    check([main, post], values);
  });

  it('an AppRole login with the grant: the leases are revoked by id, then the token', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      ...approle('svc-grant'),
      secrets: `${PKI_A}\ndatabase/creds/ci username | DB_USER`,
    });
    expect(main.exitCode, main.log).toBe(0);
    const values = await delivered(main);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(post.summary).toContain('- Leases: 2 revoked, 0 left alive');
    expect(await vault.settledLeases('pki/')).toEqual([]);
    expect(await vault.settledLeases('database/')).toEqual([]);
    check([main, post], values);
  });
});

describe('KV v2 paths', () => {
  it('a secret whose own path has a data segment is read in both forms', async () => {
    const token = await vault.createToken({ policies: ['leases'] });
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/ci/team/data/creds user | SHORT\nsecret/data/ci/team/data/creds user | API',
    });
    expect(main.exitCode, main.log).toBe(0);
    const dir = main.outputs['secrets-dir'] ?? '';
    expect(await fs.readFile(path.join(dir, 'SHORT'), 'utf8')).toBe(VALUES.team);
    expect(await fs.readFile(path.join(dir, 'API'), 'utf8')).toBe(VALUES.team);
    check([main], [token]);
  });

  it.each([
    {
      line: 'secret/ci/rotated key',
      message: /version 3 of secret\/data\/ci\/rotated was deleted at \d{4}-[^;]+; undelete it or pin another with \?version=N/,
    },
    {
      line: 'secret/data/ci/rotated?version=2 key',
      message: /version 2 of secret\/data\/ci\/rotated was destroyed; pin another with \?version=N/,
    },
  ])('a deleted or destroyed version is named: $line', async ({ line, message }) => {
    const token = await vault.createToken({ policies: ['leases'] });
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: line });
    expect(main.exitCode).toBe(1);
    const errors = main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
    expect(errors[0]).toContain('secrets line 1');
    // An optional line warns with the same reason and the step goes on.
    const optional = await job.runMain(MAIN, { url: vault.url, token, secrets: `${line} ?\nsecret/ci/rotated?version=1 key | V1` });
    expect(optional.exitCode, optional.log).toBe(0);
    expect(warnings(optional).join('\n')).toMatch(message);
    expect(warnings(optional).join('\n')).toContain('skipped (optional)');
    check([main, optional], [token]);
  });
});

describe('connection', () => {
  it('sends X-Vault-Request: true on every request, main and post alike', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: proxy.url, ...approle('svc-grant'), secrets: `secret/ci/app password\n${PKI_A}` });
    expect(main.exitCode, main.log).toBe(0);
    const values = await delivered(main);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    const requests = proxy.requests.slice(from);
    expect(requests.map((r) => r.path)).toEqual(
      expect.arrayContaining(['auth/approle/login', 'sys/leases/revoke', 'auth/token/revoke-self']),
    );
    for (const r of requests) expect(r.headers['x-vault-request'], `${r.method} ${r.path}`).toBe('true');
    check([main, post], values);
  });

  /** A node answering 307 to every request not yet redirected, to `location(url)`; the rest go to OpenBao. */
  async function standby(location: (url: string) => string): Promise<{ url: string; redirects: () => number; close: () => Promise<void> }> {
    let redirects = 0;
    const forward = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
      const url = req.url ?? '/';
      if (!url.startsWith('/active/')) {
        redirects++;
        res.writeHead(307, { location: location(url) }).end();
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)),
      ) as Record<string, string>;
      const answer = await fetch(`${vault.url}${url.slice('/active'.length)}`, {
        method: req.method ?? 'GET',
        headers,
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      });
      res
        .writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' })
        .end(Buffer.from(await answer.arrayBuffer()));
    };
    // A failed forward answers 502 (the action sees a broken node) instead of an unhandled rejection.
    const server = http.createServer((req, res) => {
      forward(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(error instanceof Error ? error.message : 'forward failed');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    return {
      url: `http://127.0.0.1:${port}`,
      redirects: () => redirects,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  it('follows a 307 to the same origin (method and body kept)', async () => {
    const node = await standby((url) => `/active${url}`);
    try {
      const token = await vault.createToken({ policies: ['leases', 'revoke'] });
      job = await newJob();
      const main = await job.runMain(MAIN, { url: node.url, token, secrets: `secret/ci/app password\n${PKI_A}` });
      expect(main.exitCode, main.log).toBe(0);
      const values = await delivered(main);
      const post = await job.runPost(POST, main);
      expect(post.exitCode, post.log).toBe(0);
      expect(node.redirects()).toBeGreaterThanOrEqual(3);
      expect(await vault.settledLeases('pki/')).toEqual([]);
      check([main, post], [token, ...values]);
    } finally {
      await node.close();
    }
  });

  it('refuses a 307 to another origin, naming the Location, and sends the token nowhere else', async () => {
    const node = await standby((url) => `${proxy.url}${url}`);
    try {
      const token = await vault.createToken({ policies: ['leases'] });
      job = await newJob();
      const main = await job.runMain(MAIN, { url: node.url, token, secrets: 'secret/ci/app password' });
      expect(main.exitCode).toBe(1);
      const errors = main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(
        `redirected GET sys/internal/ui/mounts/secret/ci/app to ${proxy.url}/v1/sys/internal/ui/mounts/secret/ci/app`,
      );
      expect(errors[0]).toContain("set 'url' to the active node");
      expect(proxy.requests.length).toBe(from);
      check([main], [token]);
    } finally {
      await node.close();
    }
  });
});
