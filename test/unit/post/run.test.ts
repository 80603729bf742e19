// runPost through its seams: the recording runner holding the ledger main saved, an in-memory
// Vault, a fake docker CLI, and a real private root in a temporary RUNNER_TEMP. What is asserted is
// what post leaves behind: files, leases and tokens alive, warnings, the summary; and that no
// value reaches anything a reader of the log or summary could see.
import { mkdirSync, promises as fs, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/core/ledger.ts';
import { fileId } from '../../../src/core/private-dir.ts';
import { runPost } from '../../../src/post/run.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';
import { fakeVault, LEASE_REVOKE, REVOKE_SELF, vaultError, type FakeVault } from './fake-vault.ts';
import { exists, fakeExec, LEASES, mainLeftBehind, TOKEN, VALUES, VAULT_URL, type FakeExec } from './fixtures.ts';

interface Ran {
  readonly runner: FakeRunner;
  readonly vault: FakeVault;
  readonly docker: FakeExec;
}

async function post(
  ledger: Ledger | undefined,
  env: Record<string, string>,
  options: { vault?: FakeVault; docker?: FakeExec; loadVaultClient?: () => Promise<never> } = {},
): Promise<Ran> {
  const runner = fakeRunner({ state: ledger === undefined ? {} : { ledger: JSON.stringify(ledger) } });
  const vault = options.vault ?? fakeVault({ [TOKEN]: LEASES });
  const docker = options.docker ?? fakeExec();
  await runPost({ env, runner, exec: docker.exec, loadVaultClient: options.loadVaultClient ?? vault.load });
  return { runner, vault, docker };
}

/** No secret value and no token anywhere the log or summary shows (::add-mask:: aside). */
function expectNoValue(runner: FakeRunner): void {
  for (const value of [TOKEN, ...Object.values(VALUES)]) expect(runner.visible()).not.toContain(value);
}

describe('runPost', () => {
  it('revokes each lease by id, then the token it created, and removes every file and the private root', async () => {
    const left = await mainLeftBehind();
    const { runner, vault } = await post(left.ledger, left.env);
    expect(vault.calls.map((c) => [c.path, c.leaseId, c.token, c.options.url])).toEqual([
      [LEASE_REVOKE, LEASES[0], TOKEN, VAULT_URL],
      [LEASE_REVOKE, LEASES[1], TOKEN, VAULT_URL],
      [REVOKE_SELF, undefined, TOKEN, VAULT_URL],
    ]);
    expect(vault.tokens.size).toBe(0);
    for (const file of [...left.files, left.tokenFile, left.dir.root]) expect(await exists(file)).toBe(false);
    expect(runner.warnings).toEqual([]);
    expect(runner.infos).toContain('Pipeline Secrets cleanup: token revoked, 2 lease(s) revoked, 3 file(s) and 1 director(ies) removed');
    const summary = runner.summaries.join('\n');
    expect(summary).toContain('- Vault token: revoked');
    expect(summary).toContain('- Leases: 2 revoked, 0 left alive');
    expect(summary).toContain('- Files removed: 3');
    expect(summary).toContain(`- Directory removed: \`${left.dir.root}\``);
    expect(runner.masked).toContain(TOKEN);
    expectNoValue(runner);
  });

  it("warns for each lease a user's token may not revoke, naming it and when it expires, and revokes no user token", async () => {
    const left = await mainLeftBehind();
    await fs.rm(left.tokenFile);
    const ledger: Ledger = { ...left.ledger };
    delete ledger.tokenFile;
    const vault = fakeVault({ [TOKEN]: LEASES });
    vault.refuse.add(LEASE_REVOKE);
    const { runner } = await post(ledger, { ...left.env, INPUT_TOKEN: TOKEN }, { vault });
    expect(vault.calls.map((c) => c.path)).toEqual([LEASE_REVOKE, LEASE_REVOKE]);
    expect(vault.tokens.has(TOKEN)).toBe(true);
    for (const lease of LEASES) expect(vault.leaseAlive(lease)).toBe(true);
    const grant = 'path "sys/leases/revoke" { capabilities = ["update"] }';
    expect(runner.warnings).toEqual([
      `cleanup: lease ${LEASES[0]} left alive until 2030-01-01T00:15:00.000Z: Vault refused sys/leases/revoke (403; the default policy lacks it); grant ${grant} in the token's policy`,
      `cleanup: lease ${LEASES[1]} left alive: Vault refused sys/leases/revoke (403; the default policy lacks it); grant ${grant} in the token's policy`,
    ]);
    expect(runner.summaries.join('\n')).toContain('- Leases: 0 revoked, 2 left alive');
    expect(runner.infos).toContain(
      'Pipeline Secrets cleanup: 0 lease(s) revoked, 2 lease(s) left alive, 2 file(s) and 1 director(ies) removed',
    );
    expect(runner.masked).toContain(TOKEN);
    expectNoValue(runner);
  });

  it('counts the leases it could not revoke by id as revoked with the token it created', async () => {
    const left = await mainLeftBehind();
    const vault = fakeVault({ [TOKEN]: LEASES });
    vault.refuse.add(LEASE_REVOKE);
    const { runner } = await post(left.ledger, left.env, { vault });
    for (const lease of LEASES) expect(vault.leaseAlive(lease)).toBe(false);
    expect(runner.warnings).toEqual([]);
    expect(runner.infos).toContain('2 lease(s) could not be revoked by id; revoking the Vault token revoked them with it');
    expect(runner.summaries.join('\n')).toContain('- Leases: 0 revoked, 2 revoked with the Vault token, 0 left alive');
  });

  it('warns when the token cannot be revoked, and still removes everything', async () => {
    const left = await mainLeftBehind();
    const vault = fakeVault({ [TOKEN]: LEASES });
    vault.refuse.add(REVOKE_SELF);
    const { runner } = await post(left.ledger, left.env, { vault });
    expect(vault.tokens.has(TOKEN)).toBe(true);
    expect(runner.warnings).toHaveLength(1);
    expect(runner.warnings[0]).toMatch(
      /^cleanup: Vault token not revoked: POST auth\/token\/revoke-self: Vault answered 403 .*stays alive until it expires/,
    );
    expect(runner.summaries.join('\n')).toContain('- Vault token: NOT revoked (see warnings)');
    expect(await exists(left.dir.root)).toBe(false);
    expectNoValue(runner);
  });

  it('warns for each bad input, naming it, and cleans up with the defaults', async () => {
    const left = await mainLeftBehind();
    const leaked = path.join(left.workspace, '.npmrc');
    writeFileSync(leaked, `//registry/:_authToken=${VALUES.API_KEY}\n`);
    const env = { ...left.env, INPUT_TIMEOUT: 'soon', INPUT_SCRUB: 'redacted', 'INPUT_TLS-SKIP-VERIFY': 'yes' };
    const { runner, vault } = await post(left.ledger, env);
    expect(runner.warnings).toEqual([
      "cleanup: input 'timeout': 'soon' must be a whole number from 1 to 3600; post uses 30",
      "cleanup: input 'scrub': 'redacted' is not one of redact, delete, report, off; post scrubs with redact",
      "cleanup: input 'tls-skip-verify': 'yes' is not a boolean; use true or false; post tries to revoke without the TLS inputs",
    ]);
    expect(vault.tokens.size).toBe(0);
    expect(vault.clients[0]?.tls).toEqual({});
    expect(readFileSync(leaked, 'utf8')).not.toContain(VALUES.API_KEY);
    expect(await exists(left.dir.root)).toBe(false);
    expectNoValue(runner);
  });

  it('runs every later phase when one throws: a Vault client that does not load leaves no file behind', async () => {
    const left = await mainLeftBehind();
    const { runner } = await post(left.ledger, left.env, {
      loadVaultClient: () => Promise.reject(new Error('cannot load dist/node-vault.js')),
    });
    expect(runner.warnings).toEqual(['cleanup: revoke: cannot load dist/node-vault.js']);
    for (const file of [...left.files, left.tokenFile, left.dir.root]) expect(await exists(file)).toBe(false);
    expect(runner.summaries.join('\n')).toContain('- ⚠️ revoke: cannot load dist/node-vault.js');
  });

  it('verifies the container and logs out of each registry before the files go, and scrubs the workspace', async () => {
    const left = await mainLeftBehind();
    const dockerConfig = path.join(left.dir.root, 'docker');
    mkdirSync(dockerConfig, { mode: 0o700 });
    writeFileSync(path.join(left.workspace, 'debug.log'), `password=${VALUES.DB_PASSWORD}\n`);
    const seen: boolean[] = [];
    const docker = fakeExec((args) => {
      seen.push(left.files.every((f) => readFileSync(f, 'utf8') !== ''));
      if (args[0] === 'exec') return { stdout: `API_KEY ${VALUES.API_KEY.length}\nDB_PASSWORD -\n` };
      return { exitCode: args.at(-1) === 'r.example:5000' ? 1 : 0 };
    });
    const ledger = { ...left.ledger, dockerConfig, registries: ['ghcr.io', 'r.example:5000'] };
    const { runner } = await post(ledger, { ...left.env, 'INPUT_VERIFY-CONTAINER': 'app' }, { docker });
    expect(docker.calls.map((c) => c.args.slice(0, 3))).toEqual([
      ['exec', '--', 'app'],
      ['logout', '--', 'ghcr.io'],
      ['logout', '--', 'r.example:5000'],
    ]);
    expect(docker.calls[1]?.options?.env).toEqual({ DOCKER_CONFIG: dockerConfig });
    expect(seen).toEqual([true, true, true]);
    expect(runner.infos).toContain('scrub: DB_PASSWORD found 1 time(s) in debug.log: redacted');
    expect(readFileSync(path.join(left.workspace, 'debug.log'), 'utf8')).toBe(`password=${'*'.repeat(VALUES.DB_PASSWORD.length)}\n`);
    expect(runner.warnings).toEqual([
      "cleanup: verify-container 'app': missing or of another size at /run/secrets: DB_PASSWORD",
      'cleanup: docker logout r.example:5000 failed (exit 1)',
    ]);
    const summary = runner.summaries.join('\n');
    expect(summary).toContain('1 of 2 secret(s) present at /run/secrets');
    expect(summary).toContain('- Logged out of: ghcr.io');
    expect(summary).toContain('- Workspace scrub: 1 file(s) held a secret value');
    expect(await exists(left.dir.root)).toBe(false);
    expectNoValue(runner);
  });

  it('deletes the rendered files main wrote in the workspace before the scrub, which does not count them, and says so', async () => {
    const left = await mainLeftBehind();
    const npmrc = path.join(left.workspace, '.npmrc');
    writeFileSync(npmrc, `//r/:_authToken=${VALUES.API_KEY}\n`);
    const replaced = path.join(left.workspace, '.netrc');
    writeFileSync(replaced, 'x');
    const staleId = fileId(statSync(replaced, { bigint: true }));
    // Replaced by a step (a new file renamed over it: a new inode while the old one still exists).
    writeFileSync(`${replaced}.new`, `password ${VALUES.DB_PASSWORD}\n`);
    renameSync(`${replaced}.new`, replaced);
    const ledger = {
      ...left.ledger,
      workspaceFiles: [
        { path: npmrc, id: fileId(statSync(npmrc, { bigint: true })) },
        { path: replaced, id: staleId },
      ],
    };
    const { runner } = await post(ledger, left.env);
    expect(await exists(npmrc)).toBe(false);
    // Not the file main wrote: left to the scrub, which finds the value in it.
    expect(readFileSync(replaced, 'utf8')).toBe(`password ${'*'.repeat(VALUES.DB_PASSWORD.length)}\n`);
    expect(runner.warnings).toEqual([`cleanup: rendered file ${replaced}: not the file main wrote (replaced since); left in place`]);
    expect(runner.infos).toContain('scrub: DB_PASSWORD found 1 time(s) in .netrc: redacted');
    expect(runner.infos.join('\n')).not.toContain('.npmrc');
    const summary = runner.summaries.join('\n');
    expect(summary).toContain(`- Rendered files removed from the workspace: 1\n  - \`${npmrc}\``);
    expect(summary).toContain('- Workspace scrub: 1 file(s) held a secret value');
    expect(runner.infos).toContain('Pipeline Secrets cleanup: token revoked, 2 lease(s) revoked, 4 file(s) and 1 director(ies) removed');
    expectNoValue(runner);
  });

  it('stops the agent first and revokes the leases it took, not those it revoked', async () => {
    const left = await mainLeftBehind();
    writeFileSync(path.join(left.dir.root, 'agent-leases.json'), JSON.stringify({ leases: ['pki/issue/ci/l3'], revoked: [LEASES[0]] }));
    // This test's own process: alive, but not our agent, so it is never signalled.
    const { runner, vault } = await post({ ...left.ledger, agentPid: process.pid }, left.env);
    expect(vault.calls.filter((c) => c.path === LEASE_REVOKE).map((c) => c.leaseId)).toEqual([LEASES[1], 'pki/issue/ci/l3']);
    expect(runner.warnings).toEqual([
      'renewal agent: died before post stopped it (renewals stopped then); last reason: it wrote no status',
    ]);
    expect(runner.summaries.join('\n')).toContain('- ⚠️ Agent: died before post stopped it');
  });

  it('sends nothing to a Vault address the inputs do not give, and says so', async () => {
    const left = await mainLeftBehind();
    const { runner, vault } = await post({ ...left.ledger, vaultUrl: 'https://elsewhere.example' }, left.env);
    expect(vault.calls).toEqual([]);
    expect(runner.warnings[0]).toMatch(
      /^cleanup: refused from the saved state: the Vault address https:\/\/elsewhere\.example: not the address/,
    );
    expect(await exists(left.dir.root)).toBe(false);
  });

  it('is safe to run twice: the second run finds nothing and warns about nothing', async () => {
    const left = await mainLeftBehind();
    await post(left.ledger, left.env);
    const { runner, vault } = await post(left.ledger, left.env);
    expect(vault.calls).toEqual([]);
    expect(runner.warnings).toEqual([]);
    expect(runner.infos).toContain('Pipeline Secrets cleanup: 0 lease(s) revoked, 0 file(s) and 0 director(ies) removed');
  });

  it('does nothing, and warns about no input, when main saved no state', async () => {
    const { runner, vault } = await post(undefined, { INPUT_TIMEOUT: 'soon' });
    expect(runner.infos).toEqual(['Pipeline Secrets cleanup: main created nothing; nothing to do']);
    expect(runner.warnings).toEqual([]);
    expect(vault.clients).toEqual([]);
  });

  it('touches nothing when the saved state is not readable', async () => {
    const left = await mainLeftBehind();
    const runner = fakeRunner({ state: { ledger: '{not json' } });
    await runPost({ env: left.env, runner, exec: fakeExec().exec, loadVaultClient: fakeVault().load });
    expect(runner.warnings).toEqual(['cleanup: the saved state is not readable; nothing can be cleaned up safely']);
    expect(await exists(left.dir.root)).toBe(true);
  });

  it('turns a failed token revocation that an earlier try did carry out into revoked', async () => {
    const left = await mainLeftBehind();
    const vault = fakeVault({ [TOKEN]: LEASES });
    // Vault revoked the token, the answer was lost; the retry inside the client is refused.
    vault.failures.set(REVOKE_SELF, [{ error: vaultError(REVOKE_SELF, 403, true), acted: true }]);
    const { runner } = await post(left.ledger, left.env, { vault });
    expect(runner.warnings).toEqual([]);
    expect(runner.infos).toContain('Vault token revoked (by an earlier try whose answer was lost; the retry found it gone)');
    expect(runner.summaries.join('\n')).toContain('- Vault token: revoked');
  });
});
