// `docker login --password-stdin` into a per-job DOCKER_CONFIG inside the private directory, so
// nothing is written to ~/.docker and nothing outlives the job even on a self-hosted runner whose
// post step never ran (docker/login-action #734, #173). The password travels on stdin only.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeliveryError } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { MaskRegistry } from '../core/mask.ts';

export interface Login {
  readonly registry: string;
  readonly username: string;
  readonly password: string;
  /** Where the password came from, for messages: an input or a secret name. */
  readonly from: string;
}

/**
 * Creates the per-job docker config. A user's per-registry credential helpers (ecr-login,
 * gcloud...) are kept so later steps still reach those registries; a global `credsStore` is not,
 * since it would put our credentials in a keychain that outlives the job.
 */
export async function createDockerConfig(root: string, home: string | undefined, loginRegistries: readonly string[]): Promise<string> {
  const dir = path.join(root, 'docker');
  await fs.mkdir(dir, { mode: 0o700 });
  const config: { auths: Record<string, never>; credHelpers?: Record<string, string> } = { auths: {} };
  const userConfig = path.join(process.env.DOCKER_CONFIG ?? path.join(home ?? '', '.docker'), 'config.json');
  try {
    const parsed = JSON.parse(await fs.readFile(userConfig, 'utf8')) as { credHelpers?: Record<string, string> };
    const helpers = Object.fromEntries(
      Object.entries(parsed.credHelpers ?? {}).filter(([registry]) => !loginRegistries.includes(registry)),
    );
    if (Object.keys(helpers).length > 0) config.credHelpers = helpers;
  } catch {
    // No user config, or not readable: start empty. It is never written to.
  }
  await fs.writeFile(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return dir;
}

export async function dockerLogin(exec: Exec, dockerConfig: string, login: Login, masks: MaskRegistry): Promise<void> {
  // The CLI stores base64("user:password") in config.json: mask it whole, not only in pieces.
  masks.add(login.password);
  masks.add(Buffer.from(`${login.username}:${login.password}`).toString('base64'));
  // Options as --name=value and `--` before the operand: a registry or user name that starts with
  // '-' can never be taken for another option.
  if (login.registry.startsWith('-'))
    throw new DeliveryError(`docker login: registry '${login.registry}' starts with '-', so it is not a registry address; refused`);
  const result = await exec('docker', ['login', `--username=${login.username}`, '--password-stdin', '--', login.registry], {
    input: login.password,
    env: { DOCKER_CONFIG: dockerConfig },
  });
  if (result.exitCode !== 0) {
    const reason = masks.scrub(`${result.stderr} ${result.stdout}`).replace(/\s+/g, ' ').trim();
    throw new DeliveryError(
      `docker login to registry '${login.registry}' as '${login.username}' (password from ${login.from}) failed: ${reason || `exit code ${result.exitCode}`}`,
    );
  }
  // Make sure the credentials landed in our file and not in a credential store that outlives the job.
  const config = JSON.parse(await fs.readFile(path.join(dockerConfig, 'config.json'), 'utf8')) as {
    auths?: Record<string, { auth?: string }>;
    credsStore?: string;
  };
  const stored = Object.entries(config.auths ?? {}).some(
    ([key, entry]) => sameRegistry(key, login.registry) && typeof entry.auth === 'string' && entry.auth !== '',
  );
  if (!stored) {
    await exec('docker', ['logout', '--', login.registry], { env: { DOCKER_CONFIG: dockerConfig } });
    throw new DeliveryError(
      `docker login to registry '${login.registry}' stored the credentials outside the per-job config${config.credsStore ? ` (credential store '${config.credsStore}')` : ''}, where they would outlive the job; logged out again`,
    );
  }
}

export async function dockerLogout(exec: Exec, dockerConfig: string, registry: string): Promise<string | undefined> {
  const result = await exec('docker', ['logout', '--', registry], { env: { DOCKER_CONFIG: dockerConfig } });
  return result.exitCode === 0 ? undefined : `docker logout ${registry} failed (exit ${result.exitCode})`;
}

/** docker keys Docker Hub as https://index.docker.io/v1/ and others by host[:port]. */
function sameRegistry(key: string, registry: string): boolean {
  const norm = (r: string): string => {
    const host = r
      .replace(/^https?:\/\//, '')
      .replace(/\/+$/, '')
      .toLowerCase();
    return host === 'docker.io' || host === 'index.docker.io/v1' || host === 'registry-1.docker.io' ? 'docker.io' : host;
  };
  return norm(key) === norm(registry);
}
