// A fault-injecting reverse proxy in front of a real Vault-compatible server (OpenBao).
//
// Why a stand-in at all: nothing real can inject faults between a client and a real Vault on cue
// (a 503 on the third read, a connection reset after the server minted a credential, a body cut
// off mid-JSON). So this small node:http proxy sits in the one place where such faults happen in
// life, between the two, and everything it does not break is the real server's own answer: a
// retried request is answered by OpenBao, and what OpenBao did (tokens, leases) is asked of it.
//
// Faults are FaultSpecs (test/support/services/faults.ts, the matcher the retired Vault double had, with the same
// `times`/`skip` bookkeeping), plus kinds only a proxy can give: 'reset-after' and 'status-after'
// let the server act and then lose or replace its answer. Requests are recorded with what the
// client actually got; credentials in headers are recorded as present, never in clear.

import http from 'node:http';
import type { Socket } from 'node:net';
import { type FaultSpec, Faults, faultMessages } from './faults.ts';

export type ProxyFaultKind = FaultSpec['kind'] | 'reset-after' | 'status-after';

/**
 * - 'status': answered here with `status` (default 500), a Vault-style error body and Retry-After
 *   when `retryAfter` is set; the server never sees the request.
 * - 'reset': the client's connection is reset before forwarding; the server never sees it.
 * - 'reset-after': forwarded, the server's whole answer read, then the client's connection reset
 *   without it: the server DID act.
 * - 'malformed': forwarded, then 200 with the server's answer cut off so it is not JSON.
 * - 'status-after': forwarded (the server acts), its answer replaced by `status` + error body.
 * - 'latency': `latencyMs` more, then later faults or normal forwarding.
 * - 'hang': never answered; the connection stays open until the client gives up or stop().
 */
export interface ProxyFaultSpec extends Omit<FaultSpec, 'kind'> {
  kind: ProxyFaultKind;
}

export interface RecordedRequest {
  method: string;
  /** Decoded path after /v1/, without query. */
  path: string;
  query: string;
  /** The status the client got; undefined when its connection was reset or never answered. */
  status: number | undefined;
  /** The real server's status, when it was asked; undefined when the proxy alone decided. */
  upstreamStatus: number | undefined;
  /** Request headers, lower-cased names; credentials as REDACTED (presence only), never their values. */
  headers: Record<string, string>;
  /** Kinds of the faults that hit this request, in order (latencies before the one that decided). */
  faults: ProxyFaultKind[];
  /** Epoch ms when it arrived. */
  at: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT, to give the client instead of the server's address. */
  readonly url: string;
  /** Added before every request is handled (benchmarks: a slower network). */
  latencyMs: number;
  readonly requests: RecordedRequest[];
  inject(spec: ProxyFaultSpec): void;
  clearFaults(): void;
  /** Recorded requests of `method` (any when undefined) whose path equals or matches `path`. */
  count(method: string | undefined, path: string | RegExp): number;
  /** Closes the listener and destroys every open connection, hung ones included. */
  stop(): Promise<void>;
}

export const REDACTED = '<redacted>';
// Headers that carry a credential: tests search recordings for leaked values, so only presence is kept.
const SECRET_HEADERS = new Set(['x-vault-token', 'authorization', 'proxy-authorization', 'cookie']);
// RFC 9110 §7.6.1: connection-specific, never forwarded. Content-Length is set from the buffered body.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
]);
// Vault's listener keeps idle connections 5 minutes (http_idle_timeout); Node's 5 s default would
// close keep-alive sockets under a client that reuses them and cause resets nobody injected.
const IDLE_TIMEOUT_MS = 300_000;

export async function startFaultProxy(upstream: string, opts: { latencyMs?: number } = {}): Promise<FaultProxy> {
  const up = new URL(upstream);
  if (up.protocol !== 'http:') throw new Error(`fault proxy: upstream must be plain http, got ${upstream}`);
  const proxy = new FaultProxyServer(up, opts.latencyMs ?? 0);
  await proxy.listen();
  return proxy;
}

/** One request/response pair, from Node's HTTP parser or the hand-parsed LIST fallback. */
interface Exchange {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Promise<Buffer>;
  /** False when the client was gone already, so nothing reached it. */
  send(status: number, headers: http.OutgoingHttpHeaders, body: Buffer | string): boolean;
  reset(): void;
}

interface Answer {
  status: number;
  headers: http.OutgoingHttpHeaders;
  body: Buffer | string;
}

class FaultProxyServer implements FaultProxy {
  readonly #upstream: URL;
  readonly #faults = new Faults();
  readonly #server: http.Server;
  readonly #agent = new http.Agent({ keepAlive: true });
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  url = '';
  latencyMs: number;
  readonly requests: RecordedRequest[] = [];

  constructor(upstream: URL, latencyMs: number) {
    this.#upstream = upstream;
    this.latencyMs = latencyMs;
    this.#server = http.createServer((req, res) => this.#serve(nodeExchange(req, res)));
    this.#server.keepAliveTimeout = IDLE_TIMEOUT_MS;
    this.#server.on('connection', (sock: Socket) => {
      this.#sockets.add(sock);
      sock.on('close', () => this.#sockets.delete(sock));
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, sock: Socket) => {
      const ex = err.code === 'HPE_INVALID_METHOD' && err.rawPacket ? rawListExchange(sock, err.rawPacket) : undefined;
      if (ex) this.#serve(ex);
      else if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else sock.destroy();
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const addr = this.#server.address();
    if (addr === null || typeof addr === 'string') throw new Error('fault proxy: unexpected server address');
    this.url = `http://127.0.0.1:${addr.port}`;
  }

  inject(spec: ProxyFaultSpec): void {
    // Faults only looks at `kind` to tell 'latency' (which lets later faults follow) from the rest,
    // so the kinds added here are kept and handed back by take() as they were given.
    this.#faults.inject(spec as unknown as FaultSpec);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  count(method: string | undefined, path: string | RegExp): number {
    const m = method?.toUpperCase();
    const re = typeof path === 'string' ? undefined : new RegExp(path.source, path.flags.replace('g', ''));
    return this.requests.filter((r) => (m === undefined || r.method === m) && (re ? re.test(r.path) : r.path === path)).length;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    this.#agent.destroy();
    await closed;
  }

  /** Resolves after `ms`, or never once stopped (the handler waiting on it is dropped). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped) return;
      const t = setTimeout(() => {
        this.#timers.delete(t);
        resolve();
      }, ms);
      this.#timers.add(t);
    });
  }

  #serve(ex: Exchange): void {
    this.#handle(ex).catch(() => ex.reset());
  }

  async #handle(ex: Exchange): Promise<void> {
    const url = new URL(ex.url, 'http://proxy.invalid');
    const pathname = decodePath(url.pathname);
    const path = pathname.startsWith('/v1/') ? pathname.slice('/v1/'.length) : pathname.replace(/^\//, '');
    const rec: RecordedRequest = {
      method: ex.method,
      path,
      query: url.search.replace(/^\?/, ''),
      status: undefined,
      upstreamStatus: undefined,
      headers: recordedHeaders(ex.headers),
      faults: [],
      at: Date.now(),
    };
    this.requests.push(rec);
    const body = await ex.body;
    if (this.latencyMs > 0) await this.#sleep(this.latencyMs);

    let fault: ProxyFaultSpec | undefined;
    for (const f of this.#faults.take(ex.method, path) as unknown as ProxyFaultSpec[]) {
      rec.faults.push(f.kind);
      if (f.kind === 'latency') await this.#sleep(f.latencyMs ?? 0);
      else fault = f;
    }
    if (this.#stopped) return;
    const send = (a: Answer): void => {
      if (ex.send(a.status, a.headers, a.body)) rec.status = a.status;
    };

    // Decided here: the server never sees the request.
    if (fault?.kind === 'hang') return; // stop() or the client closes the connection
    if (fault?.kind === 'reset') return ex.reset();
    if (fault?.kind === 'status') return send(errorAnswer(fault.status ?? 500, path, fault.retryAfter));

    let answer: Answer;
    try {
      answer = await this.#forward(ex, body);
      rec.upstreamStatus = answer.status;
    } catch (e) {
      // As a load balancer in front of a dead Vault would: a 502 naming why, so a test log shows it.
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      answer = jsonAnswer(502, { errors: [`fault proxy: upstream ${this.#upstream.host}: ${code}`] });
    }
    if (this.#stopped) return;

    // The server has acted; what the client gets of it is decided here.
    if (fault?.kind === 'reset-after') return ex.reset();
    if (fault?.kind === 'malformed') {
      return send({
        status: 200,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
        body: malformed(answer.body),
      });
    }
    if (fault?.kind === 'status-after') return send(errorAnswer(fault.status ?? 500, path, fault.retryAfter));
    send(answer);
  }

  /** The request as the client sent it (host rewritten), and the server's whole answer. */
  #forward(ex: Exchange, body: Buffer): Promise<Answer> {
    const headers = forwardHeaders(ex.headers);
    headers.host = this.#upstream.host;
    if (body.length > 0 || ex.headers['content-length'] !== undefined || ex.headers['transfer-encoding'] !== undefined) {
      headers['content-length'] = String(body.length);
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.#upstream.hostname,
          port: this.#upstream.port || 80,
          method: ex.method,
          path: ex.url,
          headers,
          agent: this.#agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const out = forwardHeaders(res.headers);
            const text = Buffer.concat(chunks);
            const status = res.statusCode ?? 502;
            // A HEAD, 204 or 304 has no body: its Content-Length (if any) stays what the server said.
            if (ex.method === 'HEAD' || status === 204 || status === 304) {
              if (res.headers['content-length'] !== undefined) out['content-length'] = res.headers['content-length'];
            } else {
              out['content-length'] = String(text.length);
            }
            resolve({ status, headers: out, body: text });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}

function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

function recordedHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = SECRET_HEADERS.has(k) ? REDACTED : Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** End-to-end headers: hop-by-hop ones dropped, with those the Connection header names. */
function forwardHeaders(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(h.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase()),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

function jsonAnswer(status: number, body: unknown, extra: http.OutgoingHttpHeaders = {}): Answer {
  const text = `${JSON.stringify(body)}\n`;
  return {
    status,
    headers: {
      'cache-control': 'no-store',
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...extra,
    },
    body: text,
  };
}

/** What Vault itself sends with `status` (faultMessages), with Retry-After when asked for. */
function errorAnswer(status: number, path: string, retryAfter: number | undefined): Answer {
  return jsonAnswer(status, { errors: faultMessages(status, path) }, retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {});
}

/**
 * The server's answer cut off halfway, so it does not parse (the head of a Vault envelope, with
 * request_id and lease_id, survives as it would in a real truncation); a fixed broken document
 * when half of it is empty or would still parse (a bare number).
 */
export function malformed(body: Buffer | string): string {
  const text = body.toString().trimEnd();
  const cut = text.slice(0, Math.floor(text.length / 2));
  try {
    if (cut.trim() !== '') JSON.parse(cut);
  } catch {
    return cut;
  }
  return '{"request_id":"';
}

function resetSocket(sock: Socket): void {
  try {
    // An RST, as a dropped connection gives; plain destroy() would be an orderly FIN.
    sock.resetAndDestroy();
  } catch {
    sock.destroy();
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
    req.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

function nodeExchange(req: http.IncomingMessage, res: http.ServerResponse): Exchange {
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    url: req.url ?? '/',
    headers: req.headers,
    body: readBody(req),
    send(status, headers, body) {
      if (res.destroyed || res.writableEnded || req.socket.destroyed) return false;
      res.writeHead(status, headers);
      res.end(body);
      return true;
    },
    reset() {
      resetSocket(req.socket);
    },
  };
}

/**
 * Node's HTTP parser rejects the LIST verb (HPE_INVALID_METHOD) that Vault clients such as
 * node-vault send. The rejected bytes arrive in 'clientError'; this parses that one request by
 * hand and answers it with Connection: close (as the retired Vault double did).
 */
function rawListExchange(sock: Socket, packet: Buffer): Exchange | undefined {
  const text = packet.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  if (!text.startsWith('LIST ') || headEnd < 0) return undefined;
  const [requestLine = '', ...lines] = text.slice(0, headEnd).split('\r\n');
  const url = requestLine.split(' ')[1] ?? '/';
  const headers: http.IncomingHttpHeaders = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const len = Number(headers['content-length'] ?? '0') || 0;
  const body = packet.subarray(headEnd + 4, headEnd + 4 + len);
  return {
    method: 'LIST',
    url,
    headers,
    body: Promise.resolve(body),
    send(status, hdrs, payload) {
      if (sock.destroyed) return false;
      const all: http.OutgoingHttpHeaders = { ...hdrs, 'content-length': String(Buffer.byteLength(payload)), connection: 'close' };
      const head = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`];
      for (const [k, v] of Object.entries(all)) {
        for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) head.push(`${k}: ${String(one)}`);
      }
      sock.end(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(payload)]));
      return true;
    },
    reset() {
      resetSocket(sock);
    },
  };
}
