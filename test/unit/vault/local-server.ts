// A tiny HTTP server on 127.0.0.1 for the transport's unit tests: it answers as the test says and
// records what reached it (the count and each request's headers and body).
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach } from 'vitest';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number, body: string) => void;

export interface LocalServer {
  readonly url: string;
  readonly port: number;
  hits(): number;
  readonly requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
}

let servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.map((s) => {
      s.closeAllConnections();
      return new Promise((resolve) => s.close(resolve));
    }),
  );
  servers = [];
});

export async function serve(handler: Handler, port = 0): Promise<LocalServer> {
  let n = 0;
  const requests: LocalServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, n++, body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${bound}`, port: bound, hits: () => n, requests };
}

/** A port nothing listens on (bound, then closed): connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Drops the connection with a TCP reset after the request was read: the server may have acted. */
export const reset = (res: http.ServerResponse): void => void (res.socket as Socket).resetAndDestroy();

export const json = (res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void =>
  void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
