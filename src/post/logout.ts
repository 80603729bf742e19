// Post's docker logout: of every registry a login was attempted for. Deleting the per-job
// DOCKER_CONFIG would drop the credentials anyway, but logout also tells any credential helper in
// the config. The directory itself lives in the private root and goes with it (remove.ts).
import { errorText } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { Ledger } from '../core/ledger.ts';
import { dockerLogout } from '../docker/login.ts';
import type { CleanupReport } from './summary.ts';

export async function logoutRegistries(exec: Exec, ledger: Ledger): Promise<Pick<CleanupReport, 'loggedOut' | 'problems'>> {
  const loggedOut: string[] = [];
  const problems: string[] = [];
  if (!ledger.dockerConfig) return { loggedOut, problems };
  for (const registry of ledger.registries ?? []) {
    const problem = await dockerLogout(exec, ledger.dockerConfig, registry).catch(
      (error: unknown) => `docker logout ${registry}: ${errorText(error)}`,
    );
    if (problem) problems.push(problem);
    else loggedOut.push(registry);
  }
  return { loggedOut, problems };
}
