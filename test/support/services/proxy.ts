// A real forward HTTP proxy for tests: Debian's tinyproxy (1.11), on 127.0.0.1 only, with CONNECT
// to any port, so an HTTPS client can tunnel to a loopback server on a random port.
//
// Facts that shaped this (tinyproxy 1.11.1, tinyproxy.conf(5)):
// - ConnectPort: "If no `ConnectPort` line is found, then all ports are allowed." The packaged
//   /etc/tinyproxy/tinyproxy.conf only carries `ConnectPort 443`/`563` commented out; this config is
//   our own and has no ConnectPort line at all. (A config with `ConnectPort 443` would refuse
//   CONNECT to a random loopback port with 403.)
// - With `Allow`/`Deny` lines the default is deny, so `Allow 127.0.0.1` admits loopback clients only.
// - `-d` keeps it in the foreground; no PidFile line means no pidfile is written. Run as root
//   without a `User` line it stays root and logs a warning: it only ever listens on 127.0.0.1.
// - LogLevel Connect logs, per client request, "Request (file descriptor N): <request line>": for
//   CONNECT that is "CONNECT host:port HTTP/1.1", for plain HTTP the absolute URL. What is sent
//   inside a CONNECT tunnel never reaches the log (nor tinyproxy's parser).
// - Until it opens LogFile it writes its first lines to stderr, which goes to stderr.log here.
//
// Each proxy lives in its own temp dir (config, logs, owner.pid). It runs in its own process group
// under `setpriv --pdeathsig KILL`, so it dies with the test process even when that is killed;
// stop() ends it and removes the dir; an exit hook (exit, SIGTERM/SIGINT/SIGHUP) does the same for
// proxies not stopped; a later start sweeps dirs whose owning test process is gone (lifecycle.ts).

import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePackages } from './install.ts';
import { daemonStopper, freePort, makeInstanceDir, readText, signal, sleep, spawnDaemon, sweepStaleDaemons } from './lifecycle.ts';

export interface Proxy {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** The proxy's temp dir (config and logs); tinyproxy's command line names it. */
  dir: string;
  /** CONNECT targets the proxy was asked for, in order, parsed from its log. */
  connects(): Array<{ host: string; port: number }>;
  /** Every request line the proxy logged (CONNECT host:port ..., GET http://... ...), in order. */
  requests(): string[];
  /** The proxy's whole log so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const TINYPROXY = '/usr/bin/tinyproxy';
const PREFIX = 'ps-proxy-';

/** Removes proxy dirs (and their tinyproxy) whose owning test process is gone. */
// ---- the proxy ------------------------------------------------------------------------------

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

const REQUEST_LINE = /\]: Request \(file descriptor \d+\): (.*)$/;

/** "host:port", "[v6]:port"; tinyproxy logs the CONNECT target as the client sent it. */
function parseTarget(target: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:/]+):(\d+)/.exec(target);
  return m ? { host: m[1] ?? '', port: Number(m[2]) } : undefined;
}

export async function startProxy(): Promise<Proxy> {
  await ensurePackages(['tinyproxy-bin']);
  sweepStaleDaemons(PREFIX, 'tinyproxy.pid');
  const dir = makeInstanceDir(tmpdir(), PREFIX);
  const logFile = join(dir, 'tinyproxy.log');
  const stderrFile = join(dir, 'stderr.log');
  const { own, stop } = daemonStopper(dir, 2000);

  try {
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const conf = join(dir, 'tinyproxy.conf');
      writeFileSync(
        conf,
        [
          `Port ${port}`,
          'Listen 127.0.0.1',
          'Timeout 60',
          'MaxClients 100',
          'Allow 127.0.0.1',
          `LogFile ${JSON.stringify(logFile)}`,
          'LogLevel Connect',
          'DisableViaHeader Yes',
          // no ConnectPort line: CONNECT to every port (tinyproxy.conf(5))
          '',
        ].join('\n'),
      );
      const d = spawnDaemon(TINYPROXY, ['-d', '-c', conf], {
        log: stderrFile,
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
        pidFile: join(dir, 'tinyproxy.pid'),
      });
      own(d);

      const deadline = Date.now() + 10_000;
      let up = false;
      while (!(up = await accepts(port)) && !d.hasExited() && Date.now() < deadline) await sleep(20);
      if (up && !d.hasExited()) break;
      const tail = `${readText(stderrFile)}${readText(logFile)}`.trimEnd().split('\n').slice(-15).join('\n');
      signal(d.pid, 'SIGKILL', true);
      await d.exited;
      if (attempt < 3 && /Address already in use|Could not create listening sockets/i.test(tail)) continue;
      throw new Error(`tinyproxy on 127.0.0.1:${port} did not come up:\n${tail}`);
    }

    const requests = (): string[] =>
      readText(logFile)
        .split('\n')
        .map((l) => REQUEST_LINE.exec(l)?.[1])
        .filter((l): l is string => l !== undefined);
    const connects = (): Array<{ host: string; port: number }> =>
      requests()
        .map((l) => /^CONNECT (\S+)/.exec(l)?.[1])
        .map((t) => (t === undefined ? undefined : parseTarget(t)))
        .filter((t): t is { host: string; port: number } => t !== undefined);
    return { url: `http://127.0.0.1:${port}`, dir, connects, requests, log: () => readText(logFile), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
