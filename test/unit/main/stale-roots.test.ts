import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPrivateDir } from '../../../src/core/private-dir.ts';
import type { Config } from '../../../src/inputs/main.ts';
import type { Runner } from '../../../src/core/runner.ts';
import { DEFAULT_JOB_LIFETIME_MS, rootLife, sweepStaleRoots } from '../../../src/main/stale-roots.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

function runner(): Runner & { infos: string[]; warnings: string[] } {
  const infos: string[] = [];
  const warnings: string[] = [];
  return { infos, warnings, info: (m: string) => infos.push(m), warning: (m: string) => warnings.push(m) } as unknown as Runner & {
    infos: string[];
    warnings: string[];
  };
}

const config = { vault: undefined, renew: undefined } as unknown as Config;
const noVault = (): never => {
  throw new Error('no Vault client wanted');
};

describe('stale roots', () => {
  it('a root expires 6 h after main, or after agent-max-lifetime when longer', () => {
    expect(rootLife(config, 0).expires).toBe(new Date(DEFAULT_JOB_LIFETIME_MS).toISOString());
    const renew = { ...config, renew: { maxLifetimeMs: 7 * 24 * 3600_000 } } as unknown as Config;
    expect(rootLife(renew, 0).expires).toBe(new Date(7 * 24 * 3600_000).toISOString());
    const short = { ...config, renew: { maxLifetimeMs: 1000 } } as unknown as Config;
    expect(rootLife(short, 0).expires).toBe(new Date(DEFAULT_JOB_LIFETIME_MS).toISOString());
  });

  it('removes only expired roots of ours, and says so with count and paths', async () => {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'stale-base-'));
    dirs.push(base);
    const env = { RUNNER_TEMP: base };
    const old = await createPrivateDir(env, undefined, '/nonexistent', { expires: new Date(1000).toISOString() });
    const fresh = await createPrivateDir(env, undefined, '/nonexistent', rootLife(config, Date.now()));
    const legacy = await createPrivateDir(env, undefined, '/nonexistent');
    const link = path.join(base, 'pipeline-secrets-link');
    await fs.symlink(old.root, link);
    const r = runner();
    const result = await sweepStaleRoots({ env, runner: r, loadVaultClient: noVault, shm: '/nonexistent' }, config);
    expect(result.removed).toEqual([old.root]);
    expect(r.infos.join('\n')).toContain(`removed 1 expired private director(ies)`);
    expect(r.infos.join('\n')).toContain(old.root);
    for (const kept of [fresh.root, legacy.root]) await expect(fs.lstat(kept)).resolves.toBeDefined();
    await expect(fs.lstat(link)).resolves.toBeDefined();
    // Nothing expired: nothing said.
    const quiet = runner();
    await sweepStaleRoots({ env, runner: quiet, loadVaultClient: noVault, shm: '/nonexistent' }, config);
    expect([...quiet.infos, ...quiet.warnings]).toEqual([]);
  });
});
