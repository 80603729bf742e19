// runMain through its seams: the recording fake runner, an in-memory Vault behind the client
// factory, a fake docker CLI behind exec, tmpfs looked for in a temporary directory and a fixed
// clock. What is asserted is what a job would see: the saved state (ledger), the 0600 files, what
// was masked before anything could print it, the env vars and outputs, and the failure line.
// Longer than most test files: each test drives the whole step, so the shared set-up (an ordered
// recording runner, a fake docker CLI, `run`) sits at the top, and the per-module tests live beside it.
import { promises as fs, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult } from '../../../src/core/exec.ts';
import type { Ledger } from '../../../src/core/ledger.ts';
import { createPrivateDir, ROOT_MARKER } from '../../../src/core/private-dir.ts';
import type { AgentConfig } from '../../../src/agent/agent.ts';
import { runMain, type MainDeps } from '../../../src/main/pipeline.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';
import { fakeVault, type FakeVault, type FakeVaultOptions } from './fake-vault.ts';

const T0 = Date.parse('2030-01-02T03:04:05.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

const TOKEN = 'hvs.fake-vault-token-0123456789';
const SECRET_ID = 'fake-secret-id-0123456789';
const APP_PASSWORD = 'app-password-Kq8!vX2#mLp';
const API_KEY = 'api-key-3f9c2e7a1b5d';
const DB_PASSWORD = (n: number): string => `db-password-${n}-Zr4tY8wQ`;
const DB_USER = (n: number): string => `v-approle-app-${n}-x7k2`;
const GH_TOKEN = 'ghp_workflowSecretValue0123456789';

const APPROLE = { url: 'https://vault.example:8200', method: 'approle', 'role-id': 'role-1', 'secret-id': SECRET_ID };
const SECRETS = [
  'database/creds/app password | DB_PASSWORD',
  'database/creds/app username | DB_USER',
  'secret/data/app password | APP_PASSWORD',
  'secret/app api_key | API_KEY',
].join('\n');
const KV = { app: { password: APP_PASSWORD, api_key: API_KEY, unused: 'never-selected-field-value' } };
const VAULT: FakeVaultOptions = { kv: KV, dynamic: { 'database/creds/app': (n) => ({ username: DB_USER(n), password: DB_PASSWORD(n) }) } };
const VALUES = [APP_PASSWORD, API_KEY, DB_PASSWORD(1), DB_USER(1), GH_TOKEN, TOKEN, SECRET_ID];

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** An ordered record of what the runner was told, so "masked before printed" can be checked. */
interface Event {
  readonly kind: 'mask' | 'info' | 'warning' | 'debug' | 'export' | 'output' | 'state' | 'summary' | 'failed';
  readonly text: string;
}

function recording(): { runner: FakeRunner; events: Event[] } {
  const inner = fakeRunner();
  const events: Event[] = [];
  const log = (kind: Event['kind'], text: string): void => void events.push({ kind, text });
  // The same recorded arrays and maps as `inner`, with every call also logged in order.
  const runner: FakeRunner = {
    ...inner,
    setSecret: (value) => (log('mask', value), inner.setSecret(value)),
    info: (message) => (log('info', message), inner.info(message)),
    warning: (message) => (log('warning', message), inner.warning(message)),
    debug: (message) => (log('debug', message), inner.debug(message)),
    exportVariable: (name, value) => (log('export', `${name}=${value}`), inner.exportVariable(name, value)),
    setOutput: (name, value) => (log('output', `${name}=${value}`), inner.setOutput(name, value)),
    saveState: (name, value) => (log('state', `${name}=${value}`), inner.saveState(name, value)),
    appendSummary: (markdown) => (log('summary', markdown), inner.appendSummary(markdown)),
    setFailed: (message) => (log('failed', message), inner.setFailed(message)),
  };
  return { runner, events };
}

interface DockerCall {
  readonly args: readonly string[];
  readonly options: ExecOptions | undefined;
}

/** `docker login` storing the credentials in DOCKER_CONFIG/config.json, as the CLI does; or failing. */
function fakeDocker(fail?: (password: string) => ExecResult): { exec: MainDeps['exec']; calls: DockerCall[] } {
  const calls: DockerCall[] = [];
  const exec: MainDeps['exec'] = async (file, args, options) => {
    calls.push({ args, options });
    if (file !== 'docker' || args[0] !== 'login') return { exitCode: 0, stdout: '', stderr: '' };
    if (fail) return fail(options?.input ?? '');
    const config = path.join(options?.env?.DOCKER_CONFIG ?? '', 'config.json');
    const user = (args.find((a) => a.startsWith('--username=')) ?? '').slice('--username='.length);
    const parsed = JSON.parse(await fs.readFile(config, 'utf8')) as { auths: Record<string, { auth: string }> };
    parsed.auths[args.at(-1) ?? ''] = { auth: Buffer.from(`${user}:${options?.input ?? ''}`).toString('base64') };
    await fs.writeFile(config, JSON.stringify(parsed));
    return { exitCode: 0, stdout: 'Login Succeeded', stderr: '' };
  };
  return { exec, calls };
}

interface Run {
  readonly runner: FakeRunner;
  readonly events: Event[];
  readonly vault: FakeVault;
  readonly docker: DockerCall[];
  readonly shm: string;
  readonly ledger: () => Ledger;
}

async function tempDir(base: string, prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(base, prefix));
  made.push(dir);
  return dir;
}

async function run(
  inputs: Record<string, string>,
  options: {
    env?: Record<string, string>;
    vault?: FakeVaultOptions;
    docker?: ReturnType<typeof fakeDocker>;
    deps?: Partial<MainDeps>;
    shm?: string;
    /** Called once main has written its summary: the end of the job's own work. */
    onSummary?: () => void;
  } = {},
): Promise<Run> {
  // /dev/shm is a tmpfs here: a directory in it stands for it, so this run's roots and the sweep
  // see only this test's directories.
  const shm = options.shm ?? (await tempDir('/dev/shm', 'ps-unit-shm-'));
  const env: Record<string, string> = { RUNNER_TEMP: await tempDir(os.tmpdir(), 'ps-unit-temp-'), HOME: shm, ...options.env };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
  const { runner, events } = recording();
  const recorded = { ...runner };
  runner.appendSummary = async (markdown) => {
    await recorded.appendSummary(markdown);
    options.onSummary?.();
  };
  const vault = fakeVault(options.vault ?? VAULT);
  const docker = options.docker ?? fakeDocker();
  await runMain({
    env,
    runner,
    loadVaultClient: async () => vault.factory,
    exec: docker.exec,
    now: () => T0,
    shm,
    launchAgent: async () => {
      throw new Error('no agent in this test');
    },
    ...options.deps,
  });
  return { runner, events, vault, docker: docker.calls, shm, ledger: () => JSON.parse(runner.state.get('ledger') ?? '{}') as Ledger };
}

/** A turn of the event loop: a later answer without a clock. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const mode = (file: string): number => statSync(file).mode & 0o777;

describe('runMain with Vault', () => {
  it('delivers every selected value as a 0600 file, records the root, token file and lease in state, and exports nothing not asked for', async () => {
    const r = await run({ ...APPROLE, secrets: SECRETS, 'env-secrets': 'GH_TOKEN' }, { env: { GH_TOKEN } });
    expect(r.runner.failures).toEqual([]);
    const ledger = r.ledger();
    expect(path.dirname(ledger.root ?? '')).toBe(r.shm);
    expect(ledger.secretsDir).toBe(path.join(ledger.root ?? '', 'secrets'));
    expect(ledger.vaultUrl).toBe('https://vault.example:8200');
    expect(ledger.tokenFile).toBe(path.join(ledger.root ?? '', 'vault-token'));
    expect(ledger.leases).toEqual(['database/creds/app/lease-1']);
    expect(ledger.leaseExpires).toEqual({ 'database/creds/app/lease-1': iso(T0 + 600_000) });
    expect(ledger.tokenBatch).toBeUndefined();

    // The token waits for post in a 0600 file; the root's marker expires 6 h after (fake) now.
    expect(await fs.readFile(ledger.tokenFile ?? '', 'utf8')).toBe(TOKEN);
    expect(mode(ledger.tokenFile ?? '')).toBe(0o600);
    const marker = JSON.parse(await fs.readFile(path.join(ledger.root ?? '', ROOT_MARKER), 'utf8')) as { expires: string };
    expect(marker.expires).toBe(iso(T0 + 6 * 3600_000));

    const dir = ledger.secretsDir ?? '';
    expect(mode(dir)).toBe(0o700);
    const expected = { APP_PASSWORD, API_KEY, DB_PASSWORD: DB_PASSWORD(1), DB_USER: DB_USER(1), GH_TOKEN };
    expect((await fs.readdir(dir)).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, value] of Object.entries(expected)) {
      expect(await fs.readFile(path.join(dir, name), 'utf8')).toBe(value);
      expect(mode(path.join(dir, name))).toBe(0o600);
    }
    const envFile = path.join(ledger.root ?? '', 'secrets.env');
    expect((await fs.readFile(envFile, 'utf8')).split('\n').sort()).toEqual(
      ['', ...Object.entries(expected).map(([name, value]) => `${name}=${value}`)].sort(),
    );
    expect([...ledger.files].sort()).toEqual([...Object.keys(expected).map((n) => path.join(dir, n)), envFile].sort());

    // Paths only: no value leaves as an env var or output unless asked.
    expect(Object.fromEntries(r.runner.outputs)).toEqual({ 'secrets-dir': dir, 'env-file': envFile });
    expect(Object.fromEntries(r.runner.exported)).toEqual({ PIPELINE_SECRETS_DIR: dir, PIPELINE_SECRETS_ROOTS: ledger.root });
    // The unselected field is not masked (never delivered); the client was built with the deadline and closed.
    expect(r.runner.masked).not.toContain('never-selected-field-value');
    expect(r.vault.clients.map((c) => c.deadline)).toEqual([T0 + 30_000]);
    expect(r.vault.closed).toBeGreaterThanOrEqual(1);

    const summary = r.runner.summaries.join('\n');
    expect(summary).toContain('5 secret(s) delivered');
    expect(summary).toContain('database/creds/app/lease-1');
    expect(summary).toContain('revoke the Vault token');
    for (const value of VALUES) {
      expect(r.runner.visible()).not.toContain(value);
      expect(r.runner.state.get('ledger')).not.toContain(value);
    }
  });

  it('masks every value, the token and the credentials before any line naming a secret and before any output or export', async () => {
    const r = await run(
      {
        ...APPROLE,
        secrets: `${SECRETS}\nsecret/data/app flag | FLAG`,
        'env-secrets': 'GH_TOKEN',
        'export-env': 'true',
        'export-outputs': 'true',
      },
      { env: { GH_TOKEN }, vault: { ...VAULT, kv: { app: { ...KV.app, flag: 'true' } } } },
    );
    expect(r.runner.failures).toEqual([]);
    const names = ['APP_PASSWORD', 'API_KEY', 'DB_PASSWORD', 'DB_USER', 'GH_TOKEN', 'FLAG'];
    const first = r.events.findIndex(
      (e) =>
        e.kind === 'output' ||
        e.kind === 'export' ||
        ((e.kind === 'info' || e.kind === 'warning') && names.some((n) => e.text.includes(n))),
    );
    expect(first).toBeGreaterThan(0);
    // A weak value ('true') is delivered unmasked, with a warning naming it: that warning is the first line naming a secret.
    expect(r.events[first]?.text).toContain("secret 'FLAG' is delivered but not masked");
    const maskedBefore = r.events
      .slice(0, first)
      .filter((e) => e.kind === 'mask')
      .map((e) => e.text);
    for (const value of VALUES) expect(maskedBefore).toContain(value);
    expect(maskedBefore).not.toContain('true');
    // Nothing carries a value before that value is masked.
    for (const value of VALUES) {
      const masked = r.events.findIndex((e) => e.kind === 'mask' && e.text === value);
      const shown = r.events.findIndex((e) => e.kind !== 'mask' && e.text.includes(value));
      expect(shown === -1 || shown > masked, value).toBe(true);
    }
    // Asked for: the values as env vars and outputs (masked), still never in the log or summary.
    expect(r.runner.exported.get('APP_PASSWORD')).toBe(APP_PASSWORD);
    expect(r.runner.outputs.get('DB_PASSWORD')).toBe(DB_PASSWORD(1));
    expect(r.runner.outputs.get('GH_TOKEN')).toBe(GH_TOKEN);
    expect(r.runner.outputs.has('vault-token')).toBe(false);
    for (const value of VALUES) expect(r.runner.visible()).not.toContain(value);
  });

  it('export-token sets the token as an output only once everything succeeded', async () => {
    const r = await run({ ...APPROLE, secrets: SECRETS, 'export-token': 'true' });
    expect(r.runner.failures).toEqual([]);
    expect(r.runner.outputs.get('vault-token')).toBe(TOKEN);
    expect(r.runner.outputs.get('vault_token')).toBe(TOKEN);
    const output = r.events.findIndex((e) => e.kind === 'output' && e.text.startsWith('vault-token='));
    const lastRead = r.events.findLastIndex((e) => e.kind === 'debug' && e.text.startsWith('read '));
    expect(output).toBeGreaterThan(lastRead);
  });

  it('a failure mid-fetch fails the step with one line, keeps the token file and the leases issued so far in state, and delivers nothing', async () => {
    let leaseIssued = (): void => {};
    const issued = new Promise<void>((resolve) => (leaseIssued = resolve));
    const r = await run(
      { ...APPROLE, secrets: `${SECRETS}\nsecret/data/missing key | MISSING`, 'export-token': 'true', 'export-env': 'true' },
      {
        vault: {
          ...VAULT,
          dynamic: {
            'database/creds/app': (n) => {
              leaseIssued();
              return { username: DB_USER(n), password: DB_PASSWORD(n) };
            },
          },
          // The missing path answers only once the lease exists: the lease is issued before the failure.
          before: (_method, p) => (p === 'secret/data/missing' ? issued : undefined),
        },
      },
    );
    expect(r.runner.failures).toHaveLength(1);
    expect(r.runner.failures[0]).toContain('secrets line 5');
    expect(r.runner.failures[0]).toContain("nothing at 'secret/data/missing'");
    const ledger = r.ledger();
    expect(ledger.leases).toEqual(['database/creds/app/lease-1']);
    expect(ledger.leaseExpires).toEqual({ 'database/creds/app/lease-1': iso(T0 + 600_000) });
    expect(await fs.readFile(ledger.tokenFile ?? '', 'utf8')).toBe(TOKEN);
    // Nothing delivered, exported or summarised as delivered: not even the token asked for as an output.
    expect(ledger.files).toEqual([]);
    expect(await fs.readdir(ledger.secretsDir ?? '')).toEqual([]);
    expect(r.runner.outputs.size).toBe(0);
    expect(r.runner.exported.size).toBe(0);
    expect(r.runner.summaries.join('\n')).not.toContain('delivered');
    for (const value of VALUES) expect(r.runner.visible()).not.toContain(value);
  });

  it('a cancelled job lets the requests in flight answer, records their leases, fails naming them, and delivers nothing', async () => {
    const handlers: Array<(signal: string) => void> = [];
    let unsubscribed = 0;
    const closedAt: number[] = [];
    const vault: FakeVaultOptions = {
      kv: KV,
      dynamic: {
        'database/creds/app': (n) => ({ username: DB_USER(n), password: DB_PASSWORD(n) }),
        'database/creds/other': (n) => ({ password: DB_PASSWORD(n) }),
      },
      before: async (_method, p) => {
        if (p !== 'database/creds/other') return;
        // The runner cancels while this read is in flight; it answers within the grace period.
        for (const handler of handlers) handler('SIGINT');
        closedAt.push(r0.closed);
        await nextTurn();
      },
    };
    const r0 = fakeVault(vault);
    const r = await run(
      { ...APPROLE, secrets: `${SECRETS}\ndatabase/creds/other password | OTHER` },
      {
        vault,
        deps: {
          loadVaultClient: async () => r0.factory,
          onCancel: (handler) => {
            handlers.push(handler);
            return () => void unsubscribed++;
          },
        },
      },
    );
    expect(r0.cancelled).toEqual(['SIGINT']);
    // The first signal does not cut the requests in flight: nothing was closed then.
    expect(closedAt).toEqual([0]);
    expect(unsubscribed).toBe(1);
    expect(r.runner.failures).toEqual([
      'the job was cancelled (SIGINT) while talking to Vault; 2 lease(s) issued so far are recorded for post to revoke',
    ]);
    const ledger = r.ledger();
    expect([...ledger.leases].sort()).toEqual([...r0.leases].sort());
    expect(ledger.leases).toHaveLength(2);
    expect(ledger.tokenFile).toBeDefined();
    expect(ledger.files).toEqual([]);
    expect(r.runner.outputs.size).toBe(0);
    expect(r.runner.exported.size).toBe(0);
  });

  it('a second signal closes the client at once', async () => {
    const handlers: Array<(signal: string) => void> = [];
    const closed: number[] = [];
    const vault = fakeVault({
      ...VAULT,
      before: (_method, p) => {
        if (p !== 'database/creds/app') return;
        for (const handler of handlers) handler('SIGINT');
        closed.push(vault.closed);
        for (const handler of handlers) handler('SIGTERM');
        closed.push(vault.closed);
      },
    });
    const r = await run(
      { ...APPROLE, secrets: SECRETS },
      { deps: { loadVaultClient: async () => vault.factory, onCancel: (handler) => (handlers.push(handler), () => {}) } },
    );
    expect(vault.cancelled).toEqual(['SIGINT']);
    expect(closed).toEqual([0, 1]);
    expect(r.runner.failures[0]).toContain('the job was cancelled (SIGINT)');
  });

  it("the sweep of an earlier job's expired root runs alongside and ends before the step: its token revoked, the root removed", async () => {
    const shm = await tempDir('/dev/shm', 'ps-unit-shm-');
    const stale = await createPrivateDir({}, undefined, shm, { expires: iso(T0 - 1000), vault: { url: APPROLE.url } });
    await fs.writeFile(path.join(stale.root, 'vault-token'), 'hvs.token-of-an-earlier-job-0123');
    // The revocation answers only once the job's own work is done: the step still waits for it.
    let workDone = (): void => {};
    const summaryWritten = new Promise<void>((resolve) => (workDone = resolve));
    const r = await run(
      { ...APPROLE, secrets: SECRETS },
      {
        shm,
        onSummary: () => workDone(),
        vault: { ...VAULT, before: (_m, p) => (p === 'auth/token/revoke-self' ? summaryWritten : undefined) },
      },
    );
    expect(r.runner.failures).toEqual([]);
    expect(r.vault.revoked).toEqual(['hvs.token-of-an-earlier-job-0123']);
    await expect(fs.lstat(stale.root)).rejects.toThrow(/ENOENT/);
    expect(r.runner.infos.join('\n')).toContain(
      'removed 1 expired private director(ies) left by earlier jobs whose post did not run (1 Vault token(s) revoked)',
    );
    // This run's own root is not an earlier job's.
    await expect(fs.lstat(r.ledger().root ?? '')).resolves.toBeDefined();
  });

  it('a batch token is recorded as such, with its end; the summary says it cannot be revoked', async () => {
    const r = await run(
      { ...APPROLE, secrets: SECRETS },
      { vault: { ...VAULT, token: 'hvb.batch-token-0123456789', tokenType: 'batch', tokenTtl: 900 } },
    );
    expect(r.runner.failures).toEqual([]);
    const ledger = r.ledger();
    expect(ledger.tokenBatch).toBe(true);
    expect(ledger.tokenExpires).toBe(iso(T0 + 900_000));
    const summary = r.runner.summaries.join('\n');
    expect(summary).toContain(`batch token: it cannot be revoked and expires by its TTL at ${iso(T0 + 900_000)}`);
    expect(summary).not.toContain('revoke the Vault token');
  });

  it('renew: the agent gets the leases as obtained at (fake) now, and its pid goes to state', async () => {
    const agents: AgentConfig[] = [];
    const r = await run(
      { ...APPROLE, secrets: SECRETS, renew: 'true' },
      { deps: { launchAgent: async (config) => (agents.push(config), 4242) } },
    );
    expect(r.runner.failures).toEqual([]);
    expect(r.ledger().agentPid).toBe(4242);
    expect(agents).toHaveLength(1);
    const lease = agents[0]?.sources.find((s) => s.lease !== undefined)?.lease;
    expect(lease).toEqual({ id: 'database/creds/app/lease-1', duration: 600, renewable: true, obtainedAt: T0, expiresAt: T0 + 600_000 });
    expect(r.runner.infos.join('\n')).toContain('Renewal agent started (pid 4242)');
  });
});

describe('runMain without Vault', () => {
  it('never loads the Vault client, and sweeps an expired root of an earlier job before the step ends', async () => {
    const shm = await tempDir('/dev/shm', 'ps-unit-shm-');
    const stale = await createPrivateDir({}, undefined, shm, { expires: iso(T0 - 1000) });
    const r = await run(
      { 'env-secrets': 'GH_TOKEN' },
      {
        shm,
        env: { GH_TOKEN },
        deps: {
          loadVaultClient: async () => {
            throw new Error('the Vault client is not for runs without Vault');
          },
        },
      },
    );
    expect(r.runner.failures).toEqual([]);
    await expect(fs.lstat(stale.root)).rejects.toThrow(/ENOENT/);
    expect(r.runner.infos.join('\n')).toContain(`removed 1 expired private director(ies) left by earlier jobs`);
    expect(await fs.readFile(path.join(r.ledger().secretsDir ?? '', 'GH_TOKEN'), 'utf8')).toBe(GH_TOKEN);
    expect(r.runner.visible()).not.toContain(GH_TOKEN);
  });

  it('a bad input fails with one line before anything is created or swept', async () => {
    const shm = await tempDir('/dev/shm', 'ps-unit-shm-');
    const stale = await createPrivateDir({}, undefined, shm, { expires: iso(T0 - 1000) });
    const r = await run({ 'env-secrets': 'GH_TOKEN', 'export-env': 'yes' }, { shm, env: { GH_TOKEN } });
    expect(r.runner.failures).toEqual(["input 'export-env': 'yes' is not a boolean; use true or false"]);
    expect(r.runner.state.size).toBe(0);
    expect((await fs.readdir(shm)).sort()).toEqual([path.basename(stale.root)]);
  });

  it('docker login: the password goes on stdin only, into a per-job DOCKER_CONFIG recorded in state before the attempt', async () => {
    const password = 'registry-password-9hG3kLq2';
    const r = await run({ registry: 'ghcr.io', 'registry-username': 'octo', 'registry-password': password });
    expect(r.runner.failures).toEqual([]);
    const ledger = r.ledger();
    const config = path.join(ledger.root ?? '', 'docker');
    expect(ledger.dockerConfig).toBe(config);
    expect(ledger.registries).toEqual(['ghcr.io']);
    expect(r.docker).toHaveLength(1);
    expect(r.docker[0]?.args).toEqual(['login', '--username=octo', '--password-stdin', '--', 'ghcr.io']);
    expect(r.docker[0]?.options?.input).toBe(password);
    expect(r.docker[0]?.options?.env).toEqual({ DOCKER_CONFIG: config });
    expect(r.runner.exported.get('DOCKER_CONFIG')).toBe(config);
    expect(r.runner.outputs.get('docker-config')).toBe(config);
    // The input password and the base64 the CLI stores are masked before the login runs.
    expect(r.runner.masked).toContain(password);
    expect(r.runner.masked).toContain(Buffer.from(`octo:${password}`).toString('base64'));
    expect(r.runner.visible()).not.toContain(password);
  });

  it('a failed docker login fails the step scrubbed; the registry stays in state for post, and nothing is handed over', async () => {
    const password = 'registry-password-9hG3kLq2';
    const docker = fakeDocker((input) => ({ exitCode: 1, stdout: '', stderr: `denied for ${input}` }));
    const r = await run(
      { registry: 'ghcr.io', 'registry-username': 'octo', 'registry-password': password, 'env-secrets': 'GH_TOKEN' },
      { docker, env: { GH_TOKEN } },
    );
    expect(r.runner.failures).toEqual([
      "docker login to registry 'ghcr.io' as 'octo' (password from input 'registry-password') failed: denied for ***",
    ]);
    expect(r.ledger().registries).toEqual(['ghcr.io']);
    expect(r.runner.outputs.has('secrets-dir')).toBe(false);
    expect(r.runner.exported.has('PIPELINE_SECRETS_DIR')).toBe(false);
    expect(r.runner.visible()).not.toContain(password);
  });

  it('a build secret naming no secret of the step fails before any file is written', async () => {
    const r = await run({ 'env-secrets': 'GH_TOKEN', 'build-secrets': 'npm=NPM_TOKEN' }, { env: { GH_TOKEN } });
    expect(r.runner.failures).toEqual(["input 'build-secrets': line 1: no secret named 'NPM_TOKEN' in this step (secrets: GH_TOKEN)"]);
    expect(r.ledger().files).toEqual([]);
    expect(await fs.readdir(r.ledger().secretsDir ?? '')).toEqual([]);
  });

  it('build secrets name the delivered files as outputs', async () => {
    const r = await run({ 'env-secrets': 'GH_TOKEN', 'build-secrets': 'gh=GH_TOKEN' }, { env: { GH_TOKEN } });
    const file = path.join(r.ledger().secretsDir ?? '', 'GH_TOKEN');
    expect(r.runner.outputs.get('build-secret-files')).toBe(`gh=${file}`);
    expect(r.runner.outputs.get('build-secret-args')).toBe(`--secret id=gh,src=${file}`);
    expect(r.runner.outputs.has('build-secret-envs')).toBe(false);
  });
});
