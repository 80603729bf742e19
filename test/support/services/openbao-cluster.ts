// A real OpenBao HA cluster for the tests: three `bao server` processes (not dev mode) with
// integrated storage (raft), each on loopback ports of its own, initialised and unsealed through
// the HTTP API the way an operator does it (sys/init with one Shamir key share, kept in the
// cluster's temp dir, then sys/unseal on every node). Nothing here stands in for Vault: leader
// election, standby behaviour and lost quorum are the server's own. The load balancer in front is
// tcp-front.ts.
//
// Facts that shaped this (OpenBao 2.7, checked here):
// - A node joins the cluster when it is unsealed with the key (retry_join names the others).
// - cluster_addr is always TLS (the cluster port speaks mTLS with certificates the cluster makes),
//   even with tls_disable on the API listener.
// - performance_multiplier = 1 keeps raft's timings at their tightest, so a failover takes seconds.
// - Standbys serve reads themselves (OpenBao's read-enabled standbys on raft, the default:
//   disable_standby_reads = false; https://openbao.org/docs/next/concepts/consistency/) and
//   forward writes to the active node over the cluster port; a standby that cannot (no active
//   node, or one it has not reached yet after an election) answers 307 to the active node's
//   api_addr. services-cluster.test.ts checks both.
//
// About 310 lines: one class for the cluster's whole life (config, init, unseal, leader, kill,
// restart), each step needing the same node table; split, the parts would pass it around.
//
// The nodes' dirs and processes follow lifecycle.ts like openbao.ts: own process groups under
// pdeathsig, an exit hook, a sweep of dead owners' dirs.

import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baoBinary } from './openbao-install.ts';
import {
  type Daemon,
  freePort,
  killDaemonAndRemoveDirSync,
  makeInstanceDir,
  onExit,
  signal,
  sleep,
  spawnDaemon,
  sweepDeadOwners,
  terminate,
} from './lifecycle.ts';
import { OpenBao } from './openbao.ts';

const PREFIX = 'ps-openbao-cluster-';
const NODES = 3;

interface Node {
  readonly id: string;
  readonly apiPort: number;
  readonly clusterPort: number;
  readonly url: string;
  daemon: Daemon | undefined;
}

// OpenBao's class has the request and operator helpers the tests need (policies, AppRoles, live
// leases and accessors); a view of it per node reuses them against that node's URL. Its stop is
// the cluster's, so a view never ends a node on its own.
type ViewConstructor = new (url: string, tlsUrl: undefined, rootToken: string, dir: string, stop: () => Promise<void>) => OpenBao;
const View = OpenBao as unknown as ViewConstructor;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Vault's envelopes vary by path
async function json(url: string, method: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'X-Vault-Request': 'true' };
  if (token !== undefined) headers['X-Vault-Token'] = token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

function sweepStale(): void {
  sweepDeadOwners({
    bases: [tmpdir()],
    prefixes: [PREFIX],
    pidFiles: Array.from({ length: NODES }, (_, i) => `node${i + 1}.pid`),
    cleanup: (dir, pids) => {
      for (const pid of pids.slice(1)) killDaemonAndRemoveDirSync(dir, pid);
      killDaemonAndRemoveDirSync(dir, pids[0]);
    },
  });
}

export class OpenBaoCluster {
  readonly dir: string;
  readonly rootToken: string;
  readonly #nodes: Node[];
  readonly #unsealKey: string;
  readonly #stop: () => Promise<void>;

  private constructor(dir: string, nodes: Node[], rootToken: string, unsealKey: string, stop: () => Promise<void>) {
    this.dir = dir;
    this.#nodes = nodes;
    this.rootToken = rootToken;
    this.#unsealKey = unsealKey;
    this.#stop = stop;
  }

  /** Starts, initialises and unseals three nodes; resolves once one is the active node and all three are unsealed. */
  static async start(): Promise<OpenBaoCluster> {
    sweepStale();
    const dir = makeInstanceDir(tmpdir(), PREFIX);
    const nodes: Node[] = [];
    for (let i = 1; i <= NODES; i++) {
      const apiPort = await freePort();
      const clusterPort = await freePort();
      nodes.push({ id: `node${i}`, apiPort, clusterPort, url: `http://127.0.0.1:${apiPort}`, daemon: undefined });
    }
    const unregister = onExit(() => {
      for (const n of nodes) killDaemonAndRemoveDirSync(dir, n.daemon?.pid);
      killDaemonAndRemoveDirSync(dir, undefined);
    });
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        await Promise.all(nodes.map((n) => (n.daemon ? terminate(n.daemon, 3000) : Promise.resolve())));
        killDaemonAndRemoveDirSync(dir, undefined);
        unregister();
      })());
    try {
      for (const n of nodes) {
        const others = nodes.filter((o) => o !== n);
        writeFileSync(
          join(dir, `${n.id}.hcl`),
          [
            'ui = false',
            'disable_mlock = true',
            'storage "raft" {',
            `  path = ${JSON.stringify(join(dir, n.id))}`,
            `  node_id = "${n.id}"`,
            '  performance_multiplier = 1',
            ...others.flatMap((o) => ['  retry_join {', `    leader_api_addr = "${o.url}"`, '  }']),
            '}',
            'listener "tcp" {',
            `  address = "127.0.0.1:${n.apiPort}"`,
            `  cluster_address = "127.0.0.1:${n.clusterPort}"`,
            '  tls_disable = true',
            '}',
            `api_addr = "${n.url}"`,
            `cluster_addr = "https://127.0.0.1:${n.clusterPort}"`,
            '',
          ].join('\n'),
        );
      }
      const cluster = new OpenBaoCluster(dir, nodes, '', '', stop);
      for (const n of nodes) await cluster.#spawn(n);
      const [first] = nodes as [Node, ...Node[]];
      const init = await json(`${first.url}/v1/sys/init`, 'PUT', { secret_shares: 1, secret_threshold: 1 });
      if (init.status !== 200) throw new Error(`sys/init on ${first.id}: ${init.status} ${JSON.stringify(init.body)}`);
      const key = String(init.body.keys_base64[0]);
      const root = String(init.body.root_token);
      // Kept in the cluster's dir, as an operator keeps them somewhere safe; removed with it.
      writeFileSync(join(dir, 'init.json'), JSON.stringify(init.body), { mode: 0o600 });
      const ready = new OpenBaoCluster(dir, nodes, root, key, stop);
      await ready.#unseal(first);
      await ready.waitForLeader(30_000);
      // Autopilot promotes a joined node to voter once it has been healthy this long (default 10 s).
      const ap = await json(`${first.url}/v1/sys/storage/raft/autopilot/configuration`, 'POST', { server_stabilization_time: '1s' }, root);
      if (ap.status >= 300) throw new Error(`autopilot configuration: ${ap.status} ${JSON.stringify(ap.body)}`);
      await Promise.all(nodes.slice(1).map((n) => ready.#unseal(n)));
      await ready.#waitForPeers(30_000);
      return ready;
    } catch (e) {
      await stop();
      throw e;
    }
  }

  async #spawn(n: Node): Promise<void> {
    const log = join(this.dir, `${n.id}.log`);
    n.daemon = spawnDaemon(baoBinary(), ['server', `-config=${join(this.dir, `${n.id}.hcl`)}`], {
      log,
      env: { PATH: '/usr/bin:/bin', HOME: this.dir },
      pidFile: join(this.dir, `${n.id}.pid`),
    });
    const until = Date.now() + 20_000;
    while (Date.now() < until && !n.daemon.hasExited()) {
      // seal-status answers as soon as the listener is up, sealed or not
      const up = await json(`${n.url}/v1/sys/seal-status`, 'GET').then(
        (r) => r.status === 200,
        () => false,
      );
      if (up) return;
      await sleep(50);
    }
    throw new Error(`${n.id} did not come up:\n${this.log(n.id).split('\n').slice(-15).join('\n')}`);
  }

  async #unseal(n: Node): Promise<void> {
    const until = Date.now() + 30_000;
    for (;;) {
      const r = await json(`${n.url}/v1/sys/unseal`, 'PUT', { key: this.#unsealKey }).catch(() => undefined);
      if (r?.status === 200 && r.body.sealed === false) return;
      // A joining node reports sealed until it has joined raft and caught up; asking again is harmless.
      if (Date.now() > until) throw new Error(`${n.id} did not unseal: ${JSON.stringify(r?.body)}\n${this.log(n.id).slice(-2000)}`);
      await sleep(200);
    }
  }

  /** Waits until every node is a voter of the raft configuration. */
  async #waitForPeers(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.leader();
      if (leader !== undefined) {
        const r = await json(`${leader}/v1/sys/storage/raft/configuration`, 'GET', undefined, this.rootToken).catch(() => undefined);
        const servers: Array<{ voter: boolean }> = r?.body?.data?.config?.servers ?? [];
        const healthy = await Promise.all(this.#nodes.map((n) => json(`${n.url}/v1/sys/health`, 'GET').catch(() => undefined)));
        if (servers.length === NODES && servers.every((s) => s.voter) && healthy.every((h) => h?.body?.sealed === false)) return;
      }
      if (Date.now() > until) throw new Error(`the cluster did not form: ${JSON.stringify(await this.status())}`);
      await sleep(200);
    }
  }

  /** The nodes' API URLs, node1 first. */
  get urls(): string[] {
    return this.#nodes.map((n) => n.url);
  }

  /** The nodes' API ports, node1 first (for tcp-front.ts). */
  get ports(): number[] {
    return this.#nodes.map((n) => n.apiPort);
  }

  /** The API URL of the active node, as a node that is up reports it (sys/leader), or undefined while none is. */
  async leader(): Promise<string | undefined> {
    for (const n of this.#nodes) {
      if (n.daemon === undefined || n.daemon.hasExited()) continue;
      const r = await json(`${n.url}/v1/sys/leader`, 'GET').catch(() => undefined);
      const addr: unknown = r?.body?.leader_address;
      if (r?.status === 200 && typeof addr === 'string' && addr !== '') {
        // Believed only when that node itself says it is the active one (a standby may name a dead leader).
        const own = await json(`${addr}/v1/sys/leader`, 'GET').catch(() => undefined);
        if (own?.body?.is_self === true) return addr;
      }
    }
    return undefined;
  }

  /** Waits for an active node; returns its URL. */
  async waitForLeader(timeoutMs: number): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l !== undefined) return l;
      if (Date.now() > until) throw new Error(`no active node after ${timeoutMs} ms: ${JSON.stringify(await this.status())}`);
      await sleep(100);
    }
  }

  /**
   * Waits until every running node is unsealed and names the same active node, which says it is
   * itself: a standby that has not learnt of a new leader yet answers a login with 500 "local node
   * not active but active cluster node not found", so a test must not start before this.
   */
  async waitForSettled(timeoutMs: number): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.leader();
      if (leader !== undefined) {
        const running = this.#nodes.filter((n) => n.daemon !== undefined && !n.daemon.hasExited());
        const views = await Promise.all(running.map((n) => json(`${n.url}/v1/sys/leader`, 'GET').catch(() => undefined)));
        if (views.every((v) => v?.status === 200 && v.body?.leader_address === leader)) return leader;
      }
      if (Date.now() > until)
        throw new Error(`the nodes do not agree on an active node after ${timeoutMs} ms: ${JSON.stringify(await this.status())}`);
      await sleep(100);
    }
  }

  /** Each node's view: up or not, sealed, standby. */
  async status(): Promise<Array<{ id: string; up: boolean; sealed?: boolean; standby?: boolean }>> {
    return Promise.all(
      this.#nodes.map(async (n) => {
        const r = await json(`${n.url}/v1/sys/health`, 'GET').catch(() => undefined);
        return r === undefined ? { id: n.id, up: false } : { id: n.id, up: true, sealed: r.body?.sealed, standby: r.body?.standby };
      }),
    );
  }

  /** The URLs of the nodes that are running and not the active one. */
  async standbys(): Promise<string[]> {
    const leader = await this.leader();
    return this.#nodes.filter((n) => n.daemon !== undefined && !n.daemon.hasExited() && n.url !== leader).map((n) => n.url);
  }

  /** An OpenBao (request, call and the operator helpers, root token) talking to `url`, by default the active node. */
  async api(url?: string): Promise<OpenBao> {
    const target = url ?? (await this.waitForLeader(30_000));
    return new View(target, undefined, this.rootToken, this.dir, () => this.#stop());
  }

  #node(url: string): Node {
    const n = this.#nodes.find((x) => x.url === url);
    if (n === undefined) throw new Error(`no node at ${url}`);
    return n;
  }

  /** SIGKILL to the node at `url` (no graceful step-down); resolves when it is gone. */
  async kill(url: string): Promise<void> {
    const n = this.#node(url);
    if (n.daemon === undefined) return;
    signal(n.daemon.pid, 'SIGKILL', true);
    const until = Date.now() + 5000;
    while (!n.daemon.hasExited() && Date.now() < until) await sleep(10);
  }

  /** Starts the node at `url` again on its data and unseals it (it rejoins as a standby or wins an election). */
  async restart(url: string): Promise<void> {
    const n = this.#node(url);
    if (n.daemon !== undefined && !n.daemon.hasExited()) return;
    await this.#spawn(n);
    await this.#unseal(n);
  }

  /** A node's log, for failure messages. */
  log(id: string): string {
    try {
      return readFileSync(join(this.dir, `${id}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  stop(): Promise<void> {
    return this.#stop();
  }
}
