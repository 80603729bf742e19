// Verdaccio (a private npm registry) and a pinned npm CLI for the tests, from the npm registry, in a
// project-local prefix (.cache/verdaccio/, its own package.json), never in the project's own
// dependencies: the registry is a test service, like OpenBao, not something the action uses.
//
// Why these versions: verdaccio 6.10 wants Node 22 and does not install as it stands; 6.8.0 runs on
// Node 20 and later, once node-fetch is pinned to 2.7.0 through `overrides` (a transitive range
// otherwise resolves to a release that breaks it). npm comes in the same prefix so that every
// machine runs the same npm client against the registry (the pinned Node 24 ships without one).
// The presence check only looks at files.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const VERDACCIO_VERSION = '6.8.0';
export const NPM_VERSION = '11.21.2';

const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');
export const VERDACCIO_PREFIX = join(REPO_ROOT, '.cache', 'verdaccio');

/** The prefix's package.json: exactly these, so a version bump here reinstalls. */
const MANIFEST = {
  name: 'pipeline-secrets-test-registry',
  private: true,
  description: 'Verdaccio and npm for the end-to-end tests (installed by scripts/test-preflight.ts)',
  dependencies: { npm: NPM_VERSION, verdaccio: VERDACCIO_VERSION },
  overrides: { 'node-fetch': '2.7.0' },
};
const MANIFEST_TEXT = `${JSON.stringify(MANIFEST, null, 2)}\n`;

/** The executables the tests run (each with the pinned Node, never through a `#!` line). */
export interface RegistryTools {
  /** verdaccio's CLI entry (bin/verdaccio). */
  readonly verdaccio: string;
  /** npm's CLI entry (bin/npm-cli.js). */
  readonly npmCli: string;
  /**
   * A dir holding only `npm`, a link to npm-cli.js (`#!/usr/bin/env node`): put on a step's PATH
   * ahead of the pinned Node's dir. (npm's own bin/npm script looks for npm next to the node binary.)
   */
  readonly npmBinDir: string;
}

const TOOLS: RegistryTools = {
  verdaccio: join(VERDACCIO_PREFIX, 'node_modules', 'verdaccio', 'bin', 'verdaccio'),
  npmCli: join(VERDACCIO_PREFIX, 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  npmBinDir: join(VERDACCIO_PREFIX, 'bin'),
};
const NPM_LINK = join(TOOLS.npmBinDir, 'npm');
const NPM_LINK_TARGET = join('..', 'node_modules', 'npm', 'bin', 'npm-cli.js');

function versionOf(pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(VERDACCIO_PREFIX, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function linkTarget(link: string): string | undefined {
  try {
    return readlinkSync(link);
  } catch {
    return undefined;
  }
}

function installed(): boolean {
  let manifest: string;
  try {
    manifest = readFileSync(join(VERDACCIO_PREFIX, 'package.json'), 'utf8');
  } catch {
    return false;
  }
  return (
    manifest === MANIFEST_TEXT &&
    versionOf('verdaccio') === VERDACCIO_VERSION &&
    versionOf('npm') === NPM_VERSION &&
    existsSync(TOOLS.verdaccio) &&
    existsSync(TOOLS.npmCli) &&
    linkTarget(NPM_LINK) === NPM_LINK_TARGET
  );
}

export function installHint(): string {
  return `mkdir -p ${VERDACCIO_PREFIX} && write its package.json with dependencies verdaccio@${VERDACCIO_VERSION}, npm@${NPM_VERSION} and overrides {"node-fetch": "2.7.0"}, then npm install --prefix ${VERDACCIO_PREFIX} and ln -s ${NPM_LINK_TARGET} ${NPM_LINK}`;
}

/** The installed tools; throws with what to run when they are missing. */
export function registryTools(): RegistryTools {
  if (!installed())
    throw new Error(
      `Verdaccio ${VERDACCIO_VERSION} and npm ${NPM_VERSION} are not installed in ${VERDACCIO_PREFIX}: run \`npm test\` (its preflight installs them) or \`node scripts/test-preflight.ts\``,
    );
  return TOOLS;
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    // npm's chatter to stderr, so a caller's stdout stays clean; no audit/fund round trips
    const child = spawn(file, args, {
      stdio: ['ignore', 2, 2],
      env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' },
    });
    child.once('error', fail);
    child.once('exit', (code, signal) =>
      code === 0 ? done() : fail(new Error(`${file} ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`})`)),
    );
  });
}

/** Installs the pinned Verdaccio and npm into .cache/verdaccio/ when they are not there yet. */
export async function ensureVerdaccio(): Promise<RegistryTools> {
  if (installed()) return TOOLS;
  process.stderr.write(`installing verdaccio@${VERDACCIO_VERSION} and npm@${NPM_VERSION} into ${VERDACCIO_PREFIX}\n`);
  rmSync(VERDACCIO_PREFIX, { recursive: true, force: true });
  mkdirSync(VERDACCIO_PREFIX, { recursive: true });
  writeFileSync(join(VERDACCIO_PREFIX, 'package.json'), MANIFEST_TEXT);
  try {
    // The npm that runs `npm test` (any npm of Node 20 or later) installs the pinned one.
    await run('npm', ['install', '--prefix', VERDACCIO_PREFIX, '--no-audit', '--no-fund', '--ignore-scripts']);
    mkdirSync(TOOLS.npmBinDir);
    symlinkSync(NPM_LINK_TARGET, NPM_LINK);
  } catch (e) {
    rmSync(VERDACCIO_PREFIX, { recursive: true, force: true });
    throw new Error(
      `could not install Verdaccio ${VERDACCIO_VERSION} (${e instanceof Error ? e.message : String(e)}); it needs npm on PATH and the npm registry: ${installHint()}`,
      { cause: e },
    );
  }
  return registryTools();
}
