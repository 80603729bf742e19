// End to end: the bundled dist/ entries run as the runner runs them, against a real OpenBao dev
// server (a fault proxy in front of it where a test counts requests). Every test asserts the
// invariant: a value appears in raw stdout only inside ::add-mask:: lines and never in state,
// summary, errors, argv or files outside the private directory.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import {
  ALL_VALUES,
  MAIN,
  POST,
  VALUES,
  createdToken,
  newAccessors,
  newJob,
  startVault,
  ledgerOf,
  privateDirsOf,
  exists,
  mode,
} from './setup.ts';

let vault: OpenBao;
/** In front of `vault`, for the test that counts requests. */
let proxy: FaultProxy;
let job: Job;

beforeAll(async () => {
  vault = await startVault();
  proxy = await startFaultProxy(vault.url);
});
afterAll(async () => {
  await proxy?.stop();
  await vault?.stop();
});
afterEach(async () => {
  proxy.clearFaults();
  await job?.cleanup();
});

function check(steps: StepResult[], extra: string[] = []): void {
  const dirs = privateDirsOf(steps);
  assertNoLeak(job, steps, [...ALL_VALUES, ...extra], { privateDirs: dirs });
}

describe('core path: Vault -> masked -> files -> cleaned up', () => {
  it('delivers KV v2 (both path forms, pinned version), KV v1 and wildcard secrets as 0600 files, and post removes them', async () => {
    const token = await vault.createToken({ policies: ['ci'], ttl: '600s' });
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: proxy.url,
      token,
      secrets: [
        'secret/data/ci/app password | DB_PASSWORD',
        'secret/ci/app api-key',
        'secret/data/ci/app?version=1 password | OLD_PASSWORD ;',
        'kv1/legacy key | LEGACY',
        'secret/ci/tls ** | TLS_',
      ].join('\n'),
      'export-env': 'true',
      'export-outputs': 'true',
    });
    expect(main.exitCode, main.log).toBe(0);
    const dir = main.outputs['secrets-dir'] ?? '';
    expect(dir).not.toBe('');
    expect(mode(dir)).toBe('700');
    expect(job.env.PIPELINE_SECRETS_DIR).toBe(dir);
    const expected: Record<string, string> = {
      DB_PASSWORD: VALUES.password,
      // vault-action's default name: `-` dropped.
      apikey: VALUES.apiKey,
      OLD_PASSWORD: VALUES.oldPassword,
      LEGACY: VALUES.legacy,
      TLS_key: VALUES.multiline,
      TLS_sa: VALUES.json,
    };
    for (const [name, value] of Object.entries(expected)) {
      const file = path.join(dir, name);
      expect(mode(file), name).toBe('600');
      expect(await fs.readFile(file, 'utf8'), name).toBe(value);
      expect(main.outputs[name], name).toBe(value);
    }
    expect((await fs.readdir(dir)).sort()).toEqual(Object.keys(expected).sort());
    // Env names: explicit names as written, derived names upper-cased, `**` keeps case.
    expect(job.env.DB_PASSWORD).toBe(VALUES.password);
    expect(job.env.APIKEY).toBe(VALUES.apiKey);
    expect(job.env.TLS_key).toBe(VALUES.multiline);
    // The env-file holds single-line values only; the multi-line one is named in a warning.
    const envFile = await fs.readFile(main.outputs['env-file'] ?? '', 'utf8');
    expect(envFile).toContain(`DB_PASSWORD=${VALUES.password}\n`);
    expect(envFile).not.toContain('TLS_key=');
    expect(main.annotations.some((a) => a.level === 'warning' && a.message.includes("'TLS_key'"))).toBe(true);
    // The summary shows byte counts, never values.
    expect(main.summary).toContain(`| ${Buffer.byteLength(VALUES.password)} |`);
    expect(main.summary).toContain('kv v2, version 2');
    // One login-free run: one mount lookup per mount, one read per distinct path and version.
    expect(proxy.count('GET', /^secret\/data\//)).toBeGreaterThanOrEqual(3);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await exists(dir)).toBe(false);
    expect(await exists(ledgerOf(main).root)).toBe(false);
    // A token the user passed in is the user's: post does not revoke it.
    expect(await vault.tokenAlive(token)).toBe(true);
    check([main, post], [token]);
  });

  it('logs in with AppRole, masks the token, and post revokes it', async () => {
    job = await newJob();
    const before = new Set(await vault.liveAccessors());
    const main = await job.runMain(MAIN, {
      url: vault.url,
      method: 'approle',
      'role-id': VALUES.roleId,
      'secret-id': VALUES.roleSecretId,
      secrets: 'secret/data/ci/app password | DB_PASSWORD',
    });
    expect(main.exitCode, main.log).toBe(0);
    // The real server hands out token values only once: the login's token is the one main kept in
    // its private token file, and it is the one new token on the server.
    const live = await newAccessors(vault, before);
    expect(live).toHaveLength(1);
    const token = createdToken(main);
    expect(token).not.toBe('');
    expect((await vault.tokenInfo(token))?.accessor).toBe(live[0]);
    expect(main.masks).toContain(token);
    const state = await fs.readFile(main.files.state, 'utf8');
    expect(state).not.toContain(token);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.tokenAlive(token)).toBe(false);
    expect(await newAccessors(vault, before)).toEqual([]);
    // Safe to run twice: nothing left to do, no failure.
    const again = await job.runPost(POST, main);
    expect(again.exitCode, again.log).toBe(0);
    expect(again.annotations.filter((a) => a.level === 'error')).toEqual([]);
    check([main, post, again], [token]);
  });

  it('logs in with the job OIDC token (jwt), requesting the configured audience', async () => {
    job = await newJob({ oidc: true });
    const before = new Set(await vault.liveAccessors());
    const oidc = job.oidc;
    if (!oidc) throw new Error('harness gave no OIDC issuer');
    await vault.addJwtRole('jwt', 'deploy', {
      publicKeyPem: oidc.publicKeyPem,
      boundAudiences: ['vault-ci'],
      boundIssuer: oidc.issuer,
      boundClaims: { repository: 'octo-org/octo-repo' },
      userClaim: 'sub',
      policies: ['ci'],
      ttl: '300s',
    });
    const main = await job.runMain(MAIN, {
      url: vault.url,
      method: 'jwt',
      role: 'deploy',
      'jwt-audience': 'vault-ci',
      secrets: 'secret/data/ci/app api-key | API_KEY',
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(oidc.audienceSeen).toContain('vault-ci');
    expect(await fs.readFile(path.join(main.outputs['secrets-dir'] ?? '', 'API_KEY'), 'utf8')).toBe(VALUES.apiKey);
    const token = createdToken(main);
    expect(token).not.toBe('');
    expect(await newAccessors(vault, before)).toEqual([(await vault.tokenInfo(token))?.accessor]);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await vault.tokenAlive(token)).toBe(false);
    expect(await newAccessors(vault, before)).toEqual([]);
    check([main, post], [token]);

    // The wrong audience is refused by Vault: a clear error naming the login path, nothing delivered.
    const wrong = await job.runMain(MAIN, {
      url: vault.url,
      method: 'jwt',
      role: 'deploy',
      'jwt-audience': 'other',
      secrets: 'secret/data/ci/app api-key',
    });
    expect(wrong.exitCode).toBe(1);
    // OpenBao's own reason follows the status: "error validating token: invalid audience (aud) claim: ...".
    expect(wrong.annotations.find((a) => a.level === 'error')?.message).toMatch(/auth\/jwt\/login: Vault answered 400 .*audience/);
    const wrongPost = await job.runPost(POST, wrong);
    expect(wrongPost.exitCode).toBe(0);
    check([wrong, wrongPost]);
  });

  it('treats workflow secrets from env-secrets like Vault secrets, with no Vault at all', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { 'env-secrets': 'NPM_TOKEN=NPM_TOKEN_SECRET' }, { env: { NPM_TOKEN_SECRET: VALUES.envSecret } });
    expect(main.exitCode, main.log).toBe(0);
    const file = path.join(main.outputs['secrets-dir'] ?? '', 'NPM_TOKEN');
    expect(await fs.readFile(file, 'utf8')).toBe(VALUES.envSecret);
    expect(main.masks).toContain(VALUES.envSecret);
    expect(job.env.NPM_TOKEN).toBeUndefined();
    // A later step finds the file through PIPELINE_SECRETS_DIR and proves it by byte count.
    const later = await job.runShell('test -s "$PIPELINE_SECRETS_DIR/NPM_TOKEN" && wc -c < "$PIPELINE_SECRETS_DIR/NPM_TOKEN"');
    expect(later.stdout.trim()).toBe(String(VALUES.envSecret.length));
    const post = await job.runPost(POST, main);
    expect(await exists(file)).toBe(false);
    check([main, later, post]);
  });
});

describe('failures: one clear line, nothing delivered, post still cleans up', () => {
  async function failing(inputs: Record<string, string>, expected: RegExp): Promise<{ main: StepResult; post: StepResult; token: string }> {
    const main = await job.runMain(MAIN, inputs);
    const token = createdToken(main); // a login's token, read before post removes its file
    expect(main.exitCode, main.log).toBe(1);
    const errors = main.annotations.filter((a) => a.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(expected);
    expect(errors[0]?.message).not.toMatch(/\n|\bat .*\(.*:\d+:\d+\)/); // one line, no stack trace
    expect(main.outputs['secrets-dir']).toBeUndefined();
    if (main.state.ledger) expect(ledgerOf(main).files).toEqual([]);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    if (main.state.ledger) expect(await exists(ledgerOf(main).root)).toBe(false);
    return { main, post, token };
  }

  it('a missing key names the line, path and the keys that exist; the login token is revoked', async () => {
    job = await newJob();
    const before = new Set(await vault.liveAccessors());
    const { main, post, token } = await failing(
      {
        url: vault.url,
        method: 'approle',
        'role-id': VALUES.roleId,
        'secret-id': VALUES.roleSecretId,
        secrets: 'secret/data/ci/app password | A\nsecret/data/ci/app passwrd | B',
      },
      /secrets line 2: key 'passwrd' not found at 'secret\/data\/ci\/app' \(keys there: api-key, password\)/,
    );
    expect(token).not.toBe('');
    expect(await vault.tokenAlive(token)).toBe(false);
    expect(await newAccessors(vault, before)).toEqual([]);
    check([main, post], [token]);
  });

  it('a path the policy does not allow names the path and the 403', async () => {
    const token = await vault.createToken({ policies: ['ci'], ttl: '600s' });
    await vault.putKv('secret', 'prod/db', { password: 'prod-only-value-x' });
    job = await newJob();
    const { main, post } = await failing(
      { url: vault.url, token, secrets: 'secret/data/prod/db password' },
      // OpenBao's body is {"errors":["1 error occurred:\n\t* permission denied\n\n"]}: printed as the one reason,
      // then which of the two 403s it is (lookup-self answered, so the token is valid) and what to grant.
      /^secrets line 1: GET secret\/data\/prod\/db: Vault answered 403 permission denied: the token is valid but its policies do not allow this; grant 'read' on 'secret\/data\/prod\/db'/,
    );
    check([main, post], [token, 'prod-only-value-x']);
  });

  it('a path that does not exist names the path and the 404', async () => {
    const token = await vault.createToken({ policies: ['ci'], ttl: '600s' });
    job = await newJob();
    const { main, post } = await failing(
      { url: vault.url, token, secrets: 'secret/data/ci/app password\nsecret/data/ci/missing password' },
      // OpenBao answers a missing KV v2 path with 404 and {"errors":[]}.
      /^secrets line 2: GET secret\/data\/ci\/missing: Vault answered 404 .*' \?' if the entry is optional$/,
    );
    check([main, post], [token]);
  });

  it.each([
    [{ secrets: 'secret/data/ci/app' }, /^input 'secrets': line 1: found 1 word/],
    [{ secrets: 'a/b c\nsecret/data/ci/app $x.y | Z' }, /^input 'secrets': line 2: .*JSONata/],
    [{ method: 'kerberos' }, /^input 'method': 'kerberos' is not supported/],
    [{ timeout: 'soon' }, /^input 'timeout': 'soon' must be a whole number/],
    [{ url: '' }, /^input 'url': is required/],
  ])('bad input %j', async (inputs, expected) => {
    job = await newJob();
    const token = await vault.createToken({ policies: ['ci'] });
    const { main, post } = await failing({ url: vault.url, token, secrets: 'secret/data/ci/app password', ...inputs }, expected);
    check([main, post], [token]);
  });

  it('an optional entry that is missing is a warning, not a failure', async () => {
    const token = await vault.createToken({ policies: ['ci'] });
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/app password | P\nsecret/data/ci/nope x ?\nsecret/data/ci/app nokey | N ?',
    });
    expect(main.exitCode, main.log).toBe(0);
    const warnings = main.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    expect(warnings.some((w) => w.includes("'secret/data/ci/nope' not found; skipped (optional)"))).toBe(true);
    expect(warnings.some((w) => w.includes("key 'nokey' not found"))).toBe(true);
    expect(await fs.readdir(main.outputs['secrets-dir'] ?? '')).toEqual(['P']);
    const post = await job.runPost(POST, main);
    check([main, post], [token]);
  });
});

describe('the private directory', () => {
  it('refuses a planted symlink or existing path for secrets-dir, never following it', async () => {
    job = await newJob();
    const token = await vault.createToken({ policies: ['ci'] });
    const target = path.join(job.workspace, 'target');
    await fs.mkdir(target);
    const planted = path.join(job.runnerTemp, 'planted');
    await fs.symlink(target, planted);
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: 'secret/data/ci/app password', 'secrets-dir': planted });
    expect(main.exitCode).toBe(1);
    expect(main.annotations.find((a) => a.level === 'error')?.message).toMatch(
      /secrets-dir.*already exists; .* refused, never reused or followed/,
    );
    expect(await fs.readdir(target)).toEqual([]);
    const post = await job.runPost(POST, main);
    expect(post.exitCode).toBe(0);
    expect((await fs.lstat(planted)).isSymbolicLink()).toBe(true); // left alone
    check([main, post], [token]);
  });

  it('creates a user-chosen secrets-dir, and post removes only what it wrote', async () => {
    job = await newJob();
    const token = await vault.createToken({ policies: ['ci'] });
    const dir = path.join(job.runnerTemp, 'app-secrets');
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: 'secret/data/ci/app password | db', 'secrets-dir': dir });
    expect(main.exitCode, main.log).toBe(0);
    expect(main.outputs['secrets-dir']).toBe(dir);
    expect(mode(dir)).toBe('700');
    expect(mode(path.join(dir, 'db'))).toBe('600');
    const post = await job.runPost(POST, main);
    expect(await exists(dir)).toBe(false);
    check([main, post], [token]);
  });
});
