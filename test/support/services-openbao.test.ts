// The OpenBao test service itself: it starts, is configured through its API, and tells the tests
// what is alive (tokens, leases) the way the real server sees it; stop() leaves nothing behind.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunning } from './services/lifecycle.ts';
import { OpenBao } from './services/openbao.ts';

let bao: OpenBao;
beforeAll(async () => {
  bao = await OpenBao.start();
});
afterAll(async () => {
  await bao?.stop();
});

describe('OpenBao test service', () => {
  it('serves KV v2 and KV v1 and versions writes', async () => {
    await bao.enableKv('secret', 2);
    await bao.enableKv('kv1', 1);
    expect(await bao.putKv('secret', 'svc/app', { a: '1' })).toBe(1);
    expect(await bao.putKv('secret', 'svc/app', { a: '2' })).toBe(2);
    await bao.putKv('kv1', 'legacy', { k: 'v' });
    expect((await bao.call('GET', 'secret/data/svc/app')).data.data).toEqual({ a: '2' });
    expect((await bao.call('GET', 'kv1/legacy')).data).toEqual({ k: 'v' });
  });

  it('tells a live token from a revoked one and lists accessors without root', async () => {
    await bao.addPolicy('svc', [{ path: 'secret/data/svc/*', capabilities: ['read'] }]);
    const token = await bao.createToken({ policies: ['svc'] });
    const accessors = await bao.liveAccessors();
    expect(accessors.length).toBeGreaterThan(0);
    expect(await bao.tokenAlive(token)).toBe(true);
    await bao.call('POST', 'auth/token/revoke-self', { token, body: {} });
    expect(await bao.tokenAlive(token)).toBe(false);
    expect((await bao.liveAccessors()).length).toBe(accessors.length - 1);
  });

  it('issues PKI certificates under a lease and lists them', async () => {
    await bao.addPkiRole('pki', 'ci');
    const issued = await bao.call('POST', 'pki/issue/ci', { body: { common_name: 'svc.test' } });
    expect(issued.lease_id).toMatch(/^pki\/issue\/ci\//);
    expect(await bao.liveLeases('pki/')).toContain(issued.lease_id);
    expect(await bao.leaseAlive(issued.lease_id)).toBe(true);
    await bao.call('PUT', 'sys/leases/revoke', { body: { lease_id: issued.lease_id } });
    expect(await bao.leaseAlive(issued.lease_id)).toBe(false);
  });

  it('logs in with a fixed AppRole role_id and secret_id', async () => {
    await bao.addAppRole('approle', 'svc', { roleId: 'svc-role-id-1', secretId: 'svc-secret-id-1', policies: ['svc'] });
    const login = await bao.call('POST', 'auth/approle/login', { body: { role_id: 'svc-role-id-1', secret_id: 'svc-secret-id-1' } });
    expect(login.auth.policies).toContain('svc');
  });

  it('stop() ends the server and removes its directory', async () => {
    const other = await OpenBao.start();
    const pid = Number((await import('node:fs')).readFileSync(`${other.dir}/bao.pid`, 'utf8'));
    expect(isRunning(pid)).toBe(true);
    await other.stop();
    expect(isRunning(pid)).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
  });
});
