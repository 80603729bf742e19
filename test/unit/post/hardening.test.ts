// The docker CLI as post and verify run it: an allow-listed environment (dockerEnv), and argv
// that ends options with `--` before every operand. (checkLedger: test/unit/core/ledger.test.ts.)
import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerLogin, dockerLogout } from '../../../src/docker/login.ts';
import { dockerEnv, type Exec } from '../../../src/core/exec.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import type { Runner } from '../../../src/core/runner.ts';
import { verifyContainer } from '../../../src/verify/container.ts';

const made: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-hardening-'));
  made.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

describe('dockerEnv', () => {
  const env = {
    PATH: '/bin',
    HOME: '/home/u',
    DOCKER_CONFIG: '/c',
    DOCKER_HOST: 'tcp://d:2376',
    DOCKER_PASSWORD: 'p',
    DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'p',
    INPUT_REGISTRY_PASSWORD: 'p',
    NPM_TOKEN: 'p',
    https_proxy: 'http://proxy:3128',
    SSL_CERT_DIR: '/etc/ssl/certs',
    ACTIONS_RUNTIME_TOKEN: 'p',
  };
  it('passes only the allow-list, then the extras', () => {
    expect(dockerEnv(env, { DOCKER_CONFIG: '/ours' }, 'linux')).toEqual({
      PATH: '/bin',
      HOME: '/home/u',
      DOCKER_CONFIG: '/ours',
      DOCKER_HOST: 'tcp://d:2376',
      https_proxy: 'http://proxy:3128',
      SSL_CERT_DIR: '/etc/ssl/certs',
    });
  });
  it('matches names case-insensitively on Windows', () => {
    expect(dockerEnv({ Path: 'C:\\bin', SystemRoot: 'C:\\Windows', NPM_TOKEN: 'p' }, {}, 'win32')).toEqual({
      Path: 'C:\\bin',
      SystemRoot: 'C:\\Windows',
    });
  });
});

describe('docker argv', () => {
  const calls: string[][] = [];
  const exec: Exec = async (_file, args) => {
    calls.push([...args]);
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  const runner = { setSecret: () => {} } as unknown as Runner;
  afterEach(() => {
    calls.length = 0;
  });

  it('ends options with -- before every operand', async () => {
    await verifyContainer(exec, 'app', '/run/secrets', [{ name: 'a', bytes: 1 }]);
    await dockerLogout(exec, '/c', '-r');
    const config = tmp();
    await fs.writeFile(path.join(config, 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: 'eDp5' } } }));
    await dockerLogin(exec, config, { registry: 'r.example', username: '-u', password: 'pw-123456', from: 'x' }, new MaskRegistry(runner));
    expect(calls[0]?.slice(0, 3)).toEqual(['exec', '--', 'app']);
    expect(calls[1]).toEqual(['logout', '--', '-r']);
    expect(calls[2]).toEqual(['login', '--username=-u', '--password-stdin', '--', 'r.example']);
  });

  it('refuses a container that starts with -, naming the input, without running docker', async () => {
    await expect(verifyContainer(exec, '--env-file=/etc/passwd', '/run/secrets', [], { input: 'verify-container' })).rejects.toThrow(
      "input 'verify-container': '--env-file=/etc/passwd' starts with '-', so it is not a container name or id; refused",
    );
    expect(calls).toEqual([]);
  });

  it("scrubs docker's error output", async () => {
    const failing: Exec = async () => ({ exitCode: 1, stdout: '', stderr: 'error: secret-value-42 here' });
    await expect(
      verifyContainer(failing, 'app', '/run/secrets', [], { scrub: (t) => t.replaceAll('secret-value-42', '***') }),
    ).rejects.toThrow("container 'app': error: *** here");
  });
});
