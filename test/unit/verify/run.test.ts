// runVerify through the recording fake runner and a fake `docker exec` (no docker): the outcome of
// each case, the one-line failure of each mistake with no stack, and no value anywhere visible.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Exec, ExecResult } from '../../../src/core/exec.ts';
import { runVerify } from '../../../src/verify/run.ts';
import { fakeRunner, type FakeRunner } from '../../support/fake-runner.ts';
import { tempDir } from '../../support/temp.ts';

const VALUE = 'pa55-w0rd-value-never-read-back';

/** A secrets directory as main delivers it: one file per secret. */
function secretsDir(): string {
  const dir = tempDir('ps-verify-');
  writeFileSync(path.join(dir, 'DB_PASSWORD'), VALUE);
  writeFileSync(path.join(dir, 'API_KEY'), 'k3y');
  return dir;
}

/** A docker that answers `docker exec` with `answer` and records every argv. */
function fakeDocker(answer: ExecResult | Error): Exec & { calls: string[][] } {
  const calls: string[][] = [];
  const exec = async (_file: string, args: readonly string[]): Promise<ExecResult> => {
    calls.push([...args]);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return Object.assign(exec, { calls });
}

const sizes = (lines: string[]): ExecResult => ({ exitCode: 0, stdout: `${lines.join('\n')}\n`, stderr: '' });

async function verify(
  inputs: Record<string, string>,
  docker: Exec & { calls: string[][] },
  env: Record<string, string> = {},
): Promise<FakeRunner> {
  const runner = fakeRunner();
  const withs = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]));
  await runVerify({ env: { ...env, ...withs }, runner, exec: docker });
  // Presence and size only: no value in the log, the summary, the failure or docker's argv.
  expect(runner.visible()).not.toContain(VALUE);
  expect(JSON.stringify(docker.calls)).not.toContain(VALUE);
  return runner;
}

/** The step failed with exactly `message`, as one line with no stack trace in any output. */
function failedWith(runner: FakeRunner, message: string | RegExp): void {
  expect(runner.failures).toHaveLength(1);
  if (typeof message === 'string') expect(runner.failures[0]).toBe(message);
  else expect(runner.failures[0]).toMatch(message);
  expect(runner.failures[0]).not.toMatch(/\n/);
  expect(runner.visible()).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
  expect(runner.summaries.join('\n')).toContain('### Pipeline Secrets verify: failed');
}

describe('runVerify', () => {
  it('every secret present with its size: a summary table, a line each, no failure', async () => {
    const dir = secretsDir();
    const docker = fakeDocker(sizes(['API_KEY 3', `DB_PASSWORD ${VALUE.length}`]));
    const runner = await verify({ container: 'app', 'secrets-dir': dir }, docker);
    expect(runner.failures).toEqual([]);
    expect(docker.calls[0]?.slice(0, 3)).toEqual(['exec', '--', 'app']);
    expect(docker.calls[0]?.slice(-3)).toEqual(['/run/secrets', 'API_KEY', 'DB_PASSWORD']);
    expect(runner.summaries.join('\n')).toContain('2 of 2 secret(s) present at /run/secrets');
    expect(runner.infos).toContain(`DB_PASSWORD: expected ${VALUE.length} bytes, ${VALUE.length} bytes in app:/run/secrets`);
  });

  it('a missing secret fails the step naming it; fail-on-mismatch: FALSE only reports it', async () => {
    const dir = secretsDir();
    const failing = await verify(
      { container: 'app', 'secrets-dir': dir, 'fail-on-mismatch': 'TRUE' },
      fakeDocker(sizes(['API_KEY 3', 'DB_PASSWORD -'])),
    );
    expect(failing.failures).toEqual(["verify: 1 secret(s) missing or of another size in container 'app': DB_PASSWORD"]);
    expect(failing.summaries.join('\n')).toContain('| DB_PASSWORD |');
    const reported = await verify(
      { container: 'app', 'secrets-dir': dir, 'fail-on-mismatch': 'FALSE' },
      fakeDocker(sizes(['API_KEY 3', 'DB_PASSWORD -'])),
    );
    expect(reported.failures).toEqual([]);
    expect(reported.summaries.join('\n')).toContain('1 of 2 secret(s) present');
  });

  it('reads the directory from PIPELINE_SECRETS_DIR and mounts at path', async () => {
    const docker = fakeDocker(sizes(['API_KEY 3', `DB_PASSWORD ${VALUE.length}`]));
    const runner = await verify({ container: 'app', path: '/secrets' }, docker, { PIPELINE_SECRETS_DIR: secretsDir() });
    expect(runner.failures).toEqual([]);
    expect(docker.calls[0]).toContain('/secrets');
  });

  describe('each mistake: one line naming the input, no stack, docker not run', () => {
    it.each<[string, Record<string, string>, Record<string, string>, string | RegExp]>([
      [
        'fail-on-mismatch: yes',
        { container: 'app', 'fail-on-mismatch': 'yes' },
        {},
        "input 'fail-on-mismatch': 'yes' is not a boolean; use true or false",
      ],
      ['no container', { container: '' }, {}, "input 'container': is required (the name or id of a running container)"],
      [
        'a container that reads as an option',
        { container: '--env-file=/etc/passwd' },
        {},
        "input 'container': '--env-file=/etc/passwd' starts with '-', so it is not a container name or id; refused",
      ],
      [
        'no directory',
        { container: 'app', 'secrets-dir': '' },
        { PIPELINE_SECRETS_DIR: '' },
        "input 'secrets-dir': not given and PIPELINE_SECRETS_DIR is not set; run Pipeline Secrets in an earlier step",
      ],
      [
        'a directory that is not there',
        { container: 'app', 'secrets-dir': '/nonexistent/ps' },
        {},
        "input 'secrets-dir': cannot read /nonexistent/ps (ENOENT)",
      ],
      [
        'PIPELINE_SECRETS_DIR of another job, gone',
        { container: 'app', 'secrets-dir': '' },
        { PIPELINE_SECRETS_DIR: '/nonexistent/ps' },
        /^input 'secrets-dir': not given, and \/nonexistent\/ps \(from PIPELINE_SECRETS_DIR, .*\) cannot be read \(ENOENT\)$/,
      ],
    ])('%s', async (_, inputs, env, message) => {
      const docker = fakeDocker(sizes([]));
      const runner = await verify({ 'secrets-dir': secretsDir(), ...inputs }, docker, env);
      failedWith(runner, message);
      expect(docker.calls).toEqual([]);
      expect(runner.debugs).toEqual([]);
    });
  });

  it("docker's own failure names the container input, as one line with no stack", async () => {
    const noSuch = fakeDocker({ exitCode: 1, stdout: '', stderr: 'Error response from daemon: No such container: app\n' });
    failedWith(
      await verify({ container: 'app', 'secrets-dir': secretsDir() }, noSuch),
      "container 'app': Error response from daemon: No such container: app",
    );
    const noMount = fakeDocker({ exitCode: 3, stdout: '', stderr: '' });
    failedWith(
      await verify({ container: 'app', 'secrets-dir': secretsDir() }, noMount),
      "container 'app': /run/secrets does not exist in the container",
    );
    const noDocker = await verify(
      { container: 'app', 'secrets-dir': secretsDir() },
      fakeDocker(new Error("'docker' was not found on PATH")),
    );
    failedWith(noDocker, "container 'app': 'docker' was not found on PATH");
    expect(noDocker.debugs).toEqual([]);
  });
});
