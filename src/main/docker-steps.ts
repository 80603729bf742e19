// Main's docker steps: the registries to log in to and the BuildKit secrets, resolved against the
// fetched secrets before anything is delivered; the logins into a per-job DOCKER_CONFIG; and the
// build-secret outputs, which name the delivered files (never a value).
import { isBinary } from '../core/decode.ts';
import { InputError } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { LedgerWriter } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import type { Runner } from '../core/runner.ts';
import { buildSecretOutputs, type BuildSecret } from '../docker/build-secrets.ts';
import { createDockerConfig, dockerLogin, type Login } from '../docker/login.ts';
import type { BuildSecretSpec, RegistryConfig } from '../inputs/main.ts';
import type { Secret } from '../vault/fetch.ts';

function names(secrets: readonly Secret[]): string {
  return secrets.map((s) => s.name).join(', ') || 'none';
}

/** Each registry with its password: given as an input, or a secret of this step by name. */
export function resolveLogins(registries: readonly RegistryConfig[], secrets: readonly Secret[]): Login[] {
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
    if (isBinary(secret)) {
      throw new InputError(
        r.source.includes('registries') ? 'registries' : 'registry-password-secret',
        `registry '${r.registry}': secret '${secret.name}' decodes to bytes that are not UTF-8 text, which cannot be a password; give a secret stored as text`,
      );
    }
    return { registry: r.registry, username: r.username, password: secret.value, from: r.source };
  });
}

/** Each `build-secrets` line checked against the secrets of this step. */
export function resolveBuildSecrets(specs: readonly BuildSecretSpec[], secrets: readonly Secret[]): BuildSecret[] {
  return specs.map((spec) => {
    if (!secrets.some((s) => s.name === spec.name)) {
      throw new InputError('build-secrets', `line ${spec.line}: no secret named '${spec.name}' in this step (secrets: ${names(secrets)})`);
    }
    return { id: spec.id, name: spec.name };
  });
}

/** Logs in to every registry with a per-job DOCKER_CONFIG under the private root; returns its path (undefined: no logins). */
export async function dockerLogins(
  deps: { readonly runner: Runner; readonly exec: Exec; readonly home: string | undefined },
  ledger: LedgerWriter,
  root: string,
  logins: readonly Login[],
  masks: MaskRegistry,
): Promise<string | undefined> {
  if (logins.length === 0) return undefined;
  const { runner } = deps;
  const configDir = await createDockerConfig(
    root,
    deps.home,
    logins.map((l) => l.registry),
  );
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
  return configDir;
}

/** The build-secret outputs (files, `--secret` args, and env names when env export is on). */
export function publishBuildSecrets(
  runner: Runner,
  builds: readonly BuildSecret[],
  secretsDir: string,
  secrets: readonly Secret[],
  exportEnv: boolean,
): void {
  if (builds.length === 0) return;
  const out = buildSecretOutputs(builds, secretsDir, new Map(secrets.map((s) => [s.name, s.envName])), exportEnv);
  runner.setOutput('build-secret-files', out.files);
  runner.setOutput('build-secret-args', out.args);
  if (out.envs !== undefined) runner.setOutput('build-secret-envs', out.envs);
}
