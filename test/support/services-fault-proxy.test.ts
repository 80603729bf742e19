// The fault proxy puts faults between a client and a real server: each kind is checked against a
// tiny upstream that counts what reaches it, so every test can tell whether the server acted.
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REDACTED, malformed, startFaultProxy, type FaultProxy } from './services/fault-proxy.ts';
import { faultMessages } from './services/faults.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Counts every request it gets and answers JSON naming the count; `?status=N` sets the status. */
interface Upstream {
  url: string;
  hits: Seen[];
  connections: number;
  stop(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const hits: Seen[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? '200');
      const text = JSON.stringify({ request_id: `req-${hits.length}`, lease_id: '', data: { count: hits.length, method: req.method } });
      res.writeHead(status, { 'content-type': 'application/json', 'x-upstream-count': String(hits.length) });
      res.end(status === 204 ? undefined : text);
    });
  });
  server.keepAliveTimeout = 60_000;
  // LIST arrives as a parse error here too; answer it by hand so the proxy's LIST path can be seen.
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, sock: Socket) => {
    const raw = err.rawPacket?.toString('latin1') ?? '';
    if (!raw.startsWith('LIST ')) return sock.destroy();
    hits.push({ method: 'LIST', url: raw.split(' ')[1] ?? '', headers: {}, body: '' });
    const text = JSON.stringify({ data: { keys: ['a', 'b'] } });
    sock.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`);
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    hits,
    get connections() {
      return connections;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  reusedSocket: boolean;
}

interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  agent?: http.Agent;
  timeoutMs?: number;
}

/** One request; rejects with the socket error (code ECONNRESET, or 'TIMEOUT' when `timeoutMs` passed). */
function call(base: string, path: string, o: CallOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, base),
      { method: o.method ?? 'GET', headers: o.headers ?? {}, agent: o.agent ?? false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, reusedSocket: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    if (o.timeoutMs !== undefined) {
      req.setTimeout(o.timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    }
    req.on('error', reject);
    req.end(o.body);
  });
}

const codeOf = (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e.code,
  );

let upstream: Upstream;
let proxy: FaultProxy;
const agents: http.Agent[] = [];
const keepAlive = (): http.Agent => {
  const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(a);
  return a;
};

beforeEach(async () => {
  upstream = await startUpstream();
  proxy = await startFaultProxy(upstream.url);
});
afterEach(async () => {
  for (const a of agents.splice(0)) a.destroy();
  await proxy.stop();
  await upstream.stop();
});

describe('forwarding', () => {
  it('passes method, path, query, headers and body on, and the answer back unchanged', async () => {
    const body = JSON.stringify({ role_id: 'r' });
    const r = await call(proxy.url, '/v1/auth/approle/login?status=201&x=1', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-vault-namespace': 'team-a', 'x-custom': 'kept' },
      body,
    });
    expect(r.status).toBe(201);
    expect(r.headers['x-upstream-count']).toBe('1');
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.text)).toEqual({ request_id: 'req-1', lease_id: '', data: { count: 1, method: 'POST' } });
    const seen = upstream.hits[0];
    expect(seen?.method).toBe('POST');
    expect(seen?.url).toBe('/v1/auth/approle/login?status=201&x=1');
    expect(seen?.body).toBe(body);
    expect(seen?.headers.host).toBe(new URL(upstream.url).host);
    expect(seen?.headers['x-vault-namespace']).toBe('team-a');
    expect(seen?.headers['x-custom']).toBe('kept');
    expect(proxy.requests).toMatchObject([
      { method: 'POST', path: 'auth/approle/login', query: 'status=201&x=1', status: 201, upstreamStatus: 201, faults: [] },
    ]);
  });

  it('passes a 204 with no body, and an upstream error status as it is', async () => {
    const empty = await call(proxy.url, '/v1/sys/leases/revoke?status=204', { method: 'PUT', body: '{}' });
    expect(empty.status).toBe(204);
    expect(empty.text).toBe('');
    const denied = await call(proxy.url, '/v1/secret/data/x?status=403');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.text)).toMatchObject({ data: { count: 2 } });
  });

  it('keeps connections alive on both sides', async () => {
    const agent = keepAlive();
    const first = await call(proxy.url, '/v1/a', { agent });
    const second = await call(proxy.url, '/v1/b', { agent });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.reusedSocket).toBe(true);
    expect(upstream.connections).toBe(1);
  });

  it('forwards LIST, which Node’s HTTP parser rejects, and can fault it', async () => {
    const listed = await call(proxy.url, '/v1/secret/metadata/ci', { method: 'LIST' });
    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.text)).toEqual({ data: { keys: ['a', 'b'] } });
    expect(upstream.hits.map((h) => h.method)).toEqual(['LIST']);
    proxy.inject({ method: 'LIST', path: 'secret/metadata/ci', kind: 'status', status: 503, times: 1 });
    const faulted = await call(proxy.url, '/v1/secret/metadata/ci', { method: 'LIST' });
    expect(faulted.status).toBe(503);
    expect(upstream.hits).toHaveLength(1);
    expect(proxy.count('LIST', 'secret/metadata/ci')).toBe(2);
  });

  it('answers 502 naming the proxy when the server is gone', async () => {
    await upstream.stop();
    const r = await call(proxy.url, '/v1/sys/health');
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text)).toMatchObject({ errors: [expect.stringMatching(/^fault proxy: upstream 127\.0\.0\.1:\d+: ECONNREFUSED/)] });
    expect(proxy.requests[0]?.upstreamStatus).toBeUndefined();
  });
});

describe('faults decided before the server', () => {
  it("'status' answers with a Vault error body and Retry-After; the server never sees it", async () => {
    proxy.inject({ method: 'POST', path: 'auth/approle/login', kind: 'status', status: 429, retryAfter: 2 });
    const r = await call(proxy.url, '/v1/auth/approle/login', { method: 'POST', body: '{}' });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('2');
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.text)).toEqual({ errors: faultMessages(429, 'auth/approle/login') });
    expect(upstream.hits).toHaveLength(0);
    expect(proxy.requests[0]).toMatchObject({ status: 429, upstreamStatus: undefined, faults: ['status'] });
    const plain = await call(proxy.url, '/v1/auth/approle/login', { method: 'POST', body: '{}' });
    expect(plain.status).toBe(429); // unlimited without `times`
    expect(plain.headers['retry-after']).toBe('2');
  });

  it("'reset' drops the connection before forwarding; other connections live on", async () => {
    const other = keepAlive();
    expect((await call(proxy.url, '/v1/warm', { agent: other })).status).toBe(200);
    proxy.inject({ path: 'secret/data/app', kind: 'reset', times: 1 });
    const code = await codeOf(call(proxy.url, '/v1/secret/data/app', { agent: keepAlive() }));
    expect(code).toBe('ECONNRESET');
    expect(upstream.hits.map((h) => h.url)).toEqual(['/v1/warm']);
    const after = await call(proxy.url, '/v1/secret/data/app', { agent: other });
    expect(after.status).toBe(200);
    expect(after.reusedSocket).toBe(true);
    expect(proxy.requests.map((r) => [r.path, r.status, r.faults])).toEqual([
      ['warm', 200, []],
      ['secret/data/app', undefined, ['reset']],
      ['secret/data/app', 200, []],
    ]);
  });

  it("'hang' never answers: the client times out, the server never sees it, stop() closes it", async () => {
    proxy.inject({ path: 'secret/data/app', kind: 'hang' });
    const started = Date.now();
    expect(await codeOf(call(proxy.url, '/v1/secret/data/app', { timeoutMs: 300 }))).toBe('TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(upstream.hits).toHaveLength(0);
    expect(proxy.requests[0]).toMatchObject({ status: undefined, faults: ['hang'] });
    // A client that never gives up is let go by stop().
    const waiting = codeOf(call(proxy.url, '/v1/secret/data/app'));
    await expect.poll(() => proxy.requests.length).toBe(2);
    await proxy.stop();
    expect(await waiting).toBe('ECONNRESET');
  });
});

describe('faults after the server acted', () => {
  it("'reset-after' forwards, then drops the connection without the answer", async () => {
    proxy.inject({ method: 'GET', path: 'database/creds/ci', kind: 'reset-after', times: 1 });
    const code = await codeOf(call(proxy.url, '/v1/database/creds/ci'));
    expect(code).toBe('ECONNRESET');
    expect(upstream.hits).toHaveLength(1);
    expect(proxy.requests[0]).toMatchObject({ status: undefined, upstreamStatus: 200, faults: ['reset-after'] });
    // The retry is answered by the server, which acts again: a second credential.
    const retry = await call(proxy.url, '/v1/database/creds/ci');
    expect(JSON.parse(retry.text)).toMatchObject({ data: { count: 2 } });
  });

  it("'malformed' forwards, then answers 200 with a body that is not JSON", async () => {
    proxy.inject({ path: /^secret\//, kind: 'malformed', times: 1 });
    const r = await call(proxy.url, '/v1/secret/data/app');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(() => JSON.parse(r.text) as unknown).toThrow();
    // Cut from the server's own answer: its head (request id, lease id) survives.
    expect(r.text.startsWith('{"request_id":"req-1","lease_id":""')).toBe(true);
    expect(upstream.hits).toHaveLength(1);
    expect(proxy.requests[0]).toMatchObject({ status: 200, upstreamStatus: 200, faults: ['malformed'] });
  });

  it("'status-after' forwards, then replaces the answer with the status", async () => {
    proxy.inject({ method: 'POST', path: 'auth/approle/login', kind: 'status-after', status: 500, times: 1 });
    const r = await call(proxy.url, '/v1/auth/approle/login', { method: 'POST', body: '{}' });
    expect(r.status).toBe(500);
    expect(JSON.parse(r.text)).toEqual({ errors: ['internal error'] });
    expect(upstream.hits).toHaveLength(1);
    expect(proxy.requests[0]).toMatchObject({ status: 500, upstreamStatus: 200, faults: ['status-after'] });
  });

  it('a truncated body never parses, whatever the server sent', () => {
    expect(malformed('12345')).toBe('{"request_id":"');
    expect(malformed('')).toBe('{"request_id":"');
    expect(malformed('{"a":1}\n')).toBe('{"a');
  });
});

describe('latency', () => {
  it("a 'latency' fault delays, then lets a later fault decide", async () => {
    proxy.inject({ path: 'secret/data/app', kind: 'latency', latencyMs: 250, times: 1 });
    proxy.inject({ path: 'secret/data/app', kind: 'status', status: 503, times: 1 });
    const started = Date.now();
    const r = await call(proxy.url, '/v1/secret/data/app');
    expect(Date.now() - started).toBeGreaterThanOrEqual(245);
    expect(r.status).toBe(503);
    expect(proxy.requests[0]?.faults).toEqual(['latency', 'status']);
    // Alone it only delays: the server answers.
    proxy.inject({ path: 'secret/data/app', kind: 'latency', latencyMs: 250, times: 1 });
    const t = Date.now();
    const slow = await call(proxy.url, '/v1/secret/data/app');
    expect(Date.now() - t).toBeGreaterThanOrEqual(245);
    expect(slow.status).toBe(200);
    expect(upstream.hits).toHaveLength(1);
  });

  it('latencyMs (from the options, and changed later) delays every request', async () => {
    await proxy.stop();
    proxy = await startFaultProxy(upstream.url, { latencyMs: 120 });
    expect(proxy.latencyMs).toBe(120);
    let t = Date.now();
    await call(proxy.url, '/v1/a');
    await call(proxy.url, '/v1/b');
    expect(Date.now() - t).toBeGreaterThanOrEqual(235);
    proxy.latencyMs = 0;
    t = Date.now();
    await call(proxy.url, '/v1/c');
    expect(Date.now() - t).toBeLessThan(120);
    expect(upstream.hits).toHaveLength(3);
  });
});

describe('which requests a fault hits', () => {
  it('`skip` lets the first matching requests through, `times` limits the hits', async () => {
    proxy.inject({ method: 'GET', path: /^secret\//g, kind: 'status', status: 503, skip: 1, times: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(proxy.url, '/v1/secret/data/app')).status);
    expect(statuses).toEqual([200, 503, 503, 200]);
    expect(upstream.hits).toHaveLength(2);
  });

  it('method and path must both match; clearFaults() disarms everything', async () => {
    proxy.inject({ method: 'POST', path: 'secret/data/app', kind: 'status', status: 500 });
    proxy.inject({ path: 'secret/data/other', kind: 'status', status: 500 });
    expect((await call(proxy.url, '/v1/secret/data/app')).status).toBe(200);
    expect((await call(proxy.url, '/v1/secret/data/app?version=2', { method: 'POST', body: '{}' })).status).toBe(500);
    expect((await call(proxy.url, '/v1/secret/data/other')).status).toBe(500);
    proxy.clearFaults();
    expect((await call(proxy.url, '/v1/secret/data/app', { method: 'POST', body: '{}' })).status).toBe(200);
    expect((await call(proxy.url, '/v1/secret/data/other')).status).toBe(200);
  });
});

describe('recording', () => {
  it('counts by method and path, and keeps credentials out of the record', async () => {
    const token = 'hvs.CAESIJ-very-secret-token-value';
    const headers = { 'x-vault-token': token, authorization: `Bearer ${token}`, 'x-vault-request': 'true' };
    await call(proxy.url, '/v1/secret/data/app', { headers });
    await call(proxy.url, '/v1/secret/data/app', { method: 'POST', headers, body: '{}' });
    await call(proxy.url, '/v1/secret/metadata/app', { headers });
    expect(upstream.hits[0]?.headers['x-vault-token']).toBe(token); // forwarded as it was
    expect(JSON.stringify(proxy.requests)).not.toContain('very-secret');
    expect(proxy.requests[0]?.headers).toMatchObject({
      'x-vault-token': REDACTED,
      authorization: REDACTED,
      'x-vault-request': 'true',
    });
    expect(proxy.count('GET', 'secret/data/app')).toBe(1);
    expect(proxy.count(undefined, 'secret/data/app')).toBe(2);
    expect(proxy.count('get', /^secret\//g)).toBe(2);
    expect(proxy.count(undefined, /^secret\//g)).toBe(3);
  });
});
