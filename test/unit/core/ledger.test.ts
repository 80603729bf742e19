// The ledger main saves for post (saved after every change, read back with its lists defaulted),
// and checkLedger: post's saved state is untrusted, so it keeps only what it can prove main created
// and the Vault address and namespace post's own inputs give.
import { promises as fs, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLedger, LedgerWriter, loadLedger, type Ledger, type LedgerExpected } from '../../../src/core/ledger.ts';
import { createPrivateDir, ROOT_MARKER, type PrivateDir } from '../../../src/core/private-dir.ts';
import { fakeRunner } from '../../support/fake-runner.ts';

const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-ledger-'));
  made.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

const VAULT = 'https://vault.example:8200';

/** A private dir in a fresh RUNNER_TEMP (no /dev/shm), and the ledger main would save for it. */
async function privateDir(userSecretsDir?: string): Promise<{ dir: PrivateDir; expected: LedgerExpected; ledger: Ledger }> {
  const runnerTemp = tmp();
  const dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, userSecretsDir, path.join(runnerTemp, 'no-shm'));
  const file = path.join(dir.secretsDir, 'a');
  writeFileSync(file, 'value');
  const ledger: Ledger = {
    root: dir.root,
    marker: dir.marker,
    secretsDir: dir.secretsDir,
    userSecretsDir: dir.userSecretsDir,
    files: [file],
    leases: ['l/1'],
    tokenFile: path.join(dir.root, 'vault-token'),
    vaultUrl: VAULT,
  };
  return { dir, expected: { vaultUrl: VAULT, namespace: undefined, runnerTemp }, ledger };
}

describe('LedgerWriter and loadLedger', () => {
  it('saves the ledger after every change, and loads it back', () => {
    const runner = fakeRunner();
    const writer = new LedgerWriter(runner);
    writer.update((l) => l.leases.push('l/1'));
    expect(loadLedger(runner)).toEqual({ files: [], leases: ['l/1'] });
    writer.update((l) => (l.root = '/dev/shm/pipeline-secrets-x'));
    expect(loadLedger(runner)).toEqual({ files: [], leases: ['l/1'], root: '/dev/shm/pipeline-secrets-x' });
  });

  it('loads nothing from an empty state, and lists where a saved state has none', () => {
    expect(loadLedger(fakeRunner())).toBeUndefined();
    expect(loadLedger(fakeRunner({ state: { ledger: '{"root":"/r"}' } }))).toEqual({ root: '/r', files: [], leases: [] });
    expect(() => loadLedger(fakeRunner({ state: { ledger: '{' } }))).toThrow(SyntaxError);
  });
});

describe('checkLedger', () => {
  it("keeps what main created: files, token file, the inputs' Vault address", async () => {
    const { dir, expected, ledger } = await privateDir();
    const checked = await checkLedger({ ...ledger, leaseExpires: { 'l/1': 'soon', bad: 1 as unknown as string } }, expected);
    expect(checked.refused).toEqual([]);
    expect(checked.ledger).toEqual({
      root: dir.root,
      secretsDir: dir.secretsDir,
      userSecretsDir: false,
      files: [path.join(dir.secretsDir, 'a')],
      tokenFile: path.join(dir.root, 'vault-token'),
      vaultUrl: VAULT,
      leases: ['l/1'],
      leaseExpires: { 'l/1': 'soon' },
    });
  });

  it("keeps rendered files in the root's rendered/ directory, and refuses them when rendered/ is a symlink", async () => {
    const { dir, expected, ledger } = await privateDir();
    mkdirSync(path.join(dir.root, 'rendered'), { mode: 0o700 });
    const rendered = path.join(dir.root, 'rendered', 'npmrc');
    writeFileSync(rendered, 'rendered');
    const checked = await checkLedger({ ...ledger, files: [...ledger.files, rendered] }, expected);
    expect(checked.refused).toEqual([]);
    expect(checked.ledger.files).toEqual([path.join(dir.secretsDir, 'a'), rendered]);

    const other = await privateDir();
    const elsewhere = tmp();
    symlinkSync(elsewhere, path.join(other.dir.root, 'rendered'));
    const linked = await checkLedger({ ...other.ledger, files: [path.join(other.dir.root, 'rendered', 'npmrc')] }, other.expected);
    expect(linked.ledger.files).toEqual([]);
    expect(linked.refused.join('\n')).toContain(path.join(other.dir.root, 'rendered', 'npmrc'));
  });

  it("passes well-formed workspace files on for post to prove one by one, only with a root that is main's or gone", async () => {
    const { dir, expected, ledger } = await privateDir();
    const entries = [{ path: '/w/.npmrc', id: '1:2' }, { path: '/w/.netrc' }, { path: 'relative' }, { id: 'x' }, 'junk'];
    const raw = { ...ledger, workspaceFiles: entries } as unknown as Ledger;
    expect((await checkLedger(raw, expected)).ledger.workspaceFiles).toEqual([{ path: '/w/.npmrc', id: '1:2' }, { path: '/w/.netrc' }]);
    // A post that ran before removed the root: the workspace files are still for post to look at.
    await fs.rm(dir.root, { recursive: true });
    expect((await checkLedger(raw, expected)).ledger.workspaceFiles).toEqual([{ path: '/w/.npmrc', id: '1:2' }, { path: '/w/.netrc' }]);
    // A root that is refused: nothing named by the state is touched, the workspace files neither.
    const refusedRoot = await checkLedger({ ...raw, root: path.join(tmp(), 'pipeline-secrets-x') }, expected);
    expect(refusedRoot.ledger.workspaceFiles).toBeUndefined();
    expect(refusedRoot.refused.join('\n')).toContain('/w/.npmrc');
  });

  it('keeps the paths as main named them when RUNNER_TEMP is reached through a symlink', async () => {
    const real = tmp();
    const linked = path.join(tmp(), 'temp');
    symlinkSync(real, linked);
    const dir = await createPrivateDir({ RUNNER_TEMP: linked }, undefined, path.join(real, 'no-shm'));
    const file = path.join(dir.secretsDir, 'a');
    writeFileSync(file, 'value');
    const raw: Ledger = { root: dir.root, marker: dir.marker, secretsDir: dir.secretsDir, files: [file], leases: [] };
    const checked = await checkLedger(raw, { vaultUrl: undefined, namespace: undefined, runnerTemp: linked });
    expect(checked.refused).toEqual([]);
    expect(checked.ledger.files).toEqual([file]);
    expect(checked.ledger.secretsDir).toBe(dir.secretsDir);
  });

  it('refuses paths outside the root, through a symlink, and the marker itself', async () => {
    const { dir, expected, ledger } = await privateDir();
    const elsewhere = tmp();
    symlinkSync(elsewhere, path.join(dir.root, 'link'));
    const bad = [path.join(elsewhere, 'x'), path.join(dir.root, 'link', 'x'), path.join(dir.root, ROOT_MARKER), 'relative/x'];
    const checked = await checkLedger({ ...ledger, files: [...ledger.files, ...bad], tokenFile: path.join(elsewhere, 't') }, expected);
    expect(checked.ledger.files).toEqual([path.join(dir.secretsDir, 'a')]);
    expect(checked.ledger.tokenFile).toBeUndefined();
    expect(checked.refused.join('\n')).toContain('4 file path(s)');
    for (const p of bad) expect(checked.refused.join('\n')).toContain(p);
    expect(checked.refused.join('\n')).toContain(`the token file ${path.join(elsewhere, 't')}`);
  });

  it('refuses a Vault address or namespace other than the ones it is given, and takes the namespace it is given', async () => {
    const { expected, ledger } = await privateDir();
    const other = await checkLedger({ ...ledger, vaultUrl: 'http://127.0.0.1:1' }, expected);
    expect(other.ledger.vaultUrl).toBeUndefined();
    expect(other.refused[0]).toBe(
      `the Vault address http://127.0.0.1:1: not the address the 'url' input (or VAULT_ADDR) gives (${VAULT}); no token or lease id was sent to it`,
    );
    expect((await checkLedger(ledger, { ...expected, vaultUrl: undefined })).refused[0]).toMatch(/gives \(none\)/);
    const namespace = await checkLedger({ ...ledger, namespace: 'other' }, expected);
    expect(namespace.ledger.vaultUrl).toBeUndefined();
    expect(namespace.refused[0]).toMatch(/^the Vault namespace 'other': not the one the 'namespace' input gives \(''\)/);
    expect((await checkLedger({ ...ledger, namespace: 'team/a' }, { ...expected, namespace: 'team/a' })).ledger).toMatchObject({
      vaultUrl: VAULT,
      namespace: 'team/a',
    });
  });

  it('refuses a root whose marker is not the one the state names, or was copied from another root', async () => {
    const { dir, expected, ledger } = await privateDir();
    const other = await createPrivateDir({ RUNNER_TEMP: expected.runnerTemp }, undefined, path.join(tmp(), 'no-shm'));
    const wrongHash = await checkLedger({ ...ledger, marker: other.marker }, expected);
    expect(wrongHash.ledger.root).toBeUndefined();
    expect(wrongHash.ledger.files).toEqual([]);
    expect(wrongHash.refused[0]).toMatch(/marker is not the one the saved state names/);
    // The other root with a copy of the first one's marker and the first one's hash.
    await fs.copyFile(path.join(dir.root, ROOT_MARKER), path.join(other.root, `${ROOT_MARKER}.copy`));
    await fs.rename(path.join(other.root, `${ROOT_MARKER}.copy`), path.join(other.root, ROOT_MARKER));
    const copied = await checkLedger({ ...ledger, root: other.root, files: [] }, expected);
    expect(copied.ledger.root).toBeUndefined();
    expect(copied.refused[0]).toMatch(/marker was made for another directory/);
  });

  it('refuses a root that is not 0700, not in RUNNER_TEMP or /dev/shm, or not named pipeline-secrets-*; a root that is gone is no refusal', async () => {
    const { dir, expected, ledger } = await privateDir();
    await fs.chmod(dir.root, 0o755);
    expect((await checkLedger(ledger, expected)).refused[0]).toMatch(/not mode 0700/);
    await fs.chmod(dir.root, 0o700);
    expect((await checkLedger(ledger, { ...expected, runnerTemp: tmp() })).refused[0]).toMatch(/not directly in/);
    expect((await checkLedger(ledger, { ...expected, runnerTemp: undefined })).refused[0]).toBe(
      `the private directory ${dir.root}: not directly in /dev/shm, where main creates it; nothing in it or named by the saved state was touched`,
    );
    expect((await checkLedger({ ...ledger, root: tmp() }, expected)).refused[0]).toMatch(/not a Pipeline Secrets directory/);
    await fs.rm(dir.root, { recursive: true });
    const gone = await checkLedger(ledger, expected);
    expect(gone.refused).toEqual([]);
    expect(gone.ledger.files).toEqual([]);
    expect(gone.ledger.tokenFile).toBeUndefined();
  });

  it('keeps a certificate whose serial file is in the root at a Vault mount; refuses one pointing elsewhere', async () => {
    const { dir, expected, ledger } = await privateDir();
    const serialFile = path.join(dir.root, 'pki-client.serial');
    const good = { name: 'client', mount: 'team/pki', serialFile, expires: '2030-01-01T00:00:00.000Z', leaseId: 'pki/issue/ci/x' };
    const elsewhere = path.join(tmp(), 'pki-x.serial');
    const bad = [
      { name: 'outside', mount: 'pki', serialFile: elsewhere },
      { name: 'in-secrets', mount: 'pki', serialFile: path.join(dir.secretsDir, 'a') },
      { name: 'up', mount: '../sys', serialFile },
      { mount: 'pki', serialFile },
    ];
    const checked = await checkLedger({ ...ledger, certs: [good, ...bad] as NonNullable<Ledger['certs']> }, expected);
    expect(checked.ledger.certs).toEqual([good]);
    expect(checked.refused.filter((r) => r.startsWith('the certificate record'))).toEqual([
      'the certificate record "outside": not a serial file in the private directory main created at a Vault mount; not revoked',
      'the certificate record "in-secrets": not a serial file in the private directory main created at a Vault mount; not revoked',
      'the certificate record "up": not a serial file in the private directory main created at a Vault mount; not revoked',
      'the certificate record null: not a serial file in the private directory main created at a Vault mount; not revoked',
    ]);
    // A root that is gone took the serial files with it: nothing to revoke with, nothing refused.
    await fs.rm(dir.root, { recursive: true });
    const gone = await checkLedger({ ...ledger, certs: [good] }, expected);
    expect(gone.ledger.certs).toBeUndefined();
    expect(gone.refused).toEqual([]);
  });

  it("uses the marker's secrets directory, not the state's, and none that was replaced", async () => {
    const { dir, expected, ledger } = await privateDir();
    const planted = await checkLedger({ ...ledger, secretsDir: tmp() }, expected);
    expect(planted.ledger.secretsDir).toBe(dir.secretsDir);
    expect(planted.refused[0]).toMatch(/^the secrets directory .*: not the one main created/);
    // Moved aside (so its inode stays taken) and another directory made in its place.
    await fs.rename(dir.secretsDir, path.join(dir.root, 'moved'));
    mkdirSync(dir.secretsDir, { mode: 0o700 });
    const replaced = await checkLedger(ledger, expected);
    expect(replaced.ledger.secretsDir).toBeUndefined();
    expect(replaced.ledger.files).toEqual([]);
    expect(replaced.refused.join('\n')).toMatch(/replaced since main created it; nothing in it was touched/);
  });

  it("keeps a user's secrets directory as the marker names it", async () => {
    const userDir = path.join(tmp(), 'secrets');
    const { expected, ledger } = await privateDir(userDir);
    const checked = await checkLedger(ledger, expected);
    expect(checked.refused).toEqual([]);
    expect(checked.ledger).toMatchObject({ secretsDir: userDir, userSecretsDir: true, files: [path.join(userDir, 'a')] });
  });

  it('keeps only the docker config main created in the root, and only a real process id', async () => {
    const { dir, expected, ledger } = await privateDir();
    mkdirSync(path.join(dir.root, 'docker'));
    const kept = await checkLedger(
      { ...ledger, dockerConfig: path.join(dir.root, 'docker'), registries: ['ghcr.io'], agentPid: 4242 },
      expected,
    );
    expect(kept.ledger).toMatchObject({ dockerConfig: path.join(dir.root, 'docker'), registries: ['ghcr.io'], agentPid: 4242 });
    mkdirSync(path.join(dir.root, 'other'));
    const refused = await checkLedger({ ...ledger, dockerConfig: path.join(dir.root, 'other'), agentPid: 1 }, expected);
    expect(refused.ledger.dockerConfig).toBeUndefined();
    expect(refused.ledger.agentPid).toBeUndefined();
    expect(refused.refused).toEqual([
      `the docker config ${path.join(dir.root, 'other')}: not the one main created in its private directory; no docker logout run with it`,
      'the renewal agent pid 1: not a process id; not signalled',
    ]);
  });

  it('refuses every path of a state that names no private directory', async () => {
    const checked = await checkLedger(
      { files: ['/tmp/a'], leases: [], tokenFile: '/tmp/t' },
      { vaultUrl: undefined, namespace: undefined, runnerTemp: tmp() },
    );
    expect(checked.ledger).toEqual({ files: [], leases: [] });
    expect(checked.refused).toEqual(['2 path(s) /tmp/a, /tmp/t: the saved state names no private directory; left in place']);
  });
});
