// `verify-container` in post: the last look, before the files go, at each secret in a running
// container, by presence and byte count only (verify/container.ts); reported in the job summary.
import { errorText } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { Ledger } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import type { Runner } from '../core/runner.ts';
import type { PostInputs } from '../inputs/post.ts';
import { verifyContainer, verifySummary } from '../verify/container.ts';
import { expectedFromDir } from '../verify/container.ts';
import type { CleanupReport } from './summary.ts';

export async function verifyBeforeCleanup(
  deps: { readonly runner: Runner; readonly exec: Exec },
  ledger: Ledger,
  inputs: Pick<PostInputs, 'verifyContainer' | 'verifyPath'>,
  masks: MaskRegistry,
): Promise<Pick<CleanupReport, 'problems'>> {
  const { verifyContainer: container, verifyPath: mountPath } = inputs;
  if (container === undefined || !ledger.secretsDir) return { problems: [] };
  try {
    const results = await verifyContainer(deps.exec, container, mountPath, await expectedFromDir(ledger.secretsDir), {
      input: 'verify-container',
      scrub: (text) => masks.scrub(text),
    });
    await deps.runner.appendSummary(verifySummary(container, mountPath, results));
    const bad = results.filter((r) => r.seen !== r.expected).map((r) => r.name);
    if (bad.length === 0) return { problems: [] };
    return { problems: [`verify-container '${container}': missing or of another size at ${mountPath}: ${bad.join(', ')}`] };
  } catch (error) {
    return { problems: [errorText(error)] };
  }
}
