// Stand-ins for the two pieces of a Kubernetes API server the tests talk to. Why they exist: no
// Kubernetes cluster can run on the test machine, yet two things should meet a real counterpart:
//
// 1. startTokenReview: the TokenReview endpoint (POST /apis/authentication.k8s.io/v1/tokenreviews)
//    that Vault's kubernetes auth method calls, so the action's `method: kubernetes` logs in to a
//    REAL OpenBao, whose kubernetes auth asks the API server whether a service-account token is
//    valid. So this stands in for Kubernetes, never for Vault: OpenBao itself parses the token,
//    checks the role's bound names and namespaces, calls this endpoint with its reviewer JWT as the
//    bearer, compares name, namespace and uid, and issues the Vault token.
// 2. startKubeApi: the read-only part of the core API that a real `kubectl` uses with a kubeconfig
//    the action rendered (GET /version, discovery, pods), so the kubeconfig is proven by the real
//    client: its TLS check against the `certificate-authority-data` it carries, and its credentials
//    (a bearer token or a client certificate), which this server checks as an API server does.
//
// What the TokenReview endpoint answers follows the Kubernetes API (authentication.k8s.io/v1
// TokenReview) and what OpenBao's builtin/credential/kubernetes/token_review.go reads from it:
// - a bearer other than the reviewer JWT: 401 with a metav1 Status (OpenBao: "lookup failed:
//   service account unauthorized ..."), as an API server refuses an unauthenticated client;
// - a token it knows: status.authenticated true, status.user.username
//   `system:serviceaccount:NS:NAME` (OpenBao splits it on ':' into exactly four parts), user.uid,
//   the service-account groups, and status.audiences (the requested audiences, else the account's);
// - any other token: status.authenticated false (OpenBao: "service account jwt not valid").
// Both are served over HTTPS on 127.0.0.1 (OpenBao's config wants kubernetes_ca_cert with
// disable_local_ca_jwt; kubectl wants its cluster CA), with a server certificate the caller brings
// (test/support/services/tls.ts).

import type { ServerResponse } from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface ServiceAccount {
  namespace: string;
  name: string;
  uid: string;
  /** Audiences of the account's tokens (Kubernetes' default: the API server's). */
  audiences?: string[];
}

export interface Review {
  /** The bearer token the client (OpenBao) presented. */
  bearer: string;
  /** spec.token: the service-account token under review. */
  token: string;
  audiences: string[];
  /** What was answered: the username for an authenticated token, else undefined. */
  username: string | undefined;
  status: number;
}

export interface TokenReviewServer {
  /** https://127.0.0.1:PORT, for kubernetes_host. */
  url: string;
  /** Every TokenReview asked for, in order. */
  reviews: Review[];
  /** Makes `token` a valid token of `account` from now on. */
  addToken(token: string, account: ServiceAccount): void;
  /** Makes `token` invalid again (a deleted service account, an expired token). */
  removeToken(token: string): void;
  stop(): Promise<void>;
}

const DEFAULT_AUDIENCES = ['https://kubernetes.default.svc.cluster.local'];

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A metav1 Status, as an API server answers a refused or unknown request. */
function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export async function startTokenReview(opts: {
  /** PEM server certificate and key for 127.0.0.1. */
  certPem: string;
  keyPem: string;
  /** The bearer OpenBao must present (its token_reviewer_jwt). */
  reviewerJwt: string;
}): Promise<TokenReviewServer> {
  const accounts = new Map<string, ServiceAccount>();
  const reviews: Review[] = [];
  const server = https.createServer({ cert: opts.certPem, key: opts.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') {
        send(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
        return;
      }
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      let spec: { token?: unknown; audiences?: unknown } = {};
      try {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { spec?: typeof spec };
        spec = parsed.spec ?? {};
      } catch {
        send(res, 400, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'BadRequest', code: 400, message: 'invalid JSON' });
        return;
      }
      const token = typeof spec.token === 'string' ? spec.token : '';
      const audiences = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === 'string') : [];
      if (bearer !== opts.reviewerJwt) {
        reviews.push({ bearer, token, audiences, username: undefined, status: 401 });
        send(res, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
        return;
      }
      const account = accounts.get(token);
      const accountAudiences = account?.audiences ?? DEFAULT_AUDIENCES;
      const granted = audiences.length > 0 ? audiences.filter((a) => accountAudiences.includes(a)) : accountAudiences;
      const base = {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: { audiences },
      };
      if (account === undefined || granted.length === 0) {
        reviews.push({ bearer, token, audiences, username: undefined, status: 201 });
        send(res, 201, {
          ...base,
          status: { authenticated: false, user: {}, error: account ? 'token audiences are invalid' : 'invalid bearer token' },
        });
        return;
      }
      const username = `system:serviceaccount:${account.namespace}:${account.name}`;
      reviews.push({ bearer, token, audiences, username, status: 201 });
      send(res, 201, {
        ...base,
        status: {
          authenticated: true,
          user: {
            username,
            uid: account.uid,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${account.namespace}`, 'system:authenticated'],
          },
          audiences: granted,
        },
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    reviews,
    addToken: (token, account) => void accounts.set(token, account),
    removeToken: (token) => void accounts.delete(token),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- the core API, read-only, for kubectl --------------------------------------------------------

export interface KubeRequest {
  readonly method: string;
  readonly path: string;
  /** How the client authenticated: its bearer token, its client certificate, or not at all. */
  readonly auth: 'token' | 'certificate' | 'none';
  /** The user it was taken for; undefined when it was refused. */
  readonly user: string | undefined;
  readonly status: number;
}

export interface KubeApiServer {
  /** https://127.0.0.1:PORT, a kubeconfig's `server`. */
  readonly url: string;
  /** Every request, in order. */
  readonly requests: KubeRequest[];
  stop(): Promise<void>;
}

export interface KubeApiOptions {
  /** PEM server certificate and key for 127.0.0.1 (a kubeconfig's certificate-authority-data is their CA). */
  certPem: string;
  keyPem: string;
  /** CA whose client certificates are users (the certificate's CN is the user name, as Kubernetes takes it). */
  clientCaPem: string;
  /** Bearer tokens and the user each one is. */
  tokens: Record<string, string>;
  /** The pods `default` and other namespaces hold, by namespace. */
  pods: Record<string, string[]>;
}

/** What `/version` answers: a release kubectl 1.20 to 1.3x talks to without a skew warning. */
const VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function pod(namespace: string, name: string): Record<string, unknown> {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace, uid: `uid-${namespace}-${name}`, resourceVersion: '1', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: { containers: [{ name: 'app', image: 'app:1' }] },
    status: { phase: 'Running' },
  };
}

/**
 * The answers kubectl needs for `kubectl version` and `kubectl get pods` (legacy discovery: /api,
 * /apis, /api/v1; then the pod list or one pod), each only to a client that presents a known
 * bearer token or a client certificate signed by `clientCaPem`; anyone else gets 401 as from an API
 * server. A request for a list as a Table is answered with the plain list, which kubectl prints itself.
 */
export async function startKubeApi(opts: KubeApiOptions): Promise<KubeApiServer> {
  const requests: KubeRequest[] = [];
  const tokens = new Map(Object.entries(opts.tokens));
  const server = https.createServer(
    // The client certificate is asked for but not required: a token client sends none.
    { cert: opts.certPem, key: opts.keyPem, ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      req.resume();
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const socket = req.socket as TLSSocket;
      let auth: KubeRequest['auth'] = 'none';
      let user: string | undefined;
      if (bearer !== undefined) {
        // a bearer is checked on its own, as an API server's token authenticator does
        auth = 'token';
        user = tokens.get(bearer);
      } else if (socket.authorized) {
        const cn = socket.getPeerCertificate().subject?.CN;
        auth = 'certificate';
        user = typeof cn === 'string' && cn !== '' ? cn : undefined;
      }
      const answer = (status: number, body: unknown): void => {
        requests.push({ method: req.method ?? '', path, auth, user, status });
        send(res, status, body);
      };
      if (user === undefined) return answer(401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      if (req.method !== 'GET') return answer(405, statusBody(405, 'MethodNotAllowed', 'this server only reads'));
      if (path === '/version') return answer(200, VERSION);
      if (path === '/api') return answer(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
      if (path === '/apis') return answer(200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
      if (path === '/api/v1')
        return answer(200, {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [
            {
              name: 'namespaces',
              singularName: 'namespace',
              namespaced: false,
              kind: 'Namespace',
              verbs: ['get', 'list'],
              shortNames: ['ns'],
            },
            { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
          ],
        });
      const match = /^\/api\/v1\/namespaces\/([a-z0-9-]+)\/pods(?:\/([a-z0-9.-]+))?$/.exec(path);
      if (match) {
        const [, namespace = '', name] = match;
        const names = opts.pods[namespace] ?? [];
        if (name === undefined)
          return answer(200, {
            kind: 'PodList',
            apiVersion: 'v1',
            metadata: { resourceVersion: '1' },
            items: names.map((n) => pod(namespace, n)),
          });
        if (names.includes(name)) return answer(200, pod(namespace, name));
        return answer(404, { ...statusBody(404, 'NotFound', `pods "${name}" not found`), details: { name, kind: 'pods' } });
      }
      return answer(404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
