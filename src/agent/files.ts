// The delivered files as the renewal agent keeps them current: the value behind each secret file
// (compared, never logged), a changed file rewritten atomically with main's owner and mode; at the
// end of the round (flush) the env-file, each rendered file (`templates`) that uses a changed
// secret, then the user's on-change command once for the whole round; and the private root
// removed when the job that made it is gone.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import type { FileAccess } from '../core/file-access.ts';
import { fileContent, isBinary, isText } from '../core/decode.ts';
import { appendSideValues } from '../core/job-values.ts';
import { envFileText, fileId, markerHash, ROOT_MARKER } from '../core/private-dir.ts';
import type { VaultSecretLine } from '../inputs/secret-spec.ts';
import { select, type Secret } from '../vault/fetch.ts';
import type { ReadResult } from '../vault/kv.ts';
import { parseTemplate, renderTemplate, type Template } from '../templates/template.ts';
import type { AgentTemplate } from './config.ts';
import { writeAtomic, type StatusBook } from './status.ts';

/** What of the agent's config the files need (AgentConfig has it all). */
export interface FilesConfig {
  /** The private root: the superseded values go to its side-values file (core/job-values.ts). */
  readonly root: string;
  readonly secretsDir: string;
  readonly fileAccess?: FileAccess;
  readonly envFile: string;
  readonly secrets: ReadonlyArray<{ name: string; envName: string }>;
  readonly onChange: string | undefined;
  readonly onChangeTimeoutMs: number;
  readonly templates?: readonly AgentTemplate[];
}

/** A rendered file as the agent keeps it: its parsed template, what it last wrote, where its directory really is. */
interface Kept {
  readonly config: AgentTemplate;
  readonly template: Template;
  text: string | undefined;
  realDir: string | undefined;
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
  /**
   * Current values by secret name: the file's bytes (decoded, for a `?encoding=` line) and its text,
   * undefined when the bytes are not text (no env-file line, no template). Compared, never logged.
   */
  private readonly values = new Map<string, { bytes: Buffer; text: string | undefined }>();
  /** Secrets rewritten this round, not yet followed by the env-file, the rendered files and on-change. */
  private readonly pending = new Set<string>();
  /** Rendered files rewritten since on-change last ran. */
  private readonly pendingRendered = new Set<string>();
  private readonly rendered: Kept[] = [];

  constructor(config: FilesConfig, deps: FilesDeps) {
    this.config = config;
    this.deps = deps;
  }

  /** The values main delivered, read back from the files. */
  async load(): Promise<void> {
    for (const s of this.config.secrets) {
      const bytes = await fs.readFile(path.join(this.config.secretsDir, s.name)).catch(() => Buffer.alloc(0));
      this.values.set(s.name, { bytes, text: isText(bytes) || bytes.length === 0 ? bytes.toString('utf8') : undefined });
    }
    for (const t of this.config.templates ?? []) {
      // Parsed and checked by main already: a failure here is a bug, and ends the agent at its start.
      const template = parseTemplate({ name: t.name, file: t.source.file, inputLine: t.source.inputLine }, t.text);
      const text = await fs.readFile(t.path, 'utf8').catch(() => undefined);
      // Where main wrote it, resolved: a directory swapped for a symlink since is not written through.
      const realDir = await fs.realpath(path.dirname(t.path)).catch(() => undefined);
      this.rendered.push({ config: t, template, text, realDir });
    }
  }

  bytes(name: string): number {
    return this.values.get(name)?.bytes.length ?? 0;
  }

  /** Rewrites the files whose value changed; flush() follows them up at the end of the round. */
  async apply(lines: readonly VaultSecretLine[], result: ReadResult, what: string): Promise<void> {
    const fresh: Secret[] = [];
    const warnings: string[] = [];
    for (const line of lines) fresh.push(...select(line, result, warnings));
    const changed: Secret[] = [];
    for (const secret of fresh) {
      // Only files main delivered: a key that appeared since is not a file anyone asked for.
      const known = this.values.get(secret.name);
      // Decoded the way main decoded it (select() applies the line's ?encoding=): the file gets the same bytes.
      const content = Buffer.from(fileContent(secret));
      if (known === undefined || known.bytes.equals(content)) continue;
      // The old value may already sit in an artifact built before the rotation, and after the
      // rewrite no file holds it: it is kept (before the rewrite) for the leak scan to look for.
      // Keeping it must not stop the rotation (a replaced credential may be about to expire).
      try {
        const old = known.text ?? known.bytes;
        await appendSideValues(this.config.root, [{ name: `${secret.name} (superseded)`, source: 'superseded', value: old }]);
      } catch (error) {
        this.deps.status.failed('keep superseded value', error, this.deps.now());
        await this.deps.log(`the old value of ${secret.name} is not kept for the leak scan: ${errorText(error)}`);
      }
      await writeAtomic(path.join(this.config.secretsDir, secret.name), content, this.config.fileAccess);
      this.values.set(secret.name, { bytes: content, text: isBinary(secret) ? undefined : secret.value });
      this.pending.add(secret.name);
      changed.push(secret);
    }
    for (const warning of warnings) await this.deps.log(`warning: ${warning}`);
    if (changed.length === 0) {
      await this.deps.log(`${what}: no delivered value changed`);
      return;
    }
    await this.deps.log(`${what}: rewrote ${changed.map((s) => `${s.name} (${this.bytes(s.name)} bytes)`).join(', ')}`);
  }

  /**
   * The end of a round in which secrets changed: the env-file, each rendered file that uses one of
   * them, then on-change once with every name. What fails stays pending for the next round.
   */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const changed = [...this.pending];
    await writeAtomic(
      this.config.envFile,
      envFileText(
        this.config.secrets.map((s) => {
          const text = this.values.get(s.name)?.text;
          // Bytes that are not text are left out, as main left them out (core/private-dir.ts envFileText).
          return text === undefined ? { envName: s.envName, value: '', decoded: { text: false } } : { envName: s.envName, value: text };
        }),
      ).text,
    );
    for (const kept of this.rendered) {
      if (!kept.template.secrets.some((name) => this.pending.has(name))) continue;
      try {
        if (await this.render(kept)) this.pendingRendered.add(kept.config.name);
      } catch (error) {
        // One file that cannot be written keeps its last content; the others and on-change go on.
        this.deps.status.failed(`re-render (${kept.config.name})`, error, this.deps.now());
        await this.deps.log(`rendered file ${kept.config.name} not rewritten, keeping its last content: ${errorText(error)}`);
      }
    }
    const rendered = [...this.pendingRendered];
    this.pending.clear();
    this.pendingRendered.clear();
    await this.runOnChange(changed, rendered);
  }

  /** Renders one template again; writes it (atomically, main's owner and mode) only when its text changed. */
  private async render(kept: Kept): Promise<boolean> {
    const { config } = kept;
    // No mask is registered here: the agent is not a step and has no log masker; its log holds names only.
    const text = renderTemplate(kept.template, (name) => {
      const value = this.values.get(name);
      if (value !== undefined && value.text === undefined)
        throw new Error(
          `template '${config.name}': secret '${name}' now decodes to bytes that are not UTF-8 text, which a template cannot insert`,
        );
      return value?.text;
    }).text;
    if (text === kept.text) return false;
    const realDir = await fs.realpath(path.dirname(config.path)).catch(() => undefined);
    if (realDir === undefined || realDir !== kept.realDir) {
      throw new Error(
        `rendered file ${config.name}: ${path.dirname(config.path)} is not the directory main wrote it in any more; not rewritten`,
      );
    }
    const owner = this.config.fileAccess;
    const access: FileAccess = {
      ...(owner?.uid !== undefined ? { uid: owner.uid } : {}),
      ...(owner?.gid !== undefined ? { gid: owner.gid } : {}),
      mode: config.mode,
    };
    await writeAtomic(config.path, text, access);
    kept.text = text;
    const bytes = Buffer.byteLength(text, 'utf8');
    // Its new device:inode: post proves a workspace file by it before deleting it (post/remove.ts).
    const id = fileId(await fs.lstat(config.path, { bigint: true }));
    this.deps.status.renderedAgain(config.name, config.path, bytes, id);
    await this.deps.log(`rendered ${config.name} again (${bytes} bytes)${config.inWorkspace ? ` at ${config.path}` : ''}`);
    return true;
  }

  private async runOnChange(names: string[], rendered: string[]): Promise<void> {
    if (!this.config.onChange) return;
    const started = this.deps.now();
    // The user's own command, run by a shell (it may be `kill -HUP $(cat app.pid)`); it learns what
    // changed through names in env, never values.
    const result = await this.deps
      .exec('sh', ['-c', this.config.onChange], {
        env: {
          PIPELINE_SECRETS_DIR: this.config.secretsDir,
          PIPELINE_SECRETS_CHANGED: names.join(','),
          PIPELINE_SECRETS_RENDERED: rendered.join(','),
        },
        timeoutMs: this.config.onChangeTimeoutMs,
      })
      .catch((error: unknown) => ({ exitCode: -1, stdout: '', stderr: errorText(error) }));
    const ms = this.deps.now() - started;
    this.deps.status.onChangeRan(names, result.exitCode, ms, this.deps.now(), rendered);
    const files = rendered.length > 0 ? ` (rendered files ${rendered.join(', ')})` : '';
    await this.deps.log(`on-change ran for ${names.join(', ')}${files}: exit code ${result.exitCode} after ${ms} ms`);
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
