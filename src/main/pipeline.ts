// The main step as a pipeline of named steps: read inputs (and templates) -> workflow secrets ->
// private directory -> Vault (login, concurrent fetch) -> check -> files -> rendered files -> compose
// override -> docker logins -> renewal agent -> hand over -> summary. Every value is masked the moment
// it is read, before any step can print it; nothing is delivered, exported or summarised until every
// required secret has been fetched; whatever main creates is in the ledger (state) the moment it
// exists, so post can clean up after any failure.
import { appendSideValues, ROOTS_ENV, type SideValue } from '../core/job-values.ts';
import { LedgerWriter } from '../core/ledger.ts';
import { byteForms, isTooWeakToMask, MIN_FORM_LENGTH, type MaskRegistry } from '../core/mask.ts';
import type { Exec } from '../core/exec.ts';
import type { PrivateDir } from '../core/private-dir.ts';
import { runStep } from '../core/run-step.ts';
import type { Runner } from '../core/runner.ts';
import { agentConfig, launchAgent } from '../agent/launch.ts';
import type { Env } from '../inputs/common.ts';
import { parseInputs, type Config } from '../inputs/main.ts';
import type { VaultClientFactory } from '../vault/client.ts';
import { checkUniqueNames, collectEnvSecrets } from '../vault/env-secrets.ts';
import type { Secret } from '../vault/fetch.ts';
import { resolveCompose, writeComposeFile } from './compose.ts';
import { checkTextExports, createRoot, handOver, writeFiles } from './deliver.ts';
import { dockerLogins, publishBuildSecrets, resolveBuildSecrets, resolveLogins } from './docker-steps.ts';
import { checkTemplates, handOverRendered, loadTemplates, writeRendered, type RenderedFile } from './render.ts';
import { sweepStaleRoots } from './stale-roots.ts';
import { deliverySummary } from './summary.ts';
import { NO_VAULT, vaultSecrets, type OnCancel, type VaultSecrets } from './vault-session.ts';

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
  readonly onCancel?: OnCancel;
}

export async function runMain(deps: MainDeps): Promise<void> {
  const background: Array<Promise<unknown>> = [];
  await runStep(deps.runner, { fail: 'Pipeline Secrets' }, (masks) => main(deps, masks, (work) => background.push(work)));
  // Work that runs alongside this job's own (the sweep of earlier jobs' leftovers) ends before the step.
  await Promise.allSettled(background);
}

async function main(deps: MainDeps, masks: MaskRegistry, alongside: (work: Promise<unknown>) => void): Promise<void> {
  const { runner, env } = deps;
  const now = deps.now ?? Date.now;
  const config = readInputs(env, masks);
  // Template files read and every template parsed now: a broken one fails before anything is fetched.
  const templates = await loadTemplates(config.templates, env.GITHUB_WORKSPACE);
  const deadline = now() + config.timeoutMs;
  // Start loading the Vault client now; it overlaps with the local work below.
  const vault = config.vault && { config: config.vault, createClient: startLoading(deps.loadVaultClient) };
  const ledger = new LedgerWriter(runner);

  const fromEnv = collectWorkflowSecrets(config, env, masks);
  // Earlier jobs' expired leftovers are swept alongside this job's work, never in its way (the
  // sweep reads every pipeline-secrets-* directory; it never touches one that is not expired).
  alongside(sweepStaleRoots(deps, config));
  // The private directory exists before any credential arrives, so a token has a safe place to wait.
  const dir = await createRoot({ env, shm: deps.shm, now }, config, ledger);
  // A password given as an input has no secret file: the leak scan finds it in the side-values file.
  await appendSideValues(dir.root, givenRegistryPasswords(config));
  const fromVault = vault
    ? await vaultSecrets({ runner, masks, ledger, now, onCancel: deps.onCancel }, config, vault.config, {
        root: dir.root,
        deadline,
        createClient: vault.createClient,
      })
    : NO_VAULT;

  const secrets = checkSecrets(runner, [...fromVault.secrets, ...fromEnv.secrets], [...fromEnv.warnings, ...fromVault.warnings]);
  // Decoded bytes that are not text: their base64 and hex as a later step could print them (mask.ts
  // byteForms), before any file exists. Their stored form was masked the moment it arrived.
  for (const secret of secrets) if (secret.decoded && !secret.decoded.text) masks.addForms(byteForms(secret.decoded.bytes));
  // Every name docker logins, build secrets and compose services refer to must exist before
  // anything is delivered.
  const logins = resolveLogins(config.registries, secrets);
  const builds = resolveBuildSecrets(config.buildSecrets, secrets);
  const compose = resolveCompose(config.composeServices, secrets);
  checkTemplates(templates, secrets, config);
  checkTextExports(config, secrets);

  const delivered = await writeFiles(runner, ledger, dir, secrets, config);
  const rendered = await writeRendered({ ledger, masks, workspace: env.GITHUB_WORKSPACE }, dir, templates, secrets, config.fileAccess);
  const composeFile = compose && (await writeComposeFile(runner, ledger, dir, compose));
  const dockerConfig = await dockerLogins({ runner, exec: deps.exec, home: env.HOME }, ledger, dir.root, logins, masks);
  await startAgent(deps, ledger, config, { dir, envFile: delivered.envFile, secrets, fromVault, rendered, started: now() });

  // Everything succeeded: only now do paths, and values when asked for, reach later steps.
  const token = config.vault?.exportToken ? fromVault.auth?.session.token : undefined;
  handOver(runner, config, { dir, envFile: delivered.envFile, secrets, vaultToken: token, rootsList: env[ROOTS_ENV] });
  publishBuildSecrets(runner, builds, dir.secretsDir, secrets, config.exportEnv);
  if (composeFile !== undefined) runner.setOutput('compose-file', composeFile);
  handOverRendered(runner, config, rendered);

  await writeSummary(runner, {
    config,
    dir,
    secrets,
    fromVault,
    envFileSkipped: delivered.envFileSkipped,
    registries: logins.map((l) => l.registry),
    dockerConfig,
    buildSecrets: builds.map((b) => b.id),
    compose: composeFile !== undefined ? { file: composeFile, services: config.composeServices.map((s) => s.service) } : undefined,
    rendered,
  });
}

/** Every input, checked; a registry password given as an input is a secret too: masked before anything else happens. */
function readInputs(env: Env, masks: MaskRegistry): Config {
  const config = parseInputs(env);
  for (const r of config.registries) if ('value' in r.password) masks.add(r.password.value);
  return config;
}

function givenRegistryPasswords(config: Config): SideValue[] {
  return config.registries.flatMap((r) =>
    'value' in r.password
      ? [{ name: `registry-password (${r.registry})`, source: 'registry-password' as const, value: r.password.value }]
      : [],
  );
}

function startLoading(load: () => Promise<VaultClientFactory>): Promise<VaultClientFactory> {
  const loading = load();
  // Awaited later (or never, when a step before fails); a failure to load surfaces there.
  loading.catch(() => {});
  return loading;
}

/** Workflow secrets first: they are masked the moment they are read. */
function collectWorkflowSecrets(config: Config, env: Env, masks: MaskRegistry): { secrets: Secret[]; warnings: string[] } {
  return collectEnvSecrets(config.envSecrets, env, (value) => masks.add(value));
}

/**
 * Names unique across Vault and workflow secrets; the warnings gathered so far; and a warning for
 * each value that is empty or too weak to mask (masked values were masked when they arrived).
 */
function checkSecrets(runner: Runner, secrets: readonly Secret[], warnings: readonly string[]): readonly Secret[] {
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
  return secrets;
}

/** The renewal agent, with `renew: true`: started detached, its pid recorded for post to stop it. */
async function startAgent(
  deps: Pick<MainDeps, 'runner' | 'env' | 'launchAgent'>,
  ledger: LedgerWriter,
  config: Config,
  run: {
    dir: PrivateDir;
    envFile: string;
    secrets: readonly Secret[];
    fromVault: VaultSecrets;
    rendered: readonly RenderedFile[];
    started: number;
  },
): Promise<void> {
  const session = run.fromVault.auth?.session;
  if (!config.renew || !config.vault || !session) return;
  const agent = agentConfig(config, session, run.dir, run.envFile, run.secrets, run.fromVault.sources, run.started, run.rendered);
  const pid = await (deps.launchAgent ?? launchAgent)(agent, deps.env);
  ledger.update((l) => (l.agentPid = pid));
  deps.runner.info(`Renewal agent started (pid ${pid}): refresh every ${agent.refreshMs / 1000} s; post stops it`);
}

/** The log line and the job summary: names, places and byte counts, never a value. */
async function writeSummary(
  runner: Runner,
  run: {
    config: Config;
    dir: PrivateDir;
    secrets: readonly Secret[];
    fromVault: VaultSecrets;
    envFileSkipped: readonly string[];
    registries: readonly string[];
    dockerConfig: string | undefined;
    buildSecrets: readonly string[];
    compose: { file: string; services: readonly string[] } | undefined;
    rendered: readonly RenderedFile[];
  },
): Promise<void> {
  const { dir, config, fromVault } = run;
  const rendered = run.rendered.length > 0 ? `; ${run.rendered.length} file(s) rendered from templates` : '';
  runner.info(
    `Pipeline Secrets: ${run.secrets.length} secret(s) delivered to ${dir.secretsDir}${dir.onTmpfs ? ' (tmpfs)' : ''}${rendered}`,
  );
  await runner.appendSummary(
    deliverySummary({
      secrets: run.secrets,
      secretsDir: dir.secretsDir,
      onTmpfs: dir.onTmpfs,
      userSecretsDir: dir.userSecretsDir,
      exportEnv: config.exportEnv,
      exportOutputs: config.exportOutputs,
      envFileSkipped: run.envFileSkipped,
      leases: fromVault.leases,
      tokenRevocable: fromVault.auth?.tokenRevocable ?? false,
      batchTokenExpires: fromVault.auth?.batchTokenExpires,
      registries: run.registries,
      dockerConfig: run.dockerConfig,
      buildSecrets: run.buildSecrets,
      ...(run.compose ? { compose: run.compose } : {}),
      rendered: run.rendered,
    }),
  );
}
