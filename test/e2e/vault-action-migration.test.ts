// End to end: the logins and inputs hashicorp/vault-action v3 has, under their names here, through
// dist/ and the runner harness against a REAL OpenBao: a JWT the action signs itself
// (`jwt-private-key`, RS256 from an encrypted RSA key in vault-action's base64 form, ES256 from an EC
// P-256 key, with `jwt-ttl` and `jwt-audience`), verified by OpenBao's jwt auth with
// `jwt_validation_pubkeys` and claims bound to the job; `extra-headers` on every request of main
// and post, seen by the recording fault proxy in front of OpenBao and never in the log;
// `ignore-not-found`; and `method: github` against the one stand-in here
// (test/support/services/github-auth.ts: OpenBao has no github auth method and Vault's would call
// api.github.com), whose tokens OpenBao itself mints. Last, a vault-action-style step, its inputs
// renamed through the README's migration table, and a later step that reads what vault-action
// would have given it (env vars, outputs, `vault_token`). Every test ends with the no-leak invariant.
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { REPOSITORY, REF, SHA, ACTOR, EVENT_NAME, WORKFLOW } from '../support/harness/context.ts';
import { startFaultProxy, type FaultProxy } from '../support/services/fault-proxy.ts';
import { startGithubAuth, type GithubAuthStandIn } from '../support/services/github-auth.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, exists, ledgerOf, newJob, repo, startVault, VALUES, ALL_VALUES } from './setup.ts';

const V = {
  githubToken: 'ghp_migrationStandInToken0123456789ab',
  headerSecret: 'gw-key-5d0c1e7f9a2b4c6d',
  keyPassword: 'jwt-key-Pass-0a9b8c7d',
} as const;

let bao: OpenBao;
let fp: FaultProxy;
let job: Job | undefined;
const made: string[] = [];

beforeAll(async () => {
  bao = await startVault();
  fp = await startFaultProxy(bao.url);
}, 60_000);
afterAll(async () => {
  await fp?.stop();
  await bao?.stop();
});
afterEach(async () => {
  await job?.cleanup();
  job = undefined;
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

type Inputs = Record<string, string>;
const APP = 'secret/data/ci/app password | DB_PASSWORD';

function theJob(): Job {
  if (!job) throw new Error('no job');
  return job;
}

function check(steps: StepResult[], extra: string[] = []): void {
  const dirs = steps.flatMap((s) => (s.state.ledger ? [ledgerOf(s).root, ledgerOf(s).secretsDir] : []));
  assertNoLeak(theJob(), steps, [...ALL_VALUES, ...Object.values(V), ...extra], { privateDirs: dirs });
}

function createdToken(main: StepResult): string {
  const file = ledgerOf(main).tokenFile;
  return file === undefined ? '' : readFileSync(file, 'utf8');
}

async function delivered(main: StepResult, name: string): Promise<string> {
  return fs.readFile(path.join(main.outputs['secrets-dir'] ?? '', name), 'utf8');
}

/** Main delivers DB_PASSWORD, the token it made is OpenBao's and alive; post revokes it and cleans up. */
async function loginCycle(inputs: Inputs): Promise<{ main: StepResult; post: StepResult; token: string; info: Record<string, unknown> }> {
  const j = theJob();
  const main = await j.runMain(MAIN, { url: bao.url, secrets: APP, ...inputs });
  expect(main.exitCode, main.log).toBe(0);
  expect(main.annotations.filter((a) => a.level === 'error' || a.level === 'warning')).toEqual([]);
  expect(await delivered(main, 'DB_PASSWORD')).toBe(VALUES.password);
  const token = createdToken(main);
  expect(token).not.toBe('');
  expect(main.masks).toContain(token);
  const info = (await bao.call('POST', 'auth/token/lookup', { body: { token } })).data as Record<string, unknown>;
  const post = await j.runPost(POST, main);
  expect(post.exitCode, post.log).toBe(0);
  expect(await bao.tokenAlive(token)).toBe(false);
  expect(await exists(ledgerOf(main).root)).toBe(false);
  return { main, post, token, info };
}

/** Exit 1 with one one-line error annotation matching `expected`; post exits 0. */
async function failing(inputs: Inputs, expected: RegExp): Promise<{ main: StepResult; post: StepResult }> {
  const j = theJob();
  const main = await j.runMain(MAIN, { url: bao.url, secrets: APP, ...inputs });
  expect(main.exitCode, main.log).toBe(1);
  const errors = main.annotations.filter((a) => a.level === 'error');
  expect(errors, main.log).toHaveLength(1);
  expect(errors[0]?.message).toMatch(expected);
  expect(errors[0]?.message).not.toMatch(/[\r\n]/);
  expect(main.log).not.toMatch(/\bat .*:\d+:\d+\)/);
  const post = await j.runPost(POST, main);
  expect(post.exitCode, post.log).toBe(0);
  return { main, post };
}

// ---- a JWT the action signs --------------------------------------------------------------------

describe('jwt-private-key: a JWT signed by the action, verified by OpenBao', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // vault-action's form: base64 of an encrypted PEM, its password in jwtKeyPassword.
  const rsaEncryptedPem = rsa.privateKey.export({
    type: 'pkcs8',
    format: 'pem',
    cipher: 'aes-256-cbc',
    passphrase: V.keyPassword,
  }) as string;
  const ecPem = ec.privateKey.export({ type: 'sec1', format: 'pem' }) as string;
  const otherPem = other.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const keys = [rsaEncryptedPem, ecPem, otherPem];

  /** A jwt mount trusting `publicKey`; the role binds vault-action's issuer and the job's claims and maps the rest to metadata. */
  async function jwtMount(mount: string, publicKey: string, boundAudiences: string[]): Promise<void> {
    await bao.enableAuth(mount, 'jwt');
    await bao.call('POST', `auth/${mount}/config`, { body: { jwt_validation_pubkeys: [publicKey], bound_issuer: 'vault-action' } });
    await bao.call('POST', `auth/${mount}/role/ci`, {
      body: {
        role_type: 'jwt',
        bound_audiences: boundAudiences,
        bound_claims: { repository: REPOSITORY, ref: REF },
        user_claim: 'repository',
        claim_mappings: { sha: 'sha', actor: 'actor', event: 'event', workflow: 'workflow' },
        token_policies: ['ci'],
        token_ttl: '600s',
      },
    });
  }

  beforeAll(async () => {
    await jwtMount('jwt-rs', rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string, []);
    await jwtMount('jwt-es', ec.publicKey.export({ type: 'spki', format: 'pem' }) as string, ['vault-ci']);
  });

  it('RS256 from an encrypted RSA key given as base64 PEM with jwt-key-password: OpenBao checks signature, issuer and claims', async () => {
    job = await newJob();
    const { main, post, token, info } = await loginCycle({
      method: 'jwt',
      mount: 'jwt-rs',
      role: 'ci',
      'jwt-private-key': Buffer.from(rsaEncryptedPem).toString('base64'),
      'jwt-key-password': V.keyPassword,
      'jwt-ttl': '120',
    });
    expect(info.path).toBe('auth/jwt-rs/login');
    // The claims vault-action puts in its JWT, as OpenBao read them from the one signed here.
    expect(info.meta).toMatchObject({ role: 'ci', sha: SHA, actor: ACTOR, event: EVENT_NAME, workflow: WORKFLOW });
    expect(main.masks).toEqual(expect.arrayContaining([V.keyPassword]));
    check([main, post], [token, ...keys, Buffer.from(rsaEncryptedPem).toString('base64')]);
  });

  it('ES256 from an EC P-256 key, with jwt-audience as the aud claim the role binds', async () => {
    job = await newJob();
    const { main, post, token, info } = await loginCycle({
      method: 'jwt',
      mount: 'jwt-es',
      role: 'ci',
      'jwt-private-key': ecPem,
      'jwt-audience': 'vault-ci',
    });
    expect(info.path).toBe('auth/jwt-es/login');
    check([main, post], [token, ...keys]);
  });

  it("a key OpenBao does not trust, and a role's audience the JWT lacks, are refused in one line", async () => {
    job = await newJob();
    const untrusted = await failing(
      { method: 'jwt', mount: 'jwt-rs', role: 'ci', 'jwt-private-key': otherPem },
      /auth\/jwt-rs\/login.*400/,
    );
    const noAud = await failing(
      { method: 'jwt', mount: 'jwt-es', role: 'ci', 'jwt-private-key': ecPem },
      /signed with 'jwt-private-key' \(aud: none\).*set 'jwt-audience'/,
    );
    check([untrusted.main, untrusted.post, noAud.main, noAud.post], keys);
  });
});

// ---- extra headers -----------------------------------------------------------------------------

describe('extra-headers', () => {
  it('go with every request of main and post, seen by the proxy in front of OpenBao, and never in the log', async () => {
    job = await newJob();
    const from = fp.requests.length;
    const { main, post, token } = await loginCycle({
      url: fp.url,
      method: 'approle',
      'role-id': VALUES.roleId,
      'secret-id': VALUES.roleSecretId,
      'extra-headers': `X-Gateway-Key: ${V.headerSecret}\nX-Trace: t1\nx-trace: t2`,
    });
    const seen = fp.requests.slice(from);
    expect(seen.map((r) => r.path)).toEqual(expect.arrayContaining(['auth/approle/login', 'secret/data/ci/app', 'auth/token/revoke-self']));
    for (const r of seen) {
      expect(r.headers['x-gateway-key'], r.path).toBe(V.headerSecret);
      expect(r.headers['x-trace'], r.path).toBe('t1, t2');
      expect(r.headers['x-vault-request'], r.path).toBe('true');
    }
    expect(main.masks).toContain(V.headerSecret);
    check([main, post], [token]);
  });

  it("go with the renewal agent's requests too", async () => {
    job = await newJob();
    const j = theJob();
    const main = await j.runMain(MAIN, {
      url: fp.url,
      secrets: APP,
      method: 'approle',
      'role-id': VALUES.roleId,
      'secret-id': VALUES.roleSecretId,
      'extra-headers': `X-Gateway-Key: ${V.headerSecret}`,
      renew: 'true',
      'refresh-interval': '1',
      'agent-max-lifetime': '60',
    });
    expect(main.exitCode, main.log).toBe(0);
    const token = createdToken(main);
    const after = fp.requests.length;
    // The agent re-reads the KV secret each second: wait for one of its reads.
    const until = Date.now() + 15_000;
    while (!fp.requests.slice(after).some((r) => r.path === 'secret/data/ci/app') && Date.now() < until)
      await new Promise((r) => setTimeout(r, 200));
    const agentRequests = fp.requests.slice(after);
    expect(agentRequests.map((r) => r.path)).toContain('secret/data/ci/app');
    for (const r of agentRequests) expect(r.headers['x-gateway-key'], r.path).toBe(V.headerSecret);
    const post = await j.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await bao.tokenAlive(token)).toBe(false);
    check([main, post], [token]);
  });

  it('a header the action sets itself is refused naming the line, never the value', async () => {
    job = await newJob();
    const { main, post } = await failing(
      {
        method: 'approle',
        'role-id': VALUES.roleId,
        'secret-id': VALUES.roleSecretId,
        'extra-headers': `X-Vault-Token: ${V.headerSecret}`,
      },
      /^input 'extra-headers': line 1: 'x-vault-token' cannot be given here/,
    );
    check([main, post]);
  });
});

// ---- ignore-not-found --------------------------------------------------------------------------

describe('ignore-not-found', () => {
  const lines = `${APP}\nsecret/data/ci/missing key | GONE\nsecret/data/ci/app no-such-key | NOKEY`;

  it('every line optional: a missing path and a missing key are warnings, the rest delivered', async () => {
    job = await newJob();
    const main = await theJob().runMain(MAIN, { url: bao.url, token: bao.rootToken, secrets: lines, 'ignore-not-found': 'true' });
    expect(main.exitCode, main.log).toBe(0);
    expect(await delivered(main, 'DB_PASSWORD')).toBe(VALUES.password);
    expect(await exists(path.join(main.outputs['secrets-dir'] ?? '', 'GONE'))).toBe(false);
    expect(await exists(path.join(main.outputs['secrets-dir'] ?? '', 'NOKEY'))).toBe(false);
    const warnings = main.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/secrets line 2: .*skipped \(optional\)/),
        expect.stringMatching(/secrets line 3: .*skipped \(optional\)/),
      ]),
    );
    const post = await theJob().runPost(POST, main);
    expect(post.exitCode).toBe(0);
    check([main, post], [bao.rootToken]);
  });

  it('without it, the first missing path fails the step', async () => {
    job = await newJob();
    const { main, post } = await failing({ url: bao.url, token: bao.rootToken, secrets: lines }, /secrets line 2: .*404/);
    check([main, post], [bao.rootToken]);
  });
});

// ---- method github -----------------------------------------------------------------------------

describe('method github (stand-in login endpoint, tokens minted by OpenBao)', () => {
  let gh: GithubAuthStandIn;
  beforeAll(async () => {
    gh = await startGithubAuth(bao, ['github', 'github-org']);
    gh.addToken(V.githubToken, { username: 'octocat', org: 'octo-org', policies: ['ci'] });
  });
  afterAll(async () => gh?.stop());

  it('github-token is POSTed to auth/<mount>/login; the token OpenBao made is used, then revoked in post', async () => {
    job = await newJob();
    const from = gh.logins.length;
    const { main, post, token, info } = await loginCycle({
      url: gh.url,
      method: 'github',
      mount: 'github-org',
      'github-token': V.githubToken,
    });
    expect(gh.logins.slice(from)).toEqual([{ mount: 'github-org', known: true, status: 200 }]);
    expect(info.meta).toMatchObject({ username: 'octocat', org: 'octo-org' });
    expect(main.masks).toContain(V.githubToken);
    check([main, post], [token]);
  });

  it('a GitHub token the method refuses fails in one line naming the login path, never the token', async () => {
    job = await newJob();
    const { main, post } = await failing(
      { url: gh.url, method: 'github', 'github-token': 'ghp_not-a-member-token-987654321' },
      /auth\/github\/login.*400.*user is not part of required org/,
    );
    check([main, post], ['ghp_not-a-member-token-987654321']);
  });
});

// ---- a vault-action step, migrated -------------------------------------------------------------

/** The README migration table: vault-action input -> the input here (the first `name` of the second column), or undefined. */
function migrationTable(): Map<string, string | undefined> {
  const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Migrating from hashicorp/vault-action'));
  const table = new Map<string, string | undefined>();
  for (const line of section.split('\n')) {
    const m = /^\| `([A-Za-z_]+)` \| ([^|]*) \|/.exec(line);
    if (m) table.set(m[1] ?? '', /^`([a-z-]+)`/.exec((m[2] ?? '').trim())?.[1]);
  }
  return table;
}

describe('a vault-action step, its inputs renamed by the migration table', () => {
  it('a later step reads what vault-action would have given it: env vars, outputs, vault_token', async () => {
    job = await newJob();
    // A vault-action v3 step's `with:`, as a user has it today.
    const vaultAction: Inputs = {
      url: bao.url,
      method: 'approle',
      roleId: VALUES.roleId,
      secretId: VALUES.roleSecretId,
      secrets: 'secret/data/ci/app password | DB_PASSWORD ; secret/data/ci/app api-key | API_KEY ; secret/data/ci/gone x | GONE',
      exportEnv: 'true',
      outputToken: 'true',
      ignoreNotFound: 'true',
    };
    const table = migrationTable();
    const inputs: Inputs = {};
    for (const [name, value] of Object.entries(vaultAction)) {
      const here = table.get(name);
      expect(here, `migration table row for ${name}`).toBeDefined();
      inputs[here ?? name] = value;
    }
    // vault-action always sets each secret as an output; here that is asked for (the outputs table's row).
    expect(readFileSync(path.join(repo, 'README.md'), 'utf8')).toMatch(/^\| each secret as the output .*\| `export-outputs: true` \|/m);
    inputs['export-outputs'] = 'true';

    const main = await theJob().runMain(MAIN, inputs);
    expect(main.exitCode, main.log).toBe(0);
    expect(main.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toEqual([
      expect.stringMatching(/secrets line 1: .*gone.*skipped \(optional\)/),
    ]);
    const token = createdToken(main);
    expect(main.outputs.vault_token).toBe(token);
    expect(main.outputs['vault-token']).toBe(token);
    expect(main.outputs.DB_PASSWORD).toBe(VALUES.password);
    expect(theJob().env.DB_PASSWORD).toBe(VALUES.password);

    // The later step, as the workflow writes it for vault-action: env vars by name, outputs through
    // `${{ steps.vault.outputs.* }}`, the token used against Vault. It prints only verdicts.
    const later = await theJob().runShell(
      [
        'set -eu',
        '[ "$DB_PASSWORD" = "$FROM_OUTPUT" ] && echo env-matches-output',
        '[ "${#API_KEY}" -gt 0 ] && echo api-key-set',
        `printf 'X-Vault-Token: %s\\n' "$VAULT_TOKEN" | curl -sf -H @- '${bao.url}/v1/secret/data/ci/app' -o /dev/null && echo token-reads`,
      ].join('\n'),
      { env: { FROM_OUTPUT: main.outputs.DB_PASSWORD ?? '', VAULT_TOKEN: main.outputs.vault_token ?? '' } },
    );
    expect(later.exitCode, later.log).toBe(0);
    expect(later.stdout.split('\n').filter((l) => !l.startsWith('::'))).toEqual(
      expect.arrayContaining(['env-matches-output', 'api-key-set', 'token-reads']),
    );
    const post = await theJob().runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(await bao.tokenAlive(token)).toBe(false);
    check([main, later, post], [token]);
  });
});
