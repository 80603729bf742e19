// A stand-in for Vault's GitHub auth method's login endpoint, in front of a REAL OpenBao. Why it
// exists: OpenBao has no github auth method built in (its builtin registry: approle, cert, jwt,
// kerberos, kubernetes, ldap, radius, userpass). Its external plugin (openbao/openbao-plugins,
// auth/github) is not served by the Go module proxy these machines and CI reach, so it cannot be
// installed the way the preflight installs everything else; and it would check every token against
// GitHub's API (api.github.com, or a GitHub Enterprise base_url), which cannot be reached either,
// so a GitHub stand-in would be needed behind it anyway. So only `POST /v1/auth/<mount>/login` is answered here, in the shape Vault documents
// (https://developer.hashicorp.com/vault/api-docs/auth/github#login: body {"token": "..."}, answer
// {"auth": {"client_token", "accessor", "policies", "metadata": {"username", "org"},
// "lease_duration", "renewable"}}): a GitHub token this stand-in was given maps to a user, whose
// Vault token is minted by the REAL OpenBao (auth/token/create with the user's policies, by the
// root token), so every later request (lookup-self, KV reads, revoke-self in post) is OpenBao's own
// answer to a real token; this server forwards those unchanged. An unknown GitHub token gets a 400
// with Vault's words for a user outside the organization, never the token.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OpenBao } from './openbao.ts';

export interface GithubUser {
  readonly username: string;
  readonly org: string;
  readonly policies: readonly string[];
}

export interface GithubAuthStandIn {
  /** http://127.0.0.1:PORT: the action's `url`. */
  readonly url: string;
  /** Each login asked for: the mount, whether the token was known, and the status answered. */
  readonly logins: Array<{ mount: string; known: boolean; status: number }>;
  /** Makes `githubToken` a valid GitHub token of `user` from now on. */
  addToken(githubToken: string, user: GithubUser): void;
  stop(): Promise<void>;
}

const LOGIN = /^\/v1\/auth\/([A-Za-z0-9_.\-/]+)\/login$/;

export async function startGithubAuth(bao: OpenBao, mounts: readonly string[] = ['github']): Promise<GithubAuthStandIn> {
  const upstream = new URL(bao.url);
  const users = new Map<string, GithubUser>();
  const logins: GithubAuthStandIn['logins'] = [];

  async function login(mount: string, body: Buffer, res: http.ServerResponse): Promise<void> {
    let token: unknown;
    try {
      token = (JSON.parse(body.toString('utf8')) as { token?: unknown }).token;
    } catch {
      token = undefined;
    }
    const user = typeof token === 'string' ? users.get(token) : undefined;
    if (user === undefined) {
      logins.push({ mount, known: false, status: 400 });
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: ['user is not part of required org'] }));
      return;
    }
    const created = await bao.call('POST', 'auth/token/create', {
      body: {
        policies: user.policies,
        meta: { username: user.username, org: user.org },
        display_name: `github-${user.username}`,
        ttl: '10m',
      },
    });
    const auth = created.auth as Record<string, unknown>;
    logins.push({ mount, known: true, status: 200 });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        request_id: 'github-stand-in',
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        data: null,
        auth: {
          client_token: auth.client_token,
          accessor: auth.accessor,
          policies: auth.policies,
          token_policies: auth.token_policies,
          metadata: { username: user.username, org: user.org },
          lease_duration: auth.lease_duration,
          renewable: true,
          token_type: 'service',
        },
      }),
    );
  }

  function forward(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    const headers = { ...req.headers, host: upstream.host };
    const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    out.end(body);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const mount = LOGIN.exec(req.url ?? '')?.[1];
      if (req.method === 'POST' && mount !== undefined && mounts.includes(mount)) {
        login(mount, body, res).catch(() => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: ['github stand-in: OpenBao refused to create the token'] }));
        });
      } else forward(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    logins,
    addToken: (githubToken, user) => void users.set(githubToken, user),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
