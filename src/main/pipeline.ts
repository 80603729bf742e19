// The main step: inputs -> auth -> fetch (concurrent) -> mask -> deliver -> ledger -> summary.
// Nothing is delivered, exported or summarised until every required secret has been fetched.
import * as path from 'node:path';
import { runStep } from '../core/run-step.ts';
import { checkUniqueNames, collectEnvSecrets, fetchVaultSecrets, type Lease, type Secret, type SourceState } from '../vault/fetch.ts';
import { createPrivateDir, PRIVATE_DIR_ENV, writeExclusive, writeSecretFiles } from '../core/private-dir.ts';
import type { Env } from '../inputs/common.ts';
import { parseInputs } from '../inputs/main.ts';
import { LedgerWriter } from '../core/ledger.ts';
import { isTooWeakToMask, MaskRegistry, MIN_FORM_LENGTH } from '../core/mask.ts';
import type { Runner } from '../core/runner.ts';
import { buildSecretOutputs, type BuildSecret } from '../docker/build-secrets.ts';
import { createDockerConfig, dockerLogin, type Login } from '../docker/login.ts';
import { InputError, VaultError } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { BuildSecretSpec, RegistryConfig } from '../inputs/main.ts';
import { deliverySummary } from './summary.ts';
import { tlsOptions, type VaultClientFactory } from '../vault/client.ts';
import type { LeaseSeen } from '../vault/transport.ts';
import { givenTokenExpiryWarning, login, type Session } from '../vault/auth.ts';
import { agentConfig, launchAgent } from '../agent/launch.ts';
import { rootLife, sweepStaleRoots } from './stale-roots.ts';

export interface MainDeps {
  readonly env: Env;
  readonly runner: Runner;
  /** Loaded only when Vault is used, so a run without Vault does not pay for loading its client. */
  readonly loadVaultClient: () => Promise<VaultClientFactory>;
  readonly exec: Exec;
  readonly launchAgent?: typeof launchAgent;
  readonly now?: () => number;
  /** Where tmpfs is looked for (tests point it elsewhere). */
  readonly shm?: string;
  /** Subscribes to the runner's cancellation (SIGINT, then SIGTERM); returns the unsubscribe. */
  readonly onCancel?: (handler: (signal: string) => void) => () => void;
}

/** How long requests in flight at a cancellation may still answer (the runner sends SIGTERM 7.5 s after SIGINT). */
export const CANCEL_GRACE_MS = 5000;

export async function runMain(deps: MainDeps): Promise<void> {
  const background: Array<Promise<unknown>> = [];
  await runStep(deps.runner, { fail: 'Pipeline Secrets' }, (masks) => main(deps, masks, background));
  // Work that runs alongside this job's own (the sweep of earlier jobs' leftovers) ends before the step.
  await Promise.allSettled(background);
}

async function main(deps: MainDeps, masks: MaskRegistry, background: Array<Promise<unknown>>): Promise<void> {
  const { runner, env } = deps;
  const now = deps.now ?? Date.now;
  const config = parseInputs(env);
  // A registry password given as an input is a secret too: masked before anything else happens.
  for (const r of config.registries) if ('value' in r.password) masks.add(r.password.value);
  const deadline = now() + config.timeoutMs;
  // Start loading the Vault client now; it overlaps with the local work below.
  const vaultClientFactory = config.vault ? deps.loadVaultClient() : undefined;
  vaultClientFactory?.catch(() => {});
  const ledger = new LedgerWriter(runner);
  const warnings: string[] = [];

  // Workflow secrets first: they are masked the moment they are read.
  const fromEnv = collectEnvSecrets(config.envSecrets, env, (value) => masks.add(value));
  warnings.push(...fromEnv.warnings);

  // Earlier jobs' expired leftovers are swept alongside this job's work, never in its way (the
  // sweep reads every pipeline-secrets-* directory; it never touches one that is not expired).
  background.push(sweepStaleRoots(deps, config));
  // The private directory exists before any credential arrives, so a token has a safe place to wait.
  const dir = await createPrivateDir(env, config.secretsDir, deps.shm, rootLife(config, now()));
  ledger.update((l) => {
    l.root = dir.root;
    l.secretsDir = dir.secretsDir;
    l.userSecretsDir = dir.userSecretsDir;
    l.marker = dir.marker;
  });

  let fromVault: Secret[] = [];
  let leases: Lease[] = [];
  let tokenRevocable = false;
  let batchTokenExpires: string | undefined;
  let session: Session | undefined;
  let sources: SourceState[] = [];
  if (config.vault) {
    const vault = config.vault;
    if (vault.tls.skipVerify) {
      runner.warning(
        "tls-skip-verify is on: Vault's certificate is not checked, so anyone on the network path can read every secret and token; give 'ca-certificate' instead",
      );
    }
    // The client key is a credential like the others.
    if (vault.tls.key !== undefined) masks.add(vault.tls.key);
    const createClient = await (vaultClientFactory ?? deps.loadVaultClient());
    // Each lease goes to the ledger (state) the moment its answer arrives: whatever fails or is
    // cancelled later, post knows it and revokes it.
    const recordLease = (lease: LeaseSeen): void => {
      if (ledger.ledger.leases.includes(lease.leaseId)) return;
      ledger.update((l) => {
        l.leases.push(lease.leaseId);
        if (lease.duration !== undefined) {
          (l.leaseExpires ??= {})[lease.leaseId] = new Date(now() + lease.duration * 1000).toISOString();
        }
      });
    };
    const client = createClient({
      url: vault.url,
      namespace: vault.namespace,
      deadline,
      retries: config.retries,
      maxSockets: config.concurrency,
      tls: tlsOptions(vault.tls),
      ...(vault.proxy !== undefined ? { proxy: vault.proxy } : {}),
      log: (message) => runner.debug(message),
      onLease: recordLease,
    });
    // A cancelled job: start nothing new, but give the requests in flight a bounded while to
    // answer, so a lease Vault has already issued reaches the ledger; a second signal cuts them.
    let cancelled: string | undefined;
    const stopListening = deps.onCancel?.((signal) => {
      if (cancelled !== undefined) return client.close();
      cancelled = signal;
      client.cancel(signal);
      setTimeout(() => client.close(), CANCEL_GRACE_MS).unref();
    });
    try {
      ledger.update((l) => {
        l.vaultUrl = vault.url;
        if (vault.namespace !== undefined) l.namespace = vault.namespace;
      });
      session = await login(client, vault.auth, { masks, getIDToken: (aud) => runner.getIDToken(aud) });
      const token = session.token;
      if (session.created) {
        // Post revokes the token this run created; it waits in a 0600 file, never in state or env.
        // A batch token cannot be revoked, but post still needs it to revoke the leases.
        const tokenFile = path.join(dir.root, 'vault-token');
        const batch = session.batch;
        const ttl = session.ttlSeconds;
        if (batch && ttl !== undefined) batchTokenExpires = new Date(now() + ttl * 1000).toISOString();
        const expires = batchTokenExpires;
        ledger.update((l) => {
          l.tokenFile = tokenFile;
          if (batch) l.tokenBatch = true;
          if (expires !== undefined) l.tokenExpires = expires;
        });
        await writeExclusive(tokenFile, token);
        tokenRevocable = !batch;
      }
      runner.debug(`logged in to Vault with method ${session.method}${vault.proxy ? ' through the proxy' : ''}`);
      if (vault.exportToken) runner.setOutput('vault-token', token);
      const outcome = await fetchVaultSecrets(client, config.secrets, config.concurrency, {
        onValue: (value) => masks.add(value),
        debug: (message) => runner.debug(message),
      });
      fromVault = outcome.secrets;
      leases = outcome.leases;
      sources = outcome.sources;
      warnings.push(...outcome.warnings);
      for (const lease of leases) recordLease(lease);
      if (config.renew && vault.auth.method === 'token') {
        const warning = await givenTokenExpiryWarning(client, config.renew.maxLifetimeMs);
        if (warning !== undefined) warnings.push(warning);
      }
    } catch (error) {
      if (cancelled === undefined) throw error;
    } finally {
      stopListening?.();
      client.close();
    }
    if (cancelled !== undefined) {
      throw new VaultError(
        vault.url,
        `the job was cancelled (${cancelled}) while talking to Vault; ${ledger.ledger.leases.length} lease(s) issued so far are recorded for post to revoke`,
      );
    }
  }

  const secrets = [...fromVault, ...fromEnv.secrets];
  checkUniqueNames(secrets);
  for (const warning of warnings) runner.warning(warning);
  for (const secret of secrets) {
    if (secret.value.length > 0 && isTooWeakToMask(secret.value)) {
      // Not registered (mask.ts): it would mask that text everywhere in the job's log.
      runner.warning(
        `secret '${secret.name}' is delivered but not masked in the log: a value shorter than ${MIN_FORM_LENGTH} characters or a bare true/false/number would mask every such text in the job's log (and is easy to guess); keep it out of the log`,
      );
    } else if (secret.value.length === 0) {
      runner.warning(`secret '${secret.name}' is empty`);
    }
  }

  // Every name docker logins and build secrets refer to must exist before anything is delivered.
  const logins = resolveLogins(config.registries, secrets);
  const builds = resolveBuildSecrets(config.buildSecrets, secrets);

  const delivered = await writeSecretFiles(dir, secrets, (files) => ledger.update((l) => l.files.push(...files)), config.fileAccess);
  for (const name of delivered.envFileSkipped) {
    runner.warning(
      `secret '${name}' has more than one line and is left out of the env-file (docker --env-file cannot hold it); use its file`,
    );
  }

  let dockerConfig: string | undefined;
  if (logins.length > 0) {
    dockerConfig = await createDockerConfig(
      dir.root,
      env.HOME,
      logins.map((l) => l.registry),
    );
    const configDir = dockerConfig;
    ledger.update((l) => (l.dockerConfig = configDir));
    // Exported before the logins (a path, not a value) so a later step never falls back to
    // ~/.docker, even after a failure.
    runner.exportVariable('DOCKER_CONFIG', configDir);
    runner.setOutput('docker-config', configDir);
    for (const login of logins) {
      // Recorded before the attempt: post logs out of whatever may have been stored.
      ledger.update((l) => (l.registries = [...(l.registries ?? []), login.registry]));
      await dockerLogin(deps.exec, configDir, login, masks);
      runner.info(`Logged in to ${login.registry} as ${login.username} (credentials in the per-job DOCKER_CONFIG)`);
    }
  }

  if (config.renew && config.vault && session) {
    const agent = agentConfig(config, session, dir, delivered.envFile, secrets, sources, deps.now?.() ?? Date.now());
    const pid = await (deps.launchAgent ?? launchAgent)(agent, env);
    ledger.update((l) => (l.agentPid = pid));
    runner.info(`Renewal agent started (pid ${pid}): refresh every ${agent.refreshMs / 1000} s; post stops it`);
  }

  // Everything succeeded: only now do paths, and values when asked for, reach later steps.
  runner.setOutput('secrets-dir', dir.secretsDir);
  runner.setOutput('env-file', delivered.envFile);
  runner.exportVariable(PRIVATE_DIR_ENV, dir.secretsDir);
  if (config.exportEnv) for (const s of secrets) runner.exportVariable(s.envName, s.value);
  if (config.exportOutputs) for (const s of secrets) runner.setOutput(s.name, s.value);
  if (builds.length > 0) {
    const out = buildSecretOutputs(builds, dir.secretsDir, new Map(secrets.map((s) => [s.name, s.envName])), config.exportEnv);
    runner.setOutput('build-secret-files', out.files);
    runner.setOutput('build-secret-args', out.args);
    if (out.envs !== undefined) runner.setOutput('build-secret-envs', out.envs);
  }

  runner.info(`Pipeline Secrets: ${secrets.length} secret(s) delivered to ${dir.secretsDir}${dir.onTmpfs ? ' (tmpfs)' : ''}`);
  await runner.appendSummary(
    deliverySummary({
      secrets,
      secretsDir: dir.secretsDir,
      onTmpfs: dir.onTmpfs,
      userSecretsDir: dir.userSecretsDir,
      exportEnv: config.exportEnv,
      exportOutputs: config.exportOutputs,
      envFileSkipped: delivered.envFileSkipped,
      leases,
      tokenRevocable,
      batchTokenExpires,
      registries: logins.map((l) => l.registry),
      dockerConfig,
      buildSecrets: builds.map((b) => b.id),
    }),
  );
}

function names(secrets: readonly Secret[]): string {
  return secrets.map((s) => s.name).join(', ') || 'none';
}

function resolveLogins(registries: readonly RegistryConfig[], secrets: readonly Secret[]): Login[] {
  return registries.map((r) => {
    if ('value' in r.password) return { registry: r.registry, username: r.username, password: r.password.value, from: r.source };
    const name = r.password.secret;
    const secret = secrets.find((s) => s.name === name);
    if (!secret) {
      throw new InputError(
        r.source.includes('registries') ? 'registries' : 'registry-password-secret',
        // The given name is not echoed: it might be a password pasted into a name input.
        `registry '${r.registry}': no secret of this step has the given name (secrets: ${names(secrets)})`,
      );
    }
    return { registry: r.registry, username: r.username, password: secret.value, from: r.source };
  });
}

function resolveBuildSecrets(specs: readonly BuildSecretSpec[], secrets: readonly Secret[]): BuildSecret[] {
  return specs.map((spec) => {
    if (!secrets.some((s) => s.name === spec.name)) {
      throw new InputError('build-secrets', `line ${spec.line}: no secret named '${spec.name}' in this step (secrets: ${names(secrets)})`);
    }
    return { id: spec.id, name: spec.name };
  });
}
