// Secrets that come from the step's environment (`env-secrets`: workflow secrets passed with
// `env:`) rather than from Vault, and the check that all of a run's secrets, these and Vault's,
// have distinct names.
import { decodeSelected } from '../core/decode.ts';
import { SecretError } from '../core/errors.ts';
import type { EnvSecretLine } from '../inputs/secret-spec.ts';
import type { Secret } from './fetch.ts';

/** Workflow secrets handed to the step through `env:`; treated exactly like Vault secrets. */
export function collectEnvSecrets(
  lines: readonly EnvSecretLine[],
  env: Readonly<Record<string, string | undefined>>,
  onValue: (value: string) => void,
): { secrets: Secret[]; warnings: string[] } {
  const secrets: Secret[] = [];
  const warnings: string[] = [];
  for (const line of lines) {
    const value = env[line.envVar];
    if (value === undefined || value === '') {
      const message = `env-secrets line ${line.line}: environment variable '${line.envVar}' is not set or empty (pass it with env: ${line.envVar}: \${{ secrets.${line.envVar} }})`;
      if (line.optional) {
        warnings.push(`${message}; skipped (optional)`);
        continue;
      }
      throw new SecretError(message);
    }
    // The value as passed is masked first, so a value that does not decode is masked as well.
    onValue(value);
    const delivered = decodeSelected(value, line.encoding, () => `env-secrets line ${line.line}: the value of '${line.envVar}'`);
    if (delivered.decoded?.text) onValue(delivered.value);
    secrets.push({ name: line.name, envName: line.name, ...delivered, source: { kind: 'env', line: line.line, envVar: line.envVar } });
  }
  return { secrets, warnings };
}

/** Two secrets may not share a file name or an env name. */
export function checkUniqueNames(secrets: readonly Secret[]): void {
  const seen = new Map<string, Secret>();
  const where = (s: Secret): string => `${s.source.kind === 'vault' ? 'secrets' : 'env-secrets'} line ${s.source.line}`;
  for (const secret of secrets) {
    for (const key of [`file:${secret.name.toLowerCase()}`, `env:${secret.envName}`]) {
      const other = seen.get(key);
      if (other && other !== secret) {
        throw new SecretError(
          `two secrets are named '${key.startsWith('env:') ? secret.envName : secret.name}' (${where(other)} and ${where(secret)}); rename one with '| NAME'`,
        );
      }
      seen.set(key, secret);
    }
  }
}
