// runScan through the recording fake runner, a fake `docker` exec and a fake `docker save` (no
// docker): findings, the verdict and its booleans, the one-line failure of each mistake (with the
// SARIF still written), and no value anywhere a reader could see it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Exec, ExecResult } from '../../../src/core/exec.ts';
import { runScan } from '../../../src/leak-scan/run.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';
import { tempDir } from '../../support/temp.ts';

const VALUE = 'Sup3r-s3cret-value-for-the-scan';
const ENV_VALUE = 'npm_0123456789abcdefghij';

interface Setup {
  /** Files of the workspace, by relative path. */
  readonly workspace?: Record<string, string>;
  /** The secrets directory's files; null: no directory at all. */
  readonly secrets?: Record<string, string> | null;
  readonly env?: Record<string, string>;
  /** `docker history` / `docker image inspect` answers, by the command's first word. */
  readonly docker?: Record<string, ExecResult>;
  /** What `docker save` streams, by image. */
  readonly saved?: Record<string, Buffer>;
}

interface SarifRun {
  readonly invocations: unknown[];
  readonly results: Array<{
    readonly locations: Array<{ readonly physicalLocation: { readonly artifactLocation: { readonly uri: string } } }>;
  }>;
}

interface Scanned {
  readonly runner: FakeRunner;
  readonly workspace: string;
  readonly dockerCalls: string[][];
  readonly saves: string[];
  /** The SARIF file's run (output `sarif-file`), parsed. */
  readonly sarif: () => SarifRun;
  /** The JSON report (output `report`), as text. */
  readonly report: () => string;
}

async function scanWith(inputs: Record<string, string>, setup: Setup = {}): Promise<Scanned> {
  const root = tempDir('ps-scan-run-');
  const workspace = path.join(root, 'ws');
  const temp = path.join(root, 'temp');
  const secrets = path.join(root, 'secrets');
  mkdirSync(workspace);
  mkdirSync(temp);
  for (const [file, text] of Object.entries(setup.workspace ?? {})) {
    mkdirSync(path.dirname(path.join(workspace, file)), { recursive: true });
    writeFileSync(path.join(workspace, file), text);
  }
  if (setup.secrets !== null) {
    mkdirSync(secrets);
    for (const [name, value] of Object.entries(setup.secrets ?? { DB_PASSWORD: VALUE })) writeFileSync(path.join(secrets, name), value);
  }
  const dockerCalls: string[][] = [];
  const saves: string[] = [];
  const exec: Exec = async (_file, args) => {
    dockerCalls.push([...args]);
    return setup.docker?.[args[0] ?? ''] ?? { exitCode: 0, stdout: '', stderr: '' };
  };
  const runner = fakeRunner();
  const withs = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]));
  const env = {
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: temp,
    ...(setup.secrets !== null ? { PIPELINE_SECRETS_DIR: secrets } : {}),
    ...setup.env,
    ...withs,
  };
  await runScan({
    env,
    runner,
    exec,
    dockerSave: async function* (image) {
      saves.push(image);
      yield setup.saved?.[image] ?? Buffer.from('empty image');
    },
  });
  const scanned: Scanned = {
    runner,
    workspace,
    dockerCalls,
    saves,
    sarif: () => (JSON.parse(readFileSync(runner.outputs.get('sarif-file') ?? '', 'utf8')) as { runs: SarifRun[] }).runs[0] as SarifRun,
    report: () => readFileSync(runner.outputs.get('report') ?? '', 'utf8'),
  };
  // Names, encodings and places only: no value in the log, annotations, summary, failure or outputs.
  for (const value of [VALUE, ENV_VALUE]) {
    expect(runner.visible()).not.toContain(value);
    expect([...runner.outputs.values()].join('\n')).not.toContain(value);
    if (runner.outputs.has('sarif-file')) expect(JSON.stringify(scanned.sarif())).not.toContain(value);
    if (runner.outputs.has('report')) expect(scanned.report()).not.toContain(value);
  }
  return scanned;
}

const errors = (r: FakeRunner): string[] => r.annotations.filter((a) => a.level === 'error').map((a) => a.message);
const base64 = (text: string): string => Buffer.from(text).toString('base64');

describe('runScan', () => {
  it('a value in a workspace file, as written and in base64: annotated where it is, the step fails naming the secret', async () => {
    const { runner, sarif, report } = await scanWith(
      { paths: 'dist' },
      { workspace: { 'dist/app.js': `const a = "${VALUE}";\n`, 'dist/env.txt': `X=${base64(VALUE)}\n`, 'dist/clean.txt': 'nothing' } },
    );
    expect(runner.masked).toContain(VALUE);
    expect(runner.outputs.get('leaks')).toBe('2');
    expect(runner.annotations.filter((a) => a.level === 'error').map((a) => [a.file, a.line])).toEqual([
      ['dist/app.js', 1],
      ['dist/env.txt', 1],
    ]);
    expect(runner.failures).toHaveLength(1);
    expect(runner.failures[0]).toMatch(/^leak scan: 2 leak\(s\) of DB_PASSWORD \(see the annotations and .*\.json\)$/);
    expect(runner.summaries.join('\n')).toContain('**2 leak(s) found:**');
    expect(sarif().results.map((r) => r.locations[0]?.physicalLocation.artifactLocation.uri)).toEqual(['dist/app.js', 'dist/env.txt']);
    expect(JSON.parse(report()).values).toEqual(['DB_PASSWORD']);
  });

  it('nothing found: no failure, and the summary says so', async () => {
    const { runner, sarif } = await scanWith({ paths: 'dist' }, { workspace: { 'dist/app.js': 'clean' } });
    expect(runner.failures).toEqual([]);
    expect(runner.outputs.get('leaks')).toBe('0');
    expect(runner.summaries.join('\n')).toContain('**No leak found.**');
    expect(sarif().invocations).toEqual([{ executionSuccessful: true }]);
  });

  it('fail-on-leak: FALSE reports a leak without failing the step', async () => {
    const { runner } = await scanWith({ paths: '.', 'fail-on-leak': 'FALSE' }, { workspace: { 'a.txt': VALUE } });
    expect(errors(runner)).toEqual([expect.stringMatching(/^secret 'DB_PASSWORD' found as raw in .*a\.txt line 1 at byte 0$/)]);
    expect(runner.failures).toEqual([]);
  });

  it('a Dockerfile warning fails the step with fail-on-lint: TRUE, and only warns by default', async () => {
    const workspace = { Dockerfile: 'FROM busybox\nARG NPM_TOKEN\nRUN make\n' };
    const strict = await scanWith({ 'fail-on-lint': 'TRUE' }, { workspace });
    expect(strict.runner.failures).toEqual([expect.stringMatching(/^leak scan: 1 Dockerfile warning\(s\) \(see the annotations/)]);
    const lenient = await scanWith({}, { workspace });
    expect(lenient.runner.failures).toEqual([]);
    expect(lenient.runner.annotations).toEqual([expect.objectContaining({ level: 'warning', file: 'Dockerfile', line: 2 })]);
    expect(lenient.runner.summaries.join('\n')).toContain('**Not scanned for leaks**');
  });

  it('values from secret-env-names are looked for too', async () => {
    const { runner } = await scanWith(
      { paths: '.', 'secret-env-names': 'NPM_TOKEN' },
      { secrets: null, env: { NPM_TOKEN: ENV_VALUE }, workspace: { '.npmrc': `//registry.npmjs.org/:_authToken=${ENV_VALUE}\n` } },
    );
    expect(runner.masked).toContain(ENV_VALUE);
    expect(runner.failures).toEqual([expect.stringMatching(/^leak scan: 1 leak\(s\) of NPM_TOKEN /)]);
  });

  it('images: docker save streamed, the history and the config read; one that cannot be read is not passed as clean', async () => {
    const { runner, dockerCalls, saves } = await scanWith(
      { images: 'app:1.0' },
      {
        saved: { 'app:1.0': Buffer.from(`layer bytes ${VALUE} more`) },
        docker: {
          history: { exitCode: 0, stdout: `/bin/sh -c echo ${base64(VALUE)}\n`, stderr: '' },
          image: { exitCode: 1, stdout: '', stderr: 'Error: No such image: app:1.0\n' },
        },
      },
    );
    expect(saves).toEqual(['app:1.0']);
    expect(dockerCalls).toEqual([
      ['history', '--no-trunc', '--format', '{{.CreatedBy}}', '--', 'app:1.0'],
      ['image', 'inspect', '--format', '{{json .Config}}', '--', 'app:1.0'],
    ]);
    expect(errors(runner)).toEqual([
      expect.stringMatching(/^secret 'DB_PASSWORD' found as raw in image:app:1\.0 line 1 at byte 12$/),
      expect.stringMatching(/^secret 'DB_PASSWORD' found as base64 in image:app:1\.0!history/),
      expect.stringMatching(/^image:app:1\.0!config: read failed \(docker image app:1\.0 failed: Error: No such image: app:1\.0\)$/),
    ]);
    expect(runner.failures).toEqual([
      expect.stringMatching(/^leak scan: 2 leak\(s\) of DB_PASSWORD; 1 input\(s\) not scanned or not completely \(image:app:1\.0!config: /),
    ]);
  });

  it('a glob that matches nothing is not passed as clean', async () => {
    const { runner } = await scanWith({ paths: 'dist/**/*.zip' }, { workspace: { 'dist/a.txt': 'x' } });
    expect(runner.failures).toEqual([expect.stringMatching(/^leak scan: nothing was scanned \(dist\/\*\*\/\*\.zip: matched no file/)]);
    expect(runner.summaries.join('\n')).toContain('**Nothing was scanned**');
  });

  describe('each mistake: one line naming the input, no stack, nothing scanned, the SARIF says why', () => {
    it.each<[string, Record<string, string>, Setup, string | RegExp]>([
      ['fail-on-lint: yes', { paths: '.', 'fail-on-lint': 'yes' }, {}, "input 'fail-on-lint': 'yes' is not a boolean; use true or false"],
      [
        'fail-on-leak: flase',
        { paths: '.', 'fail-on-leak': 'flase' },
        {},
        "input 'fail-on-leak': 'flase' is not a boolean; use true or false",
      ],
      [
        'an image reference that reads as an option',
        { images: '--output=/tmp/x' },
        {},
        "input 'images': '--output=/tmp/x' is not a local docker image reference like app:1.0 or ghcr.io/org/app@sha256:...",
      ],
      [
        'no earlier Pipeline Secrets step and no env var names',
        { paths: '.' },
        { secrets: null },
        "input 'secrets-dir': not given and PIPELINE_SECRETS_DIR is not set, so there are no values to look for: run Pipeline Secrets in an earlier step, give Vault 'secrets' (and 'url', 'method'...) for this step to fetch, or name env vars in 'secret-env-names'",
      ],
      [
        'a secrets directory with no secret in it',
        { paths: '.' },
        { secrets: { '.hidden': 'x' } },
        /^input 'secrets-dir': \S+ \(from PIPELINE_SECRETS_DIR\) holds no secret file, so there are no values to look for: /,
      ],
      [
        'a secrets-dir that is not there',
        { paths: '.', 'secrets-dir': '/nonexistent/ps' },
        {},
        "input 'secrets-dir': cannot read /nonexistent/ps (ENOENT)",
      ],
      [
        'an env var named but not passed',
        { paths: '.', 'secret-env-names': 'NPM_TOKEN' },
        { secrets: null },
        "input 'secret-env-names': environment variable 'NPM_TOKEN' is not set or empty (pass it with env:)",
      ],
      [
        'a value pasted in place of an env var name',
        { paths: '.', 'secret-env-names': `${ENV_VALUE}!` },
        {},
        /^input 'secret-env-names': entry 1 is not an environment variable name/,
      ],
      [
        'nothing to scan',
        {},
        {},
        "input 'paths': nothing to scan (no 'paths', no 'images', no Dockerfile in the workspace): give 'paths' (files, directories or globs, relative to GITHUB_WORKSPACE) or 'images' (local docker image references)",
      ],
    ])('%s', async (_, inputs, setup, message) => {
      const { runner, saves, dockerCalls, sarif } = await scanWith(inputs, { workspace: { 'a.txt': VALUE }, ...setup });
      expect(runner.failures).toHaveLength(1);
      const failure = runner.failures[0] ?? '';
      if (typeof message === 'string') expect(failure).toBe(message);
      else expect(failure).toMatch(message);
      expect(runner.debugs).toEqual([]);
      expect(runner.visible()).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
      expect(runner.summaries.join('\n')).toContain('### Pipeline Secrets leak scan: failed');
      expect([saves, dockerCalls, runner.annotations]).toEqual([[], [], []]);
      expect(runner.outputs.has('leaks')).toBe(false);
      const invocation = sarif().invocations[0];
      expect(invocation).toEqual({
        executionSuccessful: false,
        toolExecutionNotifications: [{ level: 'error', message: { text: failure } }],
      });
    });
  });

  it('a failure is scrubbed of the values this step masked', async () => {
    // A value that is also the name of an env var named in secret-env-names (and not set).
    const value = 'DEPLOY_KEY_7f3a9c2e';
    const { runner } = await scanWith({ paths: '.', 'secret-env-names': value }, { secrets: { DEPLOY_KEY: value } });
    expect(runner.failures).toEqual(["input 'secret-env-names': environment variable '***' is not set or empty (pass it with env:)"]);
    expect(runner.visible()).not.toContain(value);
  });
});
