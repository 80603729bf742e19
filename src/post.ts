// Entry of the post step (post-if: always()): wires the real runner into runPost.
import { runPost } from './post-step.ts';
import { actionsRunner } from './runner.ts';

await runPost({
  env: process.env,
  runner: actionsRunner,
  loadVaultClient: async () => (await import('./vault/client.ts')).createVaultClient,
});
