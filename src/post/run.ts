// The post step (post-if: always()): revoke leases, revoke the token this run created, delete every
// file and directory main wrote. It cleans up whatever main got as far as, is safe to run twice,
// and warns rather than fails so it never hides the main step's own outcome.
// Its phases, each in its own module, each returning its part of the cleanup report, run in this
// order: stop the renewal agent, revoke, verify-container, scrub the workspace, docker logout,
// delete, then the report (summary.ts).
import { errorText, isUserError } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import { checkLedger, loadLedger, type Ledger } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import { runStep } from '../core/run-step.ts';
import type { Env } from '../inputs/common.ts';
import { parsePostInputs } from '../inputs/post.ts';
import { stopRenewalAgent } from './agent-stop.ts';
import { logoutRegistries } from './logout.ts';
import { removeDelivered, removeWorkspaceFiles } from './remove.ts';
import { revokeVault, type RevokeDeps } from './revoke.ts';
import { scrubJobWorkspace } from './scrub.ts';
import { reportCleanup, type CleanupReport } from './summary.ts';
import { verifyBeforeCleanup } from './verify.ts';

export interface PostDeps extends RevokeDeps {
  readonly env: Env;
  readonly exec: Exec;
}

export async function runPost(deps: PostDeps): Promise<void> {
  // Post warns: a cleanup problem must be visible but must not hide main's outcome.
  await runStep(deps.runner, { warn: 'cleanup' }, (masks) => post(deps, masks));
}

async function post(deps: PostDeps, masks: MaskRegistry): Promise<void> {
  const { runner, env } = deps;
  let saved: Ledger | undefined;
  try {
    saved = loadLedger(runner);
  } catch {
    runner.warning('cleanup: the saved state is not readable; nothing can be cleaned up safely');
    return;
  }
  if (!saved) {
    runner.info('Pipeline Secrets cleanup: main created nothing; nothing to do');
    return;
  }
  const inputs = parsePostInputs(env);
  // State is untrusted input: post acts only on the paths under the private root it can prove main
  // created, and sends a token only to the Vault address main was given (ledger.ts checkLedger).
  const checked = await checkLedger(saved, { vaultUrl: inputs.vault.url, namespace: inputs.vault.namespace, runnerTemp: env.RUNNER_TEMP });
  for (const refusal of checked.refused) runner.warning(`cleanup: refused from the saved state: ${masks.scrub(refusal)}`);

  // Every phase runs whatever an earlier one met: one that throws becomes a problem of the report,
  // and the next goes on (a revocation that failed must not leave the secret files behind).
  const settle = async <T>(name: string, run: () => Promise<T>, empty: T & Pick<CleanupReport, 'problems'>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      const message = masks.scrub(errorText(error));
      if (!isUserError(error) && error instanceof Error && error.stack) runner.debug(masks.scrub(error.stack));
      return { ...empty, problems: [`${name}: ${message}`] };
    }
  };
  // The agent first: it must not renew or rewrite anything while post revokes and deletes.
  const agent = await settle('renewal agent', () => stopRenewalAgent(runner, checked.ledger), {
    agent: undefined,
    agentStatus: undefined,
    leases: checked.ledger.leases,
    problems: [],
  });
  const ledger: Ledger = { ...checked.ledger, leases: [...agent.leases] };
  const revoked = await settle('revoke', () => revokeVault(deps, ledger, inputs, masks), {
    tokenRevoked: undefined,
    tokenBatchExpires: undefined,
    leasesRevoked: 0,
    leasesWithToken: 0,
    leasesLeft: [],
    certsRevoked: 0,
    certsExpired: 0,
    certsLeft: [],
    problems: [],
  });
  const verified = await settle('verify-container', () => verifyBeforeCleanup(deps, ledger, inputs, masks), { problems: [] });
  // The rendered files main wrote in the workspace are the user's explicit destination, not a leak:
  // deleted before the scrub (which then never meets them), each only while it is main's file.
  const workspaceFiles = await settle(
    'remove rendered files',
    () => removeWorkspaceFiles(ledger, env.GITHUB_WORKSPACE, agent.agentStatus),
    { workspaceFilesRemoved: [], problems: [] },
  );
  // Before the deletions: the values to scrub for are read from the files about to go.
  const scrubbed = await settle('scrub', () => scrubJobWorkspace(runner, ledger, inputs.scrub, env.GITHUB_WORKSPACE), {
    scrubbed: undefined,
    problems: [],
  });
  const loggedOut = await settle('docker logout', () => logoutRegistries(deps.exec, ledger), { loggedOut: [], problems: [] });
  const removed = await settle('remove', () => removeDelivered(ledger), { filesRemoved: 0, dirsRemoved: [], problems: [] });
  await reportCleanup(runner, {
    agent: agent.agent,
    agentStatus: agent.agentStatus,
    tokenRevoked: revoked.tokenRevoked,
    tokenBatchExpires: revoked.tokenBatchExpires,
    leasesRevoked: revoked.leasesRevoked,
    leasesWithToken: revoked.leasesWithToken,
    leasesLeft: revoked.leasesLeft,
    certsRevoked: revoked.certsRevoked,
    certsExpired: revoked.certsExpired,
    certsLeft: revoked.certsLeft,
    scrubbed: scrubbed.scrubbed,
    loggedOut: loggedOut.loggedOut,
    filesRemoved: removed.filesRemoved,
    workspaceFilesRemoved: workspaceFiles.workspaceFilesRemoved,
    dirsRemoved: removed.dirsRemoved,
    problems: [
      inputs.problems,
      agent.problems,
      revoked.problems,
      verified.problems,
      workspaceFiles.problems,
      scrubbed.problems,
      loggedOut.problems,
      removed.problems,
    ].flat(),
  });
}
