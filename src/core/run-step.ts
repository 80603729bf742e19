// The one top-level failure path of every step (main, post, verify, leak-scan): whatever a step
// throws becomes one scrubbed line, never a value and never a stack trace for a user's mistake.
import { errorText, isUserError } from './errors.ts';
import { MaskRegistry } from './mask.ts';
import type { Runner } from './runner.ts';
import { failureSummary } from './summary-text.ts';

export type StepFailure =
  /** The step fails, and its summary says why under `title` (main, verify, leak-scan). */
  | { readonly fail: string }
  /** The step warns `<warn>: <message>` and succeeds (post: a cleanup problem must not hide main's outcome). */
  | { readonly warn: string };

/**
 * Runs a step's body with a fresh MaskRegistry. What the body throws is scrubbed of every form the
 * body registered; a bug (not an InputError/VaultError/SecretError/DeliveryError) also leaves its
 * stack, scrubbed, in debug output only. Returns the failure message, or undefined when the body succeeded.
 */
export async function runStep(
  runner: Runner,
  onFailure: StepFailure,
  body: (masks: MaskRegistry) => Promise<void>,
): Promise<string | undefined> {
  const masks = new MaskRegistry(runner);
  try {
    await body(masks);
    return undefined;
  } catch (error) {
    const message = masks.scrub(errorText(error));
    if (!isUserError(error) && error instanceof Error && error.stack) runner.debug(masks.scrub(error.stack));
    if ('warn' in onFailure) {
      runner.warning(`${onFailure.warn}: ${message}`);
    } else {
      runner.setFailed(message);
      // The reason in the summary too, where post's cleanup report would otherwise stand alone.
      await runner.appendSummary(failureSummary(onFailure.fail, message)).catch(() => {});
    }
    return message;
  }
}
