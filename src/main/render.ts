// Main's rendered config files (the `templates` input): each template read and parsed before
// anything is fetched; its placeholders checked against the step's secrets before anything is
// written; then rendered, every filter output that holds a secret masked, and written 0600 into
// <private root>/rendered/ (or, with `path=`, the workspace file the user named), each path in
// the ledger before the file exists. Paths (never content) reach later steps at hand-over.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isBinary } from '../core/decode.ts';
import { DeliveryError, InputError } from '../core/errors.ts';
import { accessDir, aclFiles, type FileAccess } from '../core/file-access.ts';
import type { LedgerWriter } from '../core/ledger.ts';
import type { MaskRegistry } from '../core/mask.ts';
import { fileId, writeExclusive, type PrivateDir } from '../core/private-dir.ts';
import type { Runner } from '../core/runner.ts';
import type { Config, TemplateEntry } from '../inputs/main.ts';
import { checkSecretNames, checkTextSecrets, parseTemplate, renderTemplate, type Template } from '../templates/template.ts';
import type { Secret } from '../vault/fetch.ts';

/** The directory of the private root that holds rendered files (0700, like secrets/). */
export const RENDERED_DIR = 'rendered';
/** A template file larger than this is refused: a config file, not a data set. */
export const TEMPLATE_MAX_BYTES = 1024 * 1024;

/** A template read and parsed, with its entry and its text (the renewal agent re-parses the text). */
export interface LoadedTemplate {
  readonly entry: TemplateEntry;
  readonly text: string;
  readonly template: Template;
}

/** A file main rendered: where it is, how big (for the summary), and what the agent needs to redo it. */
export interface RenderedFile {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
  /** Written to the workspace (`path=`), not the private root. */
  readonly inWorkspace: boolean;
  readonly envVar: string | undefined;
  readonly mode: number;
  readonly text: string;
  readonly source: { readonly file?: string; readonly inputLine?: number };
}

/**
 * Reads each file template from the repository and parses every template: a syntax error or an
 * unknown section fails the step before any credential is fetched.
 */
export async function loadTemplates(entries: readonly TemplateEntry[], workspace: string | undefined): Promise<LoadedTemplate[]> {
  const loaded: LoadedTemplate[] = [];
  for (const entry of entries) {
    const text = entry.source.kind === 'inline' ? entry.source.text : await readTemplateFile(entry, entry.source.file, workspace);
    const where =
      entry.source.kind === 'inline'
        ? { name: entry.name, inputLine: entry.source.firstLine }
        : { name: entry.name, file: entry.source.file };
    loaded.push({ entry, text, template: parseTemplate(where, text) });
  }
  return loaded;
}

/** A template file inside the repository: no symlink out of it, a regular file, at most TEMPLATE_MAX_BYTES. */
async function readTemplateFile(entry: TemplateEntry, file: string, workspace: string | undefined): Promise<string> {
  const fail = (why: string): never => {
    throw new InputError('templates', `line ${entry.line}: template '${entry.name}': ${file} ${why}`);
  };
  if (!workspace) fail('cannot be read: GITHUB_WORKSPACE is not set (a template file is a path in the repository)');
  const real = await fs
    .realpath(path.join(workspace as string, file))
    .catch((error: NodeJS.ErrnoException) =>
      fail(
        error.code === 'ENOENT'
          ? 'does not exist in the repository (check the path, and that the repository is checked out)'
          : `cannot be read (${error.code ?? 'error'})`,
      ),
    );
  // Resolved, symlinks and all: a link in the repository must not lead to a file outside it.
  const root = await fs.realpath(workspace as string);
  if (!isInside(real, root)) fail('resolves outside the repository (a symlink out of it): not read');
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    return fail(`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) fail('is not a regular file');
    if (stat.size > TEMPLATE_MAX_BYTES) fail(`is ${stat.size} bytes; a template may have at most ${TEMPLATE_MAX_BYTES}`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

function isInside(file: string, dir: string): boolean {
  return file === dir || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

/**
 * Every placeholder names a secret of this step, and no `env=` takes a name a secret is exported
 * as: checked once the secrets are known, before anything is written.
 */
export function checkTemplates(loaded: readonly LoadedTemplate[], secrets: readonly Secret[], config: Pick<Config, 'exportEnv'>): void {
  const names = secrets.map((s) => s.name);
  const binary = secrets.filter(isBinary).map((s) => s.name);
  for (const { entry, template } of loaded) {
    checkSecretNames(template, names);
    checkTextSecrets(template, binary);
    const clash = config.exportEnv && entry.envVar !== undefined ? secrets.find((s) => s.envName === entry.envVar) : undefined;
    if (clash) {
      throw new InputError(
        'templates',
        `line ${entry.line}: template '${entry.name}': env=${entry.envVar ?? ''} is also the variable export-env sets for secret '${clash.name}'; choose another name`,
      );
    }
  }
}

/**
 * Renders and writes every template. Each filter output that holds a secret is masked before its
 * file is written (a raw placeholder inserts a value that is masked already); each path is in the
 * ledger before its file exists, so post removes it whatever happens next.
 */
export async function writeRendered(
  deps: { readonly ledger: LedgerWriter; readonly masks: MaskRegistry; readonly workspace: string | undefined },
  dir: PrivateDir,
  loaded: readonly LoadedTemplate[],
  secrets: readonly Secret[],
  fileAccess: FileAccess | undefined,
): Promise<RenderedFile[]> {
  if (loaded.length === 0) return [];
  const values = new Map(secrets.map((s) => [s.name, s.value]));
  const renderedDir = path.join(dir.root, RENDERED_DIR);
  const owner = {
    ...(fileAccess?.uid !== undefined ? { uid: fileAccess.uid } : {}),
    ...(fileAccess?.gid !== undefined ? { gid: fileAccess.gid } : {}),
  };
  if (loaded.some((l) => l.entry.destination === undefined)) await fs.mkdir(renderedDir, { mode: 0o700 });
  const out: RenderedFile[] = [];
  for (const { entry, text, template } of loaded) {
    const rendered = renderTemplate(template, (name) => values.get(name));
    // New strings (base64 of "user:pass"...) that no registered form covers: masked before the file exists.
    for (const form of rendered.derived) deps.masks.add(form);
    const access: FileAccess = { ...owner, mode: entry.mode };
    const file =
      entry.destination === undefined
        ? path.join(renderedDir, entry.name)
        : await workspaceDestination(entry, entry.destination, deps.workspace);
    if (entry.destination === undefined) {
      deps.ledger.update((l) => l.files.push(file));
      await writeExclusive(file, rendered.text, access);
    } else {
      // A file already there (a checked-in .npmrc) is the user's: refused before it is recorded as ours.
      if (
        await fs.lstat(file).then(
          () => true,
          () => false,
        )
      ) {
        throw new DeliveryError(
          `input 'templates': line ${entry.line}: template '${entry.name}': ${file} already exists; path= must name a file that does not exist yet (it is never overwritten)`,
        );
      }
      deps.ledger.update((l) => (l.workspaceFiles = [...(l.workspaceFiles ?? []), { path: file }]));
      try {
        await writeExclusive(file, rendered.text, access);
      } catch (error) {
        throw new DeliveryError(
          `input 'templates': line ${entry.line}: template '${entry.name}': ${(error as Error).message}; path= must name a file that does not exist yet`,
          { cause: error },
        );
      }
      // Its identity, for post to prove that the file it deletes is this one (ledger.ts).
      const id = fileId(await fs.lstat(file, { bigint: true }));
      deps.ledger.update((l) => {
        for (const w of l.workspaceFiles ?? []) if (w.path === file) w.id = id;
      });
    }
    if (owner.uid !== undefined) await aclFiles([file], access);
    out.push({
      name: entry.name,
      path: file,
      bytes: Buffer.byteLength(rendered.text, 'utf8'),
      inWorkspace: entry.destination !== undefined,
      envVar: entry.envVar,
      mode: entry.mode,
      text,
      source: template.where.file !== undefined ? { file: template.where.file } : { inputLine: template.where.inputLine ?? 1 },
    });
  }
  // The files first, the directory last (as for secrets/): the uid reaches them only once each is ready.
  if (fileAccess?.uid !== undefined && out.some((r) => !r.inWorkspace)) await accessDir(renderedDir, { ...owner, mode: fileAccess.mode });
  return out;
}

/**
 * `path=` in the workspace: its directories made as needed, one at a time, each checked to resolve
 * inside the workspace (a symlinked directory must not carry the file out of it).
 */
async function workspaceDestination(entry: TemplateEntry, destination: string, workspace: string | undefined): Promise<string> {
  const fail = (why: string): never => {
    throw new InputError('templates', `line ${entry.line}: template '${entry.name}': path=${destination} ${why}`);
  };
  if (!workspace) return fail('needs GITHUB_WORKSPACE, which is not set');
  const root = await fs.realpath(workspace);
  const parts = destination.split('/');
  let dir = workspace;
  for (const part of parts.slice(0, -1)) {
    dir = path.join(dir, part);
    const stat = await fs.lstat(dir).catch(() => undefined);
    if (stat === undefined) await fs.mkdir(dir, { mode: 0o700 });
    else if (!stat.isDirectory() && !stat.isSymbolicLink()) fail(`cannot be written: ${path.relative(workspace, dir)} is not a directory`);
    const real = await fs.realpath(dir);
    if (!isInside(real, root))
      fail(`resolves outside the workspace (${path.relative(workspace, dir)} is a symlink out of it): not written`);
    if (!(await fs.stat(real)).isDirectory()) fail(`cannot be written: ${path.relative(workspace, dir)} is not a directory`);
  }
  return path.join(workspace, destination);
}

/** At hand-over: the `rendered-files` output (NAME=PATH lines) and, with export-env, each `env=` as its file's path. */
export function handOverRendered(runner: Runner, config: Pick<Config, 'exportEnv'>, rendered: readonly RenderedFile[]): void {
  if (rendered.length === 0) return;
  runner.setOutput('rendered-files', rendered.map((r) => `${r.name}=${r.path}`).join('\n'));
  if (config.exportEnv) for (const r of rendered) if (r.envVar !== undefined) runner.exportVariable(r.envVar, r.path);
}
