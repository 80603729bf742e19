import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDockerConfig } from '../../../src/docker/login.ts';

const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'ps-dcfg-'));
  made.push(d);
  return d;
};
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('createDockerConfig', () => {
  it("keeps the user's per-registry credential helpers, drops credsStore and the helpers of registries we log in to, and never writes the user's config", () => {
    const home = tmp();
    mkdirSync(path.join(home, '.docker'));
    const userConfig = JSON.stringify({
      credsStore: 'desktop',
      credHelpers: { '123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login', 'ghcr.io': 'gh' },
      auths: { 'old.example': { auth: 'eA==' } },
    });
    writeFileSync(path.join(home, '.docker', 'config.json'), userConfig);
    const before = statSync(path.join(home, '.docker', 'config.json')).mtimeMs;
    const saved = process.env.DOCKER_CONFIG;
    delete process.env.DOCKER_CONFIG;
    return createDockerConfig(tmp(), home, ['ghcr.io'])
      .then((dir) => {
        const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
        expect(config).toEqual({ auths: {}, credHelpers: { '123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login' } });
        expect(statSync(dir).mode & 0o777).toBe(0o700);
        expect(statSync(path.join(dir, 'config.json')).mode & 0o777).toBe(0o600);
        expect(readFileSync(path.join(home, '.docker', 'config.json'), 'utf8')).toBe(userConfig);
        expect(statSync(path.join(home, '.docker', 'config.json')).mtimeMs).toBe(before);
      })
      .finally(() => {
        if (saved !== undefined) process.env.DOCKER_CONFIG = saved;
      });
  });
});
