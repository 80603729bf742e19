// The fault matrix: every fault kind the Vault double can inject, at every request position of a
// job (login, mount detection, each read, lease revoke, token revoke), once (transient) and for
// good (persistent). Each case runs main and post through the runner harness and asserts: success
// after retry or one clean error line; nothing partially delivered; after post no file, lease or
// token left behind (or, when Vault never lets post revoke, a warning naming what was not revoked);
// and no value in any log line outside ::add-mask::.
import { promises as fs } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertNoLeak } from '../harness/index.ts';
import { VaultDouble } from '../vault-double/index.ts';
import { MAIN, POST, VALUES, newJob } from './setup.ts';

type Kind = 'status-503' | 'status-500' | 'status-429' | 'status-412' | 'reset' | 'malformed' | 'latency' | 'hang';
const KINDS: Kind[] = ['status-503', 'status-500', 'status-429', 'status-412', 'reset', 'malformed', 'latency', 'hang'];

interface Position {
  name: string;
  method: string;
  path: string | RegExp;
  /** Seen by post rather than main. */
  inPost: boolean;
  /** The request may create something (a token): only provably-unprocessed failures are retried. */
  creates: boolean;
}
const POSITIONS: Position[] = [
  { name: 'login', method: 'POST', path: 'auth/approle/login', inPost: false, creates: true },
  { name: 'mount detection', method: 'GET', path: /^sys\/internal\/ui\/mounts\/secret\//, inPost: false, creates: false },
  { name: 'first read (kv)', method: 'GET', path: 'secret/data/ci/app', inPost: false, creates: false },
  { name: 'second read (dynamic)', method: 'GET', path: 'database/creds/ci', inPost: false, creates: false },
  { name: 'lease revoke', method: 'PUT', path: /^sys\/leases\/revoke/, inPost: true, creates: false },
  { name: 'token revoke', method: 'POST', path: 'auth/token/revoke-self', inPost: true, creates: false },
];

function fault(kind: Kind, position: Position, persistent: boolean) {
  const where = { method: position.method, path: position.path, ...(persistent ? {} : { times: 1 }) };
  switch (kind) {
    case 'status-503':
      return { ...where, kind: 'status' as const, status: 503 };
    case 'status-500':
      return { ...where, kind: 'status' as const, status: 500 };
    case 'status-429':
      return { ...where, kind: 'status' as const, status: 429, retryAfter: 0 };
    case 'status-412':
      return { ...where, kind: 'status' as const, status: 412 };
    case 'latency':
      return { ...where, kind: 'latency' as const, latencyMs: 300 };
    default:
      return { ...where, kind };
  }
}

/** Whether the action recovers from this fault: a retry that is safe and within the budget. */
function recovers(kind: Kind, position: Position, persistent: boolean): boolean {
  if (kind === 'latency') return true;
  if (persistent) return false;
  if (kind === 'hang') return false; // the step timeout is the budget: one hang spends it
  // A login that may have been processed is not retried blindly (it would mint a second token).
  if (position.creates) return kind === 'status-503' || kind === 'status-429' || kind === 'status-412';
  return true;
}

async function setup(): Promise<{ vault: VaultDouble; dynamic: string[] }> {
  const vault = await VaultDouble.start();
  const dynamic: string[] = [];
  vault.enableKv('secret', 2);
  vault.putKv('secret', 'ci/app', { password: VALUES.password });
  vault.enableEngine('database', 'database');
  vault.addDynamicRole('database', 'ci', {
    ttl: 600,
    renewable: true,
    make: () => {
      const password = `dyn-db-password-${dynamic.length}-${Math.random().toString(36).slice(2)}`;
      dynamic.push(password);
      return { username: `v-ci-${dynamic.length}`, password };
    },
  });
  vault.addPolicy('ci', [
    { path: 'secret/data/ci/*', capabilities: ['read'] },
    { path: 'database/creds/ci', capabilities: ['read'] },
    { path: 'sys/leases/revoke', capabilities: ['update'] },
  ]);
  vault.addAppRole('approle', 'ci', { roleId: VALUES.roleId, secretId: VALUES.roleSecretId, policies: ['ci'], ttl: 600 });
  return { vault, dynamic };
}

const cases = POSITIONS.flatMap((position) =>
  KINDS.flatMap((kind) => [false, true].filter((p) => !(kind === 'hang' && !p)).map((persistent) => ({ position, kind, persistent }))),
);

describe.concurrent('fault matrix', () => {
  it.each(cases.map((c) => [`${c.kind} ${c.persistent ? 'persistent' : 'once'} at ${c.position.name}`, c] as const))(
    '%s',
    async (_name, c) => {
      const { vault, dynamic } = await setup();
      const job = await newJob();
      try {
        vault.inject(fault(c.kind, c.position, c.persistent));
        const main = await job.runMain(MAIN, {
          url: vault.url,
          method: 'approle',
          'role-id': VALUES.roleId,
          'secret-id': VALUES.roleSecretId,
          timeout: '3',
          secrets: 'secret/data/ci/app password | DB_PASSWORD\ndatabase/creds/ci password | DYN_PASSWORD',
        });
        const ledger = JSON.parse(main.state.ledger ?? '{}') as { root?: string; secretsDir?: string; files?: string[] };
        const mainRecovers = c.position.inPost || recovers(c.kind, c.position, c.persistent);
        if (mainRecovers) {
          expect(main.exitCode, main.log).toBe(0);
          expect((await fs.readdir(ledger.secretsDir ?? '')).sort()).toEqual(['DB_PASSWORD', 'DYN_PASSWORD']);
        } else {
          expect(main.exitCode, main.log).toBe(1);
          const errors = main.annotations.filter((a) => a.level === 'error');
          expect(errors).toHaveLength(1);
          expect(errors[0]?.message).not.toMatch(/\n|\bat .*:\d+:\d+\)/);
          // Nothing partially delivered: no secret file, no output, no env.
          if (ledger.secretsDir) expect(await fs.readdir(ledger.secretsDir)).toEqual([]);
          expect(main.outputs['secrets-dir']).toBeUndefined();
          expect(Object.keys(main.env)).toEqual([]);
        }

        const post = await job.runPost(POST, main);
        expect(post.exitCode, post.log).toBe(0);
        const postRecovers = !c.position.inPost || recovers(c.kind, c.position, c.persistent);
        const warnings = post.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
        if (postRecovers) {
          expect(warnings, post.log).toEqual([]);
          expect(vault.liveTokens(), 'tokens left').toEqual([]);
          expect(vault.liveLeases(), 'leases left').toEqual([]);
        } else if (c.position.name === 'token revoke') {
          expect(warnings.join('\n')).toMatch(/Vault token not revoked/);
        } else {
          // Leases that cannot be revoked by id go with their token.
          expect(vault.liveLeases()).toEqual([]);
          expect(vault.liveTokens()).toEqual([]);
        }
        for (const dir of [ledger.root, ledger.secretsDir]) if (dir) await expect(fs.lstat(dir)).rejects.toThrow();
        assertNoLeak(job, [main, post], [VALUES.password, VALUES.roleSecretId, ...dynamic], {
          privateDirs: [ledger.root ?? '', ledger.secretsDir ?? ''],
        });
      } finally {
        await job.cleanup();
        await vault.stop();
      }
    },
  );
});
