// A stand-in for a load balancer in front of a Vault cluster (openbao-cluster.ts): one loopback
// port whose new connections are spread round-robin over the nodes that accept a TCP connection,
// bytes piped both ways, no HTTP parsing. Why a stand-in: no real load balancer can be had here,
// and what matters to the client is only what one does at layer 4: a kept-alive connection stays
// on its node (and dies with it), a new one goes to a node that is up, a dead node is skipped.
// Health checks are left out on purpose: a node that is up but sealed or without a leader still
// gets connections, as behind a load balancer checking TCP alone.

import * as net from 'node:net';

export interface TcpFront {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Connections accepted so far, per backend port. */
  readonly connections: Map<number, number>;
  /** Chunks of client bytes forwarded so far: about one per HTTP request (the front does not parse HTTP). */
  readonly chunks: () => number;
  stop(): Promise<void>;
}

function connect(port: number): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => resolve(undefined));
  });
}

/**
 * Listens on a free loopback port in front of `ports` (the nodes' API listeners). `delayMs` holds
 * every chunk a client sends that long before it goes on (in order), so a test can act mid-exchange.
 */
export async function startTcpFront(ports: readonly number[], opts: { delayMs?: number } = {}): Promise<TcpFront> {
  let next = 0;
  let chunks = 0;
  const delay = opts.delayMs ?? 0;
  const connections = new Map<number, number>();
  const open = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    open.add(s);
    s.once('close', () => open.delete(s));
  };
  const server = net.createServer((client) => {
    track(client);
    client.pause();
    client.on('error', () => client.destroy());
    void (async () => {
      // Each backend at most once per connection, starting at the next in turn.
      const start = next;
      next = (next + 1) % ports.length;
      for (let i = 0; i < ports.length; i++) {
        const port = ports[(start + i) % ports.length] as number;
        const backend = await connect(port);
        if (backend === undefined) continue;
        if (client.destroyed) {
          backend.destroy();
          return;
        }
        track(backend);
        connections.set(port, (connections.get(port) ?? 0) + 1);
        backend.on('error', () => client.destroy());
        client.on('error', () => backend.destroy());
        // A node killed mid-answer ends its side abruptly: the client sees its connection reset.
        backend.once('close', () => client.destroy());
        client.once('close', () => backend.destroy());
        client.on('data', (chunk: Buffer) => {
          chunks++;
          // Equal delays keep the order; a write after the backend died goes nowhere.
          if (delay === 0) backend.write(chunk);
          else setTimeout(() => backend.destroyed || backend.write(chunk), delay);
        });
        client.once('end', () => setTimeout(() => backend.destroyed || backend.end(), delay));
        backend.pipe(client);
        client.resume();
        return;
      }
      // No node accepts: the client's connection is closed at once, as a balancer with no backend does.
      client.destroy();
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    connections,
    chunks: () => chunks,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
