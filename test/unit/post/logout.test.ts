// logoutRegistries: docker logout of each registry main attempted a login for, with the per-job
// DOCKER_CONFIG, against a fake docker CLI.
import { describe, expect, it } from 'vitest';
import { logoutRegistries } from '../../../src/post/logout.ts';
import { fakeExec } from './fixtures.ts';

describe('logoutRegistries', () => {
  it('logs out of each registry with the per-job config; a failure is a problem and the next goes on', async () => {
    const docker = fakeExec((args) => ({ exitCode: args.at(-1) === 'bad.example' ? 1 : 0 }));
    const ledger = { files: [], leases: [], dockerConfig: '/root/docker', registries: ['ghcr.io', 'bad.example', 'r.example:5000'] };
    expect(await logoutRegistries(docker.exec, ledger)).toEqual({
      loggedOut: ['ghcr.io', 'r.example:5000'],
      problems: ['docker logout bad.example failed (exit 1)'],
    });
    expect(docker.calls.map((c) => [c.file, c.args, c.options?.env])).toEqual(
      ['ghcr.io', 'bad.example', 'r.example:5000'].map((r) => ['docker', ['logout', '--', r], { DOCKER_CONFIG: '/root/docker' }]),
    );
  });

  it('names the registry when docker cannot run', async () => {
    const ledger = { files: [], leases: [], dockerConfig: '/root/docker', registries: ['ghcr.io'] };
    const missing = async (): Promise<never> => Promise.reject(new Error("'docker' was not found on PATH"));
    expect(await logoutRegistries(missing, ledger)).toEqual({
      loggedOut: [],
      problems: ["docker logout ghcr.io: 'docker' was not found on PATH"],
    });
  });

  it('runs nothing without a docker config main created', async () => {
    const docker = fakeExec();
    expect(await logoutRegistries(docker.exec, { files: [], leases: [], registries: ['ghcr.io'] })).toEqual({
      loggedOut: [],
      problems: [],
    });
    expect(docker.calls).toEqual([]);
  });
});
