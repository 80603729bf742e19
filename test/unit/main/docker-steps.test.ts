// Main's docker steps: every registry password and build secret resolved against this step's
// secrets before anything is delivered (an unknown name is an input error that never echoes the
// name given for a password), the logins into a per-job DOCKER_CONFIG, and the build-secret outputs.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeValue } from '../../../src/core/decode.ts';
import type { Exec } from '../../../src/core/exec.ts';
import { LedgerWriter, type Ledger } from '../../../src/core/ledger.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { dockerLogins, publishBuildSecrets, resolveBuildSecrets, resolveLogins } from '../../../src/main/docker-steps.ts';
import type { Secret } from '../../../src/vault/fetch.ts';
import { fakeRunner } from '../../support/fake-runner.ts';

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

const secret = (name: string, value: string, envName = name): Secret => ({
  name,
  envName,
  value,
  source: { kind: 'env', line: 1, envVar: name },
});
const SECRETS = [secret('REG_PASS', 'registry-password-9hG3'), secret('npm.token', 'npm-token-value-1234', 'NPM_TOKEN')];

describe('resolveLogins', () => {
  it('takes a password given as an input as it is, and one named by secret from the secrets', () => {
    expect(
      resolveLogins(
        [
          { registry: 'ghcr.io', username: 'a', password: { value: 'given-password-1234' }, source: "input 'registry-password'" },
          { registry: 'r.example:5000', username: 'b', password: { secret: 'REG_PASS' }, source: "input 'registries' line 1" },
        ],
        SECRETS,
      ),
    ).toEqual([
      { registry: 'ghcr.io', username: 'a', password: 'given-password-1234', from: "input 'registry-password'" },
      { registry: 'r.example:5000', username: 'b', password: 'registry-password-9hG3', from: "input 'registries' line 1" },
    ]);
  });

  it.each([
    ["input 'registries' line 2", "input 'registries'"],
    ["secret 'pasted-password-XYZ'", "input 'registry-password-secret'"],
  ])('an unknown name (%s) names the input and the secrets there are, not the name given', (source, input) => {
    const resolve = (): unknown =>
      resolveLogins([{ registry: 'ghcr.io', username: 'a', password: { secret: 'pasted-password-XYZ' }, source }], SECRETS);
    expect(resolve).toThrow(`${input}: registry 'ghcr.io': no secret of this step has the given name (secrets: REG_PASS, npm.token)`);
    expect(resolve).not.toThrow(/pasted-password-XYZ/);
  });
});

describe('resolveLogins with a decoded secret', () => {
  it('a password whose decoded bytes are not text is refused, naming the registry and the secret; decoded text is the password', () => {
    const binary: Secret = { ...secret('P12', 'MIIK/w=='), ...decodeValue(Buffer.from([0x30, 0xff, 0x00]).toString('base64'), 'base64') };
    const text: Secret = { ...secret('PW', ''), ...decodeValue(Buffer.from('decoded-pass-1234').toString('hex'), 'hex') };
    const login = (name: string) =>
      resolveLogins(
        [{ registry: 'ghcr.io', username: 'a', password: { secret: name }, source: "input 'registries' line 1" }],
        [binary, text],
      );
    expect(() => login('P12')).toThrow(
      "input 'registries': registry 'ghcr.io': secret 'P12' decodes to bytes that are not UTF-8 text, which cannot be a password; give a secret stored as text",
    );
    expect(login('PW')[0]?.password).toBe('decoded-pass-1234');
  });
});

describe('resolveBuildSecrets', () => {
  it('keeps id and name; an unknown name fails naming the line and the secrets', () => {
    expect(resolveBuildSecrets([{ id: 'npm', name: 'npm.token', line: 1 }], SECRETS)).toEqual([{ id: 'npm', name: 'npm.token' }]);
    expect(() => resolveBuildSecrets([{ id: 'x', name: 'NOPE', line: 3 }], [])).toThrow(
      "input 'build-secrets': line 3: no secret named 'NOPE' in this step (secrets: none)",
    );
  });
});

describe('dockerLogins', () => {
  it('no registries: no config made, nothing exported, nothing run', async () => {
    const runner = fakeRunner();
    const exec: Exec = async () => {
      throw new Error('docker is not run');
    };
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ps-unit-docker-'));
    made.push(root);
    expect(await dockerLogins({ runner, exec, home: root }, new LedgerWriter(runner), root, [], new MaskRegistry(runner))).toBeUndefined();
    expect(await fs.readdir(root)).toEqual([]);
    expect(runner.exported.size + runner.outputs.size + runner.state.size).toBe(0);
  });

  it('exports DOCKER_CONFIG before the first login, and records each registry before its attempt', async () => {
    const runner = fakeRunner();
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ps-unit-docker-'));
    made.push(root);
    const seen: Array<{ exported: string | undefined; registries: string[] | undefined }> = [];
    const exec: Exec = async (_file, args, options) => {
      seen.push({
        exported: runner.exported.get('DOCKER_CONFIG'),
        registries: (JSON.parse(runner.state.get('ledger') ?? '{}') as Ledger).registries,
      });
      return { exitCode: 1, stdout: '', stderr: `unauthorized: ${options?.input ?? ''} for ${args.at(-1) ?? ''}` };
    };
    const logins = [{ registry: 'ghcr.io', username: 'octo', password: 'registry-password-9hG3', from: "secret 'REG_PASS'" }];
    await expect(
      dockerLogins({ runner, exec, home: root }, new LedgerWriter(runner), root, logins, new MaskRegistry(runner)),
    ).rejects.toThrow(
      "docker login to registry 'ghcr.io' as 'octo' (password from secret 'REG_PASS') failed: unauthorized: *** for ghcr.io",
    );
    expect(seen).toEqual([{ exported: path.join(root, 'docker'), registries: ['ghcr.io'] }]);
    expect(runner.outputs.get('docker-config')).toBe(path.join(root, 'docker'));
  });
});

describe('publishBuildSecrets', () => {
  it('no build secrets: no outputs', () => {
    const runner = fakeRunner();
    publishBuildSecrets(runner, [], '/s', SECRETS, true);
    expect(runner.outputs.size).toBe(0);
  });

  it('files and args name the delivered files; env names only with export-env', () => {
    const runner = fakeRunner();
    publishBuildSecrets(runner, [{ id: 'npm', name: 'npm.token' }], '/s', SECRETS, true);
    expect(Object.fromEntries(runner.outputs)).toEqual({
      'build-secret-files': 'npm=/s/npm.token',
      'build-secret-args': '--secret id=npm,src=/s/npm.token',
      'build-secret-envs': 'npm=NPM_TOKEN',
    });
    const quiet = fakeRunner();
    publishBuildSecrets(quiet, [{ id: 'npm', name: 'npm.token' }], '/s', SECRETS, false);
    expect(quiet.outputs.has('build-secret-envs')).toBe(false);
  });
});
