// The delivered files as the renewal agent keeps them current: the value behind each secret file
// (compared, never logged), a changed file rewritten atomically with main's owner and mode, then
// the env-file, then the user's on-change command once; and the private root removed when the job
// that made it is gone.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { FileAccess } from '../core/file-access.ts';
import { envFileText, markerHash, ROOT_MARKER } from '../core/private-dir.ts';
import type { VaultSecretLine } from '../inputs/secret-spec.ts';
import { select, type Secret } from '../vault/fetch.ts';
import type { ReadResult } from '../vault/kv.ts';
import { writeAtomic, type StatusBook } from './status.ts';

/** What of the agent's config the files need (AgentConfig has it all). */
export interface FilesConfig {
  readonly secretsDir: string;
  readonly fileAccess?: FileAccess;
  readonly envFile: string;
  readonly secrets: ReadonlyArray<{ name: string; envName: string }>;
  readonly onChange: string | undefined;
  readonly onChangeTimeoutMs: number;
}

export interface FilesDeps {
  readonly exec: Exec;
  readonly now: () => number;
  readonly log: (message: string) => Promise<void>;
  readonly status: StatusBook;
}

export class SecretFiles {
  private readonly config: FilesConfig;
  private readonly deps: FilesDeps;
  /** Current values by secret name: the agent compares, it never logs them. */
  private readonly values = new Map<string, string>();

  constructor(config: FilesConfig, deps: FilesDeps) {
    this.config = config;
    this.deps = deps;
  }

  /** The values main delivered, read back from the files. */
  async load(): Promise<void> {
    for (const s of this.config.secrets) {
      this.values.set(s.name, await fs.readFile(path.join(this.config.secretsDir, s.name), 'utf8').catch(() => ''));
    }
  }

  bytes(name: string): number {
    return Buffer.byteLength(this.values.get(name) ?? '');
  }

  /** Rewrites the files whose value changed, then the env-file, then runs on-change once. */
  async apply(lines: readonly VaultSecretLine[], result: ReadResult, what: string): Promise<void> {
    const fresh: Secret[] = [];
    const warnings: string[] = [];
    for (const line of lines) fresh.push(...select(line, result, warnings));
    const changed: Secret[] = [];
    for (const secret of fresh) {
      // Only files main delivered: a key that appeared since is not a file anyone asked for.
      if (!this.values.has(secret.name) || this.values.get(secret.name) === secret.value) continue;
      await writeAtomic(path.join(this.config.secretsDir, secret.name), secret.value, this.config.fileAccess);
      this.values.set(secret.name, secret.value);
      changed.push(secret);
    }
    for (const warning of warnings) await this.deps.log(`warning: ${warning}`);
    if (changed.length === 0) {
      await this.deps.log(`${what}: no delivered value changed`);
      return;
    }
    await writeAtomic(
      this.config.envFile,
      envFileText(this.config.secrets.map((s) => ({ envName: s.envName, value: this.values.get(s.name) ?? '' }))).text,
    );
    await this.deps.log(`${what}: rewrote ${changed.map((s) => `${s.name} (${Buffer.byteLength(s.value)} bytes)`).join(', ')}`);
    await this.runOnChange(changed.map((s) => s.name));
  }

  private async runOnChange(names: string[]): Promise<void> {
    if (!this.config.onChange) return;
    const started = this.deps.now();
    // The user's own command, run by a shell (it may be `kill -HUP $(cat app.pid)`); it learns what
    // changed through names in env, never values.
    const result = await this.deps
      .exec('sh', ['-c', this.config.onChange], {
        env: { PIPELINE_SECRETS_DIR: this.config.secretsDir, PIPELINE_SECRETS_CHANGED: names.join(',') },
        timeoutMs: this.config.onChangeTimeoutMs,
      })
      .catch((error: unknown) => ({ exitCode: -1, stdout: '', stderr: errorText(error) }));
    const ms = this.deps.now() - started;
    this.deps.status.onChangeRan(names, result.exitCode, ms, this.deps.now());
    await this.deps.log(`on-change ran for ${names.join(', ')}: exit code ${result.exitCode} after ${ms} ms`);
  }
}

/**
 * Removes the private root, only while it is a directory of this user (not a symlink) carrying
 * the marker whose sha256 is `hash`: the root this agent was started for, not whatever took its name.
 */
export async function removeRootIfOurs(root: string, hash: string | undefined): Promise<void> {
  if (hash === undefined || !(await carriesMarker(root, hash))) return;
  await fs.rm(root, { recursive: true, force: true }).catch(() => {});
}

async function carriesMarker(root: string, hash: string): Promise<boolean> {
  try {
    const stat = await fs.lstat(root);
    if (!stat.isDirectory() || (process.getuid !== undefined && stat.uid !== process.getuid())) return false;
    const handle = await fs.open(path.join(root, ROOT_MARKER), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      const markerStat = await handle.stat();
      if (!markerStat.isFile() || markerStat.size > 4096) return false;
      return markerHash(await handle.readFile()) === hash;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

export async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}
