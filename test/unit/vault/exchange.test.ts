// One exchange with Vault against a local server: the headers it sends, what it makes of the
// answer (JSON, empty, cut off, plain HTTP to a TLS listener), the lease it reports before an
// answer is discarded, and socket failures said as what to check.
import { describe, expect, it } from 'vitest';
import { createExchange, leaseIn, type LeaseSeen, TransportError } from '../../../src/vault/exchange.ts';
import { closedPort, json, serve } from './local-server.ts';
import { rejected } from '../../support/errors.ts';

function exchange(leases: LeaseSeen[] = []) {
  return createExchange({ maxSockets: 2, onLease: (lease) => leases.push(lease) });
}

const failure = (promise: Promise<unknown>): Promise<TransportError> => rejected(promise, TransportError);

describe('the request', () => {
  it('carries X-Vault-Request: true (whatever the caller set), accept JSON, and a JSON body with its length', async () => {
    const server = await serve((_req, res) => json(res, 200, {}));
    const e = exchange();
    const url = new URL(`${server.url}/v1/auth/approle/login`);
    await e.send({ method: 'POST', uri: url.href, json: { role_id: 'r' }, headers: { 'X-Vault-Request': 'false' } }, url, 5000);
    const [request] = server.requests;
    expect(request?.headers['x-vault-request']).toBe('true');
    expect(request?.headers.accept).toBe('application/json');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['content-length']).toBe(String('{"role_id":"r"}'.length));
    expect(request?.body).toBe('{"role_id":"r"}');
    e.close();
  });

  it("carries extra-headers on every request, under the action's own (a token or namespace from the caller wins)", async () => {
    const server = await serve((_req, res) => json(res, 200, {}));
    const e = createExchange({ maxSockets: 2, headers: { 'x-gateway-key': 'gw-1', 'x-vault-token': 'from-headers' } });
    const url = new URL(`${server.url}/v1/secret/data/app`);
    await e.send({ method: 'GET', uri: url.href, headers: { 'X-Vault-Token': 'the-token' } }, url, 5000);
    await e.send({ method: 'GET', uri: url.href }, url, 5000);
    expect(server.requests.map((r) => [r.headers['x-gateway-key'], r.headers['x-vault-token']])).toEqual([
      ['gw-1', 'the-token'],
      ['gw-1', 'from-headers'],
    ]);
    e.close();
  });
});

describe('the answer', () => {
  it('parses a JSON body and keeps status and headers; an empty body is no body', async () => {
    const server = await serve((_req, res, n) =>
      n === 0 ? json(res, 429, { errors: ['rate limited'] }, { 'retry-after': '2' }) : void res.writeHead(204).end(),
    );
    const e = exchange();
    const url = new URL(`${server.url}/v1/sys/leases/revoke`);
    const limited = await e.send({ method: 'PUT', uri: url.href }, url, 5000);
    expect([limited.statusCode, limited.body, limited.headers['retry-after']]).toEqual([429, { errors: ['rate limited'] }, '2']);
    const empty = await e.send({ method: 'PUT', uri: url.href }, url, 5000);
    expect([empty.statusCode, empty.body]).toEqual([204, undefined]);
    e.close();
  });

  it('fails a body that is not JSON (an HTML 503 from a proxy in between) as EBADBODY', async () => {
    const server = await serve((_req, res) => void res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>'));
    const e = exchange();
    const url = new URL(`${server.url}/v1/secret/data/app`);
    const error = await failure(e.send({ method: 'GET', uri: url.href }, url, 5000));
    expect([error.code, error.message]).toEqual(['EBADBODY', `Vault at 127.0.0.1:${server.port} sent a response that is not JSON`]);
    e.close();
  });

  it("says to use https:// when a TLS listener answers plain HTTP with Go's 400", async () => {
    const server = await serve((_req, res) => void res.writeHead(400).end('Client sent an HTTP request to an HTTPS server.\n'));
    const e = exchange();
    const url = new URL(`${server.url}/v1/sys/health`);
    const error = await failure(e.send({ method: 'GET', uri: url.href }, url, 5000));
    expect(error.code).toBe('EHTTPTOHTTPS');
    expect(error.message).toBe(`Vault at 127.0.0.1:${server.port} is an HTTPS server: use https:// in 'url' (or VAULT_ADDR)`);
    e.close();
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
    const e = exchange(leases);
    const url = new URL(`${server.url}/v1/database/creds/ci`);
    await expect(e.send({ method: 'GET', uri: url.href }, url, 5000)).rejects.toThrow(/not JSON/);
    expect(leases).toEqual([{ leaseId: 'database/creds/ci/abc', path: 'database/creds/ci', duration: 600, renewable: true }]);
    e.close();
  });

  it('reports the lease of an error answer too (a 500 beside a lease Vault issued)', async () => {
    const server = await serve((_req, res) => json(res, 500, { lease_id: 'pki/issue/ci/x', lease_duration: 60, errors: ['oops'] }));
    const leases: LeaseSeen[] = [];
    const e = exchange(leases);
    const url = new URL(`${server.url}/v1/pki/issue/ci`);
    expect((await e.send({ method: 'POST', uri: url.href, json: {} }, url, 5000)).statusCode).toBe(500);
    expect(leases).toEqual([{ leaseId: 'pki/issue/ci/x', path: 'pki/issue/ci', duration: 60, renewable: false }]);
    e.close();
  });

  it('takes only the id, duration and renewable out of a body: never a value', () => {
    expect(leaseIn(undefined, '{"lease_id":"a/b/c","lease_duration":30,"data":{"k":"v"')).toEqual({
      leaseId: 'a/b/c',
      duration: 30,
      renewable: false,
    });
    expect(leaseIn({ lease_id: 'a/b', lease_duration: 'x', renewable: true, data: { k: 'v' } }, '')).toEqual({
      leaseId: 'a/b',
      duration: undefined,
      renewable: true,
    });
    expect(leaseIn({ lease_id: '' }, '')).toBeUndefined();
    expect(leaseIn(undefined, '<html>')).toBeUndefined();
  });
});

describe('socket failures', () => {
  it('a refused connection names the host', async () => {
    const port = await closedPort();
    const e = exchange();
    const url = new URL(`http://127.0.0.1:${port}/v1/sys/health`);
    const error = await failure(e.send({ method: 'GET', uri: url.href }, url, 5000));
    expect([error.code, error.message]).toEqual(['ECONNREFUSED', `cannot reach Vault at 127.0.0.1:${port}: connection refused`]);
    e.close();
  });

  it('an answer slower than the timeout fails as ETIMEDOUT', async () => {
    const server = await serve(() => {}); // never answers
    const e = exchange();
    const url = new URL(`${server.url}/v1/sys/health`);
    const error = await failure(e.send({ method: 'GET', uri: url.href }, url, 30));
    expect([error.code, error.message]).toEqual(['ETIMEDOUT', `Vault at 127.0.0.1:${server.port} did not answer in time`]);
    e.close();
  });
});
