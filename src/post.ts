// Entry of the post step (post-if: always()): wires the real runner into runPost.
import { runPost } from './post-step.ts';
import { nodeExec } from './exec.ts';
import { actionsRunner } from './runner.ts';
import { loadVaultClient } from './vault/client.ts';

await runPost({
  env: process.env,
  runner: actionsRunner,
  loadVaultClient,
  exec: nodeExec,
});
