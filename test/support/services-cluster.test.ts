// The HA test services work: three real OpenBao nodes on raft elect one active node, a standby
// answers with the active node's data (OpenBao 2.7 standbys forward the request over the cluster
// port: 200, no 307), the TCP front spreads new connections over the nodes and skips a dead one,
// and killing the active node elects another within seconds. test/e2e/ha.test.ts builds on these.
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

  it('a write on the active node is read through a standby: the standby forwards (200), it does not redirect', async () => {
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
