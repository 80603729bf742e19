// Shared set-up for end-to-end tests: the Vault double with a known data set, a runner Job, and
// the paths of the bundled entry points users actually run.
import { existsSync, promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ledger } from '../../src/ledger.ts';
import { Job, type JobOptions, type StepResult } from '../harness/index.ts';
import { VaultDouble } from '../vault-double/index.ts';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(repo, 'dist/main.js');
export const POST = path.join(repo, 'dist/post.js');

if (!existsSync(MAIN) || !existsSync(POST)) {
  throw new Error('dist/main.js or dist/post.js is missing: run `npm run build` first');
}

/** Values planted in the double; every e2e test checks none of them leaks. */
export const VALUES = {
  password: 'Pa55-w0rd-for-the-db!',
  apiKey: 'ak_live_3f9c2e71b4d8a6',
  oldPassword: 'old-Pa55-w0rd-v1',
  legacy: 'legacy-kv1-value-42',
  multiline: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n',
  json: JSON.stringify({ type: 'service_account', private_key: 'json-field-secret-0042', client_email: 'ci@example.iam' }),
  roleSecretId: 'approle-secret-id-9f8e7d',
  roleId: 'approle-role-id-1a2b3c',
  envSecret: 'workflow-secret-from-env-77',
} as const;

export const ALL_VALUES: string[] = Object.values(VALUES);

export async function startVault(): Promise<VaultDouble> {
  const vault = await VaultDouble.start();
  vault.enableKv('secret', 2);
  vault.enableKv('kv1', 1);
  vault.putKv('secret', 'ci/app', { password: VALUES.oldPassword, 'api-key': VALUES.apiKey });
  vault.putKv('secret', 'ci/app', { password: VALUES.password, 'api-key': VALUES.apiKey });
  vault.putKv('secret', 'ci/tls', { key: VALUES.multiline, sa: VALUES.json });
  vault.putKv('kv1', 'legacy', { key: VALUES.legacy });
  vault.addPolicy('ci', [
    { path: 'secret/data/ci/*', capabilities: ['read'] },
    { path: 'kv1/*', capabilities: ['read'] },
  ]);
  vault.addAppRole('approle', 'ci', { roleId: VALUES.roleId, secretId: VALUES.roleSecretId, policies: ['ci'], ttl: 600 });
  return vault;
}

export async function newJob(opts: JobOptions = {}): Promise<Job> {
  return Job.create({ debug: true, ...opts });
}

/** The ledger a main step saved as state (paths, ids; never a value). */
export function ledgerOf(step: StepResult): Ledger & { root: string; secretsDir: string } {
  return JSON.parse(step.state.ledger ?? '{"files":[],"leases":[]}');
}

/** The private directories of the main steps among `steps`: the only place a value may be on disk. */
export function privateDirsOf(steps: readonly StepResult[]): string[] {
  return steps.flatMap((s) => (s.state.ledger ? [ledgerOf(s).root, ledgerOf(s).secretsDir].filter((d) => d !== undefined) : []));
}

export async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

export function mode(file: string): string {
  return (statSync(file).mode & 0o777).toString(8);
}
