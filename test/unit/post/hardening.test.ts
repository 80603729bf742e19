// Findings 5-7 at unit level: checkLedger (post's saved state is untrusted) and docker argv ending
// options with `--`.
import { promises as fs, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPrivateDir, ROOT_MARKER, type PrivateDir } from '../../../src/core/private-dir.ts';
import { dockerLogin, dockerLogout } from '../../../src/docker/login.ts';
import type { Exec } from '../../../src/core/exec.ts';
import { checkLedger, type Ledger } from '../../../src/core/ledger.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import type { Runner } from '../../../src/core/runner.ts';
import { verifyContainer } from '../../../src/verify/container.ts';

const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-hardening-'));
  made.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** A private dir in a fresh RUNNER_TEMP (not tmpfs), and the ledger main would save for it. */
async function privateDir(): Promise<{ dir: PrivateDir; env: Record<string, string>; ledger: Ledger }> {
  const env = { RUNNER_TEMP: tmp(), INPUT_URL: 'https://vault.example:8200/' };
  const dir = await createPrivateDir(env, undefined, tmp());
  const file = path.join(dir.secretsDir, 'a');
  writeFileSync(file, 'value');
  const ledger: Ledger = {
    root: dir.root,
    marker: dir.marker,
    secretsDir: dir.secretsDir,
    userSecretsDir: false,
    files: [file],
    leases: ['l/1'],
    tokenFile: path.join(dir.root, 'vault-token'),
    vaultUrl: 'https://vault.example:8200',
  };
  return { dir, env, ledger };
}

describe('checkLedger', () => {
  it("keeps what main created: files, token file, the input's Vault address", async () => {
    const { dir, env, ledger } = await privateDir();
    const checked = await checkLedger(ledger, env);
    expect(checked.refused).toEqual([]);
    expect(checked.ledger).toMatchObject({
      root: dir.root,
      secretsDir: dir.secretsDir,
      files: [path.join(dir.secretsDir, 'a')],
      tokenFile: path.join(dir.root, 'vault-token'),
      vaultUrl: 'https://vault.example:8200',
      leases: ['l/1'],
    });
  });

  it('keeps the paths as main named them when RUNNER_TEMP is reached through a symlink', async () => {
    const real = tmp();
    const linked = path.join(tmp(), 'temp');
    symlinkSync(real, linked);
    const env = { RUNNER_TEMP: linked };
    const dir = await createPrivateDir(env, undefined, tmp());
    const file = path.join(dir.secretsDir, 'a');
    writeFileSync(file, 'value');
    const checked = await checkLedger({ root: dir.root, marker: dir.marker, secretsDir: dir.secretsDir, files: [file], leases: [] }, env);
    expect(checked.refused).toEqual([]);
    expect(checked.ledger.files).toEqual([file]);
    expect(checked.ledger.secretsDir).toBe(dir.secretsDir);
  });

  it('refuses paths outside the root, through a symlink, and the marker itself', async () => {
    const { dir, env, ledger } = await privateDir();
    const elsewhere = tmp();
    symlinkSync(elsewhere, path.join(dir.root, 'link'));
    const bad = [path.join(elsewhere, 'x'), path.join(dir.root, 'link', 'x'), path.join(dir.root, ROOT_MARKER), 'relative/x'];
    const checked = await checkLedger({ ...ledger, files: [...ledger.files, ...bad], tokenFile: path.join(elsewhere, 't') }, env);
    expect(checked.ledger.files).toEqual([path.join(dir.secretsDir, 'a')]);
    expect(checked.ledger.tokenFile).toBeUndefined();
    expect(checked.refused.join('\n')).toContain('4 file path(s)');
    for (const p of bad) expect(checked.refused.join('\n')).toContain(p);
    expect(checked.refused.join('\n')).toContain(`the token file ${path.join(elsewhere, 't')}`);
  });

  it('refuses another Vault address or namespace', async () => {
    const { env, ledger } = await privateDir();
    expect((await checkLedger({ ...ledger, vaultUrl: 'http://127.0.0.1:1' }, env)).ledger.vaultUrl).toBeUndefined();
    expect((await checkLedger({ ...ledger, namespace: 'other' }, env)).ledger.vaultUrl).toBeUndefined();
    expect((await checkLedger(ledger, { ...env, INPUT_URL: '', VAULT_ADDR: 'https://vault.example:8200' })).ledger.vaultUrl).toBe(
      'https://vault.example:8200',
    );
  });

  it('refuses a root whose marker is not the one the state names, or was copied from another root', async () => {
    const { dir, env, ledger } = await privateDir();
    const other = await createPrivateDir(env, undefined, tmp());
    const wrongHash = await checkLedger({ ...ledger, marker: other.marker }, env);
    expect(wrongHash.ledger.root).toBeUndefined();
    expect(wrongHash.ledger.files).toEqual([]);
    expect(wrongHash.refused[0]).toMatch(/marker is not the one the saved state names/);
    // The other root with a copy of the first one's marker and the first one's hash.
    await fs.copyFile(path.join(dir.root, ROOT_MARKER), path.join(other.root, `${ROOT_MARKER}.copy`));
    await fs.rename(path.join(other.root, `${ROOT_MARKER}.copy`), path.join(other.root, ROOT_MARKER));
    const copied = await checkLedger({ ...ledger, root: other.root, files: [] }, env);
    expect(copied.ledger.root).toBeUndefined();
    expect(copied.refused[0]).toMatch(/marker was made for another directory/);
  });

  it('refuses a root that is not 0700, not in RUNNER_TEMP or /dev/shm, or not named pipeline-secrets-*; a root that is gone is no refusal', async () => {
    const { dir, env, ledger } = await privateDir();
    await fs.chmod(dir.root, 0o755);
    expect((await checkLedger(ledger, env)).refused[0]).toMatch(/not mode 0700/);
    await fs.chmod(dir.root, 0o700);
    expect((await checkLedger(ledger, { ...env, RUNNER_TEMP: tmp() })).refused[0]).toMatch(/not directly in/);
    expect((await checkLedger({ ...ledger, root: tmp() }, env)).refused[0]).toMatch(/not a Pipeline Secrets directory/);
    await fs.rm(dir.root, { recursive: true });
    const gone = await checkLedger(ledger, env);
    expect(gone.refused).toEqual([]);
    expect(gone.ledger.files).toEqual([]);
    expect(gone.ledger.tokenFile).toBeUndefined();
  });
});

describe('docker argv', () => {
  const calls: string[][] = [];
  const exec: Exec = async (_file, args) => {
    calls.push([...args]);
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  const runner = { setSecret: () => {} } as unknown as Runner;
  afterEach(() => {
    calls.length = 0;
  });

  it('ends options with -- before every operand', async () => {
    await verifyContainer(exec, 'app', '/run/secrets', [{ name: 'a', bytes: 1 }]);
    await dockerLogout(exec, '/c', '-r');
    const config = tmp();
    await fs.writeFile(path.join(config, 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: 'eDp5' } } }));
    await dockerLogin(exec, config, { registry: 'r.example', username: '-u', password: 'pw-123456', from: 'x' }, new MaskRegistry(runner));
    expect(calls[0]?.slice(0, 3)).toEqual(['exec', '--', 'app']);
    expect(calls[1]).toEqual(['logout', '--', '-r']);
    expect(calls[2]).toEqual(['login', '--username=-u', '--password-stdin', '--', 'r.example']);
  });

  it('refuses a container that starts with -, naming the input, without running docker', async () => {
    await expect(verifyContainer(exec, '--env-file=/etc/passwd', '/run/secrets', [], { input: 'verify-container' })).rejects.toThrow(
      "input 'verify-container': '--env-file=/etc/passwd' starts with '-', so it is not a container name or id; refused",
    );
    expect(calls).toEqual([]);
  });

  it("scrubs docker's error output", async () => {
    const failing: Exec = async () => ({ exitCode: 1, stdout: '', stderr: 'error: secret-value-42 here' });
    await expect(
      verifyContainer(failing, 'app', '/run/secrets', [], { scrub: (t) => t.replaceAll('secret-value-42', '***') }),
    ).rejects.toThrow("container 'app': error: *** here");
  });
});
