// Vault HTTP API double: an in-process HTTP(S) server that follows Vault's documented HTTP API.
// https://developer.hashicorp.com/vault/api-docs
import { AuthMethods, publicKey } from './auth.ts';
import { parsePemCertificates } from './cert.ts';
import { Faults, type FaultSpec } from './faults.ts';
import { destroy, softDelete, writeV1, writeV2 } from './kv.ts';
import { MountTable, type Mount, type RecordedWrite } from './mounts.ts';
import { PolicyStore } from './policies.ts';
import { envelope } from './reply.ts';
import { HttpServer, type RecordedRequest } from './server.ts';
import { TokenStore } from './tokens.ts';
import { trimSlashes, uuid } from './util.ts';

export type { FaultSpec } from './faults.ts';
export type { RecordedWrite } from './mounts.ts';
export type { RecordedRequest } from './server.ts';

export interface VaultDoubleOptions {
  /**
   * PEM strings; serve HTTPS when given. requestClientCert: ask for (never require) a client
   * certificate, as Vault's listener does; cert auth logins need it.
   */
  tls?: { key: string; cert: string; ca?: string; requestClientCert?: boolean };
  /** Added before answering every request (default 0). */
  latencyMs?: number;
}

export class VaultDouble {
  readonly url: string;
  readonly rootToken: string;
  readonly requests: RecordedRequest[];
  latencyMs: number;

  readonly #http: HttpServer;
  readonly #mounts: MountTable;
  readonly #auth: AuthMethods;
  readonly #tokens: TokenStore;
  readonly #policies: PolicyStore;
  readonly #faults: Faults;

  private constructor(
    http: HttpServer,
    parts: { mounts: MountTable; auth: AuthMethods; tokens: TokenStore; policies: PolicyStore; faults: Faults },
    rootToken: string,
    requests: RecordedRequest[],
    latencyMs: number,
  ) {
    this.#http = http;
    this.#mounts = parts.mounts;
    this.#auth = parts.auth;
    this.#tokens = parts.tokens;
    this.#policies = parts.policies;
    this.#faults = parts.faults;
    this.url = http.url;
    this.rootToken = rootToken;
    this.requests = requests;
    this.latencyMs = latencyMs;
  }

  static async start(opts: VaultDoubleOptions = {}): Promise<VaultDouble> {
    const parts = {
      mounts: new MountTable(),
      auth: new AuthMethods(),
      tokens: new TokenStore(),
      policies: new PolicyStore(),
      faults: new Faults(),
    };
    const requests: RecordedRequest[] = [];
    const root = parts.tokens.createRoot();
    let self: VaultDouble | undefined;
    const http = await HttpServer.listen(
      {
        deps: parts,
        faults: parts.faults,
        requests,
        latencyMs: () => self?.latencyMs ?? 0,
      },
      opts.tls,
    );
    self = new VaultDouble(http, parts, root.id, requests, opts.latencyMs ?? 0);
    return self;
  }

  // ---- data ---------------------------------------------------------------------------

  // https://developer.hashicorp.com/vault/api-docs/system/mounts#enable-secrets-engine
  enableKv(mount: string, version: 1 | 2, namespace?: string): void {
    this.#mounts.enable(namespace ?? '', mount, 'kv', version);
  }

  enableEngine(mount: string, type: string): void {
    if (type === 'kv') throw new Error('use enableKv for kv mounts');
    this.#mounts.enable('', mount, type);
  }

  #kvMount(mount: string, namespace?: string): Mount {
    const m = this.#mounts.get(namespace ?? '', mount);
    if (!m || m.type !== 'kv') throw new Error(`no kv mount at ${namespace ? `${namespace}/` : ''}${trimSlashes(mount)}/`);
    return m;
  }

  putKv(mount: string, path: string, data: Record<string, unknown>, namespace?: string): number {
    const m = this.#kvMount(mount, namespace);
    if (m.version === 2) return writeV2(m, path, data).version;
    writeV1(m, path, data);
    return 1;
  }

  deleteKvVersion(mount: string, path: string, version: number): void {
    softDelete(this.#kvV2(mount), path, version);
  }

  destroyKvVersion(mount: string, path: string, version: number): void {
    destroy(this.#kvV2(mount), path, version);
  }

  #kvV2(mount: string): Mount {
    const m = this.#kvMount(mount);
    if (m.version !== 2) throw new Error(`${trimSlashes(mount)}/ is not a kv version 2 mount`);
    return m;
  }

  /** A GET on `${mount}/creds/${role}` returns fresh data under a lease. Enables a 'database' mount if none. */
  addDynamicRole(
    mount: string,
    role: string,
    opts: { ttl: number; maxTtl?: number; renewable?: boolean; make?: () => Record<string, unknown> },
  ): void {
    const m = this.#mounts.get('', mount) ?? this.#mounts.enable('', mount, 'database');
    if (m.type === 'kv' || m.type === 'cubbyhole' || m.type === 'system' || m.type === 'identity') {
      throw new Error(`${trimSlashes(mount)}/ is a ${m.type} mount`);
    }
    m.roles.set(role, { ttl: opts.ttl, maxTtl: opts.maxTtl, renewable: opts.renewable, make: opts.make });
  }

  /**
   * A POST/PUT endpoint `<mount>/<path>` (e.g. 'aws' + 'sts/deploy', 'pki' + 'issue/web') that
   * answers `data: make(body)`. With a lease by default, like aws/sts (not renewable unless
   * `renewable`; `ttl` from the body, else opts.ttl, else 1 h); paths starting with 'issue/' or
   * 'sign/' get no lease by default, like a PKI role without generate_lease. GET is refused (405)
   * unless `read` (default: true for 'sts/' paths, which aws serves on read too, with the query
   * as the body). Every body is recorded (see writes()); `make` throwing answers 400 with its
   * message. Enables the mount (type opts.type, else 'pki' for issue/ and sign/, 'aws' for sts/,
   * else the mount's name) when it does not exist.
   */
  addWriteRole(
    mount: string,
    path: string,
    opts: {
      make: (body: Record<string, unknown>) => Record<string, unknown>;
      ttl?: number;
      maxTtl?: number;
      renewable?: boolean;
      lease?: boolean;
      read?: boolean;
      type?: string;
      namespace?: string;
    },
  ): void {
    const ns = opts.namespace ?? '';
    const key = trimSlashes(path);
    const noLease = key.startsWith('issue/') || key.startsWith('sign/');
    const type = opts.type ?? (noLease ? 'pki' : key.startsWith('sts/') ? 'aws' : (trimSlashes(mount).split('/').at(-1) ?? 'generic'));
    const m = this.#mounts.get(ns, mount) ?? this.#mounts.enable(ns, mount, type);
    if (m.type === 'kv' || m.type === 'cubbyhole' || m.type === 'system' || m.type === 'identity') {
      throw new Error(`${trimSlashes(mount)}/ is a ${m.type} mount`);
    }
    m.writeRoles.set(key, {
      ttl: opts.ttl,
      maxTtl: opts.maxTtl,
      renewable: opts.renewable,
      lease: opts.lease ?? !noLease,
      read: opts.read ?? key.startsWith('sts/'),
      make: opts.make,
    });
  }

  /** Bodies received by write roles, in order (path without namespace prefix). */
  writes(): RecordedWrite[] {
    return this.#mounts.writes.map((w) => ({ ...w, body: structuredClone(w.body) }));
  }

  // ---- auth ---------------------------------------------------------------------------

  // https://developer.hashicorp.com/vault/api-docs/system/policies#create-update-acl-policy
  addPolicy(name: string, rules: Array<{ path: string; capabilities: string[] }>): void {
    this.#policies.add(name, rules);
  }

  // https://developer.hashicorp.com/vault/api-docs/auth/token#create-token
  createToken(opts: { policies?: string[]; ttl?: number; renewable?: boolean; numUses?: number } = {}): string {
    return this.#tokens.issue({
      policies: opts.policies ?? [],
      ttl: opts.ttl,
      renewable: opts.renewable,
      numUses: opts.numUses,
      path: 'auth/token/create',
      displayName: 'token',
      orphan: false,
      mountType: 'token',
    }).id;
  }

  /**
   * With secretIdWrapped, `secretId` is the id of a response-wrapping token (as
   * `POST auth/<mount>/role/<role>/secret-id` with X-Vault-Wrap-TTL would return): unwrapping
   * it yields `{secret_id, secret_id_accessor, ...}` with a generated secret id, which is the
   * one login accepts. The wrapping token itself is not a valid secret id.
   */
  addAppRole(
    mount: string,
    role: string,
    opts: { roleId: string; secretId: string; policies: string[]; ttl?: number; secretIdWrapped?: boolean },
  ): void {
    const m = this.#auth.ensure(mount, 'approle');
    let secretId = opts.secretId;
    if (opts.secretIdWrapped) {
      secretId = uuid();
      const response = envelope('', {
        data: { secret_id: secretId, secret_id_accessor: uuid(), secret_id_ttl: 0, secret_id_num_uses: 0 },
        mount_type: 'approle',
      });
      this.#tokens.wrap(response, 3600, `auth/${m.path}/role/${role}/secret-id`, opts.secretId);
    }
    const existing = m.approles.get(role);
    if (existing && existing.roleId === opts.roleId) {
      existing.secretIds.add(secretId);
      existing.policies = [...opts.policies];
      existing.ttl = opts.ttl;
      return;
    }
    m.approles.set(role, { roleId: opts.roleId, secretIds: new Set([secretId]), policies: [...opts.policies], ttl: opts.ttl });
  }

  addJwtRole(
    mount: string,
    role: string,
    opts: {
      publicKeyPem: string;
      boundAudiences?: string[];
      boundClaims?: Record<string, string>;
      boundIssuer?: string;
      userClaim?: string;
      policies: string[];
      ttl?: number;
    },
  ): void {
    const m = this.#auth.ensure(mount, 'jwt');
    m.jwtRoles.set(role.toLowerCase(), {
      key: publicKey(opts.publicKeyPem),
      boundAudiences: opts.boundAudiences,
      boundClaims: opts.boundClaims,
      boundIssuer: opts.boundIssuer,
      userClaim: opts.userClaim ?? 'sub',
      policies: [...opts.policies],
      ttl: opts.ttl,
    });
  }

  /** Accepts exactly that service-account JWT for the role (stands in for the TokenReview API). */
  addKubernetesRole(mount: string, role: string, opts: { jwt: string; policies: string[]; ttl?: number }): void {
    this.#auth.ensure(mount, 'kubernetes').k8sRoles.set(role, { jwt: opts.jwt, policies: [...opts.policies], ttl: opts.ttl });
  }

  addUser(method: 'userpass' | 'ldap', mount: string, username: string, password: string, policies: string[]): void {
    this.#auth.ensure(mount, method).users.set(username.toLowerCase(), { password, policies: [...policies] });
  }

  // https://developer.hashicorp.com/vault/api-docs/auth/cert#create-ca-certificate-role
  /**
   * A trusted certificate role of the cert method: `certificatePem` is a CA (any client
   * certificate chaining to it may log in) or a leaf (that certificate only, matched by serial
   * number and authority key id). `POST auth/<mount>/login` with optional `{name}` then checks the
   * client certificate of the TLS connection, so start the double with tls.requestClientCert.
   */
  addCertRole(
    mount: string,
    name: string,
    opts: { certificatePem: string; policies: string[]; ttl?: number; allowedCommonNames?: string[]; displayName?: string },
  ): void {
    const certificates = parsePemCertificates(opts.certificatePem);
    if (certificates.length === 0) throw new Error('certificatePem holds no PEM certificate');
    this.#auth.ensure(mount, 'cert').certRoles.set(name, {
      name,
      certificates,
      policies: [...opts.policies],
      ttl: opts.ttl,
      allowedCommonNames: opts.allowedCommonNames ? [...opts.allowedCommonNames] : undefined,
      displayName: opts.displayName ?? name,
    });
  }

  /**
   * An auth method the double does not model, at `auth/<mount>/`: `POST auth/<mount>/login` (or
   * login/...) with any JSON body is decided by `check(body, path)`: true → a token with
   * `policies`; false → 403 permission denied; a string → 400 with that text.
   */
  addCustomLogin(
    mount: string,
    check: (body: Record<string, unknown>, path: string) => boolean | string,
    policies: string[],
    ttl?: number,
  ): void {
    this.#auth.ensure(mount, 'custom').custom = { check, policies: [...policies], ttl };
  }

  // https://developer.hashicorp.com/vault/api-docs/system/wrapping-wrap
  /** A single-use wrapping token whose unwrap returns `data` (like sys/wrapping/wrap). */
  wrap(data: Record<string, unknown>, ttl = 300): string {
    const response = envelope('', { data: structuredClone(data) });
    return this.#tokens.wrap(response, ttl, 'sys/wrapping/wrap').token;
  }

  // ---- inspection ---------------------------------------------------------------------

  tokenState(token: string): 'active' | 'revoked' | 'expired' | 'unknown' {
    return this.#tokens.state(token);
  }

  liveTokens(): string[] {
    return this.#tokens.liveTokens();
  }

  leaseState(leaseId: string): 'active' | 'revoked' | 'expired' | 'unknown' {
    return this.#tokens.leaseState(leaseId);
  }

  liveLeases(): string[] {
    return this.#tokens.liveLeases();
  }

  count(filter: { method?: string; path?: string | RegExp } = {}): number {
    return this.requests.filter((r) => {
      if (filter.method && r.method !== filter.method.toUpperCase()) return false;
      if (filter.path === undefined) return true;
      return typeof filter.path === 'string'
        ? r.path === filter.path
        : new RegExp(filter.path.source, filter.path.flags.replace('g', '')).test(r.path);
    }).length;
  }

  // ---- faults -------------------------------------------------------------------------

  inject(f: FaultSpec): void {
    this.#faults.inject(f);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  /** Closes the listener and every socket (keep-alive, hung, mid-latency) and resolves promptly. */
  stop(): Promise<void> {
    return this.#http.close();
  }
}
