// The transport's retry, redirect and lease-recording rules, against a tiny local server that
// counts what reached it: a GET that may mint a credential is retried only when the server
// provably did not act; a KV read may be retried after anything transient.
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport, isIdempotent, leaseIn, type LeaseSeen, TransportError } from '../../../src/vault/transport.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;
let servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  servers = [];
});

async function serve(handler: Handler): Promise<{ url: string; hits: () => number; headers: http.IncomingHttpHeaders[] }> {
  let n = 0;
  const headers: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    headers.push(req.headers);
    req.resume();
    req.on('end', () => handler(req, res, n++));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => n, headers };
}

const reset = (res: http.ServerResponse): void => void (res.socket as Socket).resetAndDestroy();
const json = (res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void =>
  void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

function transport(leases: LeaseSeen[] = []) {
  return createTransport({
    deadline: Date.now() + 10_000,
    retries: 3,
    maxSockets: 2,
    sleep: async () => {},
    onLease: (lease) => leases.push(lease),
  });
}

describe('isIdempotent', () => {
  it.each([
    ['GET', '/v1/sys/internal/ui/mounts/secret/app', true],
    ['GET', '/v1/auth/token/lookup-self', true],
    ['GET', '/v1/database/creds/ci', false],
    ['GET', '/v1/secret/data/app', false], // a KV read is marked by its caller, not guessed from the path
    ['LIST', '/v1/secret/metadata/', true],
    ['POST', '/v1/auth/token/revoke-self', true],
    ['PUT', '/v1/sys/leases/revoke', true],
    ['POST', '/v1/auth/approle/login', false],
    ['POST', '/v1/pki/issue/ci', false],
  ])('%s %s: %s', (method, path, expected) => {
    expect(isIdempotent(method, path)).toBe(expected);
  });
});

describe('retries', () => {
  it('a GET of database/creds reset after the server read it is not retried', async () => {
    const server = await serve((_req, res) => reset(res));
    const t = transport();
    await expect(t.rp({ method: 'GET', uri: `${server.url}/v1/database/creds/ci` })).rejects.toBeInstanceOf(TransportError);
    expect(server.hits()).toBe(1);
    t.close();
  });

  it.each([503, 429, 412])('a GET of database/creds answered %i (Vault did not act) is retried', async (status) => {
    const server = await serve((_req, res, n) => (n === 0 ? json(res, status, { errors: ['not now'] }) : json(res, 200, { data: {} })));
    const t = transport();
    expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/database/creds/ci` })).statusCode).toBe(200);
    expect(server.hits()).toBe(2);
    t.close();
  });

  it('a GET of database/creds answered 500 is not retried (Vault may have acted)', async () => {
    const server = await serve((_req, res) => json(res, 500, { errors: ['internal error'] }));
    const t = transport();
    expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/database/creds/ci` })).statusCode).toBe(500);
    expect(server.hits()).toBe(1);
    t.close();
  });

  it('a KV read (retrySafe, also when asked lazily) is retried after a reset', async () => {
    for (const retrySafe of [true, () => Promise.resolve(true)]) {
      const server = await serve((_req, res, n) => (n === 0 ? reset(res) : json(res, 200, { data: { data: {}, metadata: {} } })));
      const t = transport();
      expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app`, retrySafe })).statusCode).toBe(200);
      expect(server.hits()).toBe(2);
      t.close();
    }
  });

  it('sends X-Vault-Request: true on every request', async () => {
    const server = await serve((_req, res, n) => (n === 0 ? json(res, 503, { errors: ['sealed'] }) : json(res, 204, {})));
    const t = transport();
    await t.rp({ method: 'POST', uri: `${server.url}/v1/auth/approle/login`, json: {} });
    expect(server.headers.map((h) => h['x-vault-request'])).toEqual(['true', 'true']);
    t.close();
  });
});

describe('leases on answers that are then discarded', () => {
  it('reports the lease of a body cut off mid-JSON, then fails it as malformed', async () => {
    const body = JSON.stringify({
      request_id: 'r',
      lease_id: 'database/creds/ci/abc',
      renewable: true,
      lease_duration: 600,
      data: { password: 'x'.repeat(40) },
    });
    const server = await serve(
      (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(body.slice(0, body.length - 20)),
    );
    const leases: LeaseSeen[] = [];
    const t = transport(leases);
    await expect(t.rp({ method: 'GET', uri: `${server.url}/v1/database/creds/ci` })).rejects.toThrow(/not JSON/);
    expect(leases).toEqual([{ leaseId: 'database/creds/ci/abc', path: 'database/creds/ci', duration: 600, renewable: true }]);
    t.close();
  });

  it('takes only the id, duration and renewable out of a body: never a value', () => {
    expect(leaseIn(undefined, '{"lease_id":"a/b/c","lease_duration":30,"data":{"k":"v"')).toEqual({
      leaseId: 'a/b/c',
      duration: 30,
      renewable: false,
    });
    expect(leaseIn({ lease_id: '' }, '')).toBeUndefined();
  });
});

describe('307 from a standby', () => {
  it('follows to the same origin, method and body kept', async () => {
    const server = await serve((req, res) =>
      req.url?.startsWith('/active/')
        ? json(res, 200, { method: req.method })
        : void res.writeHead(307, { location: `/active${req.url}` }).end(),
    );
    const t = transport();
    const response = await t.rp({ method: 'POST', uri: `${server.url}/v1/pki/issue/ci`, json: { common_name: 'a' } });
    expect(response.body).toEqual({ method: 'POST' });
    t.close();
  });

  it('refuses another origin, naming it, and never sends the request there', async () => {
    const other = await serve((_req, res) => json(res, 200, {}));
    const server = await serve((req, res) => void res.writeHead(307, { location: `${other.url}${req.url}` }).end());
    const t = transport();
    await expect(t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` })).rejects.toThrow(
      `redirected GET secret/data/app to ${other.url}/v1/secret/data/app`,
    );
    expect(other.hits()).toBe(0);
    t.close();
  });
});
