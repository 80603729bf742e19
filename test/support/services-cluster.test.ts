// The HA test services work: three real OpenBao nodes on raft elect one active node; a standby
// answers a read of what the active node wrote and takes a write (OpenBao 2.7: standbys serve
// reads and forward writes, 200, no 307, while the cluster is whole); with no active node a
// standby still serves reads and answers a write 307; the TCP front spreads new connections over
// the nodes and skips a dead one; killing the active node elects another within seconds.
// test/e2e/ha.test.ts builds on these.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenBaoCluster } from './services/openbao-cluster.ts';
import { startTcpFront, type TcpFront } from './services/tcp-front.ts';

let cluster: OpenBaoCluster;
let front: TcpFront;

beforeAll(async () => {
  cluster = await OpenBaoCluster.start();
  front = await startTcpFront(cluster.ports);
}, 90_000);
afterAll(async () => {
  await front?.stop();
  await cluster?.stop();
});

async function get(url: string, path: string): Promise<Response> {
  // A fresh connection each time, so the front picks the next node.
  return fetch(`${url}/v1/${path}`, { headers: { 'X-Vault-Token': cluster.rootToken, Connection: 'close' }, redirect: 'manual' });
}

describe('an OpenBao raft cluster', () => {
  it('has one active node and two unsealed standbys; the init keys are kept 0600 in its dir', async () => {
    const status = await cluster.status();
    expect(status.map((s) => [s.up, s.sealed])).toEqual([
      [true, false],
      [true, false],
      [true, false],
    ]);
    expect(status.filter((s) => s.standby === false)).toHaveLength(1);
    expect((statSync(join(cluster.dir, 'init.json')).mode & 0o777).toString(8)).toBe('600');
    const leader = await cluster.leader();
    expect(cluster.urls).toContain(leader);
    expect(await cluster.standbys()).toHaveLength(2);
  });

  it('a write on the active node is read through a standby, which answers it itself (200, no redirect)', async () => {
    const api = await cluster.api();
    await api.enableKv('secret', 2);
    await api.putKv('secret', 'ha/probe', { value: 'written-on-the-leader' });
    for (const standby of await cluster.standbys()) {
      // A standby may briefly answer 400 while the new mount settles on it.
      let res = await get(standby, 'secret/data/ha/probe');
      for (let i = 0; i < 50 && res.status === 400; i++) {
        await new Promise((r) => setTimeout(r, 100));
        res = await get(standby, 'secret/data/ha/probe');
      }
      expect(res.status).toBe(200);
      expect(res.headers.get('location')).toBeNull();
      expect(((await res.json()) as { data: { data: { value: string } } }).data.data.value).toBe('written-on-the-leader');
    }
  });

  it('a standby takes a write while the cluster is whole (forwarded: 200, no redirect)', async () => {
    const [standby] = await cluster.standbys();
    const res = await fetch(`${standby}/v1/secret/data/ha/from-standby`, {
      method: 'POST',
      headers: { 'X-Vault-Token': cluster.rootToken, 'Content-Type': 'application/json' },
      body: JSON.stringify({ data: { value: 'via-standby' } }),
      redirect: 'manual',
    });
    expect(res.status).toBe(200);
    const api = await cluster.api();
    expect((await api.call('GET', 'secret/data/ha/from-standby')).data.data.value).toBe('via-standby');
  });

  it('with no active node (two of three killed) the last standby serves a read and answers a write 307; then all come back', async () => {
    const leader = await cluster.waitForLeader(5000);
    const [first, last] = (await cluster.standbys()) as [string, string];
    await cluster.kill(leader);
    await cluster.kill(first);
    const read = await get(last, 'secret/data/ha/probe');
    expect(read.status).toBe(200);
    const write = await fetch(`${last}/v1/secret/data/ha/refused`, {
      method: 'POST',
      headers: { 'X-Vault-Token': cluster.rootToken, 'Content-Type': 'application/json' },
      body: JSON.stringify({ data: { value: 'x' } }),
      redirect: 'manual',
    });
    expect(write.status).toBe(307);
    expect(write.headers.get('location')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/secret\/data\/ha\/refused$/);
    await cluster.restart(first);
    await cluster.restart(leader);
    await cluster.waitForLeader(20_000);
    expect((await cluster.status()).every((s) => s.up && s.sealed === false)).toBe(true);
  }, 60_000);

  it('the front spreads new connections over all three nodes', async () => {
    for (let i = 0; i < 6; i++) expect((await get(front.url, 'sys/leader')).status).toBe(200);
    expect([...front.connections.keys()].sort()).toEqual([...cluster.ports].sort());
  });

  it('killing the active node elects another within 15 s; the front skips the dead node; the old node rejoins as a standby', async () => {
    const old = await cluster.waitForLeader(5000);
    const t0 = Date.now();
    await cluster.kill(old);
    const next = await cluster.waitForLeader(15_000);
    expect(next).not.toBe(old);
    expect(Date.now() - t0).toBeLessThan(15_000);
    for (let i = 0; i < 4; i++) {
      const res = await get(front.url, 'secret/data/ha/probe');
      expect(res.status).toBe(200);
    }
    await cluster.restart(old);
    expect(await cluster.waitForLeader(5000)).toBe(next);
    expect((await cluster.status()).every((s) => s.up && s.sealed === false)).toBe(true);
  }, 60_000);
});
