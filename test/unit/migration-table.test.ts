// The README's migration table against hashicorp/vault-action v3.4.0: every input of its action.yml
// (the names below, copied from that file at tag v3.4.0, commit 4c06c5cc) has a row, and every name
// the "here" column gives is an input this action.yml declares. vault-action's action.yml declares
// no outputs (it sets one per secret, and `vault_token`); the outputs table must name those.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadActionInputs } from '../support/harness/action-yml.ts';

const REPO = path.resolve(import.meta.dirname, '..', '..');

/** hashicorp/vault-action v3.4.0 action.yml `inputs:`, in its order. */
const VAULT_ACTION_V3_INPUTS = [
  'url',
  'secrets',
  'pki',
  'namespace',
  'method',
  'role',
  'path',
  'token',
  'roleId',
  'secretId',
  'githubToken',
  'kubernetesTokenPath',
  'username',
  'password',
  'authPayload',
  'extraHeaders',
  'exportEnv',
  'exportToken',
  'outputToken',
  'caCertificate',
  'clientCertificate',
  'clientKey',
  'tlsSkipVerify',
  'jwtPrivateKey',
  'jwtKeyPassword',
  'jwtGithubAudience',
  'jwtTtl',
  'secretEncodingType',
  'ignoreNotFound',
] as const;

function migrationSection(): string {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('## Migrating from hashicorp/vault-action');
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 3);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** Input rows: vault-action name -> the "here" cell. */
function inputRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of migrationSection().split('\n')) {
    const m = /^\| `([A-Za-z]+)` \| ([^|]*) \|/.exec(line);
    if (m) rows.set(m[1] ?? '', (m[2] ?? '').trim());
  }
  return rows;
}

describe('the migration table', () => {
  it('has a row for every vault-action v3 input, and no row for an input vault-action does not have', () => {
    const rows = inputRows();
    expect(VAULT_ACTION_V3_INPUTS.filter((name) => !rows.has(name))).toEqual([]);
    expect([...rows.keys()].filter((name) => !(VAULT_ACTION_V3_INPUTS as readonly string[]).includes(name))).toEqual([]);
  });

  it('each row names an input of action.yml, or says none and why', () => {
    const declared = loadActionInputs(path.join(REPO, 'action.yml')).declared;
    for (const [name, here] of inputRows()) {
      const first = /^`([a-z-]+)`/.exec(here)?.[1];
      if (first === undefined) {
        expect(here, name).toBe('none');
        continue;
      }
      expect(declared.has(first), `${name} -> ${first}`).toBe(true);
    }
  });

  it("names where vault-action's outputs and exported variables are", () => {
    const section = migrationSection();
    expect(section).toMatch(/^\| each secret as the output `steps\.ID\.outputs\.NAME` \(always\) \| `export-outputs: true` \|/m);
    expect(section).toMatch(/^\| each secret as the environment variable `NAME` .*\| `export-env: true` \|/m);
    expect(section).toMatch(/^\| `vault_token` output \(`outputToken: true`\) \| `vault_token` output \(`export-token: true`\) \|/m);
    expect(section).toMatch(/^\| `VAULT_TOKEN` environment variable \(`exportToken: true`\) \| none \|/m);
  });
});
