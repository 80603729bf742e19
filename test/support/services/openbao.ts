// A real Vault-compatible server for the tests: OpenBao's `bao server -dev` (in memory, unsealed,
// KV v2 at secret/), on loopback ports of its own, plus a TLS listener (optionally asking for
// client certificates) when a test needs one. Configured only through its HTTP API with the root
// token, the way an operator would, so what the action meets is the server's own behaviour.
//
// Facts that shaped this (OpenBao 2.7, checked here):
// - In dev mode every listener also opens a cluster listener on its port + 1, and without
//   -dev-listen-address a second listener on 127.0.0.1:8200: ports come in free pairs, the dev
//   address is always given, and a start that loses a port race is retried.
// - -dev-no-store-token keeps the root token out of ~/.vault-token; HOME is the instance dir anyway.
// - Batch tokens have no accessor, so they are not in `auth/token/accessors`.
//
// Each server lives in its own temp dir (config, log, owner.pid) under the lifecycle of
// lifecycle.ts: own process group under pdeathsig, an exit hook, a sweep of dead owners' dirs.

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baoBinary } from './openbao-install.ts';
import { daemonStopper, freePort, makeInstanceDir, readText, signal, sleep, spawnDaemon, sweepStaleDaemons } from './lifecycle.ts';

const PREFIX = 'ps-openbao-';

export interface OpenBaoOptions {
  /** PEM files for an extra TLS listener; clientCaFile makes it ask for client certificates (cert auth). */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  /** A bao binary other than the pinned release's (default: baoBinary()), e.g. an older release that still has a method. */
  binary?: string;
}

export interface BaoResponse {
  status: number;
  /** The parsed JSON body, or undefined for an empty one (204). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- Vault's envelopes vary by path
  headers: Headers;
}

export interface RequestOptions {
  token?: string;
  namespace?: string;
  body?: unknown;
  /** Response wrapping (X-Vault-Wrap-TTL). */
  wrapTtl?: string;
}

export interface Rule {
  path: string;
  capabilities: string[];
}

/** A policy in HCL from path rules. */
export function policyHcl(rules: readonly Rule[]): string {
  return rules.map((r) => `path ${JSON.stringify(r.path)} {\n  capabilities = ${JSON.stringify(r.capabilities)}\n}\n`).join('\n');
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port P with P + 1 free too (the dev server's cluster listener). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p < 65535 && (await bindable(p + 1))) return p;
  }
}

export class OpenBao {
  /** http://127.0.0.1:PORT, the plain listener. */
  readonly url: string;
  /** https://127.0.0.1:PORT when started with `tls`. */
  readonly tlsUrl: string | undefined;
  readonly rootToken: string;
  readonly dir: string;
  readonly #stop: () => Promise<void>;

  private constructor(url: string, tlsUrl: string | undefined, rootToken: string, dir: string, stop: () => Promise<void>) {
    this.url = url;
    this.tlsUrl = tlsUrl;
    this.rootToken = rootToken;
    this.dir = dir;
    this.#stop = stop;
  }

  static async start(opts: OpenBaoOptions = {}): Promise<OpenBao> {
    const bao = opts.binary ?? baoBinary();
    sweepStaleDaemons(PREFIX, 'bao.pid');
    const dir = makeInstanceDir(tmpdir(), PREFIX);
    const logFile = join(dir, 'bao.log');
    const { own, stop } = daemonStopper(dir, 3000);
    const rootToken = `root-${randomBytes(12).toString('hex')}`;
    try {
      for (let attempt = 1; ; attempt++) {
        const port = await freePortPair();
        const tlsPort = opts.tls ? await freePortPair() : undefined;
        const config = join(dir, 'listeners.hcl');
        const listeners =
          opts.tls && tlsPort !== undefined
            ? [
                'listener "tcp" {',
                `  address = "127.0.0.1:${tlsPort}"`,
                `  tls_cert_file = ${JSON.stringify(opts.tls.certFile)}`,
                `  tls_key_file = ${JSON.stringify(opts.tls.keyFile)}`,
                ...(opts.tls.clientCaFile ? [`  tls_client_ca_file = ${JSON.stringify(opts.tls.clientCaFile)}`] : []),
                '}',
              ]
            : [];
        writeFileSync(config, `${listeners.join('\n')}\n`);
        const args = [
          'server',
          '-dev',
          `-dev-root-token-id=${rootToken}`,
          `-dev-listen-address=127.0.0.1:${port}`,
          '-dev-no-store-token',
          ...(listeners.length > 0 ? [`-config=${config}`] : []),
        ];
        writeFileSync(logFile, '');
        const d = spawnDaemon(bao, args, { log: logFile, env: { PATH: '/usr/bin:/bin', HOME: dir }, pidFile: join(dir, 'bao.pid') });
        own(d);
        const url = `http://127.0.0.1:${port}`;
        const deadline = Date.now() + 20_000;
        let up = false;
        while (!d.hasExited() && Date.now() < deadline) {
          up = await fetch(`${url}/v1/sys/health`).then(
            (r) => r.status === 200,
            () => false,
          );
          if (up) break;
          await sleep(25);
        }
        if (up && !d.hasExited()) {
          return new OpenBao(url, tlsPort !== undefined ? `https://127.0.0.1:${tlsPort}` : undefined, rootToken, dir, stop);
        }
        const tail = readText(logFile).trimEnd().split('\n').slice(-15).join('\n');
        signal(d.pid, 'SIGKILL', true);
        await d.exited;
        if (attempt < 4 && /address already in use/i.test(tail)) continue;
        throw new Error(`bao server -dev on 127.0.0.1:${port} did not come up:\n${tail}`);
      }
    } catch (e) {
      await stop();
      throw e;
    }
  }

  stop(): Promise<void> {
    return this.#stop();
  }

  /** The server's log, for failure messages. */
  log(): string {
    return readText(join(this.dir, 'bao.log'));
  }

  /** One API request (root token unless `token` is given); never throws on a status. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<BaoResponse> {
    const headers: Record<string, string> = { 'X-Vault-Token': opts.token ?? this.rootToken, 'X-Vault-Request': 'true' };
    if (opts.namespace !== undefined) headers['X-Vault-Namespace'] = opts.namespace;
    if (opts.wrapTtl !== undefined) headers['X-Vault-Wrap-TTL'] = opts.wrapTtl;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.url}/v1/${path}`, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, body, headers: res.headers };
  }

  /** A request that must succeed (2xx); throws with Vault's errors otherwise. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Vault's envelopes vary by path
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<any> {
    const res = await this.request(method, path, opts);
    if (res.status >= 300) {
      throw new Error(
        `OpenBao ${method} ${path}${opts.namespace ? ` (namespace ${opts.namespace})` : ''}: ${res.status} ${JSON.stringify(res.body)}`,
      );
    }
    return res.body;
  }

  // ---- configuration an operator would do ------------------------------------------------------

  async createNamespace(name: string): Promise<void> {
    await this.call('POST', `sys/namespaces/${name}`, { body: {} });
  }

  /** Mounts a secrets engine unless one of that type is there already. */
  async enableEngine(
    mount: string,
    type: string,
    opts: { namespace?: string; options?: Record<string, string>; maxLeaseTtl?: string } = {},
  ): Promise<void> {
    const ns = opts.namespace !== undefined ? { namespace: opts.namespace } : {};
    const mounts = await this.call('GET', 'sys/mounts', ns);
    const existing = mounts.data?.[`${mount}/`];
    if (existing?.type === type && (opts.options?.version === undefined || existing.options?.version === opts.options.version)) return;
    if (existing) await this.call('DELETE', `sys/mounts/${mount}`, ns);
    await this.call('POST', `sys/mounts/${mount}`, {
      ...ns,
      body: {
        type,
        ...(opts.options ? { options: opts.options } : {}),
        ...(opts.maxLeaseTtl ? { config: { max_lease_ttl: opts.maxLeaseTtl } } : {}),
      },
    });
  }

  enableKv(mount: string, version: 1 | 2, namespace?: string): Promise<void> {
    return this.enableEngine(mount, 'kv', { options: { version: String(version) }, ...(namespace !== undefined ? { namespace } : {}) });
  }

  /** Writes a KV secret (v2: a new version, whose number is returned; v1: returns 0). */
  async putKv(mount: string, path: string, data: Record<string, unknown>, namespace?: string): Promise<number> {
    const ns = namespace !== undefined ? { namespace } : {};
    const mounts = await this.call('GET', 'sys/mounts', ns);
    const version = mounts.data?.[`${mount}/`]?.options?.version;
    if (version === '2') {
      const res = await this.call('POST', `${mount}/data/${path}`, { ...ns, body: { data } });
      return Number(res.data.version);
    }
    await this.call('POST', `${mount}/${path}`, { ...ns, body: data });
    return 0;
  }

  async deleteKvVersion(mount: string, path: string, version: number): Promise<void> {
    await this.call('POST', `${mount}/delete/${path}`, { body: { versions: [version] } });
  }

  async destroyKvVersion(mount: string, path: string, version: number): Promise<void> {
    await this.call('PUT', `${mount}/destroy/${path}`, { body: { versions: [version] } });
  }

  async addPolicy(name: string, rules: readonly Rule[], namespace?: string): Promise<void> {
    await this.call('PUT', `sys/policies/acl/${name}`, {
      body: { policy: policyHcl(rules) },
      ...(namespace !== undefined ? { namespace } : {}),
    });
  }

  /** Enables an auth method at `mount` unless it is there already. */
  async enableAuth(mount: string, type: string, namespace?: string): Promise<void> {
    const ns = namespace !== undefined ? { namespace } : {};
    const auths = await this.call('GET', 'sys/auth', ns);
    if (auths.data?.[`${mount}/`]?.type === type) return;
    await this.call('POST', `sys/auth/${mount}`, { ...ns, body: { type } });
  }

  /** A token made by root (a child of root unless orphan), as an operator hands one out. */
  async createToken(
    opts: {
      policies?: string[];
      ttl?: string;
      renewable?: boolean;
      numUses?: number;
      type?: 'service' | 'batch';
      noDefaultPolicy?: boolean;
      namespace?: string;
    } = {},
  ): Promise<string> {
    const res = await this.call('POST', 'auth/token/create', {
      ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
      body: {
        policies: opts.policies ?? ['default'],
        ttl: opts.ttl ?? '10m',
        ...(opts.renewable !== undefined ? { renewable: opts.renewable } : {}),
        ...(opts.numUses !== undefined ? { num_uses: opts.numUses } : {}),
        ...(opts.type !== undefined ? { type: opts.type } : {}),
        ...(opts.noDefaultPolicy ? { no_default_policy: true } : {}),
      },
    });
    return String(res.auth.client_token);
  }

  /** An AppRole with fixed role_id and secret_id. */
  async addAppRole(
    mount: string,
    role: string,
    opts: {
      roleId: string;
      secretId?: string;
      policies: string[];
      ttl?: string;
      maxTtl?: string;
      tokenType?: 'service' | 'batch';
      namespace?: string;
    },
  ): Promise<void> {
    const ns = opts.namespace !== undefined ? { namespace: opts.namespace } : {};
    await this.enableAuth(mount, 'approle', opts.namespace);
    await this.call('POST', `auth/${mount}/role/${role}`, {
      ...ns,
      body: {
        token_policies: opts.policies,
        token_ttl: opts.ttl ?? '10m',
        ...(opts.maxTtl ? { token_max_ttl: opts.maxTtl } : {}),
        ...(opts.tokenType ? { token_type: opts.tokenType } : {}),
      },
    });
    await this.call('POST', `auth/${mount}/role/${role}/role-id`, { ...ns, body: { role_id: opts.roleId } });
    if (opts.secretId !== undefined)
      await this.call('POST', `auth/${mount}/role/${role}/custom-secret-id`, { ...ns, body: { secret_id: opts.secretId } });
  }

  /** A new secret-id for the AppRole, response-wrapped: returns the single-use wrapping token. */
  async wrappedSecretId(mount: string, role: string, ttl = '5m'): Promise<string> {
    const res = await this.call('POST', `auth/${mount}/role/${role}/secret-id`, { body: {}, wrapTtl: ttl });
    return String(res.wrap_info.token);
  }

  /** Any data response-wrapped (sys/wrapping/wrap): returns the wrapping token. */
  async wrap(data: Record<string, unknown>, ttl = '5m'): Promise<string> {
    const res = await this.call('POST', 'sys/wrapping/wrap', { body: data, wrapTtl: ttl });
    return String(res.wrap_info.token);
  }

  /**
   * A JWT role verifying tokens signed by `publicKeyPem` (jwt_validation_pubkeys, no discovery),
   * `role_type: jwt` (the default, oidc, refuses a JWT login).
   */
  async addJwtRole(
    mount: string,
    role: string,
    opts: {
      publicKeyPem: string;
      boundIssuer?: string;
      boundAudiences: string[];
      boundClaims?: Record<string, string>;
      userClaim?: string;
      policies: string[];
      ttl?: string;
    },
  ): Promise<void> {
    await this.enableAuth(mount, 'jwt');
    await this.call('POST', `auth/${mount}/config`, {
      body: { jwt_validation_pubkeys: [opts.publicKeyPem], ...(opts.boundIssuer ? { bound_issuer: opts.boundIssuer } : {}) },
    });
    await this.call('POST', `auth/${mount}/role/${role}`, {
      body: {
        role_type: 'jwt',
        bound_audiences: opts.boundAudiences,
        ...(opts.boundClaims ? { bound_claims: opts.boundClaims } : {}),
        user_claim: opts.userClaim ?? 'sub',
        token_policies: opts.policies,
        token_ttl: opts.ttl ?? '10m',
      },
    });
  }

  async addUserpass(mount: string, username: string, password: string, policies: string[]): Promise<void> {
    await this.enableAuth(mount, 'userpass');
    await this.call('POST', `auth/${mount}/users/${username}`, { body: { password, token_policies: policies } });
  }

  /** A certificate role of the cert auth method: a client presenting a cert signed by `certificatePem` logs in. */
  async addCertRole(mount: string, name: string, opts: { certificatePem: string; policies: string[]; ttl?: string }): Promise<void> {
    await this.enableAuth(mount, 'cert');
    await this.call('POST', `auth/${mount}/certs/${name}`, {
      body: { certificate: opts.certificatePem, token_policies: opts.policies, token_ttl: opts.ttl ?? '10m' },
    });
  }

  /** A PKI mount with a root CA and a role whose certificates carry a lease (generate_lease). */
  async addPkiRole(mount: string, role: string, opts: { ttl?: string; maxTtl?: string } = {}): Promise<void> {
    await this.enableEngine(mount, 'pki', { maxLeaseTtl: '87600h' });
    const issuers = await this.request('LIST', `${mount}/issuers`);
    if (issuers.status !== 200)
      await this.call('POST', `${mount}/root/generate/internal`, { body: { common_name: 'pipeline-secrets test CA', ttl: '8760h' } });
    await this.call('POST', `${mount}/roles/${role}`, {
      body: { allow_any_name: true, generate_lease: true, ttl: opts.ttl ?? '1h', ...(opts.maxTtl ? { max_ttl: opts.maxTtl } : {}) },
    });
  }

  /**
   * A database secrets engine at `mount` connected to a PostgreSQL (postgresql-database-plugin, on
   * 127.0.0.1) and a role whose credentials are a login role with a renewable lease of `ttl`.
   * Revoking the lease drops the role (the plugin's default revocation).
   */
  async addPostgresRole(
    mount: string,
    role: string,
    opts: { port: number; adminUser: string; adminPassword: string; database?: string; ttl: string; maxTtl: string },
  ): Promise<void> {
    await this.enableEngine(mount, 'database');
    await this.call('POST', `${mount}/config/${role}`, {
      body: {
        plugin_name: 'postgresql-database-plugin',
        connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${opts.port}/${opts.database ?? 'postgres'}?sslmode=disable`,
        username: opts.adminUser,
        password: opts.adminPassword,
        allowed_roles: [role],
        verify_connection: true,
      },
    });
    await this.call('POST', `${mount}/roles/${role}`, {
      body: {
        db_name: role,
        creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
        default_ttl: opts.ttl,
        max_ttl: opts.maxTtl,
      },
    });
  }

  /**
   * Kubernetes auth at `mount` whose TokenReview calls go to `host` (an API server, or a stand-in
   * for one: test/support/services/token-review.ts) over HTTPS verified with `caCertPem`, presenting
   * `reviewerJwt`; the local pod CA and token are not used. A role admitting the given service
   * account names and namespaces.
   */
  async addKubernetesRole(
    mount: string,
    role: string,
    opts: {
      host: string;
      caCertPem: string;
      reviewerJwt: string;
      serviceAccountNames: string[];
      serviceAccountNamespaces: string[];
      policies: string[];
      ttl?: string;
    },
  ): Promise<void> {
    await this.enableAuth(mount, 'kubernetes');
    await this.call('POST', `auth/${mount}/config`, {
      body: {
        kubernetes_host: opts.host,
        kubernetes_ca_cert: opts.caCertPem,
        token_reviewer_jwt: opts.reviewerJwt,
        disable_local_ca_jwt: true,
      },
    });
    await this.call('POST', `auth/${mount}/role/${role}`, {
      body: {
        bound_service_account_names: opts.serviceAccountNames,
        bound_service_account_namespaces: opts.serviceAccountNamespaces,
        token_policies: opts.policies,
        token_ttl: opts.ttl ?? '10m',
      },
    });
  }

  /**
   * LDAP auth at `mount` against a directory server: users are found by `userattr` (default uid)
   * under `userDn` after binding as `bindDn`; `username` gets `policies` (auth/MOUNT/users/NAME).
   */
  async addLdapUser(
    mount: string,
    username: string,
    opts: { url: string; userDn: string; bindDn: string; bindPassword: string; userAttr?: string; policies: string[] },
  ): Promise<void> {
    await this.enableAuth(mount, 'ldap');
    await this.call('POST', `auth/${mount}/config`, {
      body: {
        url: opts.url,
        userdn: opts.userDn,
        userattr: opts.userAttr ?? 'uid',
        binddn: opts.bindDn,
        bindpass: opts.bindPassword,
      },
    });
    await this.call('POST', `auth/${mount}/users/${username}`, { body: { policies: opts.policies } });
  }

  /**
   * A rate-limit quota (sys/quotas/rate-limit/NAME): `rate` requests per `interval` per client
   * address (all loopback clients share one bucket), on `path` (a mount or path prefix; '' for
   * all). With `block` a client over the rate is refused for that long. `headers` turns on the
   * X-Ratelimit-* and Retry-After headers (sys/quotas/config), off by default. Seen on OpenBao 2.7:
   * a refusal is 429 {"errors":["request path \"P\": rate limit quota exceeded"]}; Retry-After is
   * whole seconds rounded down ("0" under a 1 s interval) and absent unless `headers` is on;
   * sys/health is exempt.
   */
  async addRateLimitQuota(
    name: string,
    opts: { rate: number; interval?: string; block?: string; path?: string; headers?: boolean },
  ): Promise<void> {
    await this.call('POST', 'sys/quotas/config', { body: { enable_rate_limit_response_headers: opts.headers ?? false } });
    await this.call('POST', `sys/quotas/rate-limit/${name}`, {
      body: {
        rate: opts.rate,
        interval: opts.interval ?? '1s',
        ...(opts.block !== undefined ? { block_interval: opts.block } : {}),
        path: opts.path ?? '',
      },
    });
  }

  async removeRateLimitQuota(name: string): Promise<void> {
    await this.call('DELETE', `sys/quotas/rate-limit/${name}`);
  }

  // ---- what the tests check ------------------------------------------------------------------

  /** True while `token` is valid (looked up by root; a revoked or expired token is gone). */
  async tokenAlive(token: string): Promise<boolean> {
    const res = await this.request('POST', 'auth/token/lookup', { body: { token } });
    return res.status === 200;
  }

  /**
   * Accessors of every live service token but the root token's (batch tokens have none). Tokens
   * live in the namespace they were made in: `namespace` lists that one's (default: the root's).
   */
  async liveAccessors(namespace?: string): Promise<string[]> {
    const ns = namespace !== undefined ? { namespace } : {};
    const res = await this.request('LIST', 'auth/token/accessors', ns);
    const keys: string[] = res.status === 200 ? (res.body.data.keys ?? []) : [];
    const out: string[] = [];
    for (const accessor of keys) {
      const info = await this.request('POST', 'auth/token/lookup-accessor', { ...ns, body: { accessor } });
      if (info.status === 200 && !(info.body.data.policies ?? []).includes('root')) out.push(accessor);
    }
    return out;
  }

  /** Every live lease id under `prefix` (e.g. 'database/creds/'), recursively. */
  async liveLeases(prefix = ''): Promise<string[]> {
    const res = await this.request('LIST', `sys/leases/lookup/${prefix}`);
    if (res.status !== 200) return [];
    const out: string[] = [];
    for (const key of res.body.data.keys as string[]) {
      if (key.endsWith('/')) out.push(...(await this.liveLeases(`${prefix}${key}`)));
      else out.push(`${prefix}${key}`);
    }
    return out;
  }

  /**
   * Live leases under `prefix` once the server has settled: OpenBao revokes a revoked token's
   * leases in the background (seen here: still listed right after revoke-self answered 204, gone
   * about 250 ms later), so this polls until the list is empty or `timeoutMs` has passed.
   */
  async settledLeases(prefix = '', timeoutMs = 5000): Promise<string[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const live = await this.liveLeases(prefix);
      if (live.length === 0 || Date.now() >= until) return live;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async leaseAlive(leaseId: string): Promise<boolean> {
    const res = await this.request('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } });
    return res.status === 200;
  }

  /** A lease as the server sees it (issue_time, expire_time, last_renewal, ttl, renewable), or undefined when gone. */
  async leaseInfo(
    leaseId: string,
  ): Promise<{ issue_time: string; expire_time: string; last_renewal: string | null; ttl: number; renewable: boolean } | undefined> {
    const res = await this.request('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } });
    return res.status === 200 ? res.body.data : undefined;
  }

  /** A token as the server sees it (looked up by root), or undefined when revoked or expired. */
  async tokenInfo(
    token: string,
  ): Promise<
    | { accessor: string; creation_time: number; creation_ttl: number; last_renewal_time?: number; ttl: number; renewable: boolean }
    | undefined
  > {
    const res = await this.request('POST', 'auth/token/lookup', { body: { token } });
    return res.status === 200 ? res.body.data : undefined;
  }

  // ---- PKI: a root CA, roles with and without a lease, and what the engine says was revoked -----

  /**
   * A PKI role whose certificates carry no lease (`generate_lease: false`, the engine's default):
   * such a certificate outlives the token that asked for it, and only `<mount>/revoke` by serial
   * ends it. The mount and its root CA are made as addPkiRole makes them.
   */
  async addPkiRoleWithoutLease(mount: string, role: string, opts: { ttl?: string } = {}): Promise<void> {
    await this.addPkiRole(mount, role, opts);
    await this.call('POST', `${mount}/roles/${role}`, { body: { allow_any_name: true, generate_lease: false, ttl: opts.ttl ?? '1h' } });
  }

  /** The mount's CA certificate (PEM), as a TLS server started by a test trusts it. */
  async pkiCaPem(mount: string): Promise<string> {
    const res = await this.call('GET', `${mount}/cert/ca`);
    return String(res.data.certificate);
  }

  /** Issues a certificate as an operator would (root token): e.g. the test TLS server's own. */
  async issueCertificate(
    mount: string,
    role: string,
    body: Record<string, unknown>,
  ): Promise<{ certificate: string; private_key: string; issuing_ca: string; serial_number: string }> {
    const res = await this.call('POST', `${mount}/issue/${role}`, { body });
    return res.data;
  }

  /** Serials on the mount's revoked list (`LIST <mount>/certs/revoked`), as the engine spells them. */
  async revokedSerials(mount: string): Promise<string[]> {
    const res = await this.request('LIST', `${mount}/certs/revoked`);
    return res.status === 200 ? ((res.body.data.keys ?? []) as string[]) : [];
  }

  /** When the certificate `serial` was revoked (unix seconds), 0 while it is valid, undefined when unknown. */
  async certRevocationTime(mount: string, serial: string): Promise<number | undefined> {
    const res = await this.request('GET', `${mount}/cert/${serial}`);
    return res.status === 200 ? Number(res.body.data.revocation_time ?? 0) : undefined;
  }
}
