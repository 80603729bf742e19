// One HTTP exchange with Vault over node:http(s), never retried here (transport.ts retries):
// X-Vault-Request on every request, the TLS options, a CONNECT tunnel through a proxy, the answer
// parsed as JSON, the lease an answer carries reported before anything can discard it, and socket
// errors said as what to check.
import { builtin } from '../core/builtin.ts';
import type * as http from 'node:http';
import type * as https from 'node:https';

export interface ExchangeOptions {
  readonly maxSockets: number;
  /** CA, client certificate and key, verification: passed to every TLS connection. */
  readonly tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  /** An http(s):// proxy to tunnel through with CONNECT (never sends a request to it in the clear). */
  readonly proxy?: string;
  /**
   * `extra-headers`, sent on every request (a gateway's key in front of Vault). Their values are
   * secrets: nothing here logs a header, and the action's own headers are set after them.
   */
  readonly headers?: Readonly<Record<string, string>>;
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

// node:http costs about 18 ms to load; runs without Vault never pay it. node:https (and with it
// node:tls) costs about 8 ms more: loaded only for an https:// Vault.
interface Protocol {
  module: typeof http | typeof https;
  agent: http.Agent;
}

/** Loads https-proxy-agent (a separate bundle) only when a proxy is configured. */
async function proxyAgent(proxy: string, maxSockets: number): Promise<http.Agent> {
  const { HttpsProxyAgent } = await import('./proxy-agent.ts');
  // CONNECT for every target: axios's own proxy support sends HTTPS requests to the proxy in the
  // clear (axios #4531, #6330); a tunnel keeps the TLS session end to end with Vault.
  return new HttpsProxyAgent(proxy, { keepAlive: true, maxSockets });
}

export interface Exchange {
  /** One try of `opts` at `url`; rejects with a TransportError for anything but a JSON (or empty) answer. */
  send(opts: RpOptions, url: URL, timeoutMs: number): Promise<RpResponse>;
  /** Closes the kept-alive connections. */
  close(): void;
}

export function createExchange(options: ExchangeOptions): Exchange {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
  // With a proxy, one tunnelling agent serves both schemes.
  let tunnel: Promise<http.Agent> | undefined;
  const protocols: { 'http:'?: Promise<Protocol>; 'https:'?: Promise<Protocol> } = {};
  const agents = new Set<http.Agent>();
  function load(scheme: 'http:' | 'https:'): Promise<Protocol> {
    return (protocols[scheme] ??= Promise.resolve().then(async () => {
      const module = scheme === 'https:' ? builtin.https() : builtin.http();
      const agent = options.proxy ? await (tunnel ??= proxyAgent(options.proxy, options.maxSockets)) : new module.Agent(agentOptions);
      agents.add(agent);
      return { module, agent };
    }));
  }

  // Start loading node:http now: the first request will need it (node:https waits for an
  // https:// request). A failure is that request's to report (it awaits the same promise); handled
  // here so that it is not an unhandled rejection before then.
  load('http:').catch(() => {});

  async function send(opts: RpOptions, url: URL, timeoutMs: number): Promise<RpResponse> {
    const isHttps = url.protocol === 'https:';
    const { module, agent } = await load(isHttps ? 'https:' : 'http:');
    const body = opts.json !== undefined ? Buffer.from(JSON.stringify(opts.json)) : undefined;
    // X-Vault-Request on every call: Vault Agent and Proxy with require_request_header refuse a
    // request without it (412), a guard against browser-borne SSRF; Vault itself ignores it.
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers, ...opts.headers, 'X-Vault-Request': 'true' };
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(body.length);
    }
    return new Promise((resolve, reject) => {
      const request = module.request(
        url,
        { method: opts.method, headers, agent, timeout: timeoutMs, ...(isHttps ? options.tls : {}) },
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

  return {
    send,
    close(): void {
      for (const agent of agents) agent.destroy();
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
