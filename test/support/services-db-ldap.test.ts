// The PostgreSQL and LDAP test services work: each is a real server of its own (Debian's postgres
// and slapd) on 127.0.0.1 only; roles and users made in them behave as the real thing does
// (password logins succeed, wrong passwords fail), and stop() leaves no process, no shared memory
// and no instance dir behind. What is checked is asked of the servers, ldapwhoami and /proc.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLdap, type Ldap } from './services/ldap.ts';
import { startPostgres, type Postgres } from './services/postgres.ts';

/** Running and not a zombie. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** `pid` and every live process below it. */
function processTree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // ended meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [p, pp] of parents) if (pp === tree[i] && alive(p)) tree.push(p);
  return tree;
}

/** Local addresses that listen on TCP `port` (from /proc/net/tcp and tcp6). */
function listeners(port: number): string[] {
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      const [addr, hexPort] = (local ?? '').split(':');
      if (state !== '0A' || addr === undefined || Number.parseInt(hexPort ?? '', 16) !== port) continue;
      // IPv4 is one little-endian word; anything longer (IPv6) is reported as is
      out.push(
        addr.length === 8
          ? (addr.match(/../g) ?? [])
              .reverse()
              .map((b) => Number.parseInt(b, 16))
              .join('.')
          : addr,
      );
    }
  }
  return out;
}

const pidIn = (file: string): number => Number(readFileSync(file, 'utf8'));

function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { PATH: '/usr/bin:/bin', LDAPNOINIT: '1' } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

describe('PostgreSQL service', () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it('serves on 127.0.0.1 only, to the admin with its password', async () => {
    expect(pg.host).toBe('127.0.0.1');
    expect(listeners(pg.port)).toEqual(['127.0.0.1']);
    expect(await pg.query('SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user')).toEqual([[pg.adminUser, 't']]);
    expect(pg.url).toBe(`postgresql://${pg.adminUser}:${pg.adminPassword}@127.0.0.1:${pg.port}/postgres?sslmode=disable`);
    // as root the server runs as the postgres system user, never as root
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pidIn(`${pg.dir}/postgres.pid`)}/status`, 'utf8'))?.[1];
    if (process.getuid?.() === 0) expect(uid).not.toBe('0');
    else expect(uid).toBe(String(process.getuid?.()));
  });

  it('lists a role created by SQL in roles(), and not once it is dropped', async () => {
    expect(await pg.roles()).toEqual([]);
    await pg.query(`CREATE ROLE "v-token-ci-1" WITH LOGIN PASSWORD 'pw-1' VALID UNTIL 'infinity'`);
    await pg.query(`CREATE ROLE "v-token-ci-2" WITH LOGIN PASSWORD 'pw-2'`);
    expect(await pg.roles()).toEqual(['v-token-ci-1', 'v-token-ci-2']);
    await pg.query('DROP ROLE "v-token-ci-1"');
    expect(await pg.roles()).toEqual(['v-token-ci-2']);
    await pg.query('DROP ROLE "v-token-ci-2"');
    expect(await pg.roles()).toEqual([]);
  });

  it('logs a role in over TCP with its password, and refuses a wrong one', async () => {
    await pg.query(`CREATE ROLE app WITH LOGIN PASSWORD 'right-pw'`);
    try {
      expect(await pg.queryAs('app', 'right-pw', 'SELECT current_user, inet_server_addr()')).toEqual([['app', '127.0.0.1']]);
      await expect(pg.queryAs('app', 'wrong-pw', 'SELECT 1')).rejects.toThrow(/password authentication failed for user "app"/);
      await expect(pg.queryAs(pg.adminUser, 'wrong-pw', 'SELECT 1')).rejects.toThrow(/password authentication failed/);
      await expect(pg.query('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
    } finally {
      await pg.query('DROP ROLE app');
    }
  });

  it('returns the rows of every statement, in order', async () => {
    expect(await pg.query(`SELECT 1, 'a|b'; SELECT 2, '' UNION ALL SELECT 3, 'c'`)).toEqual([
      ['1', 'a|b'],
      ['2', ''],
      ['3', 'c'],
    ]);
    expect(await pg.query('SELECT 1 WHERE false')).toEqual([]);
  });

  it('stop() ends the server and its backends, frees its shared memory and removes its dir', async () => {
    const pid = pidIn(`${pg.dir}/postgres.pid`);
    await pg.query('SELECT 1');
    const tree = processTree(pid);
    expect(tree.length).toBeGreaterThan(1); // postmaster and its checkpointer, walwriter, ...
    const dir = pg.dir;
    await pg.stop();
    expect(tree.filter(alive)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(listeners(pg.port)).toEqual([]);
    const shm = readFileSync('/proc/sysvipc/shm', 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((r) => r[4] === String(pid)); // cpid
    expect(shm).toEqual([]);
    await pg.stop(); // a second stop is fine
  });
});

describe('LDAP service (slapd)', () => {
  let ldap: Ldap;
  beforeAll(async () => {
    ldap = await startLdap();
  });
  afterAll(async () => {
    await ldap?.stop();
  });

  it('serves on 127.0.0.1 only, to the admin bind DN', async () => {
    expect(ldap.url).toBe(`ldap://127.0.0.1:${ldap.port}`);
    expect(listeners(ldap.port)).toEqual(['127.0.0.1']);
    const who = await run('/usr/bin/ldapwhoami', ['-x', '-H', ldap.url, '-D', ldap.bindDn, '-w', ldap.bindPassword]);
    expect(who).toEqual({ code: 0, out: `dn:${ldap.bindDn}\n` });
  });

  it('lets a user added by addUser bind with its password, and not with a wrong one', async () => {
    const password = `pw with spaces, 'quotes' and :colons`;
    await ldap.addUser('ci-bot', password);
    expect(ldap.userDn('ci-bot')).toBe(`uid=ci-bot,ou=people,${ldap.baseDn}`);
    const ok = await run('/usr/bin/ldapwhoami', ['-x', '-H', ldap.url, '-D', ldap.userDn('ci-bot'), '-w', password]);
    expect(ok).toEqual({ code: 0, out: `dn:uid=ci-bot,ou=people,${ldap.baseDn}\n` });
    const bad = await run('/usr/bin/ldapwhoami', ['-x', '-H', ldap.url, '-D', ldap.userDn('ci-bot'), '-w', 'wrong']);
    expect(bad.code).toBe(49);
    expect(bad.out).toMatch(/Invalid credentials/);
    expect(await ldap.canBind(ldap.userDn('ci-bot'), password)).toBe(true);
    expect(await ldap.canBind(ldap.userDn('nobody'), password)).toBe(false);
    await expect(ldap.addUser('ci-bot', 'again')).rejects.toThrow(/Already exists/);
  });

  it('keeps userPassword from being read, and finds groups by member', async () => {
    await ldap.addUser('ann', 'pw-ann');
    await ldap.addGroup('deployers', ['ann', 'ci-bot']);
    const anonymous = await run('/usr/bin/ldapsearch', ['-x', '-LLL', '-H', ldap.url, '-b', ldap.baseDn, '(uid=ann)', '*']);
    expect(anonymous.code).toBe(0);
    expect(anonymous.out).toContain(`dn: uid=ann,ou=people,${ldap.baseDn}`);
    expect(anonymous.out).not.toMatch(/userPassword/i);
    expect(await ldap.search(`(member=${ldap.userDn('ann')})`, ['cn'])).toBe(`dn: ${ldap.groupDn('deployers')}\ncn: deployers\n\n`);
    await expect(ldap.addGroup('empty', [])).rejects.toThrow(/at least one member/);
  });

  it('stop() ends slapd and removes its dir', async () => {
    const pid = pidIn(`${ldap.dir}/slapd.pid`);
    const tree = processTree(pid);
    const dir = ldap.dir;
    await ldap.stop();
    expect(tree.filter(alive)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(listeners(ldap.port)).toEqual([]);
    expect((await run('/usr/bin/ldapwhoami', ['-x', '-o', 'nettimeout=2', '-H', ldap.url])).code).not.toBe(0);
  });
});
