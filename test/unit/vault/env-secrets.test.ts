// Workflow secrets taken from the step's environment, and the check that no two secrets of a run
// share a file or env name.
import { describe, expect, it } from 'vitest';
import { SecretError } from '../../../src/core/errors.ts';
import { parseEnvSecretsInput } from '../../../src/inputs/secret-spec.ts';
import { checkUniqueNames, collectEnvSecrets } from '../../../src/vault/env-secrets.ts';
import type { Secret } from '../../../src/vault/fetch.ts';

describe('collectEnvSecrets', () => {
  it('takes each variable under its name, handing the value over before anything else sees it', () => {
    const seen: string[] = [];
    const { secrets, warnings } = collectEnvSecrets(
      parseEnvSecretsInput('NPM_TOKEN\nDEPLOY_KEY=SSH_KEY'),
      { NPM_TOKEN: 'npm-value', SSH_KEY: 'ssh-value' },
      (v) => seen.push(v),
    );
    expect(secrets).toEqual([
      { name: 'NPM_TOKEN', envName: 'NPM_TOKEN', value: 'npm-value', source: { kind: 'env', line: 1, envVar: 'NPM_TOKEN' } },
      { name: 'DEPLOY_KEY', envName: 'DEPLOY_KEY', value: 'ssh-value', source: { kind: 'env', line: 2, envVar: 'SSH_KEY' } },
    ]);
    expect(seen).toEqual(['npm-value', 'ssh-value']);
    expect(warnings).toEqual([]);
  });

  it('an unset or empty variable fails naming the line and how to pass it', () => {
    for (const env of [{}, { NPM_TOKEN: '' }]) {
      expect(() => collectEnvSecrets(parseEnvSecretsInput('NPM_TOKEN'), env, () => {})).toThrow(
        new SecretError(
          "env-secrets line 1: environment variable 'NPM_TOKEN' is not set or empty (pass it with env: NPM_TOKEN: ${{ secrets.NPM_TOKEN }})",
        ),
      );
    }
  });

  it('?encoding= decodes the variable: masked as passed, and as decoded text when it is text', () => {
    const seen: string[] = [];
    const bytes = Buffer.from([0x30, 0x82, 0xff, 0x00]);
    const { secrets } = collectEnvSecrets(
      parseEnvSecretsInput('KEYSTORE=KS_B64?encoding=base64\nCONF=CONF_HEX?encoding=hex'),
      { KS_B64: bytes.toString('base64'), CONF_HEX: Buffer.from('conf-text-value').toString('hex') },
      (v) => seen.push(v),
    );
    expect(secrets[0]?.decoded?.bytes.equals(bytes)).toBe(true);
    expect(secrets[0]?.decoded?.text).toBe(false);
    expect(secrets[1]?.value).toBe('conf-text-value');
    expect(seen).toEqual([bytes.toString('base64'), Buffer.from('conf-text-value').toString('hex'), 'conf-text-value']);
  });

  it('a variable that does not decode fails naming the line and the variable, never the value', () => {
    const seen: string[] = [];
    expect(() => collectEnvSecrets(parseEnvSecretsInput('K=K_B64?encoding=base64'), { K_B64: 'not*base64' }, (v) => seen.push(v))).toThrow(
      new SecretError(
        "env-secrets line 1: the value of 'K_B64' is not valid base64 (a character at offset 3 is not in the base64 alphabet); store it base64-encoded, or give this line another ?encoding= (utf8: as stored)",
      ),
    );
    expect(seen).toEqual(['not*base64']); // masked before it was decoded
  });

  it('an optional one is a warning', () => {
    const { secrets, warnings } = collectEnvSecrets(parseEnvSecretsInput('NPM_TOKEN ?'), {}, () => {});
    expect(secrets).toEqual([]);
    expect(warnings).toEqual([
      expect.stringMatching(/^env-secrets line 1: environment variable 'NPM_TOKEN' is not set .*; skipped \(optional\)$/),
    ]);
  });
});

describe('checkUniqueNames', () => {
  const vault = (name: string, envName: string, line: number): Secret => ({
    name,
    envName,
    value: 'v',
    source: { kind: 'vault', line, requestKey: 'p', path: 'p', readPath: 'p', key: 'k', kvVersion: 2, version: 1, leaseId: undefined },
  });
  const env = (name: string, line: number): Secret => ({ name, envName: name, value: 'v', source: { kind: 'env', line, envVar: name } });

  it('two secrets whose file names differ only in case clash (case-insensitive file systems)', () => {
    expect(() => checkUniqueNames([vault('token', 'TOKEN_A', 1), env('TOKEN', 2)])).toThrow(
      "two secrets are named 'TOKEN' (secrets line 1 and env-secrets line 2); rename one with '| NAME'",
    );
  });

  it('two secrets with one env name clash', () => {
    expect(() => checkUniqueNames([vault('a', 'X', 1), vault('b', 'X', 3)])).toThrow(
      "two secrets are named 'X' (secrets line 1 and secrets line 3)",
    );
  });

  it('distinct names pass', () => {
    expect(() => checkUniqueNames([vault('a', 'A', 1), vault('b', 'B', 2), env('C', 1)])).not.toThrow();
  });
});
