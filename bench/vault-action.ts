// The baseline the benches run side by side: hashicorp/vault-action's own bundle (dist/index.js),
// run as the runner runs it (node <entry>, INPUT_* with its action.yml defaults). It is not part of
// this repository: point VAULT_ACTION_DIR at a checkout of hashicorp/vault-action (default
// bench/.out/vault-action): `git -C <checkout> archive v3.4.0 action.yml package.json dist/index.js | tar -x -C DIR`
// (its package.json keeps the bundle CommonJS inside this ESM repository) and
// `echo v3.4.0 > DIR/VERSION`.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { errorLines, node, repo, stepEnv, timed, type Timed } from './lib.ts';

export const VAULT_ACTION_DIR = process.env.VAULT_ACTION_DIR ?? path.join(repo, 'bench/.out/vault-action');

/** The entry file and the INPUT_* defaults of vault-action's action.yml. */
export function vaultAction(): { entry: string; version: string; defaults: Record<string, string> } {
  const entry = path.join(VAULT_ACTION_DIR, 'dist/index.js');
  const yml = path.join(VAULT_ACTION_DIR, 'action.yml');
  if (!existsSync(entry) || !existsSync(yml)) {
    throw new Error(
      `hashicorp/vault-action not found in ${VAULT_ACTION_DIR}: set VAULT_ACTION_DIR to a checkout of it (action.yml and dist/index.js)`,
    );
  }
  const action = parse(readFileSync(yml, 'utf8')) as { inputs: Record<string, { default?: string | number | boolean }> };
  const defaults: Record<string, string> = {};
  for (const [name, spec] of Object.entries(action.inputs)) {
    if (spec.default !== undefined) defaults[`INPUT_${name.toUpperCase()}`] = String(spec.default);
  }
  let version = 'unknown version';
  try {
    version = readFileSync(path.join(VAULT_ACTION_DIR, 'VERSION'), 'utf8').trim();
  } catch {
    // its package.json says 0.1.0 whatever the release: the VERSION file is ours
  }
  return { entry, version, defaults };
}

/**
 * One vault-action step, whole process, as the runner runs it: its action.yml defaults, then
 * `inputs` (INPUT_* names as vault-action spells them, e.g. ROLEID); fails on a non-zero exit.
 */
export async function runVaultAction(baseline: ReturnType<typeof vaultAction>, inputs: Record<string, string>): Promise<Timed> {
  const step = stepEnv({});
  try {
    const env = { ...step.env, ...baseline.defaults };
    for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
    const t = await timed(node, [baseline.entry], env);
    if (t.code !== 0) throw new Error(`vault-action failed (exit ${String(t.code)}):\n${errorLines(t.stdout)}`);
    return t;
  } finally {
    step.dispose();
  }
}
