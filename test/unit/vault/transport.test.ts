// The transport's retry loop against a tiny local server that counts what reached it, on a fake
// clock (now and sleep advance together, so no test really waits): a GET that may mint a
// credential is retried only when the server provably did not act, a KV read after anything
// transient; Retry-After in seconds or as a date, capped; the overall deadline; redirects (followed
// within the origin, another origin tried again at 'url').
import { describe, expect, it } from 'vitest';
import { TransportError } from '../../../src/vault/exchange.ts';
import { answeredAfterUncertainTry, createQuotaTurns, createTransport, type TransportOptions } from '../../../src/vault/transport.ts';
import { QUOTA_RETRIES } from '../../../src/vault/retry.ts';
import { closedPort, json, reset, serve } from './local-server.ts';
import { rejected } from '../../support/errors.ts';

const START = Date.parse('2030-01-01T00:00:00Z');

function fakeClock() {
  let t = START;
  const slept: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      slept.push(ms);
      t += ms;
    },
    slept,
  };
}

function transport(over: Partial<TransportOptions> = {}) {
  const clock = fakeClock();
  const logs: string[] = [];
  const t = createTransport({
    deadline: START + 30_000,
    retries: 3,
    maxSockets: 2,
    now: clock.now,
    sleep: clock.sleep,
    random: () => 0,
    log: (message) => logs.push(message),
    ...over,
  });
  return { ...t, slept: clock.slept, logs };
}

const failure = (promise: Promise<unknown>): Promise<TransportError> => rejected(promise, TransportError);

describe('what is retried', () => {
  it('a GET of database/creds reset after the server read it is not retried, and may have acted', async () => {
    const server = await serve((_req, res) => reset(res));
    const t = transport();
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/database/creds/ci` }));
    expect(error.mayHaveActed).toBe(true);
    expect(server.hits()).toBe(1);
    t.close();
  });

  it.each([503, 429, 412])('a GET of database/creds answered %i in JSON (Vault did not act) is retried', async (status) => {
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

  it('a GET of database/creds answered with an HTML 503 (a proxy in between, which may have forwarded) is not retried', async () => {
    const server = await serve((_req, res) => void res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>busy</h1>'));
    const t = transport();
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/database/creds/ci` }));
    expect([error.code, error.mayHaveActed]).toEqual(['EBADBODY', true]);
    expect(server.hits()).toBe(1);
    t.close();
  });

  it('a login refused at connect (nothing sent) is retried, and succeeds once the server is up', async () => {
    const port = await closedPort();
    let up: Promise<unknown> | undefined;
    const t = transport({
      sleep: async () => {
        up ??= serve((_req, res) => json(res, 200, { auth: { client_token: 't' } }), port);
        await up;
      },
    });
    const response = await t.rp({ method: 'POST', uri: `http://127.0.0.1:${port}/v1/auth/approle/login`, json: {} });
    expect(response.statusCode).toBe(200);
    expect(t.logs).toEqual([expect.stringMatching(/^retry 1\/3 of POST auth\/approle\/login after ECONNREFUSED, waiting \d+ ms$/)]);
    t.close();
  });

  it('a login refused at connect every time fails after the last retry, not having reached Vault', async () => {
    const port = await closedPort();
    const t = transport();
    const error = await failure(t.rp({ method: 'POST', uri: `http://127.0.0.1:${port}/v1/auth/approle/login`, json: {} }));
    expect([error.code, error.mayHaveActed]).toEqual(['ECONNREFUSED', false]);
    expect(t.slept).toHaveLength(3);
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

  it('asks a lazy retrySafe only when a retry is in question, and then once', async () => {
    let asked = 0;
    const retrySafe = async (): Promise<boolean> => (asked++, true);
    const ok = await serve((_req, res) => json(res, 200, { data: {} }));
    const t = transport();
    await t.rp({ method: 'GET', uri: `${ok.url}/v1/secret/data/app`, retrySafe });
    expect(asked).toBe(0);
    const flaky = await serve((_req, res, n) => (n < 2 ? reset(res) : json(res, 200, { data: {} })));
    await t.rp({ method: 'GET', uri: `${flaky.url}/v1/secret/data/app`, retrySafe });
    expect([asked, flaky.hits()]).toEqual([1, 3]);
    t.close();
  });

  it('a lazy retrySafe that fails counts as not safe', async () => {
    const server = await serve((_req, res) => reset(res));
    const t = transport();
    await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app`, retrySafe: () => Promise.reject(new Error('lookup')) }));
    expect(server.hits()).toBe(1);
    t.close();
  });

  it("gives up after 'retries' retries and returns the last answer", async () => {
    const server = await serve((_req, res) => json(res, 503, { errors: ['sealed'] }));
    const t = transport({ retries: 2 });
    expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/sys/health` })).statusCode).toBe(503);
    expect(server.hits()).toBe(3);
    t.close();
  });

  it('sends X-Vault-Request: true on every request, retries included', async () => {
    const server = await serve((_req, res, n) => (n === 0 ? json(res, 503, { errors: ['sealed'] }) : json(res, 204, {})));
    const t = transport();
    await t.rp({ method: 'POST', uri: `${server.url}/v1/auth/approle/login`, json: {} });
    expect(server.requests.map((r) => r.headers['x-vault-request'])).toEqual(['true', 'true']);
    t.close();
  });
});

describe('answers after a try Vault may have acted on', () => {
  it('a 403 to a revoke-self retried after a reset is marked (the first try revoked the token)', async () => {
    const server = await serve((_req, res, n) => (n === 0 ? reset(res) : json(res, 403, { errors: ['permission denied'] })));
    const t = transport();
    const response = await t.rp({ method: 'POST', uri: `${server.url}/v1/auth/token/revoke-self` });
    expect(response.statusCode).toBe(403);
    expect(answeredAfterUncertainTry(response.body)).toBe(true);
    t.close();
  });

  it('a 403 after a 503 (Vault did not act) is not marked', async () => {
    const server = await serve((_req, res, n) =>
      n === 0 ? json(res, 503, { errors: ['sealed'] }) : json(res, 403, { errors: ['denied'] }),
    );
    const t = transport();
    const response = await t.rp({ method: 'POST', uri: `${server.url}/v1/auth/token/revoke-self` });
    expect(answeredAfterUncertainTry(response.body)).toBe(false);
    t.close();
  });

  it('a KV read reset every time fails as one Vault may have acted on', async () => {
    const server = await serve((_req, res) => reset(res));
    const t = transport({ retries: 1 });
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app`, retrySafe: true }));
    expect([error.code, error.mayHaveActed, server.hits()]).toEqual(['ECONNRESET', true, 2]);
    t.close();
  });
});

describe('waits', () => {
  it('backs off 25, 50, 100 ms (jitter 0) between tries', async () => {
    const server = await serve((_req, res, n) => (n < 3 ? json(res, 503, { errors: ['sealed'] }) : json(res, 200, {})));
    const t = transport();
    await t.rp({ method: 'GET', uri: `${server.url}/v1/sys/health` });
    expect(t.slept).toEqual([25, 50, 100]);
    expect(t.logs[2]).toBe('retry 3/3 of GET sys/health after status 503, waiting 100 ms');
    t.close();
  });

  it('jitters each wait over the upper half of its step', async () => {
    const server = await serve((_req, res, n) => (n < 2 ? json(res, 503, { errors: ['sealed'] }) : json(res, 200, {})));
    const t = transport({ random: () => 0.5 });
    await t.rp({ method: 'GET', uri: `${server.url}/v1/sys/health` });
    expect(t.slept).toEqual([38, 75]);
    t.close();
  });

  it.each([
    ['seconds', '2', 2000],
    ['an HTTP date', new Date(START + 5000).toUTCString(), 5000],
    ['seconds past the cap', '3600', 60_000],
    ['a date past the cap', new Date(START + 3_600_000).toUTCString(), 60_000],
  ])('honours a Retry-After in %s (%s): waits %i ms', async (_what, header, expected) => {
    const server = await serve((_req, res, n) =>
      n === 0 ? json(res, 429, { errors: ['rate limited'] }, { 'retry-after': header }) : json(res, 200, {}),
    );
    // The renewal agent's settings: no overall deadline, so only the cap bounds the wait.
    const t = transport({ deadline: Number.POSITIVE_INFINITY, requestTimeoutMs: 5000 });
    await t.rp({ method: 'POST', uri: `${server.url}/v1/auth/approle/login`, json: {} });
    expect(t.slept).toEqual([expected]);
    t.close();
  });
});

describe('a quota refusing to the last retry', () => {
  const refusal = { errors: ['request path "secret/data/app": rate limit quota exceeded'] };

  it("spends its own budget, not 'retries', and fails naming the quota and what to change, not as a bare 429", async () => {
    const server = await serve((_req, res) => json(res, 429, refusal));
    const t = transport({ retries: 2, deadline: START + 3_600_000 });
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` }));
    expect([error.code, error.mayHaveActed]).toEqual(['EQUOTA', false]);
    expect(error.message).toBe(
      `gave up on GET secret/data/app: Vault answered 429 request path "secret/data/app": rate limit quota exceeded (a Vault quota), ${QUOTA_RETRIES} retries spent: raise the quota (sys/quotas/rate-limit), lower 'concurrency', or raise 'timeout'`,
    );
    expect(server.hits()).toBe(QUOTA_RETRIES + 1);
    t.close();
  });

  it("gets through after more refusals than 'retries' allows failures, within the deadline", async () => {
    const server = await serve((_req, res, n) => (n < 5 ? json(res, 429, refusal) : json(res, 200, { data: {} })));
    const t = transport({ retries: 2 });
    expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` })).statusCode).toBe(200);
    expect(server.hits()).toBe(6);
    t.close();
  });

  it("with 'retries: 0' a 429 is not retried either", async () => {
    const server = await serve((_req, res) => json(res, 429, refusal));
    const t = transport({ retries: 0 });
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` }));
    expect(error.code).toBe('EQUOTA');
    expect(error.message).toMatch(/0 retries spent: raise the quota/);
    expect(server.hits()).toBe(1);
    t.close();
  });

  it("a failure after refusals still spends 'retries' only for itself", async () => {
    const server = await serve((_req, res, n) => (n < 3 ? json(res, 429, refusal) : json(res, 503, { errors: ['sealed'] })));
    const t = transport({ retries: 2 });
    expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` })).statusCode).toBe(503);
    expect(server.hits()).toBe(3 + 3);
    t.close();
  });

  it('waits as for Retry-After "0" when the 429 has none (spread over 1 s, then 2 s)', async () => {
    const server = await serve((_req, res, n) => (n < 2 ? json(res, 429, { errors: ['rate limit quota exceeded'] }) : json(res, 200, {})));
    const t = transport({ random: () => 0.5 });
    await t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` });
    expect(t.slept).toEqual([500, 1000]);
    t.close();
  });

  it('says so too when the timeout ends the retries', async () => {
    const server = await serve((_req, res) => json(res, 429, { errors: ['rate limit quota exceeded'] }, { 'retry-after': '10' }));
    const t = transport({ deadline: START + 5000 });
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` }));
    expect(error.message).toMatch(
      /the 'timeout' input would run out before the next try; Vault answered 429 rate limit quota exceeded \(a Vault quota\), 0 retries spent: raise the quota/,
    );
    t.close();
  });
});

describe('the deadline', () => {
  it('once passed, starts no request and says so, naming the path', async () => {
    const server = await serve((_req, res) => json(res, 200, {}));
    const t = transport({ deadline: START });
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` }));
    expect([error.code, error.message]).toEqual(['ETIMEDOUT', "gave up on GET secret/data/app: the 'timeout' input ran out"]);
    expect(server.hits()).toBe(0);
    t.close();
  });

  it('no retry whose wait would end past it: fails at once, naming the path and the last outcome', async () => {
    const server = await serve((_req, res) => json(res, 503, { errors: ['sealed'] }));
    // Waits 50, 100, 200, 400 (750 ms in all); the next, 800, would end at 1550 > 1000.
    const t = transport({ deadline: START + 1000, retries: 10, random: () => 0.999_999 });
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/database/creds/ci` }));
    expect(error.message).toBe("gave up on GET database/creds/ci after status 503: the 'timeout' input would run out before the next try");
    expect(t.slept).toEqual([50, 100, 200, 400]);
    expect(server.hits()).toBe(5);
    t.close();
  });

  it('a Retry-After reaching past it is not waited for', async () => {
    const server = await serve((_req, res) => json(res, 429, { errors: ['rate limited'] }, { 'retry-after': '10' }));
    const t = transport({ deadline: START + 5000 });
    const error = await failure(t.rp({ method: 'POST', uri: `${server.url}/v1/auth/approle/login`, json: {} }));
    expect(error.message).toMatch(/^gave up on POST auth\/approle\/login after status 429: the 'timeout' input would run out/);
    expect([t.slept, server.hits()]).toEqual([[], 1]);
    t.close();
  });

  it('bounds one answer by requestTimeoutMs when the deadline is open-ended', async () => {
    const server = await serve(() => {}); // never answers
    const t = transport({ deadline: Number.POSITIVE_INFINITY, requestTimeoutMs: 30, retries: 0 });
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/sys/health` }));
    expect(error.code).toBe('ETIMEDOUT');
    t.close();
  });
});

describe('cancel', () => {
  it('starts no request after it', async () => {
    const server = await serve((_req, res) => json(res, 200, {}));
    const t = transport();
    t.cancel('SIGINT');
    const error = await failure(t.rp({ method: 'GET', uri: `${server.url}/v1/sys/health` }));
    expect([error.code, error.message]).toEqual(['ECANCELED', 'GET sys/health not sent: the job was cancelled (SIGINT)']);
    expect(server.hits()).toBe(0);
    t.close();
  });

  it('starts no retry after it either', async () => {
    const server = await serve((_req, res) => json(res, 503, { errors: ['sealed'] }));
    const t = transport({
      sleep: async () => {
        t.cancel('SIGTERM');
      },
    });
    await expect(t.rp({ method: 'GET', uri: `${server.url}/v1/sys/health` })).rejects.toThrow('cancelled (SIGTERM)');
    expect(server.hits()).toBe(1);
    t.close();
  });
});

describe('a KV v2 mount checking its layout after a failover', () => {
  const upgrading = {
    errors: [
      'Waiting for the primary to upgrade from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service when the primary is finished.',
    ],
  };

  it('its 400 is tried again (the mount refused before handling), even for a call that may mint', async () => {
    const server = await serve((_req, res, n) => (n < 2 ? json(res, 400, upgrading) : json(res, 200, { data: {} })));
    const t = transport();
    expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` })).statusCode).toBe(200);
    expect(server.hits()).toBe(3);
    t.close();
  });

  it('any other 400 is final', async () => {
    const server = await serve((_req, res) => json(res, 400, { errors: ['invalid request'] }));
    const t = transport();
    expect((await t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/app` })).statusCode).toBe(400);
    expect(server.hits()).toBe(1);
    t.close();
  });
});

describe('307 from a standby', () => {
  it('follows to the same origin, method and body kept, without counting it as a retry', async () => {
    const server = await serve((req, res, _n, body) =>
      req.url?.startsWith('/active/')
        ? json(res, 200, { method: req.method, body })
        : void res.writeHead(307, { location: `/active${req.url}` }).end(),
    );
    const t = transport({ retries: 0 });
    const response = await t.rp({ method: 'POST', uri: `${server.url}/v1/pki/issue/ci`, json: { common_name: 'a' } });
    expect(response.body).toEqual({ method: 'POST', body: '{"common_name":"a"}' });
    expect(t.slept).toEqual([]);
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
    // Tried again at 'url' (retries: 3) before giving up: the standby did not act.
    expect(server.hits()).toBe(4);
    t.close();
  });

  it("tries 'url' again after a redirect to another origin, even a login: behind a load balancer the next try may reach a node that answers", async () => {
    const active = await serve((_req, res) => json(res, 200, {}));
    const front = await serve((req, res, n) =>
      n === 0 ? void res.writeHead(307, { location: `${active.url}${req.url}` }).end() : json(res, 200, { auth: { client_token: 't' } }),
    );
    const t = transport();
    const response = await t.rp({ method: 'POST', uri: `${front.url}/v1/auth/approle/login`, json: { role_id: 'r' } });
    expect(response.statusCode).toBe(200);
    expect(front.hits()).toBe(2);
    expect(active.hits()).toBe(0);
    expect(t.logs).toEqual(['retry 1/3 of POST auth/approle/login after a redirect to another origin, waiting 25 ms']);
    t.close();
  });

  it('stops after 3 redirects, and on one with no Location', async () => {
    const loop = await serve((req, res) => void res.writeHead(307, { location: req.url ?? '/' }).end());
    const t = transport();
    await expect(t.rp({ method: 'GET', uri: `${loop.url}/v1/sys/health` })).rejects.toThrow('redirected GET sys/health more than 3 times');
    expect(loop.hits()).toBe(4);
    const bare = await serve((_req, res) => void res.writeHead(307).end());
    await expect(t.rp({ method: 'GET', uri: `${bare.url}/v1/sys/health` })).rejects.toThrow(
      'answered GET sys/health with 307 but no usable Location',
    );
    t.close();
  });
});

/** A clock whose sleeps end only when the test moves it on: what runs in between is what the code lets run. */
function steppedClock() {
  let t = START;
  let timers: Array<{ at: number; resolve: () => void }> = [];
  return {
    now: () => t,
    sleep: (ms: number) => new Promise<void>((resolve) => timers.push({ at: t + ms, resolve })),
    sleeping: () => timers.length,
    async advanceTo(at: number): Promise<void> {
      t = at;
      const due = timers.filter((x) => x.at <= at);
      timers = timers.filter((x) => x.at > at);
      for (const x of due) x.resolve();
      await settle();
    },
  };
}
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe("after a 429 the client's requests take turns", () => {
  it('no limit before any refusal', async () => {
    const clock = steppedClock();
    const turns = createQuotaTurns({ ...clock, open: 4 });
    const entered = await Promise.all(Array.from({ length: 20 }, () => turns.enter(START + 30_000)));
    expect(entered.every(Boolean)).toBe(true);
    expect(clock.sleeping()).toBe(0);
  });

  it('nothing starts until the refused retry is due, then one at a time, one more with each answer, unlimited again after `open`', async () => {
    const clock = steppedClock();
    const turns = createQuotaTurns({ ...clock, open: 3 });
    expect(await turns.enter(START + 30_000)).toBe(true);
    turns.refused(START + 1000, 'the refusal');
    turns.leave();
    let inside = 0;
    const go = (): Promise<void> => turns.enter(START + 30_000).then(() => void inside++);
    const waiting = Array.from({ length: 6 }, go);
    await settle();
    expect([inside, clock.sleeping()]).toEqual([0, 6]);
    await clock.advanceTo(START + 999);
    expect(inside).toBe(0);
    await clock.advanceTo(START + 1000);
    expect(inside).toBe(1);
    // An answer that is not a 429: two at once.
    turns.answered();
    turns.leave();
    await settle();
    expect(inside).toBe(3);
    turns.answered(); // limit 3 = open: unlimited from the next answer on
    turns.answered();
    await settle();
    expect(inside).toBe(6);
    await Promise.all(waiting);
  });

  it('a new 429 puts it back to one', async () => {
    const clock = steppedClock();
    const turns = createQuotaTurns({ ...clock, open: 8 });
    turns.refused(START, 'first');
    for (let i = 0; i < 5; i++) turns.answered();
    turns.refused(START, 'second');
    let inside = 0;
    const waiting = Array.from({ length: 3 }, () => turns.enter(START + 30_000).then(() => void inside++));
    await settle();
    expect(inside).toBe(1);
    expect(turns.refusal).toBe('second');
    turns.leave();
    await settle();
    expect(inside).toBe(2);
    turns.leave();
    turns.leave();
    await Promise.all(waiting);
  });

  it('gives up at once, taking no turn, when the wait reaches the deadline', async () => {
    const clock = steppedClock();
    const turns = createQuotaTurns({ ...clock, open: 8 });
    turns.refused(START + 5000, 'the refusal');
    expect(await turns.enter(START + 5000)).toBe(false);
    expect(clock.sleeping()).toBe(0);
  });

  it('through the transport: requests started while a 429 waits reach Vault only after that wait, and each is answered', async () => {
    const server = await serve((_req, res, n) =>
      n === 0 ? json(res, 429, { errors: ['rate limit quota exceeded'] }, { 'retry-after': '1' }) : json(res, 200, { data: {} }),
    );
    const clock = steppedClock();
    const t = createTransport({ deadline: START + 30_000, retries: 1, maxSockets: 4, now: clock.now, sleep: clock.sleep, random: () => 0 });
    const first = t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/a` });
    while (clock.sleeping() === 0) await new Promise((resolve) => setImmediate(resolve));
    const later = ['b', 'c', 'd'].map((p) => t.rp({ method: 'GET', uri: `${server.url}/v1/secret/data/${p}` }));
    // The first one's retry and the three later ones all wait on the clock; none reached Vault.
    while (clock.sleeping() < 4) await new Promise((resolve) => setImmediate(resolve));
    expect(server.hits()).toBe(1);
    await clock.advanceTo(START + 1000);
    const answers = await Promise.all([first, ...later]);
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200]);
    expect(server.hits()).toBe(5);
    t.close();
  });
});
