// BuildKit secret outputs: each names a delivered file (never a value), and the `--secret` args
// stay one argument per secret whatever the path holds.
import { describe, expect, it } from 'vitest';
import { buildSecretOutputs } from '../../../src/docker/build-secrets.ts';

const specs = [
  { id: 'npm', name: 'NPM_TOKEN' },
  { id: 'pip.conf', name: 'pip' },
];
const envNames = new Map([['NPM_TOKEN', 'NPM_TOKEN']]);

describe('buildSecretOutputs', () => {
  it('secret-files lines, --secret args, and no secret-envs without env export', () => {
    expect(buildSecretOutputs(specs, '/dev/shm/ps/secrets', envNames, false)).toEqual({
      files: 'npm=/dev/shm/ps/secrets/NPM_TOKEN\npip.conf=/dev/shm/ps/secrets/pip',
      envs: undefined,
      args: '--secret id=npm,src=/dev/shm/ps/secrets/NPM_TOKEN --secret id=pip.conf,src=/dev/shm/ps/secrets/pip',
    });
  });

  it('secret-envs with env export: the env name of each secret, its name when it has none', () => {
    expect(buildSecretOutputs(specs, '/s', envNames, true).envs).toBe('npm=NPM_TOKEN\npip.conf=pip');
  });

  it.each([
    ['a space', '/home/my runner/s', `--secret 'id=npm,src="/home/my runner/s/NPM_TOKEN"'`],
    ['a comma', '/tmp/a,b', `--secret 'id=npm,src="/tmp/a,b/NPM_TOKEN"'`],
    ['a double quote', '/tmp/a"b', `--secret 'id=npm,src="/tmp/a""b/NPM_TOKEN"'`],
    ['a single quote', "/tmp/o'k", `--secret 'id=npm,src=/tmp/o'\\''k/NPM_TOKEN'`],
  ])('a path with %s is quoted for docker (CSV) and the shell', (_what, dir, args) => {
    expect(buildSecretOutputs(specs.slice(0, 1), dir, envNames, false).args).toBe(args);
  });
});
