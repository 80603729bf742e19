// Cost per job to Vault, on a real OpenBao and a real PostgreSQL: the requests a typical deploy job
// makes (main and post), by kind, and what is left alive on the server afterwards, side by side
// with hashicorp/vault-action for the same secrets on the same server (counted by the proxy).
//   node bench/vault-cost.ts
import { startFaultProxy, type FaultProxy } from '../test/support/services/fault-proxy.ts';
import { OpenBao } from '../test/support/services/openbao.ts';
import { startPostgres } from '../test/support/services/postgres.ts';
import { mainThenPost } from './lib.ts';
import { runVaultAction, vaultAction } from './vault-action.ts';

const baseline = vaultAction();
const pg = await startPostgres();
const bao = await OpenBao.start();
const proxy = await startFaultProxy(bao.url);

function kinds(p: FaultProxy, from: number): Map<string, number> {
  const byKind = new Map<string, number>();
  for (const r of p.requests.slice(from)) {
    const kind = r.path.startsWith('auth/approle/login')
      ? 'login'
      : r.path.startsWith('sys/internal/ui/mounts')
        ? 'mount detection'
        : r.path.startsWith('sys/leases/revoke')
          ? 'lease revoke'
          : r.path.startsWith('auth/token/revoke-self')
            ? 'token revoke'
            : r.path.startsWith('auth/token/lookup-self')
              ? 'token lookup'
              : 'secret read';
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
  }
  return byKind;
}

/** What is alive; Vault revokes a revoked token's leases in the background, so give it up to 5 s. */
async function alive(roles: Set<string>): Promise<string> {
  for (const until = Date.now() + 5000; Date.now() < until && (await bao.liveLeases('database/')).length > 0;) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const accessors = await bao.liveAccessors();
  const leases = await bao.liveLeases('database/');
  const pgRoles = (await pg.roles()).filter((r) => !roles.has(r));
  return `${accessors.length} token(s), ${leases.length} lease(s), ${pgRoles.length} PostgreSQL role(s)`;
}

try {
  await bao.putKv('secret', 'deploy/app', { 'db-host': 'db.internal', 'api-key': 'k-123456789' });
  await bao.putKv('secret', 'deploy/registry', { username: 'ci', password: 'registry-pw-123' });
  await bao.addPostgresRole('database', 'deploy', {
    port: pg.port,
    adminUser: pg.adminUser,
    adminPassword: pg.adminPassword,
    ttl: '15m',
    maxTtl: '1h',
  });
  // As production has it: read on the paths, nothing more (so no sys/leases/revoke).
  await bao.addPolicy('deploy', [
    { path: 'secret/data/deploy/*', capabilities: ['read'] },
    { path: 'database/creds/deploy', capabilities: ['read'] },
  ]);
  await bao.addAppRole('approle', 'deploy', { roleId: 'deploy-role', secretId: 'deploy-secret-id', policies: ['deploy'], ttl: '15m' });
  const entries = [
    'secret/data/deploy/app db-host | DB_HOST',
    'secret/data/deploy/app api-key | API_KEY',
    'secret/data/deploy/registry username | REGISTRY_USER',
    'secret/data/deploy/registry password | REGISTRY_PASSWORD',
    'database/creds/deploy username | DB_USER',
    'database/creds/deploy password | DB_PASSWORD',
  ];
  const secrets = entries.join(';\n');
  const before = new Set(await pg.roles());

  let from = proxy.requests.length;
  let mainRequests = 0;
  await mainThenPost(
    { URL: proxy.url, METHOD: 'approle', 'ROLE-ID': 'deploy-role', 'SECRET-ID': 'deploy-secret-id', SECRETS: secrets },
    { afterMain: () => (mainRequests = proxy.requests.length - from) },
  );
  const ours = kinds(proxy, from);
  const oursTotal = proxy.requests.length - from;
  const oursLeft = await alive(before);

  from = proxy.requests.length;
  await runVaultAction(baseline, {
    URL: proxy.url,
    METHOD: 'approle',
    ROLEID: 'deploy-role',
    SECRETID: 'deploy-secret-id',
    SECRETS: secrets,
  });
  const theirs = kinds(proxy, from);
  const theirsTotal = proxy.requests.length - from;
  const theirsLeft = await alive(before);

  console.log(
    `A typical deploy job on OpenBao ${(await bao.call('GET', 'sys/health')).version}: 6 secrets from 2 KV v2 paths and 1 PostgreSQL role; policy: read on the paths only.`,
  );
  console.log(`Pipeline Secrets: ${oursTotal} requests (${mainRequests} in main, ${oursTotal - mainRequests} in post)`);
  for (const [kind, count] of ours) console.log(`  ${kind.padEnd(16)} ${count}`);
  console.log(`  left alive after post: ${oursLeft}`);
  console.log(`hashicorp/vault-action ${baseline.version}: ${theirsTotal} requests (no post step)`);
  for (const [kind, count] of theirs) console.log(`  ${kind.padEnd(16)} ${count}`);
  console.log(`  left alive after the step (cumulative with the above): ${theirsLeft}`);
} finally {
  await proxy.stop();
  await bao.stop();
  await pg.stop();
}
