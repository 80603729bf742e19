// The verify sub-action (verify/action.yml): checks a running container for each delivered secret
// by presence and byte count, reports it in the job summary, and fails on a mismatch.
import type { Exec } from '../core/exec.ts';
import { runStep } from '../core/run-step.ts';
import type { Runner } from '../core/runner.ts';
import type { Env } from '../inputs/common.ts';
import { unreadableSecretsDir } from '../inputs/secrets-dir.ts';
import { parseVerifyInputs } from '../inputs/verify.ts';
import { expectedFromDir, verifyContainer, verifySummary } from './container.ts';

export interface VerifyDeps {
  readonly env: Env;
  readonly runner: Runner;
  readonly exec: Exec;
}

export async function runVerify(deps: VerifyDeps): Promise<void> {
  const { runner } = deps;
  // This step never reads a value (sizes only), so it has none to mask; runStep still gives it the
  // one failure path: one line, the reason in the summary, a stack in debug output for a bug only.
  await runStep(runner, { fail: 'Pipeline Secrets verify' }, async () => {
    const config = parseVerifyInputs(deps.env);
    const { container, mountPath, secretsDir } = config;
    const expected = await expectedFromDir(secretsDir.path).catch((error: unknown) => {
      throw unreadableSecretsDir(secretsDir, error);
    });
    const results = await verifyContainer(deps.exec, container, mountPath, expected, { input: 'container' });
    await runner.appendSummary(verifySummary(container, mountPath, results));
    for (const r of results)
      runner.info(
        `${r.name}: expected ${r.expected} bytes, ${r.seen === undefined ? 'missing or empty' : `${r.seen} bytes`} in ${container}:${mountPath}`,
      );
    const bad = results.filter((r) => r.seen !== r.expected);
    // A mismatch is the verdict, not an error: the summary above already holds the table.
    if (bad.length > 0 && config.failOnMismatch) {
      runner.setFailed(
        `verify: ${bad.length} secret(s) missing or of another size in container '${container}': ${bad.map((b) => b.name).join(', ')}`,
      );
    }
  });
}
