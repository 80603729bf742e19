// Main's rendered config files: template files read only from inside the repository, names checked
// before anything is written, filter outputs masked before a file exists, each path in the ledger
// before its file, 0600 files in a 0700 rendered/ (or the workspace file path= names, never one
// already there or reached through a symlink out), and paths handed over only at the end. The last
// tests drive runMain with workflow secrets: what a job sees, and nothing exported on a failure.
import { promises as fs, statSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError, InputError } from '../../../src/core/errors.ts';
import { LedgerWriter, type Ledger } from '../../../src/core/ledger.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { createPrivateDir, fileId, type PrivateDir } from '../../../src/core/private-dir.ts';
import type { TemplateEntry } from '../../../src/inputs/main.ts';
import { runMain } from '../../../src/main/pipeline.ts';
import { checkTemplates, handOverRendered, loadTemplates, TEMPLATE_MAX_BYTES, writeRendered } from '../../../src/main/render.ts';
import type { Secret } from '../../../src/vault/fetch.ts';
import { rejected, thrown } from '../../support/errors.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});
async function temp(prefix = 'ps-unit-render-'): Promise<string> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
  made.push(dir);
  return dir;
}
const mode = (file: string): number => statSync(file).mode & 0o777;

const TOKEN = 'npm-token-Value-7c1e9a';
const USER = 'ci-deploy-user';
const PASS = 'p@ss:Word-3f8a21';
const secret = (name: string, value: string, envName = name): Secret => ({
  name,
  envName,
  value,
  source: { kind: 'env', line: 1, envVar: name },
});
const SECRETS = [secret('NPM_TOKEN', TOKEN), secret('USER', USER), secret('PASS', PASS)];

function entry(name: string, text: string, extra: Partial<TemplateEntry> = {}): TemplateEntry {
  return {
    name,
    line: 1,
    source: { kind: 'inline', text, firstLine: 2 },
    destination: undefined,
    envVar: undefined,
    mode: 0o600,
    ...extra,
  };
}

describe('loadTemplates', () => {
  const file = (name: string, file: string): TemplateEntry => entry(name, '', { source: { kind: 'file', file }, line: 4 });

  it('reads a file template from the repository and parses it; an inline one is parsed as given', async () => {
    const ws = await temp();
    await fs.mkdir(path.join(ws, '.github'));
    await fs.writeFile(path.join(ws, '.github/netrc.tmpl'), 'machine h login {{USER}} password {{PASS}}\n');
    const loaded = await loadTemplates([file('netrc', '.github/netrc.tmpl'), entry('npmrc', 'x={{NPM_TOKEN}}\n')], ws);
    expect(loaded.map((l) => [l.entry.name, l.text, l.template.secrets])).toEqual([
      ['netrc', 'machine h login {{USER}} password {{PASS}}\n', ['USER', 'PASS']],
      ['npmrc', 'x={{NPM_TOKEN}}\n', ['NPM_TOKEN']],
    ]);
  });

  it('follows a symlink that stays inside the repository', async () => {
    const ws = await temp();
    await fs.writeFile(path.join(ws, 'real.tmpl'), '{{USER}}');
    symlinkSync('real.tmpl', path.join(ws, 'link.tmpl'));
    expect((await loadTemplates([file('a', 'link.tmpl')], ws))[0]?.text).toBe('{{USER}}');
  });

  it.each([
    [
      'a missing file',
      async () => {},
      'missing.tmpl',
      "line 4: template 'a': missing.tmpl does not exist in the repository (check the path, and that the repository is checked out)",
    ],
    [
      'a symlink out of the repository',
      async (ws: string) => {
        const outside = await temp();
        await fs.writeFile(path.join(outside, 'x'), 'outside');
        symlinkSync(path.join(outside, 'x'), path.join(ws, 'out.tmpl'));
      },
      'out.tmpl',
      "line 4: template 'a': out.tmpl resolves outside the repository (a symlink out of it): not read",
    ],
    ['a directory', async (ws: string) => fs.mkdir(path.join(ws, 'dir')), 'dir', "line 4: template 'a': dir is not a regular file"],
    [
      'a file over 1 MiB',
      async (ws: string) => fs.writeFile(path.join(ws, 'big.tmpl'), Buffer.alloc(TEMPLATE_MAX_BYTES + 1, 0x61)),
      'big.tmpl',
      `line 4: template 'a': big.tmpl is ${TEMPLATE_MAX_BYTES + 1} bytes; a template may have at most ${TEMPLATE_MAX_BYTES}`,
    ],
  ])('refuses %s, naming the path', async (_what, plant, name, message) => {
    const ws = await temp();
    await plant(ws);
    const e = await rejected(loadTemplates([file('a', name)], ws), InputError);
    expect(e.message).toBe(`input 'templates': ${message}`);
  });

  it('needs GITHUB_WORKSPACE for a file template, not for an inline one', async () => {
    expect((await rejected(loadTemplates([file('a', 'x.tmpl')], undefined), InputError)).message).toContain('GITHUB_WORKSPACE is not set');
    expect(await loadTemplates([entry('b', 'x')], undefined)).toHaveLength(1);
  });

  it('a syntax error in any template fails here, before anything is fetched', async () => {
    const e = await rejected(loadTemplates([entry('npmrc', 'ok\n{{#upper}}{{/upper}}')], undefined), InputError);
    expect(e.message).toContain("template 'npmrc' line 2 (input line 3): {{#upper}} is not a filter");
  });
});

describe('checkTemplates', () => {
  it('passes placeholders that name secrets of the step', async () => {
    const loaded = await loadTemplates([entry('npmrc', '{{NPM_TOKEN}}')], undefined);
    expect(() => checkTemplates(loaded, SECRETS, { exportEnv: false })).not.toThrow();
  });

  it('refuses a placeholder naming no secret, naming the template, the line and the placeholder', async () => {
    const loaded = await loadTemplates([entry('npmrc', 'a\n{{NPM_TOKN}}')], undefined);
    expect(thrown(() => checkTemplates(loaded, SECRETS, { exportEnv: false }), InputError).message).toBe(
      "input 'templates': template 'npmrc' line 2 (input line 3): {{NPM_TOKN}} names no secret of this step (this step's secrets are NPM_TOKEN, USER, PASS)",
    );
  });

  it('refuses an env= that export-env also sets for a secret', async () => {
    const loaded = await loadTemplates([entry('npmrc', 'x', { envVar: 'USER', line: 3 })], undefined);
    expect(() => checkTemplates(loaded, SECRETS, { exportEnv: false })).not.toThrow();
    expect(thrown(() => checkTemplates(loaded, SECRETS, { exportEnv: true }), InputError).message).toBe(
      "input 'templates': line 3: template 'npmrc': env=USER is also the variable export-env sets for secret 'USER'; choose another name",
    );
  });
});

interface Setup {
  readonly runner: FakeRunner;
  readonly ledger: LedgerWriter;
  readonly masks: MaskRegistry;
  readonly dir: PrivateDir;
  readonly ws: string;
  /** What was true of each rendered file when each mask and each state save happened. */
  readonly seen: Array<{ kind: 'mask' | 'state'; text: string; existing: string[] }>;
}

async function setup(watch: readonly string[] = []): Promise<Setup> {
  const inner = fakeRunner();
  const seen: Setup['seen'] = [];
  const existing = (): string[] => watch.filter((f) => statSync(f, { throwIfNoEntry: false }) !== undefined);
  const runner: FakeRunner = {
    ...inner,
    setSecret: (v) => (seen.push({ kind: 'mask', text: v, existing: existing() }), inner.setSecret(v)),
    saveState: (k, v) => (seen.push({ kind: 'state', text: v, existing: existing() }), inner.saveState(k, v)),
  };
  const runnerTemp = await temp();
  const dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, undefined, path.join(runnerTemp, 'no-shm'));
  return { runner, ledger: new LedgerWriter(runner), masks: new MaskRegistry(runner), dir, ws: await temp(), seen };
}

const ledgerOf = (s: Setup): Ledger => JSON.parse(s.runner.state.get('ledger') ?? '{}') as Ledger;

describe('writeRendered', () => {
  it('writes 0600 files in a 0700 rendered/ of the private root, each path in the ledger and each filter output masked before the file exists', async () => {
    const runnerTemp = await temp();
    const dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, undefined, path.join(runnerTemp, 'no-shm'));
    const files = [path.join(dir.root, 'rendered/npmrc'), path.join(dir.root, 'rendered/netrc')];
    const s = { ...(await setup(files)), dir };
    const loaded = await loadTemplates(
      [
        entry('npmrc', '_auth={{#base64}}{{USER}}:{{PASS}}{{/base64}}\n//r/:_authToken={{NPM_TOKEN}}\n'),
        entry('netrc', 'password {{PASS}}\n', { mode: 0o400 }),
      ],
      undefined,
    );
    const out = await writeRendered({ ledger: s.ledger, masks: s.masks, workspace: s.ws }, dir, loaded, SECRETS, undefined);
    const auth = Buffer.from(`${USER}:${PASS}`).toString('base64');
    expect(await fs.readFile(files[0] ?? '', 'utf8')).toBe(`_auth=${auth}\n//r/:_authToken=${TOKEN}\n`);
    expect(await fs.readFile(files[1] ?? '', 'utf8')).toBe(`password ${PASS}\n`);
    expect([mode(path.join(dir.root, 'rendered')), mode(files[0] ?? ''), mode(files[1] ?? '')]).toEqual([0o700, 0o600, 0o400]);
    expect(out.map((r) => [r.name, r.path, r.bytes, r.inWorkspace])).toEqual([
      ['npmrc', files[0], Buffer.byteLength(`_auth=${auth}\n//r/:_authToken=${TOKEN}\n`), false],
      ['netrc', files[1], Buffer.byteLength(`password ${PASS}\n`), false],
    ]);
    expect(ledgerOf(s).files).toEqual(files);
    // The base64 of "user:pass" masked before the npmrc existed; each path saved before its file.
    expect(s.seen.find((e) => e.kind === 'mask' && e.text === auth)?.existing).toEqual([]);
    expect(s.seen.find((e) => e.kind === 'state' && e.text.includes('rendered/npmrc'))?.existing).toEqual([]);
    expect(s.seen.find((e) => e.kind === 'state' && e.text.includes('rendered/netrc'))?.existing).toEqual([files[0]]);
    for (const v of [TOKEN, USER, PASS, auth]) expect(s.runner.state.get('ledger')).not.toContain(v);
  });

  it('writes a path= file in the workspace, making its directories, with its device:inode in the ledger', async () => {
    const s = await setup();
    const target = path.join(s.ws, '.kube/config');
    const loaded = await loadTemplates([entry('kubeconfig', 'token: {{NPM_TOKEN}}\n', { destination: '.kube/config' })], undefined);
    const [out] = await writeRendered({ ledger: s.ledger, masks: s.masks, workspace: s.ws }, s.dir, loaded, SECRETS, undefined);
    expect(out).toMatchObject({ name: 'kubeconfig', path: target, inWorkspace: true });
    expect(await fs.readFile(target, 'utf8')).toBe(`token: ${TOKEN}\n`);
    expect(mode(target)).toBe(0o600);
    expect(mode(path.dirname(target))).toBe(0o700);
    expect(ledgerOf(s).workspaceFiles).toEqual([{ path: target, id: fileId(statSync(target, { bigint: true })) }]);
    expect(ledgerOf(s).files).toEqual([]);
    // No template for the private root: no rendered/ made there.
    expect(statSync(path.join(s.dir.root, 'rendered'), { throwIfNoEntry: false })).toBeUndefined();
  });

  it("refuses a path= file that exists (a checked-in .npmrc): never overwritten, never recorded as main's", async () => {
    const s = await setup();
    await fs.writeFile(path.join(s.ws, '.npmrc'), 'registry=https://npm.example/\n');
    const loaded = await loadTemplates([entry('npmrc', '{{NPM_TOKEN}}', { destination: '.npmrc', line: 2 })], undefined);
    const e = await rejected(
      writeRendered({ ledger: s.ledger, masks: s.masks, workspace: s.ws }, s.dir, loaded, SECRETS, undefined),
      DeliveryError,
    );
    expect(e.message).toBe(
      `input 'templates': line 2: template 'npmrc': ${path.join(s.ws, '.npmrc')} already exists; path= must name a file that does not exist yet (it is never overwritten)`,
    );
    expect(await fs.readFile(path.join(s.ws, '.npmrc'), 'utf8')).toBe('registry=https://npm.example/\n');
    // Not recorded: it is not a file main wrote, so post never looks at it.
    expect(ledgerOf(s).workspaceFiles).toBeUndefined();
  });

  it('refuses a dangling symlink at the path= destination, never writing through it', async () => {
    const s = await setup();
    const outside = path.join(await temp(), 'target');
    symlinkSync(outside, path.join(s.ws, '.netrc'));
    const loaded = await loadTemplates([entry('netrc', '{{PASS}}', { destination: '.netrc' })], undefined);
    await rejected(writeRendered({ ledger: s.ledger, masks: s.masks, workspace: s.ws }, s.dir, loaded, SECRETS, undefined), DeliveryError);
    expect(statSync(outside, { throwIfNoEntry: false })).toBeUndefined();
  });

  it('refuses a path= through a symlinked directory out of the workspace', async () => {
    const s = await setup();
    const outside = await temp();
    symlinkSync(outside, path.join(s.ws, '.kube'));
    const loaded = await loadTemplates([entry('kubeconfig', '{{NPM_TOKEN}}', { destination: '.kube/config' })], undefined);
    const e = await rejected(
      writeRendered({ ledger: s.ledger, masks: s.masks, workspace: s.ws }, s.dir, loaded, SECRETS, undefined),
      InputError,
    );
    expect(e.message).toBe(
      "input 'templates': line 1: template 'kubeconfig': path=.kube/config resolves outside the workspace (.kube is a symlink out of it): not written",
    );
    expect(await fs.readdir(outside)).toEqual([]);
  });

  it('refuses a path= below a file', async () => {
    const s = await setup();
    await fs.writeFile(path.join(s.ws, 'file'), '');
    const loaded = await loadTemplates([entry('a', 'x', { destination: 'file/config' })], undefined);
    const e = await rejected(
      writeRendered({ ledger: s.ledger, masks: s.masks, workspace: s.ws }, s.dir, loaded, SECRETS, undefined),
      InputError,
    );
    expect(e.message).toContain('path=file/config cannot be written: file is not a directory');
  });
});

describe('handOverRendered', () => {
  const rendered = [
    { name: 'npmrc', path: '/r/rendered/npmrc', envVar: 'NPM_CONFIG_USERCONFIG' },
    { name: 'kube', path: '/w/.kube/config', envVar: undefined },
  ].map((r) => ({ ...r, bytes: 1, inWorkspace: false, mode: 0o600, text: '', source: {} }));

  it('sets rendered-files to NAME=PATH lines, and each env= only with export-env', () => {
    const runner = fakeRunner();
    handOverRendered(runner, { exportEnv: false }, rendered);
    expect(Object.fromEntries(runner.outputs)).toEqual({ 'rendered-files': 'npmrc=/r/rendered/npmrc\nkube=/w/.kube/config' });
    expect(runner.exported.size).toBe(0);
    const withEnv = fakeRunner();
    handOverRendered(withEnv, { exportEnv: true }, rendered);
    expect(Object.fromEntries(withEnv.exported)).toEqual({ NPM_CONFIG_USERCONFIG: '/r/rendered/npmrc' });
  });

  it('sets nothing without templates', () => {
    const runner = fakeRunner();
    handOverRendered(runner, { exportEnv: true }, []);
    expect(runner.outputs.size + runner.exported.size).toBe(0);
  });
});

describe('runMain with templates', () => {
  async function main(inputs: Record<string, string>, files: Record<string, string> = {}) {
    const shm = await fs.mkdtemp(path.join('/dev/shm', 'ps-unit-render-shm-'));
    made.push(shm);
    const ws = await temp();
    for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(ws, name), text);
    const env: Record<string, string> = { RUNNER_TEMP: await temp(), GITHUB_WORKSPACE: ws, NPM_TOKEN: TOKEN, USER, PASS };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    const runner = fakeRunner();
    await runMain({
      env,
      runner,
      loadVaultClient: async () => Promise.reject(new Error('no Vault in this test')),
      exec: async () => Promise.reject(new Error('no exec in this test')),
      shm,
    });
    return { runner, ws, ledger: JSON.parse(runner.state.get('ledger') ?? '{}') as Ledger };
  }

  it('renders inline and file templates from workflow secrets: outputs, env, summary by name, path and bytes, never content', async () => {
    const { runner, ws, ledger } = await main(
      {
        'env-secrets': 'NPM_TOKEN\nUSER\nPASS',
        'export-env': 'true',
        templates: 'npmrc <<EOF env=NPM_CONFIG_USERCONFIG\n//r/:_authToken={{NPM_TOKEN}}\nEOF\nnetrc < netrc.tmpl path=.netrc',
      },
      { 'netrc.tmpl': 'machine h login {{USER}} password {{#url}}{{PASS}}{{/url}}\n' },
    );
    expect(runner.failures).toEqual([]);
    const npmrc = path.join(ledger.root ?? '', 'rendered/npmrc');
    const netrc = path.join(ws, '.netrc');
    expect(await fs.readFile(npmrc, 'utf8')).toBe(`//r/:_authToken=${TOKEN}\n`);
    expect(await fs.readFile(netrc, 'utf8')).toBe(`machine h login ${USER} password ${encodeURIComponent(PASS)}\n`);
    expect(runner.outputs.get('rendered-files')).toBe(`npmrc=${npmrc}\nnetrc=${netrc}`);
    expect(runner.exported.get('NPM_CONFIG_USERCONFIG')).toBe(npmrc);
    expect(runner.masked).toContain(encodeURIComponent(PASS));
    const summary = runner.summaries.join('\n');
    expect(summary).toContain(`| npmrc | \`${npmrc}\` | ${Buffer.byteLength(`//r/:_authToken=${TOKEN}\n`)} |`);
    expect(summary).toContain(`| netrc | \`${netrc}\` (workspace) |`);
    expect(runner.infos.join('\n')).toContain('2 file(s) rendered from templates');
    for (const v of [TOKEN, PASS, encodeURIComponent(PASS)]) expect(runner.visible()).not.toContain(v);
  });

  it('a placeholder naming no secret fails the step before any file is written or anything exported', async () => {
    const { runner, ledger } = await main({
      'env-secrets': 'NPM_TOKEN',
      'export-env': 'true',
      templates: 'npmrc <<EOF\n{{NPM_TOKN}}\nEOF',
    });
    expect(runner.failures).toEqual([
      "input 'templates': template 'npmrc' line 1 (input line 2): {{NPM_TOKN}} names no secret of this step (this step's secrets are NPM_TOKEN)",
    ]);
    expect(ledger.files).toEqual([]);
    expect([...runner.exported.keys(), ...runner.outputs.keys()]).toEqual([]);
  });

  it('a broken template fails the step before the private directory is made', async () => {
    const { runner } = await main({ 'env-secrets': 'NPM_TOKEN', templates: 'npmrc <<EOF\n{{#base64}}{{NPM_TOKEN}}\nEOF' });
    expect(runner.failures[0]).toContain("template 'npmrc' line 1 (input line 2): {{#base64}} is not closed");
    expect(runner.state.get('ledger')).toBeUndefined();
  });
});
