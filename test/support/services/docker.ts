// Real Docker parts for tests, all on this machine and on 127.0.0.1 only: a private dockerd (the
// machine's own engine: Debian's docker.io 20.10 here, installed when there is none; Docker's moby
// packages on GitHub's hosted Ubuntu images, not verified here), BuildKit, vfs storage, no bridge,
// with its own containerd, and Debian's
// docker-registry (distribution 2.8) with htpasswd auth, plain HTTP or TLS. Nothing is pulled: the
// base image is made by `docker import` of a busybox-static rootfs.
//
// Every instance lives in its own temp dir (data-root, exec-root, sockets, pidfiles, configs, logs).
// Daemons run in their own process groups under `setpriv --pdeathsig KILL`, so they die with the
// test process even when it is killed; stop() ends them, their leftovers (containerd shims) and
// mounts, and removes the dir; an exit hook does the same synchronously for instances not stopped;
// a later start sweeps dirs whose owning test process is gone (lifecycle.ts).
//
// Facts measured here that shaped this (dockerd 20.10.24, containerd 1.6.20, registry 2.8.2):
// - dockerd starts its own containerd under exec-root unless /run/containerd/containerd.sock exists,
//   in which case it silently uses the system's. We always start our own and pass --containerd.
// - dockerd reads /etc/docker/daemon.json unless --config-file says otherwise, and writes its trust key
//   to /etc/docker/key.json unless daemon.json's deprecated-key-path says otherwise; we give it both.
//   A dockerd-managed containerd also creates /opt/containerd (plugin io.containerd.internal.v1.opt).
// - `docker login` (CLI 20.10) asks the daemon to log in (POST /auth); only when no daemon answers
//   does the CLI log in itself. So the daemon is what must reach and trust the registry.
// - dockerd has no flag for another certs dir: it reads /etc/docker/certs.d/HOST:PORT/ca.crt. But it
//   always counts 127.0.0.0/8 as an insecure registry (`docker info`: Insecure Registries), and for
//   those it skips certificate verification (and falls back to plain HTTP). The ca.crt we write for a
//   TLS registry is therefore not load-bearing on loopback; it is written (and removed on stop) so the
//   set-up stays right if that default ever changes.
// - The built-in Dockerfile frontend of 20.10 supports `RUN --mount=type=secret,id=ID[,target=,required=]`
//   without a `# syntax=` line; a `# syntax=docker/dockerfile:...` line makes BuildKit pull the
//   frontend image and fails here. `env=` on a secret mount is not supported by the built-in frontend.
// - BuildKit's cache key of a RUN does not include the secret's content: a rebuild with another
//   secret value reuses the cached layer (use --no-cache when the value matters).
// - docker-registry ignores SIGTERM unless http.draintimeout is set; it keeps no state worth a
//   graceful stop, so it is SIGKILLed.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { dockerdPath, ensurePackages } from './install.ts';
import {
  freePort,
  isRunning,
  makeInstanceDir,
  onExit,
  signal,
  sleep,
  sleepSync,
  spawnDaemon,
  sweepDeadOwners,
  terminate,
  type Daemon,
} from './lifecycle.ts';

export { ensurePackages } from './install.ts';

export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  /** stdout as the bytes it was (`docker save` writes a tar). */
  stdoutBytes: Buffer;
  stderr: string;
}

export interface DockerEngine {
  /** 'unix:///tmp/ps-docker-.../docker.sock': use as DOCKER_HOST. */
  readonly host: string;
  /** '/usr/bin/docker': the engine package's CLI (20.10), which builds with BuildKit when DOCKER_BUILDKIT=1. */
  readonly cli: string;
  /** { DOCKER_HOST, DOCKER_BUILDKIT: '1' }, to merge into a child's env. */
  readonly env: Record<string, string>;
  /**
   * Runs `cli ...args`. Env: this process's env without DOCKER_HOST/DOCKER_CONTEXT/DOCKER_TLS*,
   * DOCKER_CERT_PATH, then DOCKER_CONFIG set to a per-engine empty dir (so the real ~/.docker is never
   * read or written unless opts.env names one), then `env`, then opts.env. code is null when killed
   * (timeout: default 120 s).
   */
  run(args: string[], opts?: RunOptions): Promise<RunResult>;
  stop(): Promise<void>;
}

export interface Registry {
  /** '127.0.0.1:PORT' */
  readonly host: string;
  readonly username: string;
  readonly password: string;
  readonly tls: boolean;
  /** The self-signed certificate (its own CA) of a TLS registry, PEM. */
  readonly caPem?: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  tls?: boolean;
  /** Make this engine trust a TLS registry's CA (/etc/docker/certs.d/HOST:PORT/ca.crt, removed on stop). */
  engine?: DockerEngine;
  username?: string;
  password?: string;
}

const CLI = '/usr/bin/docker';
export const BASE_IMAGE = 'ps-busybox:latest';
const CERTS_D = '/etc/docker/certs.d';
const ENGINE_PREFIX = 'ps-docker-';
const REGISTRY_PREFIX = 'ps-registry-';
/** PATH for the daemons: Debian's binaries only, never /usr/local (a newer docker CLI lives there). */
const DAEMON_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
/** Links made in the base image, where busybox has the applet. */
const APPLETS = [
  'sh', 'cat', 'wc', 'ls', 'test', '[', 'sleep', 'kill', 'echo', 'printf', 'stat', 'head', 'tail', 'grep', 'tr', 'od',
  'env', 'printenv', 'true', 'false', 'mkdir', 'rm', 'cp', 'mv', 'touch', 'chmod', 'id', 'cut', 'sed', 'tee', 'find',
  'base64', 'sha256sum', 'xxd', 'hexdump', 'dd', 'sort', 'uniq', 'ps', 'mount', 'readlink', 'timeout',
]; // prettier-ignore

// ---------------------------------------------------------------------------------------------------
// processes

/** pids of processes (not this one) whose command line mentions `needle`: what a daemon left behind. */
export function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle) && isRunning(pid)) found.push(pid);
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

/** Mount points at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points: string[] = [];
  for (const line of text.split('\n')) {
    const raw = line.split(' ')[4];
    if (raw === undefined) continue;
    const point = raw.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (point === dir || point.startsWith(dir + '/')) points.push(point);
  }
  return points.sort((a, b) => b.length - a.length);
}

/** `roots` and all their descendants (one /proc snapshot). */
function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    // no procfs
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.substring(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // ended meanwhile
    }
  }
  const seen = new Set<number>();
  const todo = roots.filter(isRunning);
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    if (seen.has(pid) || pid === process.pid) continue;
    seen.add(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return [...seen];
}

/** The cgroup dirs named `name` at the top of each mounted hierarchy (v1 and v2), deepest first. */
function cgroupDirs(name: string): string[] {
  const root = '/sys/fs/cgroup';
  const tops = [join(root, name)];
  try {
    for (const h of readdirSync(root)) tops.push(join(root, h, name));
  } catch {
    return [];
  }
  const dirs: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const n of names) walk(join(d, n));
    dirs.push(d);
  };
  for (const t of tops) if (existsSync(join(t, 'cgroup.procs'))) walk(t);
  return dirs;
}

function cgroupPids(name: string): number[] {
  const pids = new Set<number>();
  for (const d of cgroupDirs(name)) {
    try {
      for (const line of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (line !== '') pids.add(Number(line));
    } catch {
      // removed meanwhile
    }
  }
  return [...pids];
}

function removeCgroups(name: string): void {
  for (const d of cgroupDirs(name)) {
    try {
      rmdirSync(d);
    } catch {
      // still has processes, or gone
    }
  }
}

/**
 * Everything an instance may have left running: its daemons and their descendants, processes that
 * name its dir (containerd shims, which re-parent away), their descendants (container processes),
 * and whatever is in its cgroup.
 */
function leftovers(dir: string, daemons: readonly number[], cgroup: string | undefined): number[] {
  const pids = new Set(processTree([...daemons, ...processesMentioning(dir)]));
  if (cgroup !== undefined) for (const pid of cgroupPids(cgroup)) pids.add(pid);
  pids.delete(process.pid);
  return [...pids].filter(isRunning);
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) signal(pid, 'SIGKILL', false);
}

async function killLeftovers(dir: string, daemons: readonly number[], cgroup: string | undefined): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const pids = leftovers(dir, daemons, cgroup);
    if (pids.length === 0) return;
    killAll(pids);
    for (let i = 0; i < 40 && pids.some(isRunning); i++) await sleep(50);
  }
}

function unmountUnder(dir: string): void {
  for (const point of mountsUnder(dir)) {
    try {
      spawnSync('umount', ['-l', point], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // best effort
    }
  }
}

/** What is left after the processes are gone: mounts, cgroups, certs.d entries, the dir. */
function removeRemains(dir: string, cgroup: string | undefined): void {
  unmountUnder(dir);
  if (cgroup !== undefined) removeCgroups(cgroup);
  removeCertsDirs(dir);
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort
  }
}

/**
 * Synchronous cleanup for the exit hook and for instances of dead test processes: SIGKILL to
 * everything (no graceful stop: all the state is thrown away), then remove what remains.
 */
function cleanupSync(dir: string, daemons: readonly number[], cgroup: string | undefined): void {
  for (let round = 0; round < 3; round++) {
    const pids = leftovers(dir, daemons, cgroup);
    if (pids.length === 0) break;
    killAll(pids);
    const until = Date.now() + 2000;
    while (pids.some(isRunning) && Date.now() < until) sleepSync(20);
  }
  removeRemains(dir, cgroup);
}

/** Short base for socket paths (unix sockets are limited to 107 bytes). */
function tempBase(): string {
  const t = tmpdir();
  return t.length <= 40 ? t : '/tmp';
}

/** Removes instance dirs (and what they left running or mounted) whose owning process is gone. */
function sweepStale(): void {
  sweepDeadOwners({
    bases: new Set([tempBase(), '/tmp']),
    prefixes: [ENGINE_PREFIX, REGISTRY_PREFIX],
    pidFiles: ['docker.pid', 'containerd.pid', 'registry.pid'],
    cleanup: (dir, pids) => cleanupSync(dir, pids, basename(dir).startsWith(ENGINE_PREFIX) ? basename(dir) : undefined),
  });
}

// ---------------------------------------------------------------------------------------------------
// running commands

function runCommand(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { input?: string; timeoutMs?: number; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env,
      detached: true, // own process group, so a timeout kills the whole tree
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.stdin?.on('error', () => {
      // the command may exit without reading its input
    });
    child.stdin?.end(opts.input ?? '');
    const timer = setTimeout(() => {
      if (child.pid !== undefined) signal(child.pid, 'SIGKILL', true);
    }, opts.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

async function mustRun(file: string, args: string[], opts: { input?: string; cwd?: string } = {}): Promise<string> {
  const env = { ...process.env, PATH: DAEMON_PATH };
  const r = await runCommand(file, args, env, opts);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`);
  return r.stdout;
}

function logTail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function mustBeRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (the tests run as root on CI and on the developers' machines)`);
}

// ---------------------------------------------------------------------------------------------------
// engine

function pingDocker(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

async function waitForFile(path: string, d: Daemon, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (existsSync(path)) return true;
    if (d.hasExited()) return false;
    await sleep(50);
  }
  return false;
}

export async function startEngine(): Promise<DockerEngine> {
  await ensurePackages();
  mustBeRoot('dockerd');
  sweepStale();
  const dir = makeInstanceDir(tempBase(), ENGINE_PREFIX);
  const daemons: Daemon[] = [];
  // containers and BuildKit steps go into this instance's own cgroup (not the shared "docker")
  const cgroup = basename(dir);
  const unregister = onExit(() =>
    cleanupSync(
      dir,
      daemons.map((d) => d.pid),
      cgroup,
    ),
  );

  const ctrDir = join(dir, 'containerd');
  const ctrSock = join(ctrDir, 'c.sock');
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const sock = join(dir, 'docker.sock');
  const cliConfig = join(dir, 'cli-config');
  for (const d of [ctrDir, dataRoot, execRoot, cliConfig]) mkdirSync(d, { recursive: true });
  const q = (s: string): string => JSON.stringify(s);
  writeFileSync(
    join(ctrDir, 'config.toml'),
    [
      'version = 2',
      `root = ${q(join(ctrDir, 'root'))}`,
      `state = ${q(join(ctrDir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${q(ctrSock)}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '[plugins]',
      '  [plugins."io.containerd.internal.v1.opt"]', // default /opt/containerd
      `    path = ${q(join(ctrDir, 'opt'))}`,
      '',
    ].join('\n'),
  );
  // 20.10 writes its trust key to /etc/docker/key.json unless told otherwise
  writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') }) + '\n');
  const daemonEnv = { PATH: DAEMON_PATH, HOME: dir, TMPDIR: dir };

  let stopping: Promise<void> | undefined;
  const stopNow = async (): Promise<void> => {
    const [containerd, dockerd] = daemons;
    if (dockerd) await terminate(dockerd, 20_000); // stops containers (--shutdown-timeout), then itself
    if (containerd) await terminate(containerd, 10_000);
    await killLeftovers(
      dir,
      daemons.map((d) => d.pid),
      cgroup,
    );
    removeRemains(dir, cgroup);
    unregister();
  };
  const stop = (): Promise<void> => (stopping ??= stopNow());

  try {
    const containerd = spawnDaemon('/usr/bin/containerd', ['--config', join(ctrDir, 'config.toml')], {
      log: join(dir, 'containerd.log'),
      env: daemonEnv,
      pidFile: join(dir, 'containerd.pid'),
    });
    daemons.push(containerd);
    if (!(await waitForFile(ctrSock, containerd, 20_000))) {
      throw new Error(`containerd did not come up:\n${logTail(join(dir, 'containerd.log'))}`);
    }
    // prettier-ignore
    const dockerd = spawnDaemon(dockerdPath() ?? '/usr/sbin/dockerd', [
      '--config-file', join(dir, 'daemon.json'),
      '--containerd', ctrSock,
      '--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs',
      '--data-root', dataRoot, '--exec-root', execRoot,
      '--cgroup-parent', cgroup, '--shutdown-timeout', '2',
      '-H', `unix://${sock}`, '--pidfile', join(dir, 'docker.pid'),
    ], { log: join(dir, 'dockerd.log'), env: daemonEnv });
    daemons.push(dockerd);
    const deadline = Date.now() + 30_000;
    while (!(await pingDocker(sock))) {
      if (dockerd.hasExited()) throw new Error(`dockerd exited during start:\n${logTail(join(dir, 'dockerd.log'))}`);
      if (Date.now() > deadline) throw new Error(`dockerd did not answer within 30 s:\n${logTail(join(dir, 'dockerd.log'))}`);
      await sleep(100);
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const host = `unix://${sock}`;
  const env: Record<string, string> = { DOCKER_HOST: host, DOCKER_BUILDKIT: '1' };
  const run = (args: string[], opts: RunOptions = {}): Promise<RunResult> => {
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_CONFIG'])
      delete base[k];
    return runCommand(CLI, args, { ...base, DOCKER_CONFIG: cliConfig, ...env, ...opts.env }, opts);
  };
  const engine: DockerEngine = { host, cli: CLI, env, run, stop };

  const version = await run(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 30_000 });
  if (version.code !== 0 || version.stdout.trim() === '') {
    await stop();
    throw new Error(`docker version did not answer: ${version.stderr.trim()}`);
  }
  return engine;
}

let shared: Promise<DockerEngine> | undefined;

/**
 * One engine per test process, started on first use and stopped when the process exits (or by its
 * stop(), after which the next call starts a new one).
 */
export function sharedEngine(): Promise<DockerEngine> {
  shared ??= startEngine().then(
    (engine) => ({
      ...engine,
      stop: async () => {
        shared = undefined;
        await engine.stop();
      },
    }),
    (e: unknown) => {
      shared = undefined;
      throw e;
    },
  );
  return shared;
}

// ---------------------------------------------------------------------------------------------------
// base image

const baseImages = new WeakMap<DockerEngine, Promise<string>>();

/** Imports `ps-busybox:latest` (busybox-static plus applet links, PATH=/bin) into the engine, once per engine. */
export function ensureBaseImage(engine: DockerEngine): Promise<string> {
  let p = baseImages.get(engine);
  if (!p) {
    p = importBaseImage(engine);
    baseImages.set(engine, p);
    p.catch(() => baseImages.delete(engine));
  }
  return p;
}

async function importBaseImage(engine: DockerEngine): Promise<string> {
  const work = mkdtempSync(join(tempBase(), 'ps-rootfs-'));
  try {
    const root = join(work, 'rootfs');
    for (const d of ['bin', 'etc', 'tmp', 'run', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'bin/busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    const available = new Set((await mustRun('/bin/busybox', ['--list'])).split('\n'));
    for (const applet of APPLETS) if (available.has(applet)) symlinkSync('busybox', join(root, 'bin', applet));
    const tar = join(work, 'rootfs.tar');
    await mustRun('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tar, '.']);
    const r = await engine.run(['import', '-c', 'ENV PATH=/bin', '-c', 'CMD ["sh"]', tar, BASE_IMAGE], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`docker import failed: ${r.stderr.trim()}`);
    return BASE_IMAGE;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// registry

/** Status of GET /v2/, or 0 when nothing answers yet. */
function probeRegistry(host: string, caPem: string | undefined): Promise<number> {
  return new Promise((resolve) => {
    const [hostname, port] = host.split(':');
    const opts = { hostname, port: Number(port), path: '/v2/', timeout: 1000 };
    const req = caPem !== undefined ? https.get({ ...opts, ca: caPem }, done) : http.get(opts, done);
    function done(res: http.IncomingMessage): void {
      res.resume();
      resolve(res.statusCode ?? 0);
    }
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
  });
}

/** certs.d dirs this instance created, recorded in its dir so a sweep can remove them too. */
function recordCertsDir(dir: string, created: string): void {
  const file = join(dir, 'certs.d.list');
  const prev = existsSync(file) ? readFileSync(file, 'utf8') : '';
  writeFileSync(file, prev + created + '\n');
}

function removeCertsDirs(dir: string): void {
  let list: string[];
  try {
    list = readFileSync(join(dir, 'certs.d.list'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const path of list.reverse()) {
    if (!path.startsWith('/etc/docker/')) continue;
    // a listed parent (certs.d, /etc/docker) is removed only if nothing else was put in it
    if (path === CERTS_D || path === '/etc/docker') {
      try {
        rmdirSync(path);
      } catch {
        // not empty or gone
      }
    } else {
      rmSync(path, { recursive: true, force: true });
    }
  }
  rmSync(join(dir, 'certs.d.list'), { force: true });
}

function trustInDaemon(dir: string, host: string, caPem: string): void {
  for (const parent of ['/etc/docker', CERTS_D]) {
    if (!existsSync(parent)) {
      mkdirSync(parent, { mode: 0o755 });
      recordCertsDir(dir, parent);
    }
  }
  // the port was free, so an existing dir for it is a leftover of a run that died: replaced
  const hostDir = join(CERTS_D, host);
  recordCertsDir(dir, hostDir); // recorded first: a crash between the two still gets it removed
  mkdirSync(hostDir, { recursive: true });
  writeFileSync(join(hostDir, 'ca.crt'), caPem);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  await ensurePackages();
  sweepStale();
  const tls = opts.tls ?? false;
  const username = opts.username ?? 'ci-pusher';
  const password = opts.password ?? `pw-${randomBytes(12).toString('hex')}`;
  const dir = makeInstanceDir(tempBase(), REGISTRY_PREFIX);
  let daemon: Daemon | undefined;
  const unregister = onExit(() => cleanupSync(dir, daemon ? [daemon.pid] : [], undefined));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (daemon) await terminate(daemon, 0); // SIGKILL: it ignores SIGTERM and keeps nothing to flush
      await killLeftovers(dir, daemon ? [daemon.pid] : [], undefined);
      removeRemains(dir, undefined);
      unregister();
    })());

  try {
    const htpasswd = join(dir, 'htpasswd');
    // -i: password from stdin, not argv
    await mustRun('/usr/bin/htpasswd', ['-B', '-i', '-c', htpasswd, username], { input: password });
    let caPem: string | undefined;
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    if (tls) {
      // prettier-ignore
      await mustRun('/usr/bin/openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:TRUE',
      ]);
      caPem = readFileSync(cert, 'utf8');
    }
    const q = (s: string): string => JSON.stringify(s);
    let host = '';
    for (let attempt = 1; ; attempt++) {
      host = `127.0.0.1:${await freePort()}`;
      const config = join(dir, 'config.yml');
      writeFileSync(
        config,
        [
          'version: 0.1',
          'log:',
          '  level: warn',
          '  accesslog:',
          '    disabled: true',
          'storage:',
          '  filesystem:',
          `    rootdirectory: ${q(join(dir, 'data'))}`,
          '  delete:',
          '    enabled: true',
          'http:',
          `  addr: ${q(host)}`,
          `  secret: ${q(randomBytes(16).toString('hex'))}`,
          ...(tls ? ['  tls:', `    certificate: ${q(cert)}`, `    key: ${q(key)}`] : []),
          'auth:',
          '  htpasswd:',
          '    realm: pipeline-secrets-test',
          `    path: ${q(htpasswd)}`,
          '',
        ].join('\n'),
      );
      const log = join(dir, 'registry.log');
      const d = spawnDaemon('/usr/bin/docker-registry', ['serve', config], {
        log,
        env: { PATH: DAEMON_PATH, HOME: dir },
        pidFile: join(dir, 'registry.pid'),
      });
      daemon = d;
      const deadline = Date.now() + 15_000;
      let status = 0;
      while ((status = await probeRegistry(host, caPem)) === 0 && !d.hasExited() && Date.now() < deadline) await sleep(50);
      if (status === 401) break;
      await terminate(d, 0);
      if (attempt < 3 && /address already in use/.test(logTail(log))) continue;
      throw new Error(`docker-registry on ${host} did not come up (GET /v2/ gave ${status}):\n${logTail(log)}`);
    }
    if (tls && opts.engine && caPem !== undefined) trustInDaemon(dir, host, caPem);
    const base = { host, username, password, tls, stop };
    return caPem !== undefined ? { ...base, caPem } : base;
  } catch (e) {
    await stop();
    throw e;
  }
}
