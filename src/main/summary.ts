// Main's job summary: where each secret went and how many bytes it has; never a value.
// Verification by presence and byte count only.
import { cell, code } from '../core/summary-text.ts';
import type { Lease, Secret } from '../vault/fetch.ts';

export interface DeliveryReport {
  readonly secrets: readonly Secret[];
  readonly secretsDir: string;
  /** Whether the secrets directory itself is on tmpfs (deliver.ts looks; a user's `secrets-dir` too). */
  readonly onTmpfs: boolean;
  /** The secrets directory is the user's `secrets-dir`, not one made under /dev/shm or RUNNER_TEMP. */
  readonly userSecretsDir?: boolean;
  readonly exportEnv: boolean;
  readonly exportOutputs: boolean;
  readonly envFileSkipped: readonly string[];
  readonly leases: readonly Lease[];
  readonly tokenRevocable: boolean;
  /** Set when this run logged in and got a batch token: when it ends (it cannot be revoked). */
  readonly batchTokenExpires?: string | undefined;
  readonly registries: readonly string[];
  readonly dockerConfig: string | undefined;
  readonly buildSecrets: readonly string[];
  /** The compose override (`compose-file`) and the services it gives secrets to, when one was written. */
  readonly compose?: { readonly file: string; readonly services: readonly string[] };
  /** Files rendered from `templates`: name, path and size (their content holds values: never shown). */
  readonly rendered?: ReadonlyArray<{
    readonly name: string;
    readonly path: string;
    readonly bytes: number;
    readonly inWorkspace: boolean;
  }>;
}
export function deliverySummary(report: DeliveryReport): string {
  const rows = report.secrets.map((s) => {
    const source = s.source.kind === 'vault' ? `${s.source.readPath} → ${s.source.key}` : `env ${s.source.envVar}`;
    const version =
      s.source.kind === 'vault'
        ? [
            s.source.kvVersion ? `kv v${s.source.kvVersion}` : 'engine',
            s.source.version !== undefined ? `version ${s.source.version}` : '',
            s.source.leaseId ? 'lease' : '',
          ]
            .filter(Boolean)
            .join(', ')
        : 'workflow secret';
    const delivery = [
      'file',
      report.envFileSkipped.includes(s.envName) ? '' : 'env-file',
      report.exportEnv ? `env ${s.envName}` : '',
      report.exportOutputs ? 'output' : '',
    ]
      .filter(Boolean)
      .join(', ');
    const bytes = s.decoded ? s.decoded.bytes.length : Buffer.byteLength(s.value, 'utf8');
    return `| ${cell(s.name)} | ${cell(source)} | ${cell(version)} | ${cell(delivery)} | ${bytes} |`;
  });
  const place = report.userSecretsDir
    ? report.onTmpfs
      ? 'the secrets-dir you gave, in memory (its file system is a tmpfs)'
      : 'the secrets-dir you gave, on disk (its file system does not keep files in memory only)'
    : report.onTmpfs
      ? 'in memory (tmpfs /dev/shm)'
      : 'under RUNNER_TEMP on disk (no usable /dev/shm)';
  return [
    '### Pipeline Secrets',
    '',
    `${report.secrets.length} secret(s) delivered as 0600 files in ${code(report.secretsDir)}, ${place}.`,
    '',
    '| name | source | kind | delivered to | bytes |',
    '| --- | --- | --- | --- | ---: |',
    ...rows,
    '',
    report.envFileSkipped.length > 0
      ? `Left out of the env-file (multi-line, or not text): ${report.envFileSkipped.map(cell).join(', ')}.\n`
      : '',
    ...(report.leases.length > 0
      ? [
          '| lease id | path | ttl (s) | renewable |',
          '| --- | --- | ---: | --- |',
          // Lease ids are not secret (they cannot be used without a token); values are.
          ...report.leases.map((l) => `| ${cell(l.leaseId)} | ${cell(l.path)} | ${l.duration ?? ''} | ${l.renewable ? 'yes' : 'no'} |`),
          '',
        ]
      : []),
    ...(report.rendered !== undefined && report.rendered.length > 0
      ? [
          '| rendered file | path | bytes |',
          '| --- | --- | ---: |',
          ...report.rendered.map((r) => `| ${cell(r.name)} | ${code(r.path)}${r.inWorkspace ? ' (workspace)' : ''} | ${r.bytes} |`),
          '',
        ]
      : []),
    ...(report.registries.length > 0
      ? [
          `Logged in to ${report.registries.map((r) => code(r)).join(', ')} with the per-job DOCKER_CONFIG ${code(report.dockerConfig ?? '')} (nothing written to ~/.docker).`,
          '',
        ]
      : []),
    ...(report.buildSecrets.length > 0
      ? [
          `BuildKit secrets ready: ${report.buildSecrets.map((id) => code(id)).join(', ')} (outputs build-secret-files, build-secret-args).`,
          '',
        ]
      : []),
    ...(report.compose
      ? [
          `Compose override ${code(report.compose.file)} (output compose-file): file secrets at /run/secrets/NAME for ${report.compose.services.map((s) => code(s)).join(', ')}.`,
          '',
        ]
      : []),
    `Post will ${report.registries.length > 0 ? 'log out of the registries, ' : ''}${report.tokenRevocable ? 'revoke the Vault token, ' : ''}${report.leases.length > 0 ? `revoke ${report.leases.length} lease(s), ` : ''}${bySerial(report.secrets) > 0 ? `revoke ${bySerial(report.secrets)} certificate(s) by serial, ` : ''}delete these files${report.rendered?.some((r) => r.inWorkspace) ? ' (the rendered files in the workspace too)' : ''} and the directory.`,
    '',
    ...(report.batchTokenExpires !== undefined
      ? [`The Vault token is a batch token: it cannot be revoked and expires by its TTL at ${cell(report.batchTokenExpires)}.`, '']
      : []),
  ].join('\n');
}

/** Certificates of `pki` entries without a lease: post revokes them by serial (src/post/revoke.ts). */
function bySerial(secrets: readonly Secret[]): number {
  return secrets.filter(
    (s) => s.pem === true && s.source.kind === 'vault' && s.source.key === 'certificate' && s.source.leaseId === undefined,
  ).length;
}
