// Starts the renewal agent from main, detached, so it outlives the step. Its config (token
// included) goes through a stdin pipe; its env is an allow-list, so no INPUT_* or workflow secret
// passed to this step reaches it; its argv holds only its script and the private root (which post
// uses to recognise it before signalling a pid).
import { builtin } from '../core/builtin.ts';
import { openSync, closeSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfig, AgentTemplate } from './config.ts';
import { AGENT_LOG } from './status.ts';
import type { PrivateDir } from '../core/private-dir.ts';
import { DeliveryError } from '../core/errors.ts';
import { readKey, type Secret, type SourceState } from '../vault/fetch.ts';
import type { Config } from '../inputs/main.ts';
import type { Session } from '../vault/auth.ts';
import { tlsOptions } from '../vault/client.ts';

// RUNNER_TRACKING_ID: the runner kills every process carrying its job's tracking id at job end, so
// an agent whose post never runs (a cancelled or crashed job) does not outlive the job.
const ENV_ALLOW =
  /^(PATH|HOME|LANG|LC_ALL|TMPDIR|RUNNER_TEMP|RUNNER_TRACKING_ID|DOCKER_HOST|DOCKER_CONFIG|DOCKER_CERT_PATH|DOCKER_TLS_VERIFY|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$/;

/** The agent's config from what main fetched and delivered: paths, names, lease ids, the token. */
export function agentConfig(
  config: Config,
  session: Session,
  dir: PrivateDir,
  envFile: string,
  secrets: readonly Secret[],
  sources: readonly SourceState[],
  started: number,
  templates: readonly AgentTemplate[] = [],
): AgentConfig {
  const vault = config.vault;
  const renew = config.renew;
  if (!vault || !renew) throw new Error('agentConfig needs Vault and renew settings');
  return {
    url: vault.url,
    namespace: vault.namespace,
    tls: tlsOptions(vault.tls),
    proxy: vault.proxy,
    headers: vault.headers,
    token: session.token,
    // A batch token cannot be renewed (Vault answers 400) and a user's token is theirs.
    renewToken: session.created && !session.batch,
    // The same token, for the same reason: an agent whose secrets directory vanished revokes it.
    revokeToken: session.created && !session.batch,
    marker: dir.marker,
    root: dir.root,
    secretsDir: dir.secretsDir,
    ...(config.fileAccess ? { fileAccess: config.fileAccess } : {}),
    envFile,
    secrets: secrets.map((s) => ({ name: s.name, envName: s.envName, key: s.source.kind === 'vault' ? s.source.requestKey : undefined })),
    sources: sources.map((source) => ({
      key: source.key,
      lines: config.secrets.filter((line) => readKey(line) === source.key),
      readPath: source.readPath,
      kvVersion: source.kvVersion,
      version: source.version,
      lease: source.lease
        ? {
            id: source.lease.leaseId,
            duration: source.lease.duration ?? 0,
            renewable: source.lease.renewable,
            obtainedAt: started,
            expiresAt: started + (source.lease.duration ?? 0) * 1000,
          }
        : undefined,
    })),
    ...(templates.length > 0
      ? {
          templates: templates.map((t) => ({
            name: t.name,
            text: t.text,
            source: t.source,
            path: t.path,
            mode: t.mode,
            inWorkspace: t.inWorkspace,
          })),
        }
      : {}),
    refreshMs: renew.refreshMs,
    onChange: renew.onChange,
    onChangeTimeoutMs: renew.onChangeTimeoutMs,
    maxLifetimeMs: renew.maxLifetimeMs,
    retries: config.retries,
  };
}

function agentScript(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), 'agent.js');
}

export async function launchAgent(
  config: AgentConfig,
  env: Readonly<Record<string, string | undefined>>,
  script = agentScript(),
): Promise<number> {
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && ENV_ALLOW.test(key)) childEnv[key] = value;
  // Loaded here, not at the top: most runs never start an agent and node:child_process is not free.
  const { spawn } = builtin.childProcess();
  const log = openSync(path.join(config.root, AGENT_LOG), 'a', 0o600);
  let pid: number | undefined;
  try {
    const child = spawn(process.execPath, [script, '--root', config.root], { detached: true, stdio: ['pipe', log, log], env: childEnv });
    pid = child.pid;
    child.stdin?.end(JSON.stringify(config));
    child.unref();
  } finally {
    closeSync(log);
  }
  if (pid === undefined) throw new DeliveryError('the renewal agent could not be started');
  // Wait until it is running (it writes its pid file), so a failure shows in this step, not later.
  const pidFile = path.join(config.root, 'agent.pid');
  for (let i = 0; i < 100; i++) {
    if (
      await fs.access(pidFile).then(
        () => true,
        () => false,
      )
    )
      return pid;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new DeliveryError(`the renewal agent did not start within 5 s (see ${path.join(config.root, AGENT_LOG)})`);
}

/** Stops the agent: SIGTERM, a bounded wait, then SIGKILL. Only a process that is provably ours. */
export async function stopAgent(pid: number, root: string, waitMs = 5000): Promise<'stopped' | 'killed' | 'gone' | 'not ours'> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) return 'gone';
  const args = cmdline.split('\0');
  // A pid can be reused after the agent died: signal it only if it is our agent for this root.
  if (!args.some((a) => a.endsWith('agent.js')) || !args.includes(root)) return 'not ours';
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < waitMs; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (
      !(await fs.access(`/proc/${pid}`).then(
        () => true,
        () => false,
      ))
    )
      return 'stopped';
    const state = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/^\d+ \(.*\) Z/.test(state)) return 'stopped'; // exited, waiting to be reaped by its parent
  }
  process.kill(pid, 'SIGKILL');
  return 'killed';
}
