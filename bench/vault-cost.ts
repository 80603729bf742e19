// Cost per job to Vault: the requests a typical deploy job makes (main and post), by kind, side by
// side with what hashicorp/vault-action makes for the same secrets (login + one GET per entry's path
// in order, cached per path; no mount detection; no revocation).
//   node bench/vault-cost.ts
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { VaultDouble } from '../test/vault-double/index.ts';
import { node, repo, stepEnv, timed } from './lib.ts';

const vault = await VaultDouble.start();
vault.enableKv('secret', 2);
vault.putKv('secret', 'deploy/app', { 'db-host': 'db.internal', 'api-key': 'k-123456789' });
vault.putKv('secret', 'deploy/registry', { username: 'ci', password: 'registry-pw-123' });
vault.enableEngine('database', 'database');
vault.addDynamicRole('database', 'deploy', {
  ttl: 900,
  renewable: true,
  make: () => ({ username: 'v-deploy', password: `dyn-${Date.now()}` }),
});
vault.addPolicy('deploy', [
  { path: 'secret/data/deploy/*', capabilities: ['read'] },
  { path: 'database/creds/deploy', capabilities: ['read'] },
  { path: 'sys/leases/revoke', capabilities: ['update'] },
]);
vault.addAppRole('approle', 'deploy', { roleId: 'deploy-role', secretId: 'deploy-secret-id', policies: ['deploy'], ttl: 900 });
const secrets = [
  'secret/data/deploy/app db-host | DB_HOST',
  'secret/data/deploy/app api-key | API_KEY',
  'secret/deploy/registry username | REGISTRY_USER',
  'secret/deploy/registry password | REGISTRY_PASSWORD',
  'database/creds/deploy username | DB_USER',
  'database/creds/deploy password | DB_PASSWORD',
].join('\n');

const step = stepEnv({ URL: vault.url, METHOD: 'approle', 'ROLE-ID': 'deploy-role', 'SECRET-ID': 'deploy-secret-id', SECRETS: secrets });
const m = await timed(node, [path.join(repo, 'dist/main.js')], step.env);
if (m.code !== 0) throw new Error('main failed');
const mainRequests = vault.requests.length;
const ledger =
  readFileSync(step.env.GITHUB_STATE as string, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop() ?? '';
await timed(node, [path.join(repo, 'dist/post.js')], { ...step.env, STATE_ledger: ledger });
step.dispose();
const byKind = new Map<string, number>();
for (const r of vault.requests) {
  const kind = r.path.startsWith('auth/approle/login')
    ? 'login'
    : r.path.startsWith('sys/internal/ui/mounts')
      ? 'mount detection'
      : r.path.startsWith('sys/leases/revoke')
        ? 'lease revoke'
        : r.path.startsWith('auth/token/revoke-self')
          ? 'token revoke'
          : 'secret read';
  byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
}
console.log('A typical deploy job: 6 secrets from 2 KV v2 paths (both path forms) and 1 dynamic database role.');
console.log(
  `Pipeline Secrets: ${vault.requests.length} requests (${mainRequests} in main, ${vault.requests.length - mainRequests} in post)`,
);
for (const [kind, count] of byKind) console.log(`  ${kind.padEnd(16)} ${count}`);
console.log(`live tokens after post: ${vault.liveTokens().length}, live leases after post: ${vault.liveLeases().length}`);
console.log(
  'hashicorp/vault-action for the same entries: 1 login + 3 reads = 4 requests; it leaves the token and the lease alive until their TTLs (15 min here), and cannot read `secret/deploy/registry` written without /data/.',
);
await vault.stop();
