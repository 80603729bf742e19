// Entry of the leak-scan sub-action: wires the runner, exec and a streamed `docker save`.
import { builtin } from '../core/builtin.ts';
import { dockerEnv, nodeExec } from '../core/exec.ts';
import { actionsRunner } from '../core/runner.ts';
import { inScanWorker } from '../scan/worker.ts';
import { runScan } from './run.ts';

/** `docker save IMAGE` read as the CLI writes it: the archive never lands on disk. */
async function* dockerSave(image: string): AsyncIterable<Buffer> {
  const { spawn } = builtin.childProcess();
  // `--` ends docker's options before the operand; the environment is the docker allow-list (exec.ts).
  const child = spawn('docker', ['save', '--', image], { stdio: ['ignore', 'pipe', 'pipe'], env: dockerEnv(process.env) });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'ENOENT' ? "'docker' was not found on PATH" : error.message)),
    );
    child.on('close', (code) => resolve(code ?? 1));
  });
  exited.catch(() => {});
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) throw new Error(`docker save ${image} failed: ${stderr.replace(/\s+/g, ' ').trim() || `exit ${code}`}`);
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

// dist/scan.js is also the scan's worker thread (scan/worker.ts): there it serves scan jobs only.
if (!inScanWorker)
  await runScan({
    env: process.env,
    runner: actionsRunner,
    exec: nodeExec,
    dockerSave,
    // Loaded only by a scan that fetches from Vault itself (the cold start is every scan's).
    loadVaultClient: async () => (await import('../vault/client.ts')).loadVaultClient(),
    // While a listener is attached Node does not exit on these: a token the scan logged in for is
    // revoked first (vault-values.ts).
    onCancel: (handler) => {
      const listener = (signal: NodeJS.Signals): void => handler(signal);
      process.on('SIGINT', listener);
      process.on('SIGTERM', listener);
      return () => {
        process.off('SIGINT', listener);
        process.off('SIGTERM', listener);
      };
    },
  });
