// Running a child process (the docker CLI). Secrets go to its stdin, never its argv; its output is
// captured, never echoed, and scrubbed before it reaches an error message.

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
}

export type Exec = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

/** @actions/exec, loaded (a separate bundle) only by runs that use docker. */
export const actionsExec: Exec = async (file, args, options = {}) => {
  const { getExecOutput } = await import('./exec-lib.ts');
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  Object.assign(env, options.env);
  return getExecOutput(file, [...args], {
    silent: true,
    ignoreReturnCode: true,
    env,
    ...(options.input !== undefined ? { input: Buffer.from(options.input) } : {}),
  });
};
