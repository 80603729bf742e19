// Debian packages the Docker test services need, installed when missing. A fresh machine has none of
// them; as root this runs `apt-get update` and `apt-get install`, otherwise it fails saying exactly
// what to install. The presence check only looks at files (no process is started), so it costs
// well under a millisecond when everything is there.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';

interface PackageProbe {
  /** Debian package name. */
  readonly name: string;
  /** True when the package's files this project uses are in place. */
  present(): boolean;
}

/** The engine's daemon: Debian's docker.io puts it in /usr/sbin, Docker's own packages in /usr/bin. */
export function dockerdPath(): string | undefined {
  return ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => existsSync(p));
}

/**
 * kubectl: any on the usual paths counts (GitHub's hosted images and Google's packages ship their
 * own); only a machine with none gets Debian's kubernetes-client.
 */
export function kubectlPath(): string | undefined {
  return ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
}

/** runc: /usr/sbin (Debian's runc) or /usr/bin (Docker's containerd.io). */
export function runcPath(): string | undefined {
  return ['/usr/sbin/runc', '/usr/bin/runc'].find((p) => existsSync(p));
}

/** Where the docker CLI looks for a plugin (`docker compose` is the v2 plugin `docker-compose`). */
const CLI_PLUGIN_DIRS = ['/usr/libexec/docker/cli-plugins', '/usr/lib/docker/cli-plugins', '/usr/local/lib/docker/cli-plugins'];

/**
 * How to run compose here: the v2 plugin under /usr/bin/docker when the machine has it (GitHub's
 * hosted Ubuntu images, Docker's own packages), else Debian's docker-compose (1.29, python, talks
 * to DOCKER_HOST itself); undefined when neither is installed.
 */
export function composeCommand(): readonly string[] | undefined {
  if (CLI_PLUGIN_DIRS.some((d) => existsSync(`${d}/docker-compose`))) return ['/usr/bin/docker', 'compose'];
  if (existsSync('/usr/bin/docker-compose')) return ['/usr/bin/docker-compose'];
  return undefined;
}

function files(...paths: string[]): () => boolean {
  return () => paths.every((p) => existsSync(p));
}

/** True for an ELF executable without a PT_INTERP program header, i.e. statically linked. */
export function isStaticElf(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64) return false;
    if (head.readUInt32BE(0) !== 0x7f454c46) return false; // \x7fELF
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(0x20) : head.readBigUInt64BE(0x20)) : u32(head, 0x1c);
    const phentsize = u16(head, is64 ? 0x36 : 0x2a);
    const phnum = u16(head, is64 ? 0x38 : 0x2c);
    if (phnum === 0 || phentsize < 4) return false;
    const table = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, table, 0, table.length, phoff) < table.length) return false;
    for (let i = 0; i < phnum; i++) {
      if (u32(table, i * phentsize) === 3 /* PT_INTERP */) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * What the Docker services use, by package. docker.io's own CLI is /usr/bin/docker (20.10, BuildKit
 * with DOCKER_BUILDKIT=1); a newer CLI in /usr/local/bin does not count.
 */
export const PACKAGES: readonly PackageProbe[] = [
  // A machine that already has an engine keeps it: GitHub's hosted Ubuntu images ship Docker's own
  // packages (moby: /usr/bin/dockerd, runc in /usr/bin), and Debian's docker.io would conflict with
  // them. Only a machine with no engine at all gets Debian's.
  { name: 'docker.io', present: () => dockerdPath() !== undefined && existsSync('/usr/bin/docker') },
  { name: 'containerd', present: files('/usr/bin/containerd', '/usr/bin/containerd-shim-runc-v2') },
  { name: 'runc', present: () => runcPath() !== undefined },
  { name: 'docker-registry', present: files('/usr/bin/docker-registry') },
  { name: 'apache2-utils', present: files('/usr/bin/htpasswd') },
  // the `busybox` package also ships /bin/busybox, but dynamically linked: useless in a bare image
  { name: 'busybox-static', present: () => isStaticElf('/bin/busybox') },
  { name: 'openssl', present: files('/usr/bin/openssl') },
  // compose, for test/e2e/compose.test.ts: a machine with the v2 plugin keeps it; only one with no
  // compose at all gets Debian's docker-compose
  { name: 'docker-compose', present: () => composeCommand() !== undefined },
  // setfacl, for `file-owner` on a runner that is not root (test/e2e/non-root-containers.test.ts)
  { name: 'acl', present: files('/usr/bin/setfacl', '/usr/bin/getfacl') },
  // the HTTP(S) proxy of test/support/services/proxy.ts; -bin is the executable alone (the `tinyproxy`
  // package adds a system service on port 8888 and a system user)
  { name: 'tinyproxy-bin', present: files('/usr/bin/tinyproxy') },
  // the PostgreSQL server of test/support/services/postgres.ts (initdb, postgres, psql, pg_isready under
  // /usr/lib/postgresql/<major>/bin; the metapackage pulls in the current major)
  {
    name: 'postgresql',
    present: () => {
      let majors: string[];
      try {
        majors = readdirSync('/usr/lib/postgresql');
      } catch {
        return false;
      }
      return majors.some((m) => ['initdb', 'postgres', 'psql', 'pg_isready'].every((f) => existsSync(`/usr/lib/postgresql/${m}/bin/${f}`)));
    },
  },
  // the LDAP server of test/support/services/ldap.ts and the schemas it loads
  {
    name: 'slapd',
    present: files('/usr/sbin/slapd', ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `/etc/ldap/schema/${s}.ldif`)),
  },
  { name: 'ldap-utils', present: files('/usr/bin/ldapadd', '/usr/bin/ldapwhoami', '/usr/bin/ldapsearch') },
  // the consumers of rendered templates (test/e2e/templates-*.test.ts): nginx with auth_basic for a
  // .netrc (test/support/services/nginx.ts), curl and git as its clients, kubectl for a kubeconfig
  { name: 'nginx', present: files('/usr/sbin/nginx') },
  { name: 'curl', present: files('/usr/bin/curl') },
  { name: 'git', present: files('/usr/bin/git') },
  { name: 'kubernetes-client', present: () => kubectlPath() !== undefined },
];

/** Missing packages, among `only` when given (names from PACKAGES). */
export function missingPackages(only?: readonly string[]): string[] {
  return PACKAGES.filter((p) => (only === undefined || only.includes(p.name)) && !p.present()).map((p) => p.name);
}

export function installCommand(names: readonly string[]): string {
  return `apt-get update && apt-get install -y --no-install-recommends ${names.join(' ')}`;
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      // apt's chatter goes to stderr so a caller's stdout stays clean
      stdio: ['ignore', 2, 2],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'l', NEEDRESTART_SUSPEND: '1' },
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`})`));
    });
  });
}

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

async function install(names: string[]): Promise<void> {
  // Keep package scripts from starting the system's docker/containerd/registry services: the tests
  // run their own instances, and a system containerd would be picked up by any dockerd.
  const addedPolicy = !existsSync(POLICY_RC_D);
  if (addedPolicy)
    writeFileSync(POLICY_RC_D, '#!/bin/sh\n# added by pipeline-secrets test set-up while installing\nexit 101\n', { mode: 0o755 });
  try {
    const lock = ['-o', 'DPkg::Lock::Timeout=300'];
    await run('apt-get', [...lock, 'update']);
    await run('apt-get', [...lock, 'install', '-y', '--no-install-recommends', ...names]);
  } finally {
    if (addedPolicy) rmSync(POLICY_RC_D, { force: true });
  }
}

const ensured = new Map<string, Promise<void>>();

/**
 * Makes sure every package in PACKAGES (or only those named in `only`, e.g. ['openssl'] for a
 * service that needs nothing else) is installed: nothing to do when all are there; as root,
 * installs the missing ones with apt-get; otherwise rejects with the command to run.
 */
export function ensurePackages(only?: readonly string[]): Promise<void> {
  for (const name of only ?? []) {
    if (!PACKAGES.some((p) => p.name === name)) return Promise.reject(new Error(`${name} is not in PACKAGES`));
  }
  const key = only === undefined ? '*' : [...only].sort().join(' ');
  const existing = ensured.get(key);
  if (existing) return existing;
  const attempt = (async () => {
    const missing = missingPackages(only);
    if (missing.length === 0) return;
    if (process.platform !== 'linux') throw new Error(`the test services need Linux (Debian packages ${missing.join(', ')})`);
    if (process.getuid?.() !== 0) {
      throw new Error(`missing Debian packages: ${missing.join(', ')}. Install them as root: ${installCommand(missing)}`);
    }
    if (!existsSync('/usr/bin/apt-get')) {
      throw new Error(`missing Debian packages: ${missing.join(', ')}, and there is no apt-get to install them with`);
    }
    process.stderr.write(`installing missing Debian packages: ${missing.join(' ')}\n`);
    await install(missing);
    const still = missingPackages(only);
    if (still.length > 0) throw new Error(`still missing after apt-get install: ${still.join(', ')}`);
  })();
  ensured.set(key, attempt);
  // a failed attempt may be retried by a later call
  attempt.catch(() => {
    if (ensured.get(key) === attempt) ensured.delete(key);
  });
  return attempt;
}
