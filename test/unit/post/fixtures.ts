// What main leaves for post, for post's unit tests: a real private root (created by main's own
// createPrivateDir in a temporary RUNNER_TEMP), secret files and a token file in it, the ledger as
// main saves it, and the inputs post is handed again.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Exec, ExecOptions } from '../../../src/core/exec.ts';
import type { Ledger } from '../../../src/core/ledger.ts';
import { createPrivateDir, writeExclusive, type PrivateDir } from '../../../src/core/private-dir.ts';
import { tempDir } from '../../support/temp.ts';

export const VAULT_URL = 'https://vault.example:8200';
export const TOKEN = 'hvs.post-unit-Token-4f9c2a';
export const VALUES = { DB_PASSWORD: 'post-unit-Value-A-71c3e9', API_KEY: 'post-unit-Value-B-0d8f42' } as const;
export const LEASES = ['database/creds/ci/l1', 'database/creds/ci/l2'];

export function tmp(): string {
  return tempDir('ps-post-unit-');
}

export interface LeftBehind {
  readonly dir: PrivateDir;
  readonly files: string[];
  readonly tokenFile: string;
  readonly ledger: Ledger;
  /** The environment post runs with: RUNNER_TEMP, GITHUB_WORKSPACE and the `url` input. */
  readonly env: Record<string, string>;
  readonly workspace: string;
}

/** A private root in a fresh RUNNER_TEMP with VALUES as files and TOKEN in its token file, and main's ledger for it. */
export async function mainLeftBehind(): Promise<LeftBehind> {
  const runnerTemp = tmp();
  // No usable /dev/shm: the root goes to RUNNER_TEMP, which post accepts as main's base.
  const dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, undefined, path.join(runnerTemp, 'no-shm'));
  const files: string[] = [];
  for (const [name, value] of Object.entries(VALUES)) {
    const file = path.join(dir.secretsDir, name);
    await writeExclusive(file, value);
    files.push(file);
  }
  const tokenFile = path.join(dir.root, 'vault-token');
  await writeExclusive(tokenFile, TOKEN);
  const ledger: Ledger = {
    root: dir.root,
    marker: dir.marker,
    secretsDir: dir.secretsDir,
    userSecretsDir: false,
    files,
    tokenFile,
    vaultUrl: VAULT_URL,
    leases: [...LEASES],
    leaseExpires: { [LEASES[0] ?? '']: '2030-01-01T00:15:00.000Z' },
  };
  const workspace = tmp();
  return {
    dir,
    files,
    tokenFile,
    ledger,
    workspace,
    env: { RUNNER_TEMP: runnerTemp, GITHUB_WORKSPACE: workspace, INPUT_URL: `${VAULT_URL}/` },
  };
}

export async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

export interface FakeExec {
  readonly exec: Exec;
  readonly calls: Array<{ file: string; args: string[]; options: ExecOptions | undefined }>;
}

/** A docker CLI that answers each call with `answer` (exit 0, no output by default) and records it. */
export function fakeExec(
  answer: (args: readonly string[]) => { exitCode?: number; stdout?: string; stderr?: string } = () => ({}),
): FakeExec {
  const calls: FakeExec['calls'] = [];
  return {
    calls,
    exec: async (file, args, options) => {
      calls.push({ file, args: [...args], options });
      const { exitCode = 0, stdout = '', stderr = '' } = answer(args);
      return { exitCode, stdout, stderr };
    },
  };
}
