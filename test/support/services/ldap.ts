// A real LDAP directory for tests (Debian's slapd, OpenLDAP 2.5), so OpenBao's ldap auth method can
// bind, search and check real passwords; users and groups are added by the test. One throwaway
// directory per instance, on 127.0.0.1 only.
//
// Facts that shaped this (slapd 2.5, slapd.conf(5), slapd(8)):
// - A per-instance slapd.conf (`-f`): the package's own cn=config in /etc/ldap/slapd.d and its
//   system service are never used. back_mdb is a module in Debian (`moduleload back_mdb` from
//   /usr/lib/ldap); the schemas are core, cosine, inetorgperson and nis from /etc/ldap/schema (nis
//   defines memberUid, which OpenBao's default group filter names).
// - `-d 0` keeps slapd in the foreground (any -d means "do not detach") with no debug output, so
//   the lifecycle owns its pid; it is one process, and SIGTERM shuts it down cleanly. As root
//   without `-u` it stays root: it only ever listens on 127.0.0.1.
// - The tree (base, ou=people, ou=groups) is written with slapadd before the start; users and
//   groups are added over LDAP as the rootdn (cn=admin), which is also the bind DN OpenBao uses.
// - Access: userPassword can only be used to authenticate (`by anonymous auth`), never read;
//   everything else is readable, which the user and group searches need.
// - Ubuntu (GitHub's runners) confines /usr/sbin/slapd with an AppArmor profile that allows its
//   config and database only under /etc/ldap and /var/lib/ldap. Profiles attach by path, so where
//   that profile is loaded slapd runs from a copy in the instance dir (named `slapd`: the binary
//   acts by the name it is run as, slapadd is the same file).
// - ldap-utils read ldap.conf and ~/.ldaprc unless LDAPNOINIT is set: they get a clean environment.
//
// Each instance lives in its own temp dir (config, database, log, owner.pid); the lifecycle is that
// of lifecycle.ts: own process group under pdeathsig, exit hook, sweep of dirs of dead owners.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePackages } from './install.ts';
import { daemonStopper, freePort, makeInstanceDir, readText, sleep, spawnDaemon, sweepStaleDaemons, tail, terminate } from './lifecycle.ts';

export interface Ldap {
  /** 'ldap://127.0.0.1:PORT' */
  readonly url: string;
  readonly port: number;
  /** 'dc=example,dc=org' */
  readonly baseDn: string;
  /** Where users are: 'ou=people,dc=example,dc=org' (OpenBao's userdn; userattr is uid). */
  readonly usersDn: string;
  /** Where groups are: 'ou=groups,dc=example,dc=org' (OpenBao's groupdn; groupattr is cn). */
  readonly groupsDn: string;
  /** The directory's admin (the rootdn): OpenBao's binddn. */
  readonly bindDn: string;
  readonly bindPassword: string;
  /** The instance's temp dir (config, database, log); slapd's command line names it. */
  readonly dir: string;
  /** 'uid=<uid>,ou=people,<baseDn>' */
  userDn(uid: string): string;
  /** 'cn=<cn>,ou=groups,<baseDn>' */
  groupDn(cn: string): string;
  /** A person under ou=people whose simple bind with `password` succeeds. */
  addUser(uid: string, password: string): Promise<void>;
  /** A groupOfNames under ou=groups whose members are the users `memberUids` (at least one). */
  addGroup(cn: string, memberUids: readonly string[]): Promise<void>;
  /** True when a simple bind as `dn` with `password` succeeds (ldapwhoami). */
  canBind(dn: string, password: string): Promise<boolean>;
  /** LDIF of the entries under baseDn matching `filter`, as the admin (the rootdn, which sees all) reads them. */
  search(filter: string, attrs?: readonly string[]): Promise<string>;
  /** slapd's log so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
const LDAPADD = '/usr/bin/ldapadd';
const LDAPWHOAMI = '/usr/bin/ldapwhoami';
const LDAPSEARCH = '/usr/bin/ldapsearch';
const SCHEMAS = ['core', 'cosine', 'inetorgperson', 'nis'];
const PREFIX = 'ps-ldap-';
const BASE_DN = 'dc=example,dc=org';
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LDAPNOINIT: '1', LC_ALL: 'C' };

const APPARMOR_PROFILE = '/etc/apparmor.d/usr.sbin.slapd';

/** True when the package's AppArmor profile would confine /usr/sbin/slapd to the system paths. */
function confinedByAppArmor(): boolean {
  if (!existsSync(APPARMOR_PROFILE)) return false;
  try {
    return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    return false;
  }
}

/** Removes instance dirs (and their slapd) whose owning test process is gone. */
interface Ran {
  code: number | null;
  out: string;
}

function run(file: string, args: string[], input = '', timeoutMs = 15_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: ENV, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
    child.stdin.on('error', () => undefined); // a program that exits early closes its stdin
    child.stdin.end(input);
  });
}

/** RDN values the tests use: plain names, so no DN escaping is needed. */
function checkName(what: string, value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) throw new Error(`${what} ${JSON.stringify(value)}: use letters, digits, . _ -`);
  return value;
}

/** An LDIF attribute line; base64 (`attr:: ...`) so any value, e.g. a password, is safe. */
const attr = (name: string, value: string): string => `${name}:: ${Buffer.from(value, 'utf8').toString('base64')}`;

/** {SSHA} of `password` (RFC 2307 style, what slappasswd makes by default). */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

export async function startLdap(): Promise<Ldap> {
  await ensurePackages(['slapd', 'ldap-utils']);
  sweepStaleDaemons(PREFIX, 'slapd.pid');
  const dir = makeInstanceDir(tmpdir(), PREFIX);
  const logFile = join(dir, 'slapd.log');
  const dbDir = join(dir, 'db');
  const conf = join(dir, 'slapd.conf');
  const { own, stop } = daemonStopper(dir, 2000);

  const bindDn = `cn=admin,${BASE_DN}`;
  const bindPassword = randomBytes(18).toString('hex');
  const usersDn = `ou=people,${BASE_DN}`;
  const groupsDn = `ou=groups,${BASE_DN}`;
  const userDn = (uid: string): string => `uid=${checkName('uid', uid)},${usersDn}`;
  const groupDn = (cn: string): string => `cn=${checkName('group cn', cn)},${groupsDn}`;

  try {
    mkdirSync(dbDir, { mode: 0o700 });
    writeFileSync(
      conf,
      [
        ...SCHEMAS.map((s) => `include /etc/ldap/schema/${s}.schema`),
        'modulepath /usr/lib/ldap',
        'moduleload back_mdb',
        // userPassword only ever to authenticate with; all else readable for the searches
        'access to attrs=userPassword by self write by anonymous auth by * none',
        'access to * by * read',
        'database mdb',
        'maxsize 16777216',
        `suffix "${BASE_DN}"`,
        `rootdn "${bindDn}"`,
        `rootpw ${ssha(bindPassword)}`,
        `directory ${JSON.stringify(dbDir)}`,
        'index objectClass eq',
        'index uid,cn,member,memberUid eq',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const seed = [
      [`dn: ${BASE_DN}`, 'objectClass: top', 'objectClass: dcObject', 'objectClass: organization', 'o: example', 'dc: example'],
      [`dn: ${usersDn}`, 'objectClass: organizationalUnit', 'ou: people'],
      [`dn: ${groupsDn}`, 'objectClass: organizationalUnit', 'ou: groups'],
    ]
      .map((e) => `${e.join('\n')}\n`)
      .join('\n');
    writeFileSync(join(dir, 'seed.ldif'), seed);
    const added = await run(SLAPADD, ['-q', '-f', conf, '-l', join(dir, 'seed.ldif')]);
    if (added.code !== 0) throw new Error(`slapadd of the base entries failed (exit ${String(added.code)}):\n${tail(added.out)}`);

    let slapd = SLAPD;
    if (confinedByAppArmor()) {
      slapd = join(dir, 'slapd');
      copyFileSync(SLAPD, slapd);
    }
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const d = spawnDaemon(slapd, ['-d', '0', '-h', `ldap://127.0.0.1:${port}/`, '-f', conf], {
        log: logFile,
        env: ENV,
        pidFile: join(dir, 'slapd.pid'),
      });
      own(d);
      const deadline = Date.now() + 15_000;
      let up = false;
      let last = '';
      while (!d.hasExited() && Date.now() < deadline) {
        const who = await run(LDAPWHOAMI, [
          '-x',
          '-o',
          'nettimeout=2',
          '-H',
          `ldap://127.0.0.1:${port}/`,
          '-D',
          bindDn,
          '-w',
          bindPassword,
        ]);
        last = who.out;
        if ((up = who.code === 0)) break;
        await sleep(20);
      }
      if (up && !d.hasExited()) break;
      const why = tail(`${readText(logFile)}\n${last}`);
      await terminate(d, 0);
      if (attempt < 3 && /Address already in use|bind\(\d+\) failed/i.test(why)) continue;
      throw new Error(`slapd on 127.0.0.1:${port} did not come up:\n${why}`);
    }
    const url = `ldap://127.0.0.1:${port}`;

    const ldapadd = async (ldif: string, what: string): Promise<void> => {
      const res = await run(LDAPADD, ['-x', '-H', url, '-D', bindDn, '-w', bindPassword], ldif);
      if (res.code !== 0) throw new Error(`ldapadd of ${what} failed (exit ${String(res.code)}): ${res.out.trim()}`);
    };
    const addUser = async (uid: string, password: string): Promise<void> => {
      const dn = userDn(uid);
      await ldapadd(
        [
          `dn: ${dn}`,
          'objectClass: inetOrgPerson',
          `uid: ${uid}`,
          `cn: ${uid}`,
          `sn: ${uid}`,
          attr('userPassword', ssha(password)),
          '',
        ].join('\n'),
        dn,
      );
    };
    const addGroup = async (cn: string, memberUids: readonly string[]): Promise<void> => {
      const dn = groupDn(cn);
      // groupOfNames MUSTs a member (core.schema)
      if (memberUids.length === 0) throw new Error(`group ${cn}: a groupOfNames needs at least one member`);
      await ldapadd(
        [`dn: ${dn}`, 'objectClass: groupOfNames', `cn: ${cn}`, ...memberUids.map((u) => `member: ${userDn(u)}`), ''].join('\n'),
        dn,
      );
    };
    const canBind = async (dn: string, password: string): Promise<boolean> =>
      (await run(LDAPWHOAMI, ['-x', '-o', 'nettimeout=5', '-H', url, '-D', dn, '-w', password])).code === 0;
    const search = async (filter: string, attrs: readonly string[] = []): Promise<string> => {
      const res = await run(LDAPSEARCH, [
        '-x',
        '-LLL',
        '-o',
        'ldif-wrap=no',
        '-H',
        url,
        '-D',
        bindDn,
        '-w',
        bindPassword,
        '-b',
        BASE_DN,
        filter,
        ...attrs,
      ]);
      if (res.code !== 0) throw new Error(`ldapsearch ${filter} failed (exit ${String(res.code)}): ${res.out.trim()}`);
      return res.out;
    };

    return {
      url,
      port,
      baseDn: BASE_DN,
      usersDn,
      groupsDn,
      bindDn,
      bindPassword,
      dir,
      userDn,
      groupDn,
      addUser,
      addGroup,
      canBind,
      search,
      log: () => readText(logFile),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
