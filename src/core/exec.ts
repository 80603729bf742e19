// Running a child process (the docker CLI). Secrets go to its stdin, never its argv; its output is
// captured, never echoed, and scrubbed before it reaches an error message. No shell is involved.
// node:child_process directly rather than @actions/exec: the same contract for our one use (argv,
// stdin, captured output) at a fraction of the start-up cost (see README, Development).
// The docker CLI gets an allow-listed environment (dockerEnv), never the step's whole one: that
// holds every INPUT_* (a registry password given as an input), workflow secrets mapped into env,
// and the runner's request tokens, and docker hands its environment on to what it starts
// (credential helpers, `ssh` for an ssh:// DOCKER_HOST, CLI plugins).
import { builtin } from './builtin.ts';
import type { ChildProcess } from 'node:child_process';

/**
 * What the docker CLI reads, by name (a DOCKER_* prefix would also pass DOCKER_PASSWORD or
 * DOCKER_TOKEN, common names for workflow secrets that the CLI never reads): where the daemon is
 * and how to reach it (host, context, TLS, API version), where its config is, and behaviour flags.
 * The content-trust passphrases (DOCKER_CONTENT_TRUST_*_PASSPHRASE) are left out: they sign pushes,
 * which this action never does.
 */
const DOCKER_VARS = [
  'DOCKER_CONFIG',
  'DOCKER_HOST',
  'DOCKER_CONTEXT',
  'DOCKER_CERT_PATH',
  'DOCKER_TLS',
  'DOCKER_TLS_VERIFY',
  'DOCKER_API_VERSION',
  'DOCKER_CUSTOM_HEADERS',
  'DOCKER_BUILDKIT',
  'DOCKER_DEFAULT_PLATFORM',
  'DOCKER_CONTENT_TRUST',
  'DOCKER_CONTENT_TRUST_SERVER',
  'DOCKER_CLI_EXPERIMENTAL',
  'DOCKER_CLI_HINTS',
  'DOCKER_HIDE_LEGACY_COMMANDS',
];

/**
 * The rest of the allow-list (README, Security model):
 * - PATH: to find docker, its CLI plugins and any docker-credential-* helper;
 * - HOME: ~/.docker when DOCKER_CONFIG is not set, ~/.ssh for an ssh:// DOCKER_HOST;
 * - TMPDIR: where Go (the CLI) puts temporary files;
 * - proxies, both spellings (Go reads either): reaching a tcp:// daemon and a registry;
 * - SSL_CERT_FILE / SSL_CERT_DIR: the CA bundle Go trusts, for TLS to the daemon or a registry;
 * - SSH_AUTH_SOCK: the agent `ssh` needs for an ssh:// DOCKER_HOST (a socket path, not a key);
 * - XDG_RUNTIME_DIR: rootless Docker's socket and contexts point there;
 * - Windows: what any Windows program needs to start and find its profile.
 * No credential helper's own variables (AWS_*, GOOGLE_*, AZURE_*, DBUS_SESSION_BUS_ADDRESS for
 * secretservice, GNUPGHOME for pass): the per-job config holds no helper for the registries this
 * action logs in to and out of, and exec / save / history / inspect never ask one for credentials.
 */
const OTHER_VARS = [
  'PATH',
  'HOME',
  'TMPDIR',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'SSH_AUTH_SOCK',
  'XDG_RUNTIME_DIR',
];
const WINDOWS_VARS = ['SYSTEMROOT', 'WINDIR', 'USERPROFILE', 'APPDATA', 'LOCALAPPDATA', 'PROGRAMDATA', 'TEMP', 'TMP', 'PATHEXT', 'COMSPEC'];
const ALLOWED = new Set([...DOCKER_VARS, ...OTHER_VARS]);
const ALLOWED_WINDOWS = new Set([...DOCKER_VARS, ...OTHER_VARS, ...WINDOWS_VARS].map((name) => name.toUpperCase()));

/** The environment the docker CLI runs with: the allow-listed variables of `env`, then `extra`. */
export function dockerEnv(
  env: Readonly<Record<string, string | undefined>>,
  extra: Readonly<Record<string, string>> = {},
  platform: NodeJS.Platform = process.platform,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    // Windows names are case-insensitive (Path, SystemRoot); elsewhere the case is the name.
    if (platform === 'win32' ? ALLOWED_WINDOWS.has(name.toUpperCase()) : ALLOWED.has(name)) out[name] = value;
  }
  return { ...out, ...extra };
}

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
        // docker only ever sees the allow-list; other commands (the agent's on-change shell, whose
        // own environment is allow-listed when the agent starts) get their environment as it is.
        env: /(^|[\\/])docker(\.exe)?$/i.test(file) ? dockerEnv(process.env, options.env) : { ...process.env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: options.timeoutMs ?? 120_000,
      });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(`cannot run '${file}' (${String(error)})`));
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
