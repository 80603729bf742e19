// The verify sub-action (verify/action.yml): checks a running container for each delivered secret
// by presence and byte count, reports it in the job summary, and fails on a mismatch.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import { getBoolean, getInput, type Env } from '../inputs/main.ts';
import { PRIVATE_DIR_ENV } from '../core/private-dir.ts';
import type { Runner } from '../core/runner.ts';
import { failureSummary } from '../core/summary-text.ts';
import { verifyContainer, verifySummary, type Expected } from './container.ts';

export interface VerifyDeps {
  readonly env: Env;
  readonly runner: Runner;
  readonly exec: Exec;
}

/** Expected byte counts from the delivered files (names and sizes only). */
export async function expectedFromDir(dir: string): Promise<Expected[]> {
  const out: Expected[] = [];
  for (const name of (await fs.readdir(dir)).sort()) {
    const stat = await fs.lstat(path.join(dir, name));
    if (stat.isFile()) out.push({ name, bytes: stat.size });
  }
  return out;
}

export async function runVerify(deps: VerifyDeps): Promise<void> {
  const { env, runner } = deps;
  try {
    const failOnMismatch = getBoolean(env, 'fail-on-mismatch', true);
    const container = getInput(env, 'container');
    if (container === '') throw new Error("input 'container': is required (the name or id of a running container)");
    const mountPath = getInput(env, 'path') || '/run/secrets';
    const dir = getInput(env, 'secrets-dir') || env[PRIVATE_DIR_ENV] || '';
    if (dir === '')
      throw new Error(`input 'secrets-dir': not given and ${PRIVATE_DIR_ENV} is not set; run Pipeline Secrets in an earlier step`);
    const expected = await expectedFromDir(dir).catch((error: unknown) => {
      throw new Error(`input 'secrets-dir': cannot read ${dir} (${(error as NodeJS.ErrnoException).code ?? errorText(error)})`);
    });
    const results = await verifyContainer(deps.exec, container, mountPath, expected, { input: 'container' });
    await runner.appendSummary(verifySummary(container, mountPath, results));
    const bad = results.filter((r) => r.seen !== r.expected);
    for (const r of results)
      runner.info(
        `${r.name}: expected ${r.expected} bytes, ${r.seen === undefined ? 'missing or empty' : `${r.seen} bytes`} in ${container}:${mountPath}`,
      );
    if (bad.length > 0 && failOnMismatch) {
      runner.setFailed(
        `verify: ${bad.length} secret(s) missing or of another size in container '${container}': ${bad.map((b) => b.name).join(', ')}`,
      );
    }
  } catch (error) {
    const message = errorText(error);
    runner.setFailed(message);
    await runner.appendSummary(failureSummary('Pipeline Secrets verify', message)).catch(() => {});
  }
}
