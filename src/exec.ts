// Running a child process (the docker CLI). Secrets go to its stdin, never its argv; its output is
// captured, never echoed, and scrubbed before it reaches an error message. No shell is involved.
// node:child_process directly rather than @actions/exec: the same contract for our one use (argv,
// stdin, captured output) at a fraction of the start-up cost (see README, Development).
import { builtin } from './builtin.ts';
import type { ChildProcess } from 'node:child_process';

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Kill the child after this many ms (default 120 s). */
  readonly timeoutMs?: number;
}

export type Exec = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export const nodeExec: Exec = async (file, args, options = {}) => {
  const { spawn } = builtin.childProcess();
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(file, [...args], {
        env: { ...process.env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: options.timeoutMs ?? 120_000,
      });
    } catch (error) {
      reject(error);
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        new Error(error.code === 'ENOENT' ? `'${file}' was not found on PATH` : `cannot run '${file}' (${error.code ?? error.message})`),
      );
    });
    child.on('close', (code, signal) =>
      resolve({
        exitCode: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? ` (killed by ${signal})` : ''),
      }),
    );
    // EPIPE when the child exits without reading stdin is not our failure: its exit code tells.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
};
