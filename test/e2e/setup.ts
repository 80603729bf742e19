// Shared set-up for end-to-end tests: a real OpenBao dev server with a known data set, a runner
// Job, and the paths of the bundled entry points users actually run.
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ledger } from '../../src/core/ledger.ts';
import { Job, type JobOptions, type StepResult } from '../support/harness/index.ts';
import { OpenBao } from '../support/services/openbao.ts';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(repo, 'dist/main.js');
export const POST = path.join(repo, 'dist/post.js');

if (!existsSync(MAIN) || !existsSync(POST)) {
  throw new Error('dist/main.js or dist/post.js is missing: run `npm run build` first');
}

/** Values planted in the server; every e2e test checks none of them leaks. */
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

/**
 * A real OpenBao (`bao server -dev`, KV v2 at secret/) seeded with the data set: `secret/ci/app`
 * in two versions (version 1 holds the old password), `secret/ci/tls`, KV v1 `kv1/legacy`, policy
 * `ci` reading both, and the AppRole `approle/ci` with fixed role_id and secret_id.
 */
export async function startVault(): Promise<OpenBao> {
  const vault = await OpenBao.start();
  try {
    await vault.enableKv('secret', 2);
    await vault.enableKv('kv1', 1);
    await vault.putKv('secret', 'ci/app', { password: VALUES.oldPassword, 'api-key': VALUES.apiKey });
    await vault.putKv('secret', 'ci/app', { password: VALUES.password, 'api-key': VALUES.apiKey });
    await vault.putKv('secret', 'ci/tls', { key: VALUES.multiline, sa: VALUES.json });
    await vault.putKv('kv1', 'legacy', { key: VALUES.legacy });
    await vault.addPolicy('ci', [
      { path: 'secret/data/ci/*', capabilities: ['read'] },
      { path: 'kv1/*', capabilities: ['read'] },
    ]);
    await vault.addAppRole('approle', 'ci', { roleId: VALUES.roleId, secretId: VALUES.roleSecretId, policies: ['ci'], ttl: '600s' });
  } catch (e) {
    await vault.stop();
    throw e;
  }
  return vault;
}

/**
 * The Vault token a main step created (a login), read from the 0600 token file its ledger names in
 * the private directory: call it before post, which removes the file. '' when main created none.
 */
export function createdToken(main: StepResult): string {
  const file = ledgerOf(main).tokenFile;
  if (file === undefined) return '';
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Accessors of live service tokens (root's aside) that were not in `before`. */
export async function newAccessors(vault: OpenBao, before: ReadonlySet<string>): Promise<string[]> {
  return (await vault.liveAccessors()).filter((a) => !before.has(a));
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
