// The HTTP transport node-vault runs on. node-vault's built-in axios transport cannot tunnel HTTPS
// through a proxy (axios #4531, #6330), drops response headers (so Retry-After is lost) and has no
// retries; node-vault accepts a `request-promise`-shaped function instead, which is this.
// Retries live here, below node-vault, so every call (reads, logins, revokes) gets one policy.
import { builtin } from '../builtin.ts';
import type * as http from 'node:http';
import type * as https from 'node:https';

// node:http costs about 18 ms to load; runs without Vault never pay it.
interface HttpModules {
  http: typeof http;
  https: typeof https;
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

/** Loads https-proxy-agent (a separate bundle) only when a proxy is configured. */
async function proxyAgent(proxy: string, maxSockets: number): Promise<http.Agent> {
  const { HttpsProxyAgent } = await import('./proxy-agent.ts');
  // CONNECT for every target: axios's own proxy support sends HTTPS requests to the proxy in the
  // clear (axios #4531, #6330); a tunnel keeps the TLS session end to end with Vault.
  return new HttpsProxyAgent(proxy, { keepAlive: true, maxSockets });
}

export interface TransportOptions {
  /** Absolute time (ms since epoch) after which no request is started and none waits longer. */
  readonly deadline: number;
  readonly retries: number;
  readonly maxSockets: number;
  /** Longest wait for one answer; needed when the deadline is open-ended (the renewal agent). */
  readonly requestTimeoutMs?: number;
  /** CA, client certificate and key, verification: passed to every TLS connection. */
  readonly tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  /** An http(s):// proxy to tunnel through with CONNECT (never sends a request to it in the clear). */
  readonly proxy?: string;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
  readonly random?: () => number;
  /** Debug log; gets method, path, status and attempt only. */
  readonly log?: (message: string) => void;
}

/** What node-vault passes per request (the subset it uses). */
export interface RpOptions {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeout?: number;
}

export interface RpResponse {
  statusCode: number;
  body: unknown;
  headers: http.IncomingHttpHeaders;
  request: { path: string };
}

export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: string;
  readonly host: string;
  constructor(code: string, host: string, message: string) {
    super(message);
    this.code = code;
    this.host = host;
  }
}

// Vault answers these when the request may succeed later: 412 a performance standby not caught up
// (https://developer.hashicorp.com/vault/docs/enterprise/consistency), 429 rate limited, 5xx
// transient (sealed, standby forwarding, upstream proxy).
const RETRY_STATUS = new Set([412, 429, 500, 502, 503, 504]);
// Statuses and failures that prove the server did not act on the request: safe to retry any call.
const NOT_PROCESSED_STATUS = new Set([412, 429, 503]);
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * A call that creates something (a login makes a token, a write may make a credential) is retried
 * only when the server provably did not act; reads, renewals and revocations are idempotent.
 */
export function isIdempotent(method: string, path: string): boolean {
  if (method === 'GET' || method === 'LIST' || method === 'HEAD') return true;
  return /\/(auth\/token\/(renew-self|revoke-self|lookup-self)|sys\/leases\/(renew|revoke)(\/.*)?)$/.test(path);
}

export function createTransport(options: TransportOptions) {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  let modules: Promise<HttpModules> | undefined;
  let loaded: HttpModules | undefined;
  function load(): Promise<HttpModules> {
    modules ??= Promise.resolve().then(async () => {
      const httpModule = builtin.http();
      const httpsModule = builtin.https();
      const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
      const tunnel = options.proxy ? await proxyAgent(options.proxy, options.maxSockets) : undefined;
      loaded = {
        http: httpModule,
        https: httpsModule,
        httpAgent: tunnel ?? new httpModule.Agent(agentOptions),
        httpsAgent: (tunnel as https.Agent | undefined) ?? new httpsModule.Agent(agentOptions),
      };
      return loaded;
    });
    return modules;
  }

  void load(); // start loading now: the first request will need it

  async function once(opts: RpOptions, timeoutMs: number): Promise<RpResponse> {
    const { http, https, httpAgent, httpsAgent } = await load();
    const url = new URL(opts.uri);
    const isHttps = url.protocol === 'https:';
    const body = opts.json !== undefined ? Buffer.from(JSON.stringify(opts.json)) : undefined;
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(body.length);
    }
    return new Promise((resolve, reject) => {
      const request = (isHttps ? https : http).request(
        url,
        { method: opts.method, headers, agent: isHttps ? httpsAgent : httpAgent, timeout: timeoutMs, ...(isHttps ? options.tls : {}) },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = undefined;
            if (text.trim() !== '') {
              try {
                parsed = JSON.parse(text);
              } catch {
                const error = new TransportError('EBADBODY', url.host, `Vault at ${url.host} sent a response that is not JSON`);
                reject(error);
                return;
              }
            }
            resolve({ statusCode: response.statusCode ?? 0, body: parsed, headers: response.headers, request: { path: url.pathname } });
          });
        },
      );
      request.on('timeout', () =>
        request.destroy(new TransportError('ETIMEDOUT', url.host, `Vault at ${url.host} did not answer in time`)),
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof TransportError) return reject(error);
        reject(new TransportError(error.code ?? 'EUNKNOWN', url.host, describe(error, url.host)));
      });
      request.end(body);
    });
  }

  function backoff(attempt: number, retryAfter: string | undefined): number {
    const seconds = retryAfter !== undefined ? Number(retryAfter) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    // Exponential backoff with full jitter: many matrix jobs retrying at once must not stampede Vault.
    const cap = Math.min(2000, 50 * 2 ** attempt);
    return Math.round(cap / 2 + (random() * cap) / 2);
  }

  async function request(opts: RpOptions): Promise<RpResponse> {
    const target = new URL(opts.uri);
    const path = target.pathname.replace(/^\/v1\//, '');
    const idempotent = isIdempotent(opts.method, target.pathname);
    for (let attempt = 0; ; attempt++) {
      const remaining = options.deadline - now();
      if (remaining <= 0) {
        throw new TransportError('ETIMEDOUT', target.host, `gave up on ${opts.method} ${path}: the 'timeout' input ran out`);
      }
      let retryAfter: string | undefined;
      let outcome: string;
      let retryable: boolean;
      try {
        const response = await once(opts, Math.min(remaining, options.requestTimeoutMs ?? remaining));
        if (!RETRY_STATUS.has(response.statusCode)) return response;
        retryable = idempotent || NOT_PROCESSED_STATUS.has(response.statusCode);
        if (!retryable || attempt >= options.retries) return response;
        const header = response.headers['retry-after'];
        retryAfter = Array.isArray(header) ? header[0] : header;
        outcome = `status ${response.statusCode}`;
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        retryable = idempotent || NOT_SENT_CODES.has(error.code);
        if (!retryable || attempt >= options.retries) throw error;
        outcome = error.code;
      }
      const wait = backoff(attempt, retryAfter);
      if (now() + wait >= options.deadline) {
        throw new TransportError(
          'ETIMEDOUT',
          target.host,
          `gave up on ${opts.method} ${path} after ${outcome}: the 'timeout' input would run out before the next try`,
        );
      }
      log(`retry ${attempt + 1}/${options.retries} of ${opts.method} ${path} after ${outcome}, waiting ${wait} ms`);
      await sleep(wait);
    }
  }

  // node-vault calls `defaults(rpDefaults)` once and then the function it gets back.
  const rp = Object.assign(request, { defaults: () => request });
  return {
    rp,
    close(): void {
      loaded?.httpAgent.destroy();
      loaded?.httpsAgent.destroy();
    },
  };
}

function describe(error: NodeJS.ErrnoException, host: string): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return `cannot reach Vault at ${host}: connection refused`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the Vault host ${host}`;
    case 'ECONNRESET':
      return `Vault at ${host} closed the connection`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_SIGNATURE_FAILURE':
    case 'CERT_HAS_EXPIRED':
      return `TLS check of Vault at ${host} failed (${error.code}); give the CA that signed its certificate in 'ca-certificate'`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS check of Vault at ${host} failed: its certificate is not for this host name (${error.code})`;
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'EPROTO':
      return `TLS handshake with Vault at ${host} failed (${error.code}); is it serving plain HTTP? use http:// or check the port`;
    default:
      return `request to Vault at ${host} failed (${error.code ?? 'unknown error'})`;
  }
}
