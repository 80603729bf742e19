// Entry of the main step: wires the real runner and environment into runMain.
import { runMain } from './main-step.ts';
import { nodeExec } from './exec.ts';
import { actionsRunner } from './runner.ts';
import { loadVaultClient } from './vault/client.ts';

await runMain({
  env: process.env,
  runner: actionsRunner,
  loadVaultClient,
  exec: nodeExec,
});
