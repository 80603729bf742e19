// Entry of the post step (post-if: always()): wires the real runner into runPost.
import { runPost } from './run.ts';
import { nodeExec } from '../core/exec.ts';
import { actionsRunner } from '../core/runner.ts';
import { loadVaultClient } from '../vault/client.ts';

await runPost({
  env: process.env,
  runner: actionsRunner,
  loadVaultClient,
  exec: nodeExec,
});
