// Main's delivery steps: the private root recorded in state the moment it exists, every file path
// in state before a file is written (so post removes them after a failure half-way), and values
// handed to later steps only as asked.
import { promises as fs, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LedgerWriter, type Ledger } from '../../../src/core/ledger.ts';
import { ROOT_MARKER } from '../../../src/core/private-dir.ts';
import type { Config } from '../../../src/inputs/main.ts';
import { decodeValue } from '../../../src/core/decode.ts';
import { DeliveryError } from '../../../src/core/errors.ts';
import { checkTextExports, createRoot, handOver, writeFiles } from '../../../src/main/deliver.ts';
import type { Secret } from '../../../src/vault/fetch.ts';
import { fakeRunner } from '../../support/fake-runner.ts';

const T0 = Date.parse('2030-01-02T03:04:05.000Z');
const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function temp(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ps-unit-deliver-'));
  made.push(dir);
  return dir;
}

const config = { vault: undefined, renew: undefined, secretsDir: undefined, exportEnv: false, exportOutputs: false } as unknown as Config;
const secret = (name: string, value: string, envName = name): Secret => ({
  name,
  envName,
  value,
  source: { kind: 'env', line: 1, envVar: name },
});
const saved = (runner: ReturnType<typeof fakeRunner>): Ledger => JSON.parse(runner.state.get('ledger') ?? '{}') as Ledger;

async function root(): Promise<{
  runner: ReturnType<typeof fakeRunner>;
  ledger: LedgerWriter;
  dir: Awaited<ReturnType<typeof createRoot>>;
}> {
  const runner = fakeRunner();
  const ledger = new LedgerWriter(runner);
  // A base that is no tmpfs: the root goes under RUNNER_TEMP.
  const dir = await createRoot({ env: { RUNNER_TEMP: await temp() }, shm: '/nonexistent', now: () => T0 }, config, ledger);
  return { runner, ledger, dir };
}

describe('createRoot', () => {
  it('records the root, its secrets directory and marker in state, with an end of life from the clock', async () => {
    const { runner, dir } = await root();
    expect(saved(runner)).toMatchObject({ root: dir.root, secretsDir: dir.secretsDir, userSecretsDir: false, marker: dir.marker });
    expect(dir.onTmpfs).toBe(false);
    const marker = JSON.parse(await fs.readFile(path.join(dir.root, ROOT_MARKER), 'utf8')) as { expires: string };
    expect(marker.expires).toBe(new Date(T0 + 6 * 3600_000).toISOString());
  });
});

describe('writeFiles', () => {
  it('writes 0600 files and the env-file, warns by name for a multi-line value left out of the env-file', async () => {
    const { runner, ledger, dir } = await root();
    const delivered = await writeFiles(runner, ledger, dir, [secret('ONE', 'first-value'), secret('PEM', 'line-1\nline-2')], config);
    expect(await fs.readFile(path.join(dir.secretsDir, 'PEM'), 'utf8')).toBe('line-1\nline-2');
    expect(statSync(path.join(dir.secretsDir, 'ONE')).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(delivered.envFile, 'utf8')).toBe('ONE=first-value\n');
    expect(delivered.envFileSkipped).toEqual(['PEM']);
    expect(runner.warnings).toEqual([
      "secret 'PEM' has more than one line and is left out of the env-file (docker --env-file cannot hold it); use its file",
    ]);
    expect(saved(runner).files).toEqual([path.join(dir.secretsDir, 'ONE'), path.join(dir.secretsDir, 'PEM'), delivered.envFile]);
    expect(runner.visible()).not.toContain('first-value');
  });

  it("a pki entry's PEM file is left out of the env-file without a warning: its file is the way to use it", async () => {
    const { runner, ledger, dir } = await root();
    const pem: Secret = { ...secret('client.key', '-----BEGIN KEY-----\nabc\n-----END KEY-----\n', 'CLIENT_KEY'), pem: true };
    const delivered = await writeFiles(runner, ledger, dir, [pem], config);
    expect(delivered.envFileSkipped).toEqual(['CLIENT_KEY']);
    expect(runner.warnings).toEqual([]);
  });

  it('a write that fails half-way still leaves every path in state for post', async () => {
    const { runner, ledger, dir } = await root();
    // Something planted where a file goes: refused (never followed), and the step fails.
    await fs.symlink('/etc/passwd', path.join(dir.secretsDir, 'TWO'));
    await expect(writeFiles(runner, ledger, dir, [secret('ONE', 'first-value'), secret('TWO', 'second-value')], config)).rejects.toThrow(
      /already exists \(file or symlink\); refusing to overwrite or follow it/,
    );
    expect(saved(runner).files).toEqual([
      path.join(dir.secretsDir, 'ONE'),
      path.join(dir.secretsDir, 'TWO'),
      path.join(dir.root, 'secrets.env'),
    ]);
  });
});

describe('handOver', () => {
  const dir = { root: '/r', secretsDir: '/r/secrets', userSecretsDir: false, onTmpfs: true, marker: '' };
  const secrets = [secret('app.key', 'value-one-1234', 'APP_KEY')];

  it('paths only, unless asked: no value as an env var or output', () => {
    const runner = fakeRunner();
    handOver(runner, config, { dir, envFile: '/r/secrets.env', secrets, vaultToken: undefined });
    expect(Object.fromEntries(runner.outputs)).toEqual({ 'secrets-dir': '/r/secrets', 'env-file': '/r/secrets.env' });
    // The job-wide list of roots (for the leak scan) gets this step's root after the earlier steps' ones.
    expect(Object.fromEntries(runner.exported)).toEqual({ PIPELINE_SECRETS_DIR: '/r/secrets', PIPELINE_SECRETS_ROOTS: '/r' });
    handOver(runner, config, { dir, envFile: '/r/secrets.env', secrets, vaultToken: undefined, rootsList: '/q:/r' });
    expect(runner.exported.get('PIPELINE_SECRETS_ROOTS')).toBe('/q:/r');
    handOver(runner, config, { dir, envFile: '/r/secrets.env', secrets, vaultToken: undefined, rootsList: '/q' });
    expect(runner.exported.get('PIPELINE_SECRETS_ROOTS')).toBe('/q:/r');
  });

  it('export-env by env name, export-outputs by name, the token when given', () => {
    const runner = fakeRunner();
    handOver(runner, { exportEnv: true, exportOutputs: true }, { dir, envFile: '/r/secrets.env', secrets, vaultToken: 'hvs.token-1234' });
    expect(runner.exported.get('APP_KEY')).toBe('value-one-1234');
    expect(runner.outputs.get('app.key')).toBe('value-one-1234');
    expect(runner.outputs.get('vault-token')).toBe('hvs.token-1234');
    expect(runner.outputs.get('vault_token')).toBe('hvs.token-1234');
    expect(runner.exported.has('app.key')).toBe(false);
  });

  it("an output name of its own (a pki entry's, vault-action's ROLE_cert) is used instead of the file name", () => {
    const runner = fakeRunner();
    const cert: Secret = { ...secret('client.crt', 'cert-pem-text', 'CLIENT_CERT'), outputName: 'client_cert' };
    handOver(runner, { exportEnv: false, exportOutputs: true }, { dir, envFile: '/r/secrets.env', secrets: [cert], vaultToken: undefined });
    expect(runner.outputs.get('client_cert')).toBe('cert-pem-text');
    expect(runner.outputs.has('client.crt')).toBe(false);
  });
});

describe('decoded values (?encoding=)', () => {
  const KEYSTORE = Buffer.from([0x30, 0x82, 0x00, 0x0a, 0xff, 0xfe, 0x00, 0x01]); // not text: a NUL, invalid UTF-8
  const decoded = (name: string, stored: string, encoding: 'base64' | 'hex', line = 4): Secret => ({
    name,
    envName: name,
    ...decodeValue(stored, encoding),
    source: { kind: 'vault', line, requestKey: 'k', path: 'p', readPath: 'p', key: 'k', kvVersion: 2, version: 1, leaseId: undefined },
  });

  it('the file holds the decoded bytes exactly; bytes that are not text are left out of the env-file, with a warning', async () => {
    const { runner, ledger, dir } = await root();
    const secrets = [
      decoded('KEYSTORE', KEYSTORE.toString('base64'), 'base64'),
      decoded('CONF', Buffer.from('a=b').toString('hex'), 'hex'),
    ];
    const delivered = await writeFiles(runner, ledger, dir, secrets, config);
    expect((await fs.readFile(path.join(dir.secretsDir, 'KEYSTORE'))).equals(KEYSTORE)).toBe(true);
    expect(await fs.readFile(path.join(dir.secretsDir, 'CONF'), 'utf8')).toBe('a=b');
    expect(await fs.readFile(delivered.envFile, 'utf8')).toBe('CONF=a=b\n');
    expect(runner.warnings).toEqual([
      "secret 'KEYSTORE' decodes to bytes that are not UTF-8 text and is left out of the env-file (no env var can hold them); use its file",
    ]);
  });

  it.each([
    [{ exportEnv: true, exportOutputs: false }, 'export-env', 'no environment variable'],
    [{ exportEnv: false, exportOutputs: true }, 'export-outputs', 'no step output'],
  ])('%j: bytes that are not text are refused in one line naming the line and the secret', (asked, input, what) => {
    const secrets = [
      decoded('TEXT', Buffer.from('text-value').toString('base64'), 'base64', 2),
      decoded('KEYSTORE', KEYSTORE.toString('hex'), 'hex', 3),
    ];
    let error: unknown;
    try {
      checkTextExports(asked, secrets);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DeliveryError);
    expect((error as Error).message).toBe(
      `secrets line 3: secret 'KEYSTORE' decodes from hex to bytes that are not UTF-8 text, which ${what} can hold (${input}: true exports every secret); it can only be the file $PIPELINE_SECRETS_DIR/KEYSTORE: fetch it in a step without ${input}`,
    );
    expect((error as Error).message).not.toContain(KEYSTORE.toString('hex'));
    // Nothing is exported when handOver is reached anyway (its backstop).
    const runner = fakeRunner();
    expect(() =>
      handOver(runner, asked, {
        dir: { root: '/r', secretsDir: '/r/s', userSecretsDir: false, onTmpfs: true, marker: '' },
        envFile: '/r/e',
        secrets,
        vaultToken: undefined,
      }),
    ).toThrow(DeliveryError);
    expect(runner.exported.has('TEXT')).toBe(false);
    expect(runner.outputs.has('TEXT')).toBe(false);
  });

  it('decoded text is exported as that text; without an export nothing is refused', () => {
    const secrets = [
      decoded('TEXT', Buffer.from('text-value').toString('base64'), 'base64'),
      decoded('KEYSTORE', KEYSTORE.toString('hex'), 'hex'),
    ];
    expect(() => checkTextExports({ exportEnv: false, exportOutputs: false }, secrets)).not.toThrow();
    const runner = fakeRunner();
    handOver(
      runner,
      { exportEnv: true, exportOutputs: true },
      {
        dir: { root: '/r', secretsDir: '/r/s', userSecretsDir: false, onTmpfs: true, marker: '' },
        envFile: '/r/e',
        secrets: secrets.slice(0, 1),
        vaultToken: undefined,
      },
    );
    expect(runner.exported.get('TEXT')).toBe('text-value');
    expect(runner.outputs.get('TEXT')).toBe('text-value');
  });
});
