// Entry of the main step: wires the real runner and environment into runMain.
import { runMain } from './pipeline.ts';
import { nodeExec } from '../core/exec.ts';
import { actionsRunner } from '../core/runner.ts';
import { loadVaultClient } from '../vault/client.ts';

await runMain({
  env: process.env,
  runner: actionsRunner,
  loadVaultClient,
  exec: nodeExec,
  onCancel: (handler) => {
    // While a listener is attached Node does not exit on these: main decides when to stop.
    const listener = (signal: NodeJS.Signals): void => handler(signal);
    process.on('SIGINT', listener);
    process.on('SIGTERM', listener);
    return () => {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    };
  },
});
