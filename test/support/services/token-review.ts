// A stand-in for the one piece of a Kubernetes API server that Vault's kubernetes auth method talks
// to: the TokenReview endpoint (POST /apis/authentication.k8s.io/v1/tokenreviews). Why it exists:
// no Kubernetes cluster can run on the test machine, yet the action's `method: kubernetes` should
// log in to a REAL OpenBao, whose kubernetes auth asks the API server whether a service-account
// token is valid. So this stands in for Kubernetes, never for Vault: OpenBao itself parses the
// token, checks the role's bound names and namespaces, calls this endpoint with its reviewer JWT
// as the bearer, compares name, namespace and uid, and issues the Vault token.
//
// What it answers follows the Kubernetes API (authentication.k8s.io/v1 TokenReview) and what
// OpenBao's builtin/credential/kubernetes/token_review.go reads from it:
// - a bearer other than the reviewer JWT: 401 with a metav1 Status (OpenBao: "lookup failed:
//   service account unauthorized ..."), as an API server refuses an unauthenticated client;
// - a token it knows: status.authenticated true, status.user.username
//   `system:serviceaccount:NS:NAME` (OpenBao splits it on ':' into exactly four parts), user.uid,
//   the service-account groups, and status.audiences (the requested audiences, else the account's);
// - any other token: status.authenticated false (OpenBao: "service account jwt not valid").
// Served over HTTPS on 127.0.0.1 (OpenBao's config wants kubernetes_ca_cert with
// disable_local_ca_jwt), with a server certificate the caller brings (test/support/services/tls.ts).

import * as https from 'node:https';
import type { AddressInfo } from 'node:net';

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

export async function startTokenReview(opts: {
  /** PEM server certificate and key for 127.0.0.1. */
  certPem: string;
  keyPem: string;
  /** The bearer OpenBao must present (its token_reviewer_jwt). */
  reviewerJwt: string;
}): Promise<TokenReviewServer> {
  const accounts = new Map<string, ServiceAccount>();
  const reviews: Review[] = [];
  const send = (res: import('node:http').ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = https.createServer({ cert: opts.certPem, key: opts.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') {
        send(res, 404, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'NotFound',
          code: 404,
          message: 'the server could not find the requested resource',
        });
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
        send(res, 401, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'Unauthorized',
          reason: 'Unauthorized',
          code: 401,
        });
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
