// Main's compose override (src/main/compose.ts): `compose-services` checked against the step's
// secrets before anything is written, the override's YAML parsed back (with the `yaml` package) to
// exactly the services and file secrets asked for, every string quoted so compose reads it back as
// written, and the file 0600 in the private root, in the ledger before it exists; through runMain,
// the output, the summary line, and nothing written when a name is unknown.
import { promises as fs, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { InputError } from '../../../src/core/errors.ts';
import { LedgerWriter, type Ledger } from '../../../src/core/ledger.ts';
import { createPrivateDir, writeSecretFiles } from '../../../src/core/private-dir.ts';
import type { ComposeService } from '../../../src/inputs/main.ts';
import { COMPOSE_FILE, composeString, composeYaml, resolveCompose, writeComposeFile } from '../../../src/main/compose.ts';
import { runMain } from '../../../src/main/pipeline.ts';
import type { Secret } from '../../../src/vault/fetch.ts';
import { thrown } from '../../support/errors.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';

const DB_PASSWORD = 'db-password-Zr4tY8wQ-value';
const API_KEY = 'api-key-3f9c2e7a1b5d-value';

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function tempDir(base: string, prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(base, prefix));
  made.push(dir);
  return dir;
}

const secret = (name: string, value: string): Secret => ({ name, envName: name, value, source: { kind: 'env', line: 1, envVar: name } });
const SECRETS = [secret('DB_PASSWORD', DB_PASSWORD), secret('api.key', API_KEY), secret('pässwort', 'umlaut-value-1234')];
const service = (name: string, names: string[], line = 1): ComposeService => ({ service: name, names, line });

describe('resolveCompose', () => {
  it('is undefined without compose-services: no override is written', () => {
    expect(resolveCompose([], SECRETS)).toBeUndefined();
  });

  it('declares every delivered secret compose can name, leaves the others out', () => {
    const services = [service('app', ['DB_PASSWORD'])];
    expect(resolveCompose(services, SECRETS)).toEqual({ services, declared: ['DB_PASSWORD', 'api.key'], leftOut: ['pässwort'] });
  });

  it('a name that is no secret of this step is one line naming the input, the line, the service and the secrets', () => {
    const error = thrown(() => resolveCompose([service('app', ['DB_PASSWORD']), service('web', ['API_KEY'], 3)], SECRETS), InputError);
    expect(error.input).toBe('compose-services');
    expect(error.message).toBe(
      "input 'compose-services': line 3: service 'web' gets 'API_KEY', which is no secret of this step (secrets: DB_PASSWORD, api.key, pässwort); name a secret from `secrets` or `env-secrets`",
    );
    for (const value of [DB_PASSWORD, API_KEY]) expect(error.message).not.toContain(value);
  });
});

describe('composeString', () => {
  it.each([
    'plain/path',
    'with "quotes" and \\backslashes\\',
    'a: colon, # hash, [brackets] {braces} & *star !bang %pct @at `tick',
    'line\nbreak\ttab\r',
    'line\u2028separator\u0085next',
    'ümlaut and 😀 emoji',
    '',
  ])('%j reads back as written', (text) => {
    expect(parse(composeString(text))).toBe(text);
    expect(composeString(text)).toMatch(/^"[\x20-\x7e]*"$/);
  });

  it('doubles $ (compose interpolates $VAR in every value, and reads $$ as $)', () => {
    expect(composeString('/runner/$HOME/${X}')).toBe('"/runner/$$HOME/$${X}"');
  });

  it('quotes what YAML would otherwise read as a boolean, null or number', () => {
    for (const name of ['on', 'yes', 'null', '1.0', '0x1f', '~']) expect(parse(`${composeString(name)}: 1`)).toEqual({ [name]: 1 });
  });
});

describe('composeYaml', () => {
  it('parses to exactly the services with their names and a file secret per declared name', () => {
    const plan = {
      services: [service('app', ['DB_PASSWORD', 'api.key']), service('on', ['api.key'], 2)],
      declared: ['DB_PASSWORD', 'api.key'],
      leftOut: [],
    };
    expect(parse(composeYaml(plan, '/dev/shm/pipeline-secrets-Ab$1/secrets'))).toEqual({
      services: { app: { secrets: ['DB_PASSWORD', 'api.key'] }, on: { secrets: ['api.key'] } },
      secrets: {
        DB_PASSWORD: { file: '/dev/shm/pipeline-secrets-Ab$$1/secrets/DB_PASSWORD' },
        'api.key': { file: '/dev/shm/pipeline-secrets-Ab$$1/secrets/api.key' },
      },
    });
  });
});

describe('writeComposeFile', () => {
  async function setUp(): Promise<{ runner: FakeRunner; ledger: LedgerWriter; dir: Awaited<ReturnType<typeof createPrivateDir>> }> {
    const runner = fakeRunner();
    const ledger = new LedgerWriter(runner);
    const dir = await createPrivateDir({ RUNNER_TEMP: await tempDir(os.tmpdir(), 'ps-unit-compose-') }, undefined, '/nonexistent');
    await writeSecretFiles(dir, SECRETS, () => {}, undefined);
    return { runner, ledger, dir };
  }
  const saved = (runner: FakeRunner): Ledger => JSON.parse(runner.state.get('ledger') ?? '{}') as Ledger;

  it('writes the override 0600 in the private root, not the secrets directory, recorded in the ledger; no value in it', async () => {
    const { runner, ledger, dir } = await setUp();
    const plan = resolveCompose([service('app', ['DB_PASSWORD'])], SECRETS);
    const file = await writeComposeFile(runner, ledger, dir, plan!);
    expect(file).toBe(path.join(dir.root, COMPOSE_FILE));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(saved(runner).files).toEqual([file]);
    const text = await fs.readFile(file, 'utf8');
    expect(parse(text)).toEqual({
      services: { app: { secrets: ['DB_PASSWORD'] } },
      secrets: {
        DB_PASSWORD: { file: path.join(dir.secretsDir, 'DB_PASSWORD') },
        'api.key': { file: path.join(dir.secretsDir, 'api.key') },
      },
    });
    for (const s of SECRETS) expect(text).not.toContain(s.value);
    expect(runner.warnings).toEqual([
      "secret 'pässwort' is left out of the compose-file: compose takes secret names of ASCII letters, digits, '_', '-' and '.' only; mount its file yourself",
    ]);
  });

  it('records the path before writing: a file already there is refused, and post still knows the path', async () => {
    const { runner, ledger, dir } = await setUp();
    await fs.writeFile(path.join(dir.root, COMPOSE_FILE), 'planted');
    await expect(writeComposeFile(runner, ledger, dir, resolveCompose([service('app', ['api.key'])], SECRETS)!)).rejects.toThrow(
      /already exists/,
    );
    expect(saved(runner).files).toEqual([path.join(dir.root, COMPOSE_FILE)]);
  });
});

describe('runMain with compose-services', () => {
  async function run(inputs: Record<string, string>): Promise<{ runner: FakeRunner; ledger: Ledger }> {
    const shm = await tempDir('/dev/shm', 'ps-unit-shm-');
    const env: Record<string, string> = { RUNNER_TEMP: await tempDir(os.tmpdir(), 'ps-unit-temp-'), HOME: shm, DB_PASSWORD, API_KEY };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    const runner = fakeRunner();
    await runMain({
      env,
      runner,
      shm,
      now: () => Date.parse('2030-01-02T03:04:05.000Z'),
      loadVaultClient: async () => Promise.reject(new Error('no Vault in this test')),
      exec: async () => Promise.reject(new Error('no docker in this test')),
    });
    return { runner, ledger: JSON.parse(runner.state.get('ledger') ?? '{}') as Ledger };
  }

  it('gives the compose-file output, names it in the summary, and keeps it in the ledger', async () => {
    const { runner, ledger } = await run({
      'env-secrets': 'DB_PASSWORD\nAPI_KEY',
      'compose-services': 'app: DB_PASSWORD\nworker: API_KEY, DB_PASSWORD',
    });
    expect(runner.failures).toEqual([]);
    const file = runner.outputs.get('compose-file') ?? '';
    expect(file).toBe(path.join(ledger.root ?? '', COMPOSE_FILE));
    expect(ledger.files).toContain(file);
    expect(parse(await fs.readFile(file, 'utf8')).services).toEqual({
      app: { secrets: ['DB_PASSWORD'] },
      worker: { secrets: ['API_KEY', 'DB_PASSWORD'] },
    });
    expect(runner.summaries.join('\n')).toContain(
      `Compose override \`${file}\` (output compose-file): file secrets at /run/secrets/NAME for \`app\`, \`worker\`.`,
    );
    for (const value of [DB_PASSWORD, API_KEY]) expect(runner.visible()).not.toContain(value);
  });

  it('an unknown name fails before any file is written', async () => {
    const { runner, ledger } = await run({ 'env-secrets': 'DB_PASSWORD', 'compose-services': 'app: DB_PASSWORD, API_KEY' });
    expect(runner.failures).toEqual([
      expect.stringMatching(/^input 'compose-services': line 1: service 'app' gets 'API_KEY', which is no secret/),
    ]);
    expect(ledger.files).toEqual([]);
    expect(await fs.readdir(ledger.secretsDir ?? '')).toEqual([]);
    expect(runner.outputs.has('compose-file')).toBe(false);
  });

  it('without compose-services: no override, no output', async () => {
    const { runner, ledger } = await run({ 'env-secrets': 'DB_PASSWORD' });
    expect(runner.failures).toEqual([]);
    expect(runner.outputs.has('compose-file')).toBe(false);
    expect(await fs.readdir(ledger.root ?? '')).not.toContain(COMPOSE_FILE);
  });
});
