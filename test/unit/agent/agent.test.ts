// The renewal agent's loop on a fake clock against an in-memory Vault (fakes.ts): when it renews,
// what it replaces, what it rewrites and how, what it runs, how it backs off and reports, and how
// it ends. Outcomes only: the files in a temp private root, agent-status.json, agent-leases.json
// and the calls the fake Vault recorded.
import { promises as fs, statSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  config,
  fakeExec,
  FakeClock,
  FakeVault,
  kvSource,
  leasedSource,
  line,
  start,
  T0,
  tempRoot,
  TOKEN,
  type Running,
  type TempRoot,
} from './fakes.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function root(values: Record<string, string>): Promise<TempRoot> {
  const dir = await tempRoot(values);
  cleanup.push(() => dir.remove());
  return dir;
}

/** Starts the agent; the test's end stops it (if it still runs) before the root goes. */
async function run(...args: Parameters<typeof start>): Promise<Running> {
  const running = await start(...args);
  cleanup.push(async () => {
    running.agent.stop();
    // It writes its status as it stops: wait for that before its root goes. Bounded, so an agent
    // that ignores stop() fails its own test instead of hanging the rest.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise((resolve) => (timer = setTimeout(resolve, 2000)));
    await Promise.race([running.done.catch(() => {}), bound]);
    clearTimeout(timer);
  });
  return running;
}

/** No value, and not the token, in anything the agent wrote for post. */
async function expectNoValues(dir: TempRoot, values: string[]): Promise<void> {
  const written = [await dir.log(), JSON.stringify(await dir.status()), JSON.stringify(await dir.leasesFile())].join('\n');
  for (const value of [...values, TOKEN]) expect(written).not.toContain(value);
}

const mode = (file: string): string => (statSync(file).mode & 0o777).toString(8);
const tempFiles = async (dir: TempRoot): Promise<string[]> =>
  [...(await fs.readdir(dir.root)), ...(await fs.readdir(dir.secretsDir))].filter((n) => n.endsWith('.tmp'));

const APP = 'secret/data/app';
const appLine = line('secret/app', 'password', 'APP_PASSWORD');

/** A KV v2 secret at version 1 ('pw-1'), delivered as APP_PASSWORD. */
async function kvSetup(extra: Parameters<typeof config>[2] = {}) {
  const clock = new FakeClock();
  const vault = new FakeVault(clock);
  vault.putKv(APP, { password: 'pw-1' });
  const dir = await root({ APP_PASSWORD: 'pw-1' });
  const cfg = config(dir, [kvSource([appLine], APP, 1)], { renewToken: false, refreshMs: 5000, ...extra });
  return { clock, vault, dir, cfg };
}

describe('token renewal', () => {
  it.each([
    [0, 6000],
    [0.5, 6500],
    [0.99, 6990],
  ])('with jitter %s a 10 s token is renewed at %s ms (0.6 to 0.7 of its TTL), and again as long after that', async (rand, due) => {
    const clock = new FakeClock();
    clock.rand = rand;
    const vault = new FakeVault(clock);
    vault.putKv(APP, { password: 'pw-1' });
    const dir = await root({ APP_PASSWORD: 'pw-1' });
    const agent = await run(config(dir, [kvSource([appLine], APP, 1)]), vault, clock);
    await agent.until('two renewals', () => vault.callsTo('write', 'auth/token/renew-self').length >= 2, 20_000);
    const [first, second] = vault.callsTo('write', 'auth/token/renew-self').map((c) => c.at - T0);
    // Rounds are 250 ms apart: a renewal is at most one round late.
    expect(first).toBeGreaterThanOrEqual(due);
    expect(first).toBeLessThan(due + 250);
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(due);
    expect((second ?? 0) - (first ?? 0)).toBeLessThan(due + 250);
    // With the token main handed over, on a client without an overall deadline.
    expect(vault.calls.every((c) => c.token === TOKEN)).toBe(true);
    expect(vault.clients).toHaveLength(1);
    expect(vault.clients[0]).toMatchObject({ url: 'https://vault.test:8200', deadline: Number.POSITIVE_INFINITY, retries: 2 });
    await agent.until('the status saved', async () => (await dir.status()).renewals.token === 2, 0);
    expect((await dir.status()).renewals).toEqual({ token: 2, leases: 0 });
  });

  it('does not touch a token this run did not create', async () => {
    const { clock, vault, cfg } = await kvSetup({ renewToken: false });
    const agent = await run(cfg, vault, clock);
    await agent.until('30 s', () => clock.now() - T0 >= 30_000, 31_000);
    expect(vault.calls.filter((c) => c.path.startsWith('auth/token/'))).toEqual([]);
  });

  it('stops renewing as the token nears its max TTL', async () => {
    const { clock, vault, cfg } = await kvSetup({ renewToken: true });
    vault.tokenMaxTtl = 14;
    const agent = await run(cfg, vault, clock);
    await agent.until('60 s', () => clock.now() - T0 >= 60_000, 61_000);
    const renewals = vault.callsTo('write', 'auth/token/renew-self');
    expect(renewals.length).toBeGreaterThan(0);
    expect(renewals.every((c) => c.at < T0 + 14_000)).toBe(true);
  });

  it('never renews a token Vault says is not renewable', async () => {
    const { clock, vault, cfg } = await kvSetup({ renewToken: true });
    vault.tokenRenewable = false;
    const agent = await run(cfg, vault, clock);
    await agent.until('60 s', () => clock.now() - T0 >= 60_000, 61_000);
    expect(vault.callsTo('read', 'auth/token/lookup-self')).toHaveLength(1);
    expect(vault.callsTo('write', 'auth/token/renew-self')).toEqual([]);
  });
});

describe('leases', () => {
  async function dbSetup(engine: { ttl: number; maxTtl: number; renewable: boolean }) {
    const clock = new FakeClock();
    const vault = new FakeVault(clock);
    vault.engine('database/creds/app', { ...engine, data: (n) => ({ username: `user-${n}`, password: `db-pass-${n}` }) });
    const lease = vault.issue('database/creds/app');
    const dir = await root({ DB_USER: 'user-1', DB_PASSWORD: 'db-pass-1' });
    const lines: [ReturnType<typeof line>, ...Array<ReturnType<typeof line>>] = [
      line('database/creds/app', 'username', 'DB_USER'),
      line('database/creds/app', 'password', 'DB_PASSWORD'),
    ];
    const cfg = config(dir, [leasedSource(lines, 'database/creds/app', lease, T0)], { renewToken: false });
    return { clock, vault, dir, cfg, lease };
  }

  it('renews a renewable lease at two thirds of its TTL, keeping it alive past its first TTL with the same credential', async () => {
    const { clock, vault, dir, cfg, lease } = await dbSetup({ ttl: 10, maxTtl: 3600, renewable: true });
    const agent = await run(cfg, vault, clock);
    await agent.until('three renewals', () => vault.callsTo('write', 'sys/leases/renew').length >= 3, 30_000);
    const renewals = vault.callsTo('write', 'sys/leases/renew');
    expect(renewals.map((c) => c.body)).toEqual(Array(3).fill({ lease_id: lease.id, increment: 10 }));
    expect(renewals.map((c) => c.at - T0)).toEqual([6500, 13000, 19500]);
    expect(clock.now() - T0).toBeGreaterThan(10_000);
    expect(vault.leaseAlive(lease.id)).toBe(true);
    // Renewed, not replaced: nothing new minted, the files as main wrote them.
    expect(vault.callsTo('read', 'database/creds/app')).toEqual([]);
    expect(await dir.snapshot()).toEqual({
      DB_USER: 'user-1',
      DB_PASSWORD: 'db-pass-1',
      'secrets.env': 'DB_USER=user-1\nDB_PASSWORD=db-pass-1\n',
    });
    const status = await dir.status();
    expect(status.renewals).toEqual({ token: 0, leases: 3 });
    expect(status.replaced).toBe(0);
    await expectNoValues(dir, ['user-1', 'db-pass-1']);
  });

  it('replaces the credential when a renewal comes back capped near the max TTL', async () => {
    const { clock, vault, dir, cfg, lease } = await dbSetup({ ttl: 10, maxTtl: 15, renewable: true });
    const agent = await run(cfg, vault, clock);
    await agent.until('a fresh credential', async () => (await dir.snapshot()).DB_USER === 'user-2', 30_000);
    // The second renewal got 3 s of the 10 asked for: a fresh login, not a third renewal.
    expect(vault.callsTo('write', 'sys/leases/renew')).toHaveLength(2);
    expect(vault.callsTo('read', 'database/creds/app')).toHaveLength(1);
    expect(vault.leases.get(lease.id)?.revoked).toBe(true);
    expect(await dir.snapshot()).toMatchObject({ DB_PASSWORD: 'db-pass-2', 'secrets.env': 'DB_USER=user-2\nDB_PASSWORD=db-pass-2\n' });
    expect((await dir.status()).replaced).toBe(1);
  });

  it('retries a renewal Vault cannot answer for now, and keeps the same lease when it recovers', async () => {
    const { clock, vault, dir, cfg, lease } = await dbSetup({ ttl: 10, maxTtl: 3600, renewable: true });
    vault.fail(/^sys\/leases\/renew$/, 503, 2);
    const agent = await run(cfg, vault, clock);
    await agent.until('a renewal that went through', () => vault.leases.get(lease.id)?.expiresAt !== T0 + 10_000, 30_000);
    // Failed at 6.5 s, again 200 ms later, then 400 ms after that it went through.
    expect(vault.callsTo('write', 'sys/leases/renew').map((c) => c.at - T0)).toEqual([6500, 6700, 7100]);
    expect(vault.leaseAlive(lease.id)).toBe(true);
    expect(vault.callsTo('read', 'database/creds/app')).toEqual([]);
    await agent.until('the status saved', () => true, 0);
    const status = await dir.status();
    expect(status.renewals.leases).toBe(1);
    expect(status.failures).toEqual([
      expect.objectContaining({ what: 'lease renewal (database/creds/app)', count: 2, reason: expect.stringMatching(/503/) }),
    ]);
  });

  it('replaces a lease Vault no longer knows (a 4xx on renewal) at once', async () => {
    const { clock, vault, dir, cfg } = await dbSetup({ ttl: 10, maxTtl: 3600, renewable: true });
    vault.fail(/^sys\/leases\/renew$/, 400, 1);
    const agent = await run(cfg, vault, clock);
    await agent.until('a fresh credential', async () => (await dir.snapshot()).DB_USER === 'user-2', 30_000);
    expect(vault.callsTo('read', 'database/creds/app').map((c) => c.at - T0)).toEqual([6500]);
  });

  it('replaces a non-renewable lease before it expires: new files 0600, the env-file, the old lease revoked and recorded', async () => {
    const clock = new FakeClock();
    const vault = new FakeVault(clock);
    vault.engine('pki/issue/ci', { ttl: 10, maxTtl: 10, renewable: false, data: (n) => ({ private_key: `KEY-${n}` }) });
    const first = vault.issue('pki/issue/ci');
    const dir = await root({ TLS_KEY: 'KEY-1' });
    const keyLine = line('pki/issue/ci', 'private_key', 'TLS_KEY', { common_name: 'ci.test' });
    const agent = await run(config(dir, [leasedSource([keyLine], 'pki/issue/ci', first, T0)], { renewToken: false }), vault, clock);
    await agent.until('a new key', async () => (await dir.snapshot()).TLS_KEY === 'KEY-2', 30_000);
    // The same request again (a write with the line's body), while the old certificate still ran.
    const [issue] = vault.callsTo('write', 'pki/issue/ci');
    expect(issue?.body).toEqual({ common_name: 'ci.test' });
    expect(issue?.at).toBeLessThan(T0 + 10_000);
    expect(vault.callsTo('write', 'sys/leases/renew')).toEqual([]);
    expect(await dir.snapshot()).toEqual({ TLS_KEY: 'KEY-2', 'secrets.env': 'TLS_KEY=KEY-2\n' });
    expect(mode(path.join(dir.secretsDir, 'TLS_KEY'))).toBe('600');
    expect(mode(dir.envFile)).toBe('600');
    expect(await tempFiles(dir)).toEqual([]);
    expect(vault.leases.get(first.id)?.revoked).toBe(true);
    const second = [...vault.leases.keys()].find((id) => id !== first.id) ?? '';
    expect(vault.leaseAlive(second)).toBe(true);
    expect(await dir.leasesFile()).toEqual({ leases: [second], revoked: [first.id] });
    expect((await dir.status()).replaced).toBe(1);
    // And the new one in turn, before it expires.
    await agent.until('a third key', async () => (await dir.snapshot()).TLS_KEY === 'KEY-3', 30_000);
    expect(vault.leases.get(second)?.revoked).toBe(true);
    expect((await dir.leasesFile()).revoked).toEqual([first.id, second]);
    await expectNoValues(dir, ['KEY-1', 'KEY-2', 'KEY-3']);
  });

  it('keeps the last credential while a fresh one cannot be had, and replaces it once Vault answers', async () => {
    const clock = new FakeClock();
    const vault = new FakeVault(clock);
    vault.engine('pki/issue/ci', { ttl: 10, maxTtl: 10, renewable: false, data: (n) => ({ private_key: `KEY-${n}` }) });
    const first = vault.issue('pki/issue/ci');
    const dir = await root({ TLS_KEY: 'KEY-1' });
    const keyLine = line('pki/issue/ci', 'private_key', 'TLS_KEY', { common_name: 'ci.test' });
    vault.fail(/^pki\/issue\/ci$/, 503);
    const agent = await run(config(dir, [leasedSource([keyLine], 'pki/issue/ci', first, T0)], { renewToken: false }), vault, clock);
    await agent.until('three refused tries', () => vault.callsTo('write', 'pki/issue/ci').length >= 3, 30_000);
    expect((await dir.snapshot()).TLS_KEY).toBe('KEY-1');
    expect(vault.leaseAlive(first.id)).toBe(true);
    expect((await dir.status()).failures).toEqual([expect.objectContaining({ what: 'fresh credential (pki/issue/ci)', count: 3 })]);
    vault.heal();
    await agent.until('a new key', async () => (await dir.snapshot()).TLS_KEY === 'KEY-2', 30_000);
    expect(vault.leases.get(first.id)?.revoked).toBe(true);
  });
});

describe('KV refresh', () => {
  it('rewrites a rotated secret within one refresh interval by renaming a complete new file over it', async () => {
    const { clock, vault, dir, cfg } = await kvSetup();
    const agent = await run(cfg, vault, clock);
    const file = path.join(dir.secretsDir, 'APP_PASSWORD');
    // A reader that has the file open when it is replaced.
    const reader = await fs.open(file, 'r');
    cleanup.push(() => reader.close());
    vault.putKv(APP, { password: 'pw-two' });
    const took = await agent.until('the new value', async () => (await dir.snapshot()).APP_PASSWORD === 'pw-two', 10_000);
    expect(took).toBeLessThanOrEqual(5000);
    // The old file was replaced whole, not rewritten in place: the open reader still has all of it.
    expect(await reader.readFile('utf8')).toBe('pw-1');
    expect(await dir.snapshot()).toEqual({ APP_PASSWORD: 'pw-two', 'secrets.env': 'APP_PASSWORD=pw-two\n' });
    expect(mode(file)).toBe('600');
    expect(await tempFiles(dir)).toEqual([]);
    const status = await dir.status();
    expect(status.kvChanges.map((k) => [k.path, k.from, k.to])).toEqual([[APP, 1, 2]]);
    expect(status.kvChangesTotal).toBe(1);
    expect(status.secrets).toEqual([{ name: 'APP_PASSWORD', path: APP, version: 2, bytes: 6 }]);
    // Another refresh with nothing new: the file is left alone.
    const inode = statSync(file).ino;
    const reads = vault.callsTo('read', APP).length;
    await agent.until('another refresh', () => vault.callsTo('read', APP).length > reads, 10_000);
    expect(statSync(file).ino).toBe(inode);
    expect((await dir.status()).kvChangesTotal).toBe(1);
    await expectNoValues(dir, ['pw-1', 'pw-two']);
  });

  it('leaves a pinned version alone', async () => {
    const { clock, vault, dir } = await kvSetup();
    const pinned = { ...appLine, version: 1 };
    const cfg = config(dir, [kvSource([pinned], APP, 1)], { renewToken: false, refreshMs: 1000 });
    const agent = await run(cfg, vault, clock);
    vault.putKv(APP, { password: 'pw-two' });
    await agent.until('10 s', () => clock.now() - T0 >= 10_000, 11_000);
    expect(vault.callsTo('read', APP)).toEqual([]);
    expect((await dir.snapshot()).APP_PASSWORD).toBe('pw-1');
  });
});

describe('on-change', () => {
  it('runs once per change after the files and the env-file are rewritten, with names in env and no value, and records its exit code', async () => {
    const clock = new FakeClock();
    const vault = new FakeVault(clock);
    vault.putKv(APP, { password: 'pw-1', user: 'app' });
    const dir = await root({ APP_PASSWORD: 'pw-1', APP_USER: 'app' });
    const lines: [ReturnType<typeof line>, ...Array<ReturnType<typeof line>>] = [appLine, line('secret/app', 'user', 'APP_USER')];
    const exec = fakeExec(dir, () => {
      clock.pass(1200); // a slow reload
      return { exitCode: 3, stdout: '', stderr: '' };
    });
    const cfg = config(dir, [kvSource(lines, APP, 1)], { renewToken: false, refreshMs: 5000, onChange: 'kill -HUP "$(cat app.pid)"' });
    const agent = await run(cfg, vault, clock, exec);
    vault.putKv(APP, { password: 'pw-two', user: 'app' });
    await agent.until('on-change', () => exec.calls.length > 0, 10_000);
    expect(exec.calls).toHaveLength(1);
    const call = exec.calls[0];
    expect([call?.file, call?.args]).toEqual(['sh', ['-c', 'kill -HUP "$(cat app.pid)"']]);
    // Only the name that changed, and where the files are; no value.
    expect(call?.env).toEqual({
      PIPELINE_SECRETS_DIR: dir.secretsDir,
      PIPELINE_SECRETS_CHANGED: 'APP_PASSWORD',
      PIPELINE_SECRETS_RENDERED: '',
    });
    expect(call?.files).toEqual({ APP_PASSWORD: 'pw-two', APP_USER: 'app', 'secrets.env': 'APP_PASSWORD=pw-two\nAPP_USER=app\n' });
    await agent.until('the status saved', async () => (await dir.status()).onChangeTotal === 1, 0);
    const status = await dir.status();
    expect(status.onChange).toEqual([{ names: ['APP_PASSWORD'], exitCode: 3, ms: 1200, at: new Date(clock.now()).toISOString() }]);
    // Two more refreshes with nothing new: no run.
    const reads = vault.callsTo('read', APP).length;
    await agent.until('two more refreshes', () => vault.callsTo('read', APP).length >= reads + 2, 15_000);
    expect(exec.calls).toHaveLength(1);
    // A second change, a second run.
    vault.putKv(APP, { password: 'pw-three', user: 'app' });
    await agent.until('on-change again', () => exec.calls.length > 1, 10_000);
    await agent.until('the status saved', async () => (await dir.status()).onChangeTotal === 2, 0);
    expect(exec.calls).toHaveLength(2);
    await expectNoValues(dir, ['pw-1', 'pw-two', 'pw-three']);
  });

  it('records exit code -1 when the command cannot be run', async () => {
    const { clock, vault, dir, cfg } = await kvSetup({ onChange: 'reload' });
    const exec = fakeExec(dir, () => Promise.reject(new Error("'sh' was not found on PATH")));
    const agent = await run(cfg, vault, clock, exec);
    vault.putKv(APP, { password: 'pw-two' });
    await agent.until('on-change recorded', async () => (await dir.status()).onChangeTotal === 1, 10_000);
    expect((await dir.status()).onChange[0]).toMatchObject({ names: ['APP_PASSWORD'], exitCode: -1 });
    expect((await dir.snapshot()).APP_PASSWORD).toBe('pw-two');
  });
});

describe('failures', () => {
  it('backs off after failed rounds (200 ms doubling to 5 s), reports them in agent-status.json, and keeps the files', async () => {
    const { clock, vault, dir, cfg } = await kvSetup({ refreshMs: 1000 });
    vault.fail(/^secret\//, 503);
    const agent = await run(cfg, vault, clock);
    await agent.until('eight failed refreshes', () => vault.callsTo('read', APP).length >= 8, 60_000);
    const reads = vault.callsTo('read', APP).map((c) => c.at - T0);
    expect(reads).toEqual([1000, 1200, 1600, 2400, 4000, 7200, 12_200, 17_200]);
    const status = await dir.status();
    expect(status.state).toBe('running');
    expect(status.failures).toEqual([
      { what: `KV refresh (${APP})`, reason: expect.stringMatching(/503/), count: 8, last: new Date(T0 + 17_200).toISOString() },
    ]);
    expect(await dir.snapshot()).toEqual({ APP_PASSWORD: 'pw-1', 'secrets.env': 'APP_PASSWORD=pw-1\n' });
    // Vault is back with a new version: delivered on the next try, and the pace is back to normal.
    vault.putKv(APP, { password: 'pw-two' });
    vault.heal();
    await agent.until('the new value', async () => (await dir.snapshot()).APP_PASSWORD === 'pw-two', 10_000);
    await agent.until('two more rounds', () => true, 0);
    expect(clock.sleeps.slice(-1)).toEqual([250]);
  });

  it('does not let a failing refresh make a token renewal late', async () => {
    const { clock, vault, cfg } = await kvSetup({ refreshMs: 1000, renewToken: true });
    vault.fail(/^secret\//, undefined); // nothing listens
    const agent = await run(cfg, vault, clock);
    await agent.until('a token renewal', () => vault.callsTo('write', 'auth/token/renew-self').length > 0, 20_000);
    // Due at 6.5 s: the back-off after the refresh failed at 4.0 s would have slept to 7.2 s.
    expect(vault.callsTo('write', 'auth/token/renew-self').map((c) => c.at - T0)).toEqual([6500]);
  });
});

describe('the end', () => {
  it('stop() ends the loop at once, even in a 5 s back-off, and the status says stopped', async () => {
    const { clock, vault, dir, cfg } = await kvSetup({ refreshMs: 1000 });
    vault.fail(/^secret\//, 503);
    const agent = await run(cfg, vault, clock);
    await agent.until('a 5 s back-off', () => clock.sleeps.at(-1) === 5000, 60_000);
    const at = clock.now();
    agent.agent.stop();
    await agent.done;
    expect(clock.now()).toBe(at);
    const status = await dir.status();
    expect(status.state).toBe('stopped');
    expect(status.updated).toBe(new Date(at).toISOString());
    expect(vault.tokenRevoked).toBe(false);
    expect(await dir.snapshot()).toEqual({ APP_PASSWORD: 'pw-1', 'secrets.env': 'APP_PASSWORD=pw-1\n' });
  });

  it('exits by itself at its max lifetime, leaving token, files and status for post', async () => {
    const { clock, vault, dir, cfg } = await kvSetup({ maxLifetimeMs: 3000, refreshMs: 1000 });
    const agent = await run(cfg, vault, clock);
    expect(await agent.toEnd(10_000)).toBe(3000);
    const status = await dir.status();
    expect([status.state, status.reason]).toEqual(['exited', 'max lifetime reached']);
    expect(vault.callsTo('revoke-self', 'auth/token/revoke-self')).toEqual([]);
    expect(await dir.snapshot()).toEqual({ APP_PASSWORD: 'pw-1', 'secrets.env': 'APP_PASSWORD=pw-1\n' });
  });

  it('exits at its max lifetime even while backing off', async () => {
    const { clock, vault, cfg } = await kvSetup({ maxLifetimeMs: 6000, refreshMs: 1000 });
    vault.fail(/^secret\//, 503);
    const agent = await run(cfg, vault, clock);
    // Failures at 1.0, 1.2, 1.6, 2.4 and 4.0 s; the next back-off (3.2 s) ends at the max lifetime instead.
    expect(await agent.toEnd(10_000)).toBe(6000);
  });

  it('when its secrets directory disappears: revokes the token this run created, removes the root, exits', async () => {
    const { clock, vault, dir, cfg } = await kvSetup({ renewToken: true, revokeToken: true });
    const agent = await run(cfg, vault, clock);
    await fs.rm(dir.secretsDir, { recursive: true });
    expect(await agent.toEnd(250)).toBeLessThanOrEqual(250);
    expect(vault.callsTo('revoke-self', 'auth/token/revoke-self')).toHaveLength(1);
    expect(vault.tokenRevoked).toBe(true);
    await expect(fs.access(dir.root)).rejects.toThrow();
  });

  it('leaves a token it was handed, and a root whose marker is not the one it was started for', async () => {
    const { clock, vault, dir, cfg } = await kvSetup({ renewToken: false, revokeToken: false });
    const agent = await run(cfg, vault, clock);
    await fs.writeFile(path.join(dir.root, '.pipeline-secrets'), 'someone else');
    await fs.rm(dir.secretsDir, { recursive: true });
    await agent.toEnd(250);
    expect(vault.callsTo('revoke-self', 'auth/token/revoke-self')).toEqual([]);
    expect((await fs.readdir(dir.root)).sort()).toContain('.pipeline-secrets');
  });
});

describe('rendered files (templates)', () => {
  /** A KV v2 secret with two fields (APP_PASSWORD, APP_USER) and a second path (OTHER), with rendered files using them. */
  async function templatesSetup(onChange: string | undefined = 'reload') {
    const clock = new FakeClock();
    const vault = new FakeVault(clock);
    vault.putKv(APP, { password: 'pw-1', user: 'app' });
    vault.putKv('secret/data/other', { token: 'other-1' });
    const dir = await root({ APP_PASSWORD: 'pw-1', APP_USER: 'app', OTHER: 'other-1' });
    const rendered = path.join(dir.root, 'rendered');
    await fs.mkdir(rendered, { mode: 0o700 });
    const templates = [
      { name: 'netrc', text: 'login {{APP_USER}} password {{APP_PASSWORD}}\n', source: { inputLine: 2 }, mode: 0o400 },
      { name: 'auth', text: '_auth={{#base64}}{{APP_USER}}:{{APP_PASSWORD}}{{/base64}}\n', source: { file: 'auth.tmpl' }, mode: 0o600 },
      { name: 'other', text: 'token={{OTHER}}\n', source: { inputLine: 9 }, mode: 0o600 },
    ].map((t) => ({ ...t, path: path.join(rendered, t.name), inWorkspace: false }));
    const first = {
      netrc: 'login app password pw-1\n',
      auth: `_auth=${Buffer.from('app:pw-1').toString('base64')}\n`,
      other: 'token=other-1\n',
    };
    for (const t of templates) await fs.writeFile(t.path, first[t.name as keyof typeof first], { mode: t.mode });
    const lines: [ReturnType<typeof line>, ...Array<ReturnType<typeof line>>] = [appLine, line('secret/app', 'user', 'APP_USER')];
    const sources = [kvSource(lines, APP, 1), kvSource([line('secret/other', 'token', 'OTHER')], 'secret/data/other', 1)];
    const cfg = config(dir, sources, { renewToken: false, refreshMs: 5000, onChange, templates });
    const readAll = async (): Promise<Record<string, string>> =>
      Object.fromEntries(await Promise.all(templates.map(async (t) => [t.name, await fs.readFile(t.path, 'utf8')] as const)));
    return { clock, vault, dir, cfg, templates, rendered, readAll };
  }

  it('renders again, atomically and with the same mode, each file that uses a changed secret; on-change runs once after them all, naming them', async () => {
    const { clock, vault, dir, cfg, templates, readAll } = await templatesSetup();
    const seen: Array<Record<string, string>> = [];
    const exec = fakeExec(dir, async () => (seen.push(await readAll()), { exitCode: 0, stdout: '', stderr: '' }));
    const agent = await run(cfg, vault, clock, exec);
    const netrc = templates[0]?.path ?? '';
    const reader = await fs.open(netrc, 'r');
    cleanup.push(() => reader.close());
    const otherIno = statSync(templates[2]?.path ?? '').ino;
    vault.putKv(APP, { password: 'pw-two', user: 'app' });
    await agent.until('on-change', () => exec.calls.length > 0, 10_000);
    expect(exec.calls).toHaveLength(1);
    expect(exec.calls[0]?.env).toEqual({
      PIPELINE_SECRETS_DIR: dir.secretsDir,
      PIPELINE_SECRETS_CHANGED: 'APP_PASSWORD',
      PIPELINE_SECRETS_RENDERED: 'netrc,auth',
    });
    // When on-change ran, every file of the round was new: the secret, the env-file, both rendered files.
    expect(exec.calls[0]?.files.APP_PASSWORD).toBe('pw-two');
    expect(exec.calls[0]?.files['secrets.env']).toContain('APP_PASSWORD=pw-two\n');
    expect(seen[0]).toEqual({
      netrc: 'login app password pw-two\n',
      auth: `_auth=${Buffer.from('app:pw-two').toString('base64')}\n`,
      other: 'token=other-1\n',
    });
    // Replaced whole (the open reader keeps the old file), the same mode; the unaffected one untouched.
    expect(await reader.readFile('utf8')).toBe('login app password pw-1\n');
    expect([mode(netrc), mode(templates[1]?.path ?? '')]).toEqual(['400', '600']);
    expect(statSync(templates[2]?.path ?? '').ino).toBe(otherIno);
    expect((await fs.readdir(path.dirname(netrc))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await agent.until('the status saved', async () => (await dir.status()).onChangeTotal === 1, 0);
    const status = await dir.status();
    expect(status.onChange[0]).toMatchObject({ names: ['APP_PASSWORD'], rendered: ['netrc', 'auth'] });
    expect(status.rendered).toEqual([
      { name: 'netrc', path: netrc, bytes: 26, renders: 1, id: `${statSync(netrc).dev}:${statSync(netrc).ino}` },
      expect.objectContaining({ name: 'auth', renders: 1 }),
    ]);
    expect(await dir.log()).toContain('rendered netrc again (26 bytes)');
    await expectNoValues(dir, ['pw-1', 'pw-two', Buffer.from('app:pw-two').toString('base64')]);
  });

  it('runs on-change once for a round in which two sources changed, with every name', async () => {
    const { clock, vault, dir, cfg } = await templatesSetup();
    const exec = fakeExec(dir);
    const agent = await run(cfg, vault, clock, exec);
    vault.putKv(APP, { password: 'pw-two', user: 'app' });
    vault.putKv('secret/data/other', { token: 'other-2' });
    await agent.until('on-change', () => exec.calls.length > 0, 10_000);
    const reads = vault.callsTo('read', APP).length;
    await agent.until('another refresh', () => vault.callsTo('read', APP).length > reads, 10_000);
    expect(exec.calls.map((c) => [c.env.PIPELINE_SECRETS_CHANGED, c.env.PIPELINE_SECRETS_RENDERED])).toEqual([
      ['APP_PASSWORD,OTHER', 'netrc,auth,other'],
    ]);
  });

  it('keeps a rendered file whose directory was swapped for a symlink, records why, and still runs on-change for the rest', async () => {
    const { clock, vault, dir, cfg, rendered } = await templatesSetup();
    const exec = fakeExec(dir);
    const elsewhere = path.join(dir.root, 'elsewhere');
    await fs.mkdir(elsewhere);
    const agent = await run(cfg, vault, clock, exec);
    // Swapped after main wrote the files (and the agent started).
    await fs.rm(rendered, { recursive: true });
    symlinkSync(elsewhere, rendered);
    vault.putKv('secret/data/other', { token: 'other-2' });
    await agent.until('on-change', () => exec.calls.length > 0, 10_000);
    expect(exec.calls[0]?.env).toMatchObject({ PIPELINE_SECRETS_CHANGED: 'OTHER', PIPELINE_SECRETS_RENDERED: '' });
    expect(await fs.readdir(elsewhere)).toEqual([]);
    await agent.until('the status saved', async () => (await dir.status()).onChangeTotal === 1, 0);
    expect((await dir.status()).failures).toEqual([
      expect.objectContaining({
        what: 're-render (other)',
        reason: expect.stringContaining('is not the directory main wrote it in any more'),
      }),
    ]);
  });

  it('revokes a replaced credential only after on-change has run for the new one', async () => {
    const clock = new FakeClock();
    const vault = new FakeVault(clock);
    vault.engine('pki/issue/ci', { ttl: 10, maxTtl: 10, renewable: false, data: (n) => ({ private_key: `KEY-${n}` }) });
    const first = vault.issue('pki/issue/ci');
    const dir = await root({ TLS_KEY: 'KEY-1' });
    const keyLine = line('pki/issue/ci', 'private_key', 'TLS_KEY', { common_name: 'ci.test' });
    const aliveAtOnChange: boolean[] = [];
    const exec = fakeExec(dir, () => (aliveAtOnChange.push(vault.leaseAlive(first.id)), { exitCode: 0, stdout: '', stderr: '' }));
    const cfg = config(dir, [leasedSource([keyLine], 'pki/issue/ci', first, T0)], { renewToken: false, onChange: 'reload' });
    const agent = await run(cfg, vault, clock, exec);
    await agent.until('the old lease revoked', () => vault.leases.get(first.id)?.revoked === true, 30_000);
    expect(aliveAtOnChange).toEqual([true]);
  });
});
