// The HTTP transport node-vault runs on. node-vault's built-in axios transport cannot tunnel HTTPS
// through a proxy (axios #4531, #6330), drops response headers (so Retry-After is lost) and has no
// retries; node-vault accepts a `request-promise`-shaped function instead, which is this.
// Retries live here, below node-vault, so every call (reads, logins, revokes) gets one policy.
import { builtin } from '../core/builtin.ts';
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
  /**
   * Called with every lease id a response carries, the moment it arrives and before anything can
   * discard the response (a later error, a malformed body): whoever holds it can still revoke it.
   */
  readonly onLease?: (lease: LeaseSeen) => void;
}

export interface LeaseSeen {
  readonly leaseId: string;
  /** The API path that issued it. */
  readonly path: string;
  readonly duration: number | undefined;
  readonly renewable: boolean;
}

/** What node-vault passes per request (the subset it uses). */
export interface RpOptions {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeout?: number;
  /**
   * Ours, passed through node-vault: the caller knows this GET is a plain read (a KV secret), so
   * it may be retried after a reset or timeout. A function is asked only when a retry is in question.
   */
  retrySafe?: boolean | (() => Promise<boolean>);
}

export interface RpResponse {
  statusCode: number;
  body: unknown;
  headers: http.IncomingHttpHeaders;
  request: { path: string };
}

const bodiesAfterUncertainTry = new WeakSet<object>();

/** Whether this response body answered a retry after a try Vault may have acted on. */
export function answeredAfterUncertainTry(body: unknown): boolean {
  return body !== null && typeof body === 'object' && bodiesAfterUncertainTry.has(body);
}

export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: string;
  readonly host: string;
  /** Some try of the request may have reached Vault and been acted on (its answer was lost or broken). */
  mayHaveActed = false;
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
// Statuses that prove the server did not act on the request: 412 (consistency, or an Agent/Proxy
// refusing a request without X-Vault-Request), 429 (rate limit quota, checked before routing), 503
// (sealed or standby unavailable, refused before routing). Only a JSON answer counts: an HTML or
// plain-text 503 from a proxy in between fails as a malformed answer (it may have forwarded first).
// A 500/502/504, a reset after sending, a timeout or a malformed body leave it open: Vault may
// have acted.
const NOT_PROCESSED_STATUS = new Set([412, 429, 503]);
// Failures before a byte of the request left: nothing can have been acted on.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
// GETs known to be plain reads. Any other GET may issue something (database/creds/ROLE mints a
// database user per call), so like a login it is retried only when Vault provably did not act.
const READ_ONLY_GET = /^\/v1\/([^?]+\/)?(sys\/internal\/ui\/mounts(\/.*)?|auth\/token\/lookup-self|sys\/health|sys\/seal-status)$/;
// Redirects followed at most this many times, and only to the origin 'url' names (see request()).
const MAX_REDIRECTS = 3;

/**
 * Whether a call may be retried after a failure that leaves open whether Vault acted on it.
 * Renewals and revocations are idempotent; of the GETs only known reads (and those the caller
 * marks as KV reads) are: a second GET of database/creds/ROLE mints a second credential.
 */
export function isIdempotent(method: string, path: string): boolean {
  if (method === 'LIST' || method === 'HEAD') return true;
  if (method === 'GET') return READ_ONLY_GET.test(path);
  return /\/(auth\/token\/(renew-self|revoke-self)|sys\/leases\/(renew|revoke)(\/.*)?)$/.test(path);
}

/** Lease id, duration and renewable from a body, parsed or not (a truncated body still names its lease). */
export function leaseIn(parsed: unknown, text: string): { leaseId: string; duration: number | undefined; renewable: boolean } | undefined {
  if (parsed !== null && typeof parsed === 'object') {
    const body = parsed as { lease_id?: unknown; lease_duration?: unknown; renewable?: unknown };
    if (typeof body.lease_id !== 'string' || body.lease_id === '') return undefined;
    const duration = typeof body.lease_duration === 'number' ? body.lease_duration : undefined;
    return { leaseId: body.lease_id, duration, renewable: body.renewable === true };
  }
  // Only the id and the duration are taken out of a body that does not parse: never a value.
  const id = /"lease_id"\s*:\s*"([^"\\]+)"/.exec(text)?.[1];
  if (id === undefined) return undefined;
  const duration = /"lease_duration"\s*:\s*(\d+)/.exec(text)?.[1];
  return { leaseId: id, duration: duration !== undefined ? Number(duration) : undefined, renewable: /"renewable"\s*:\s*true/.test(text) };
}

export function createTransport(options: TransportOptions) {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  let cancelled: string | undefined;
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

  // Start loading now: the first request will need it. Its failure is that request's to report (it
  // awaits the same promise); handled here so that it is not an unhandled rejection before then.
  load().catch(() => {});

  async function once(opts: RpOptions, url: URL, timeoutMs: number): Promise<RpResponse> {
    const { http, https, httpAgent, httpsAgent } = await load();
    const isHttps = url.protocol === 'https:';
    const body = opts.json !== undefined ? Buffer.from(JSON.stringify(opts.json)) : undefined;
    // X-Vault-Request on every call: Vault Agent and Proxy with require_request_header refuse a
    // request without it (412), a guard against browser-borne SSRF; Vault itself ignores it.
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers, 'X-Vault-Request': 'true' };
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
            let malformed = false;
            if (text.trim() !== '') {
              try {
                parsed = JSON.parse(text);
              } catch {
                malformed = true;
              }
            }
            // Recorded before anything can discard the answer: a lease Vault issued is revoked
            // by post even when this response then fails (malformed, refused, a later error).
            const lease = leaseIn(parsed, text);
            if (lease) options.onLease?.({ ...lease, path: url.pathname.replace(/^\/v1\//, '') });
            if (malformed && !isHttps && response.statusCode === 400 && /HTTP request to an HTTPS server/i.test(text)) {
              // Go's TLS listener (Vault, OpenBao) answers plain HTTP with this 400 and text.
              reject(
                new TransportError(
                  'EHTTPTOHTTPS',
                  url.host,
                  `Vault at ${url.host} is an HTTPS server: use https:// in 'url' (or VAULT_ADDR)`,
                ),
              );
              return;
            }
            if (malformed) {
              reject(new TransportError('EBADBODY', url.host, `Vault at ${url.host} sent a response that is not JSON`));
              return;
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
    let target = new URL(opts.uri);
    const path = target.pathname.replace(/^\/v1\//, '');
    let safe: boolean | undefined = isIdempotent(opts.method, target.pathname) || opts.retrySafe === true ? true : undefined;
    // Asked only when a failure leaves open whether Vault acted, and then once.
    const retrySafe = async (): Promise<boolean> =>
      (safe ??= typeof opts.retrySafe === 'function' ? await opts.retrySafe().catch(() => false) : false);
    let redirects = 0;
    // Whether a failed try may have been acted on: a retry's answer is then read in that light
    // (a 403 to a retried revoke-self means the first try revoked the token).
    let uncertain = false;
    const fail = (error: TransportError): TransportError => {
      error.mayHaveActed ||= uncertain;
      return error;
    };
    for (let attempt = 0; ; attempt++) {
      if (cancelled !== undefined) {
        throw fail(new TransportError('ECANCELED', target.host, `${opts.method} ${path} not sent: the job was cancelled (${cancelled})`));
      }
      const remaining = options.deadline - now();
      if (remaining <= 0) {
        throw fail(new TransportError('ETIMEDOUT', target.host, `gave up on ${opts.method} ${path}: the 'timeout' input ran out`));
      }
      let retryAfter: string | undefined;
      let outcome: string;
      let retryable: boolean;
      try {
        const response = await once(opts, target, Math.min(remaining, options.requestTimeoutMs ?? remaining));
        if (response.statusCode === 307 || response.statusCode === 308) {
          target = redirectTarget(target, response, opts.method, path, ++redirects);
          attempt--; // a redirect is not a failed attempt
          continue;
        }
        // node-vault keeps only status and body of a failed response: the body carries the mark.
        if (uncertain && response.body !== null && typeof response.body === 'object') bodiesAfterUncertainTry.add(response.body);
        if (!RETRY_STATUS.has(response.statusCode)) return response;
        const processed = !NOT_PROCESSED_STATUS.has(response.statusCode);
        retryable = !processed || (await retrySafe());
        if (!retryable || attempt >= options.retries) return response;
        uncertain ||= processed;
        // Node keeps one Retry-After (and one Location) of a response: duplicates are discarded.
        retryAfter = response.headers['retry-after'];
        outcome = `status ${response.statusCode}`;
      } catch (error) {
        if (!(error instanceof TransportError) || error.code === 'EREDIRECT' || error.code === 'EHTTPTOHTTPS') throw error;
        const sent = !NOT_SENT_CODES.has(error.code);
        retryable = !sent || (await retrySafe());
        if (!retryable || attempt >= options.retries) {
          error.mayHaveActed ||= sent && error.code !== 'ECANCELED';
          throw fail(error);
        }
        uncertain ||= sent;
        outcome = error.code;
      }
      const wait = backoff(attempt, retryAfter);
      if (now() + wait >= options.deadline) {
        throw fail(
          new TransportError(
            'ETIMEDOUT',
            target.host,
            `gave up on ${opts.method} ${path} after ${outcome}: the 'timeout' input would run out before the next try`,
          ),
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
    /** No request or retry starts after this; those in flight may still answer (their leases count). */
    cancel(reason: string): void {
      cancelled ??= reason;
    },
    close(): void {
      loaded?.httpAgent.destroy();
      loaded?.httpsAgent.destroy();
    },
  };
}

/**
 * A standby answers 307 with the active node's address. Followed only to the origin (scheme, host
 * and port) 'url' names: the request carries the token, which must never go to a host the user did
 * not configure, nor from https to http. Another origin is refused with a message naming it.
 */
function redirectTarget(from: URL, response: RpResponse, method: string, path: string, count: number): URL {
  const location = response.headers.location;
  let to: URL | undefined;
  try {
    to = location !== undefined && location !== '' ? new URL(location, from) : undefined;
  } catch {
    to = undefined;
  }
  if (to === undefined) {
    throw new TransportError(
      'EREDIRECT',
      from.host,
      `Vault at ${from.host} answered ${method} ${path} with ${response.statusCode} but no usable Location`,
    );
  }
  if (to.origin !== from.origin) {
    throw new TransportError(
      'EREDIRECT',
      from.host,
      `Vault at ${from.host} redirected ${method} ${path} to ${to.origin}${to.pathname} (a standby pointing at the active node?): not followed, the token goes only to the 'url' given; set 'url' to the active node or a load balancer in front of the cluster`,
    );
  }
  if (count > MAX_REDIRECTS) {
    throw new TransportError('EREDIRECT', from.host, `Vault at ${from.host} redirected ${method} ${path} more than ${MAX_REDIRECTS} times`);
  }
  return to;
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
