// Running a child: the docker CLI's allow-listed environment (dockerEnv), and nodeExec with real
// children (this Node, run with -e) for what it hands over (stdin, argv, env) and reports back.
import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dockerEnv, nodeExec } from '../../../src/core/exec.ts';

const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-exec-'));
  made.push(dir);
  return dir;
}
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** A step's environment as the runner gives it: what docker needs, and what it must never see. */
const STEP_ENV = {
  PATH: '/usr/local/bin:/usr/bin',
  HOME: '/home/runner',
  TMPDIR: '/tmp/t',
  DOCKER_CONFIG: '/home/runner/.docker',
  DOCKER_HOST: 'tcp://daemon:2376',
  DOCKER_TLS_VERIFY: '1',
  DOCKER_CERT_PATH: '/certs',
  DOCKER_BUILDKIT: '1',
  https_proxy: 'http://proxy:3128',
  NO_PROXY: 'localhost',
  SSL_CERT_DIR: '/etc/ssl/certs',
  SSH_AUTH_SOCK: '/tmp/ssh-agent.sock',
  XDG_RUNTIME_DIR: '/run/user/1001',
  // Never: inputs (a registry password given as an input), workflow secrets mapped into env under
  // docker-looking names, the runner's request tokens, a credential helper's keys.
  INPUT_PASSWORD: 'input-password-value',
  'INPUT_REGISTRY-PASSWORD': 'input-password-value',
  DOCKER_PASSWORD: 'workflow-secret-value',
  DOCKER_TOKEN: 'workflow-secret-value',
  DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'workflow-secret-value',
  DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'workflow-secret-value',
  NPM_TOKEN: 'workflow-secret-value',
  GITHUB_TOKEN: 'runner-token-value',
  ACTIONS_RUNTIME_TOKEN: 'runner-token-value',
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runner-token-value',
  ACTIONS_ID_TOKEN_REQUEST_URL: 'https://token.example/',
  AWS_SECRET_ACCESS_KEY: 'helper-key-value',
  VAULT_TOKEN: 'vault-token-value',
  UNSET: undefined,
};
const KEPT = [
  'PATH',
  'HOME',
  'TMPDIR',
  'DOCKER_CONFIG',
  'DOCKER_HOST',
  'DOCKER_TLS_VERIFY',
  'DOCKER_CERT_PATH',
  'DOCKER_BUILDKIT',
  'https_proxy',
  'NO_PROXY',
  'SSL_CERT_DIR',
  'SSH_AUTH_SOCK',
  'XDG_RUNTIME_DIR',
];

describe('dockerEnv', () => {
  it('keeps what the docker CLI reads and nothing else: no input, workflow secret or runner token', () => {
    const out = dockerEnv(STEP_ENV, {}, 'linux');
    expect(Object.keys(out).sort()).toEqual([...KEPT].sort());
    for (const name of KEPT) expect(out[name]).toBe(STEP_ENV[name as keyof typeof STEP_ENV]);
    expect(JSON.stringify(out)).not.toMatch(/-value/);
  });

  it('lays the extras over the allow-list (the per-job docker config wins)', () => {
    const out = dockerEnv(STEP_ENV, { DOCKER_CONFIG: '/ours', DOCKER_CLI_HINTS: 'false' }, 'linux');
    expect(out.DOCKER_CONFIG).toBe('/ours');
    expect(out.DOCKER_CLI_HINTS).toBe('false');
  });

  it('matches names exactly on Linux and macOS, case-insensitively on Windows', () => {
    const env = { Path: 'C:\\bin', SystemRoot: 'C:\\Windows', docker_host: 'npipe:////./pipe/x', NPM_TOKEN: 'p', Input_Password: 'p' };
    expect(dockerEnv(env, {}, 'linux')).toEqual({});
    expect(dockerEnv(env, {}, 'darwin')).toEqual({});
    expect(dockerEnv(env, {}, 'win32')).toEqual({ Path: 'C:\\bin', SystemRoot: 'C:\\Windows', docker_host: 'npipe:////./pipe/x' });
    // Windows' own variables are for Windows only.
    expect(dockerEnv({ SYSTEMROOT: 'C:\\Windows', COMSPEC: 'cmd.exe' }, {}, 'linux')).toEqual({});
  });
});

/** Runs `script` in a child Node through nodeExec (as `file`, default this Node). */
function node(script: string, options: Parameters<typeof nodeExec>[2] = {}, file = process.execPath): ReturnType<typeof nodeExec> {
  return nodeExec(file, ['-e', script], options);
}

const ECHO = `
  let stdin = '';
  process.stdin.setEncoding('utf8').on('data', (c) => (stdin += c)).on('end', () => {
    process.stdout.write(JSON.stringify({ argv: process.argv, stdin, env: process.env }));
  });`;

describe('nodeExec', () => {
  it('hands the secret on stdin, never in argv, and returns what the child printed', async () => {
    const secret = 'pw-on-stdin-9f2c\nsecond line';
    const result = await node(ECHO, { input: secret });
    expect(result.exitCode).toBe(0);
    const seen = JSON.parse(result.stdout) as { argv: string[]; stdin: string };
    expect(seen.stdin).toBe(secret);
    expect(seen.argv.join(' ')).not.toContain('pw-on-stdin');
  });

  it('reports a failing exit code and the stderr, without throwing', async () => {
    const result = await node("process.stderr.write('denied: bad credentials'); process.exit(3)");
    expect(result).toEqual({ exitCode: 3, stdout: '', stderr: 'denied: bad credentials' });
  });

  it('gives a child named docker only the allow-list, and any other child the whole environment', async () => {
    vi.stubEnv('INPUT_PASSWORD', 'input-password-value');
    vi.stubEnv('DOCKER_PASSWORD', 'workflow-secret-value');
    vi.stubEnv('DOCKER_HOST', 'unix:///run/docker.sock');
    const docker = path.join(tmp(), 'docker');
    await fs.symlink(process.execPath, docker);
    const asDocker = JSON.parse((await node(ECHO, { env: { DOCKER_CONFIG: '/job/config' } }, docker)).stdout) as {
      env: Record<string, string>;
    };
    expect(asDocker.env.DOCKER_CONFIG).toBe('/job/config');
    expect(asDocker.env.DOCKER_HOST).toBe('unix:///run/docker.sock');
    expect(asDocker.env.PATH).toBe(process.env.PATH);
    expect(asDocker.env.INPUT_PASSWORD).toBeUndefined();
    expect(asDocker.env.DOCKER_PASSWORD).toBeUndefined();
    // Nothing else of this process's environment (the test runner's own variables included).
    expect(Object.keys(asDocker.env).sort()).toEqual(Object.keys(dockerEnv(process.env, { DOCKER_CONFIG: '' })).sort());

    // The agent's on-change command is not docker: its environment was allow-listed when it started.
    const other = JSON.parse((await node(ECHO, { env: { EXTRA: 'x' } })).stdout) as { env: Record<string, string> };
    expect(other.env.INPUT_PASSWORD).toBe('input-password-value');
    expect(other.env.EXTRA).toBe('x');
  });

  it('names a program that is not on PATH', async () => {
    // A PATH of one empty directory: an entry this user may not search would answer EACCES instead.
    vi.stubEnv('PATH', tmp());
    await expect(nodeExec('no-such-program-ps-4b1e', [])).rejects.toThrow("'no-such-program-ps-4b1e' was not found on PATH");
  });

  it('kills a child that outlives its timeout, and says so', async () => {
    const result = await node('setInterval(() => {}, 1000)', { timeoutMs: 50 });
    expect(result.exitCode).toBe(128);
    expect(result.stderr).toMatch(/\(killed by SIGTERM\)$/);
  });

  it('a child that exits without reading its stdin is reported by its exit code, not as a write error', async () => {
    const result = await node('process.exit(4)', { input: 'x'.repeat(4 * 1024 * 1024) });
    expect(result.exitCode).toBe(4);
  });
});
