// Runs the Vault double standalone (for the demo):
//   node test/vault-double/cli.ts [--seed FILE.json] [--latency MS] [--tls-key KEY.pem --tls-cert CERT.pem]
// Prints one JSON line {"url": "...", "rootToken": "..."} once listening; stops on SIGTERM/SIGINT.
//
// Seed file (every section optional):
// {
//   "kv":       [{ "mount": "secret", "version": 2, "namespace": "ns1", "secrets": { "app/db": { "password": "x" } } }],
//   "engines":  [{ "mount": "database", "type": "database" }],
//   "dynamic":  [{ "mount": "database", "role": "ro", "ttl": 60, "maxTtl": 300, "renewable": true }],
//   "policies": { "ci": [{ "path": "secret/data/*", "capabilities": ["read"] }] },
//   "approle":  [{ "mount": "approle", "role": "ci", "roleId": "r", "secretId": "s", "policies": ["ci"], "ttl": 600 }],
//   "jwt":      [{ "mount": "jwt", "role": "ci", "publicKeyPem": "-----BEGIN PUBLIC KEY-----...", "boundAudiences": ["vault"], "policies": ["ci"] }],
//   "kubernetes": [{ "mount": "kubernetes", "role": "ci", "jwt": "eyJ...", "policies": ["ci"] }],
//   "users":    [{ "method": "userpass", "mount": "userpass", "username": "u", "password": "p", "policies": ["ci"] }]
// }
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { VaultDouble } from './index.ts';

interface Seed {
  kv?: Array<{ mount: string; version?: 1 | 2; namespace?: string; secrets?: Record<string, Record<string, unknown>> }>;
  engines?: Array<{ mount: string; type: string }>;
  dynamic?: Array<{ mount: string; role: string; ttl: number; maxTtl?: number; renewable?: boolean }>;
  policies?: Record<string, Array<{ path: string; capabilities: string[] }>>;
  approle?: Array<{
    mount: string;
    role: string;
    roleId: string;
    secretId: string;
    policies: string[];
    ttl?: number;
    secretIdWrapped?: boolean;
  }>;
  jwt?: Array<{
    mount: string;
    role: string;
    publicKeyPem: string;
    boundAudiences?: string[];
    boundClaims?: Record<string, string>;
    boundIssuer?: string;
    userClaim?: string;
    policies: string[];
    ttl?: number;
  }>;
  kubernetes?: Array<{ mount: string; role: string; jwt: string; policies: string[]; ttl?: number }>;
  users?: Array<{ method: 'userpass' | 'ldap'; mount: string; username: string; password: string; policies: string[] }>;
}

function applySeed(v: VaultDouble, seed: Seed): void {
  for (const k of seed.kv ?? []) {
    v.enableKv(k.mount, k.version ?? 2, k.namespace);
    for (const [path, data] of Object.entries(k.secrets ?? {})) v.putKv(k.mount, path, data, k.namespace);
  }
  for (const e of seed.engines ?? []) v.enableEngine(e.mount, e.type);
  for (const d of seed.dynamic ?? []) {
    const { mount, role, ...opts } = d;
    v.addDynamicRole(mount, role, opts);
  }
  for (const [name, rules] of Object.entries(seed.policies ?? {})) v.addPolicy(name, rules);
  for (const a of seed.approle ?? []) {
    const { mount, role, ...opts } = a;
    v.addAppRole(mount, role, opts);
  }
  for (const j of seed.jwt ?? []) {
    const { mount, role, ...opts } = j;
    v.addJwtRole(mount, role, opts);
  }
  for (const k of seed.kubernetes ?? []) {
    const { mount, role, ...opts } = k;
    v.addKubernetesRole(mount, role, opts);
  }
  for (const u of seed.users ?? []) v.addUser(u.method, u.mount, u.username, u.password, u.policies);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      latency: { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-cert': { type: 'string' },
    },
  });
  const key = values['tls-key'];
  const cert = values['tls-cert'];
  const vault = await VaultDouble.start({
    ...(key && cert ? { tls: { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') } } : {}),
    latencyMs: values.latency ? Number(values.latency) : 0,
  });
  if (values.seed) applySeed(vault, JSON.parse(readFileSync(values.seed, 'utf8')) as Seed);
  process.stdout.write(`${JSON.stringify({ url: vault.url, rootToken: vault.rootToken })}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void vault.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`vault-double: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
