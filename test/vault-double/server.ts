// HTTP(S) plumbing and request routing of the Vault double.
import type { X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { handleLogin, handleTokenSelf, isLoginPath } from './auth.ts';
import type { TlsInfo } from './cert.ts';
import { type Faults, faultMessages } from './faults.ts';
import { kvExists, handleKv } from './kv.ts';
import { handleCubbyhole, handleDynamic } from './mounts.ts';
import type { Capability } from './policies.ts';
import {
  aclDenied,
  type Ctx,
  errorReply,
  invalidToken,
  MISSING_TOKEN,
  newRequestId,
  noHandler,
  type Operation,
  type Reply,
  unsupportedPath,
} from './reply.ts';
import {
  handleHealth,
  handleLeases,
  handleUiMounts,
  handleUnwrap,
  handleWrapLookup,
  isLeasePath,
  policyPath,
  type SysDeps,
  wrapReply,
} from './sys.ts';
import { isRecord, parseDuration } from './util.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  status: number;
  namespace?: string;
  hadToken: boolean;
  at: number;
}

export interface TlsOptions {
  key: string;
  cert: string;
  ca?: string;
  requestClientCert?: boolean;
}

export interface Pipeline {
  deps: SysDeps;
  faults: Faults;
  requests: RecordedRequest[];
  latencyMs(): number;
}

const SELF_PATHS = new Set(['auth/token/lookup-self', 'auth/token/renew-self', 'auth/token/revoke-self']);

/** The token of a request: X-Vault-Token, else Authorization: Bearer. */
function tokenOf(headers: http.IncomingHttpHeaders): string | undefined {
  const t = header(headers, 'x-vault-token');
  if (t) return t.trim();
  const m = /^Bearer\s+(.+)$/i.exec(header(headers, 'authorization'));
  return m?.[1]?.trim() || undefined;
}

function header(headers: http.IncomingHttpHeaders, name: string): string {
  const h = headers[name];
  return (Array.isArray(h) ? h[0] : h) ?? '';
}

function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

// https://developer.hashicorp.com/vault/api-docs#http-verbs
// GET read (list with ?list=true), LIST list, POST/PUT update, DELETE delete, PATCH patch.
function operationOf(method: string, query: URLSearchParams): Operation | null {
  switch (method) {
    case 'GET':
      return query.get('list') === 'true' ? 'list' : 'read';
    case 'LIST':
      return 'list';
    case 'POST':
    case 'PUT':
      return 'update';
    case 'DELETE':
      return 'delete';
    case 'PATCH':
      return 'patch';
    default:
      return null;
  }
}

interface Incoming {
  method: string;
  rawPath: string;
  query: URLSearchParams;
  bodyText: string;
  token: string | undefined;
  namespaceHeader: string;
  contentType: string;
  wrapTtlHeader: string;
  tls?: TlsInfo | undefined;
}

/** Everything from parsing to the answer, for one request that reached /v1/. */
export function route(d: SysDeps, inc: Incoming): { reply: Reply; ns: string } {
  const requestId = newRequestId();
  const op = operationOf(inc.method, inc.query);
  // http/handler.go: methods Vault does not map answer 405 with an empty error list.
  if (!op) return { reply: errorReply(405), ns: '' };

  let body: Record<string, unknown> = {};
  if (op !== 'read' && inc.bodyText.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(inc.bodyText);
      if (!isRecord(parsed)) return { reply: errorReply(400, 'failed to parse JSON input: body must be an object'), ns: '' };
      body = parsed;
    } catch (e) {
      return { reply: errorReply(400, `failed to parse JSON input: ${(e as Error).message}`), ns: '' };
    }
  }

  // https://developer.hashicorp.com/vault/docs/concepts/response-wrapping#response-wrapping-tokens
  let wrapTtl = 0;
  if (inc.wrapTtlHeader) {
    const t = parseDuration(inc.wrapTtlHeader);
    if (t === null) return { reply: errorReply(400, `error parsing wrap TTL: invalid duration "${inc.wrapTtlHeader}"`), ns: '' };
    wrapTtl = t;
  }

  // https://developer.hashicorp.com/vault/docs/enterprise/namespaces#usage
  const where = d.mounts.resolve(inc.namespaceHeader, inc.rawPath);
  if (!where) return { reply: noHandler(inc.rawPath), ns: '' };

  const ctx: Ctx = {
    requestId,
    method: inc.method,
    op,
    rawPath: inc.rawPath,
    ns: where.ns,
    path: where.path,
    query: inc.query,
    body,
    contentType: inc.contentType,
    token: inc.token,
    wrapTtl,
    tls: inc.tls,
  };
  let reply = dispatch(d, ctx);
  if (wrapTtl > 0 && reply.status === 200 && isRecord(reply.body) && 'request_id' in reply.body) {
    reply = wrapReply(ctx, reply, d.tokens);
  }
  return { reply, ns: where.ns };
}

function requiredCapability(d: SysDeps, ctx: Ctx): Capability {
  switch (ctx.op) {
    case 'read':
      return 'read';
    case 'list':
      return 'list';
    case 'delete':
      return 'delete';
    case 'patch':
      return 'patch';
    case 'update': {
      // https://developer.hashicorp.com/vault/docs/concepts/policies#capabilities
      // POST/PUT is "create" when the backend's existence check finds nothing, else "update".
      const hit = d.mounts.match(ctx.ns, ctx.path);
      if (hit?.mount.type === 'kv') return kvExists(hit.mount, hit.rest) ? 'update' : 'create';
      if (hit?.mount.type === 'cubbyhole' && ctx.token) {
        return hit.mount.cubby.get(ctx.token)?.has(hit.rest.replace(/^\/+|\/+$/g, '')) ? 'update' : 'create';
      }
      return 'update';
    }
  }
}

function dispatch(d: SysDeps, ctx: Ctx): Reply {
  const p = ctx.path;

  // ---- endpoints that need no token ----
  if (p === 'sys/health') return handleHealth(ctx);
  if (p === 'sys/internal/ui/mounts' || p.startsWith('sys/internal/ui/mounts/')) return handleUiMounts(ctx, d);
  if (p === 'sys/wrapping/unwrap') return handleUnwrap(ctx, d);
  if (p === 'sys/wrapping/lookup') return handleWrapLookup(ctx, d);
  const authHit = d.auth.match(p);
  if (authHit && isLoginPath(authHit.rest)) return handleLogin(ctx, authHit.mount, authHit.rest, d.tokens);

  // ---- token check ----
  // https://developer.hashicorp.com/vault/api-docs#authentication
  if (!ctx.token) return errorReply(403, MISSING_TOKEN);
  // A response-wrapping token only opens sys/wrapping/*; any other use spends its single use.
  if (d.tokens.activeWrap(ctx.token)) {
    d.tokens.consumeWrap(ctx.token);
    return aclDenied();
  }
  const entry = d.tokens.active(ctx.token);
  if (!entry) return invalidToken();

  // ---- ACL ----
  // https://developer.hashicorp.com/vault/docs/concepts/policies
  // The "-self" token paths always resolve in the token's own namespace.
  let aclPath = SELF_PATHS.has(p) ? p : policyPath(entry, ctx.ns, p);
  if (aclPath === null) return aclDenied();
  if (ctx.op === 'list' && !aclPath.endsWith('/')) aclPath += '/';
  if (!d.policies.allows(entry.policies, aclPath, requiredCapability(d, ctx))) return aclDenied();
  d.tokens.use(entry);

  try {
    return authenticated(d, ctx, entry.id);
  } finally {
    // https://developer.hashicorp.com/vault/docs/concepts/tokens#token-use-limits
    // The request that spends the last use still succeeds; the token is revoked right after.
    if (entry.revokeAfterRequest) d.tokens.revoke(entry.id);
  }
}

function authenticated(d: SysDeps, ctx: Ctx, tokenId: string): Reply {
  const p = ctx.path;
  if (p.startsWith('auth/token/')) {
    const entry = d.tokens.tokens.get(tokenId);
    return entry ? handleTokenSelf(ctx, entry, d.tokens) : unsupportedPath();
  }
  if (p.startsWith('auth/')) return d.auth.match(p) ? unsupportedPath() : noHandler(p);
  if (isLeasePath(p)) return handleLeases(ctx, d);
  if (p === 'sys' || p.startsWith('sys/')) return unsupportedPath();

  const hit = d.mounts.match(ctx.ns, p);
  if (!hit) return noHandler(p);
  switch (hit.mount.type) {
    case 'kv':
      return handleKv(ctx, hit.mount, hit.rest);
    case 'cubbyhole':
      return handleCubbyhole(ctx, hit.mount, hit.rest, tokenId);
    case 'identity':
    case 'system':
      return unsupportedPath();
    default:
      return handleDynamic(ctx, hit.mount, hit.rest, d.tokens, tokenId, d.mounts.writes);
  }
}

// ---- the HTTP server ----------------------------------------------------------------------

/** One request/response pair, whether it came through Node's HTTP parser or the LIST fallback. */
interface Exchange {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Promise<string>;
  /** The TLS connection (peer certificates), or undefined over plain HTTP. */
  tls: TlsInfo | undefined;
  send(reply: Reply): void;
  /** Write a status line, headers and an arbitrary (possibly broken) body. */
  raw(status: number, headers: Record<string, string>, text: string): void;
  reset(): void;
}

function replyHeaders(reply: Reply): { headers: Record<string, string>; text: string | undefined } {
  const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...reply.headers };
  if (reply.body === undefined) return { headers, text: undefined };
  const text = `${JSON.stringify(reply.body)}\n`;
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = String(Buffer.byteLength(text));
  return { headers, text };
}

/**
 * The client certificate chain of a TLS connection (leaf first, as the client sent it). Vault's
 * listener requests a client certificate without requiring one; cert auth reads it per request.
 */
function tlsInfo(sock: Socket): TlsInfo | undefined {
  if (!(sock instanceof TLSSocket)) return undefined;
  const peerCertificates: X509Certificate[] = [];
  const seen = new Set<string>();
  let c = sock.getPeerX509Certificate();
  while (c && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    peerCertificates.push(c);
    c = c.issuerCertificate;
  }
  return { peerCertificates };
}

function resetSocket(sock: Socket): void {
  try {
    sock.resetAndDestroy();
  } catch {
    sock.destroy();
  }
}

function nodeExchange(req: http.IncomingMessage, res: http.ServerResponse): Exchange {
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    url: req.url ?? '/',
    headers: req.headers,
    body: readBody(req),
    tls: tlsInfo(req.socket),
    send(reply) {
      if (res.destroyed || res.writableEnded) return;
      const { headers, text } = replyHeaders(reply);
      res.writeHead(reply.status, headers);
      res.end(text);
    },
    raw(status, headers, text) {
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(status, headers);
      res.end(text);
    },
    reset() {
      resetSocket(req.socket);
    },
  };
}

/**
 * Node's HTTP parser rejects the LIST verb (HPE_INVALID_METHOD) that Vault clients such as
 * node-vault send. The rejected bytes arrive in 'clientError'; this parses that one request by
 * hand and answers it with Connection: close.
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
  const len = Number(header(headers, 'content-length') || '0');
  const body = packet
    .subarray(Buffer.byteLength(text.slice(0, headEnd + 4), 'latin1'))
    .subarray(0, len)
    .toString('utf8');
  const write = (status: number, hdrs: Record<string, string>, payload: string | undefined): void => {
    if (sock.destroyed) return;
    const all = { ...hdrs, Connection: 'close', ...(payload === undefined ? { 'Content-Length': '0' } : {}) };
    const head = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`, ...Object.entries(all).map(([k, v]) => `${k}: ${v}`)];
    sock.end(`${head.join('\r\n')}\r\n\r\n${payload ?? ''}`);
  };
  return {
    method: 'LIST',
    url,
    headers,
    body: Promise.resolve(body),
    tls: tlsInfo(sock),
    send(reply) {
      const { headers: h, text: t } = replyHeaders(reply);
      write(reply.status, h, t);
    },
    raw(status, h, t) {
      write(status, h, t);
    },
    reset() {
      resetSocket(sock);
    },
  };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
    req.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export class HttpServer {
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  url = '';

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async listen(p: Pipeline, tls: TlsOptions | undefined): Promise<HttpServer> {
    let srv: HttpServer | undefined;
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      void srv?.handle(p, nodeExchange(req, res));
    };
    const server = tls
      ? https.createServer(
          {
            key: tls.key,
            cert: tls.cert,
            ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
            // Vault's listener asks for a client certificate (for cert auth) without requiring one.
            requestCert: tls.requestClientCert ?? false,
            rejectUnauthorized: false,
          },
          onRequest,
        )
      : http.createServer(onRequest);
    srv = new HttpServer(server);
    const s = srv;
    server.on('connection', (sock: Socket) => {
      s.#sockets.add(sock);
      sock.on('close', () => s.#sockets.delete(sock));
    });
    server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, sock: Socket) => {
      const ex = err.code === 'HPE_INVALID_METHOD' && err.rawPacket ? rawListExchange(sock, err.rawPacket) : undefined;
      if (ex) {
        void s.handle(p, ex);
        return;
      }
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else sock.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    s.url = `${tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`;
    return s;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped) return;
      const t = setTimeout(() => {
        this.#timers.delete(t);
        resolve();
      }, ms);
      this.#timers.add(t);
    });
  }

  async handle(p: Pipeline, ex: Exchange): Promise<void> {
    const at = Date.now();
    const url = new URL(ex.url, 'http://vault.invalid');
    const pathname = decodePath(url.pathname);
    const underV1 = pathname.startsWith('/v1/');
    const rawPath = underV1 ? pathname.slice('/v1/'.length) : pathname.replace(/^\//, '');
    const token = tokenOf(ex.headers);
    const rec: RecordedRequest = {
      method: ex.method,
      path: rawPath,
      query: url.search.replace(/^\?/, ''),
      status: 0,
      hadToken: token !== undefined,
      at,
    };
    p.requests.push(rec);
    const bodyText = await ex.body;
    if (this.#stopped) return;
    const latency = p.latencyMs();
    if (latency > 0) await this.sleep(latency);

    for (const f of p.faults.take(ex.method, rawPath)) {
      if (f.kind === 'latency') {
        await this.sleep(f.latencyMs ?? 0);
        continue;
      }
      if (f.kind === 'hang') return; // never answered; stop() closes the socket
      if (f.kind === 'reset') {
        ex.reset();
        return;
      }
      if (f.kind === 'malformed') {
        // 200 with a JSON document cut off mid-string.
        rec.status = 200;
        ex.raw(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }, '{"request_id":"');
        return;
      }
      const status = f.status ?? 500;
      rec.status = status;
      const headers: Record<string, string> = f.retryAfter !== undefined ? { 'Retry-After': String(f.retryAfter) } : {};
      ex.send({ status, body: { errors: faultMessages(status, rawPath) }, headers });
      return;
    }

    if (this.#stopped) return;
    if (!underV1) {
      rec.status = 404;
      ex.send(errorReply(404));
      return;
    }
    const { reply, ns } = route(p.deps, {
      method: ex.method,
      rawPath,
      query: url.searchParams,
      bodyText,
      token,
      namespaceHeader: header(ex.headers, 'x-vault-namespace'),
      contentType: header(ex.headers, 'content-type'),
      wrapTtlHeader: header(ex.headers, 'x-vault-wrap-ttl'),
      tls: ex.tls,
    });
    if (ns) rec.namespace = ns;
    rec.status = reply.status;
    ex.send(reply);
  }

  async close(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await closed;
  }
}
