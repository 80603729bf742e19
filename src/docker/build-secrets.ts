// BuildKit build secrets from the delivered files: specs for `docker build --secret` and outputs
// shaped for docker/build-push-action (`secret-files`, `secret-envs`). The files are the 0600 files
// of the private directory: no second copy is ever written, and a value never becomes a build arg.
import * as path from 'node:path';

export interface BuildSecret {
  readonly id: string;
  /** The delivered secret's name (its file name). */
  readonly name: string;
}

export interface BuildSecretOutputs {
  /** `ID=PATH` lines for build-push-action's `secret-files`. */
  readonly files: string;
  /** `ID=ENVVAR` lines for build-push-action's `secret-envs` (only when env export is on). */
  readonly envs: string | undefined;
  /** `--secret id=ID,src=PATH ...` for a plain `docker build`. */
  readonly args: string;
}

export function buildSecretOutputs(
  specs: readonly BuildSecret[],
  secretsDir: string,
  envNames: ReadonlyMap<string, string>,
  exportEnv: boolean,
): BuildSecretOutputs {
  const file = (s: BuildSecret): string => path.join(secretsDir, s.name);
  return {
    files: specs.map((s) => `${s.id}=${file(s)}`).join('\n'),
    envs: exportEnv ? specs.map((s) => `${s.id}=${envNames.get(s.name) ?? s.name}`).join('\n') : undefined,
    // A path with a space or comma would split the --secret value: quote it as docker's CSV expects.
    args: specs.map((s) => `--secret ${shellQuote(`id=${s.id},src=${csvField(file(s))}`)}`).join(' '),
  };
}

function csvField(value: string): string {
  return /[",\s]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}
