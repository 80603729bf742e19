// The docker CLI as post and verify run it: argv that ends options with `--` before every
// operand (dockerEnv, its environment: test/unit/core/exec.test.ts). (checkLedger: test/unit/core/ledger.test.ts.)
import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerLogin, dockerLogout } from '../../../src/docker/login.ts';
import type { Exec } from '../../../src/core/exec.ts';
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
