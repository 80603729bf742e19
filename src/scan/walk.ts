// Which files a scan reads, in order, once each: inputs are files, directories (walked recursively,
// in name order) and globs (fs.glob, relative to cwd; a glob that matches nothing is not an error, it
// is listed in `unmatched` for the caller to judge; what it matches counts as named inputs). Paths
// are reported as given. A path that does not exist is an `error` event and the walk goes on.
//
// Symlinks are not followed by default: met while walking they are skipped and counted (as are
// fifos, sockets and devices, which could block a read or never end) and passed to onSkip; named as
// an input, they are an `error` (an input is never skipped silently). With followSymlinks they are
// resolved and scanned under the link's path, each real file and directory once, with bounds on the
// links followed (maxLinks) and the bytes reached through them (maxLinkedBytes), never into /proc,
// /sys or /dev; a link to a directory that holds it is a loop, reported and not walked again.
import type { Dirent, Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errorCode } from './containers/index.ts';

export interface LinkLimits {
  /** Symlinks followed per scan. Default 10,000. */
  maxLinks: number;
  /** Bytes of files reached through symlinks (on disk, before decompression). Default 4 GiB. */
  maxLinkedBytes: number;
}

export const DEFAULT_LINK_LIMITS: Readonly<LinkLimits> = { maxLinks: 10_000, maxLinkedBytes: 4 * 2 ** 30 };

/** What the walk reports besides files: a path not scanned (error, limit) or worth telling (notice). */
export type WalkEvent =
  | { kind: 'error'; path: string; message: string }
  | { kind: 'limit'; path: string; message: string }
  | { kind: 'notice'; path: string; message: string };

export interface WalkOptions {
  /** Follow symlinks (default false); see the top of this file. */
  followSymlinks?: boolean;
  /** Called for each symlink or special file skipped while walking. */
  onSkip?: (path: string, what: 'symlink' | 'special') => void;
}

/** Counters the walk adds to (the scan's `done` event reports them). */
export interface ExpandState {
  skipped: number;
  followed: number;
  linkedBytes: number;
  unmatched: string[];
}

const GLOB_MAGIC = /[*?[{]/;

/** Directories a followed symlink is never walked into: endless or blocking pseudo-files. */
const SYSTEM_DIRS = ['/proc', '/sys', '/dev'];

/**
 * Files to scan, in order, once each; errors for inputs that do not exist.
 *
 * Each file and directory is visited once by its real path (plain entries: the real path of their
 * input plus the relative path, as a plain walk never crosses a link; followed links: realpath).
 * With followSymlinks, a link met while walking is followed after the rest of its input, so content
 * is reported under its plain path where it has one; a link into a directory already walked is not
 * walked again (that is what bounds a loop and a fan of links to the same tree) and one to an
 * ancestor of itself is reported as a loop.
 */
export async function* expand(
  inputs: ReadonlyArray<string>,
  cwd: string,
  state: ExpandState,
  opts: WalkOptions,
  limits: LinkLimits,
): AsyncGenerator<string | WalkEvent> {
  const seen = new Set<string>();
  const follow = opts.followSymlinks === true;
  const pending: Array<{ display: string; link: string }> = [];
  let overLinks = 0;
  const skip = (display: string, what: 'symlink' | 'special'): void => {
    state.skipped += 1;
    opts.onSkip?.(display, what);
  };

  async function* visit(display: string, real: string, info: Stats | Dirent, viaLink: boolean): AsyncGenerator<string | WalkEvent> {
    if (seen.has(real)) return;
    seen.add(real);
    if (info.isSymbolicLink()) {
      if (follow) pending.push({ display, link: real });
      else skip(display, 'symlink');
    } else if (info.isFile()) {
      if (viaLink) {
        // Bytes reached through links are bounded: a link to /usr or to a disk of build caches would
        // otherwise scan far more than the artifacts the step named.
        const size = 'size' in info ? info.size : ((await fs.stat(real).catch(() => undefined))?.size ?? 0);
        if (state.linkedBytes + size > limits.maxLinkedBytes) {
          yield {
            kind: 'limit',
            path: display,
            message: `not scanned: files reached through symlinks passed the ${limits.maxLinkedBytes}-byte bound`,
          };
          return;
        }
        state.linkedBytes += size;
      }
      yield display;
    } else if (info.isDirectory()) {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(real, { withFileTypes: true });
      } catch (e) {
        yield { kind: 'error', path: display, message: `cannot read directory (${errorCode(e)})` };
        return;
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) yield* visit(path.join(display, entry.name), path.join(real, entry.name), entry, viaLink);
    } else skip(display, 'special');
  }

  /** Follows the links met so far (and those met behind them), each once. */
  async function* drain(): AsyncGenerator<string | WalkEvent> {
    for (let item = pending.shift(); item !== undefined; item = pending.shift()) {
      const { display, link } = item;
      if (state.followed >= limits.maxLinks) {
        if (overLinks++ === 0)
          yield {
            kind: 'limit',
            path: display,
            message: `symlink not followed, not scanned: the bound of ${limits.maxLinks} symlinks was reached`,
          };
        continue;
      }
      let target: string;
      let st: Stats;
      try {
        target = await fs.realpath(link);
        st = await fs.stat(target);
      } catch (e) {
        const code = errorCode(e);
        if (code === 'ELOOP') yield { kind: 'error', path: display, message: 'symlink loop (ELOOP): not scanned' };
        else if (code === 'ENOENT') yield { kind: 'notice', path: display, message: 'dangling symlink: nothing to scan' };
        else yield { kind: 'error', path: display, message: `cannot follow the symlink (${code}): not scanned` };
        continue;
      }
      state.followed += 1;
      if (SYSTEM_DIRS.some((d) => target === d || target.startsWith(`${d}/`))) {
        yield { kind: 'limit', path: display, message: `symlink to ${target}: not followed into a system directory, not scanned` };
        continue;
      }
      if (st.isDirectory()) {
        const from = path.relative(target, path.dirname(link));
        if (from === '' || (!from.startsWith('..') && !path.isAbsolute(from))) {
          yield { kind: 'notice', path: display, message: `symlink loop: points to ${target}, which holds the link; not followed again` };
          continue;
        }
      }
      yield* visit(display, target, st, true);
    }
    if (overLinks > 1)
      yield {
        kind: 'limit',
        path: '(symlinks)',
        message: `${overLinks - 1} more symlink(s) not followed, not scanned (bound of ${limits.maxLinks})`,
      };
    overLinks = 0;
  }

  /** A named input or a glob match: lstat'ed, its real path found, links followed or reported. */
  async function* top(display: string, st: Stats): AsyncGenerator<string | WalkEvent> {
    const abs = path.resolve(cwd, display);
    if (st.isSymbolicLink()) {
      if (!follow) {
        state.skipped += 1;
        // Named by the user: leaving it unscanned silently would read as "clean".
        yield { kind: 'error', path: display, message: 'a symlink: not followed, not scanned (name its target instead)' };
        return;
      }
      // The link's own location, real, for the loop check.
      const parent = await fs.realpath(path.dirname(abs)).catch(() => path.dirname(abs));
      pending.push({ display, link: path.join(parent, path.basename(abs)) });
    } else {
      const real = await fs.realpath(abs).catch(() => abs);
      yield* visit(display, real, st, false);
    }
    yield* drain();
  }

  for (const input of inputs) {
    let st: Stats | undefined;
    let code = '';
    try {
      st = await fs.lstat(path.resolve(cwd, input));
    } catch (e) {
      code = errorCode(e);
    }
    if (st) {
      yield* top(input, st);
      continue;
    }
    if (GLOB_MAGIC.test(input)) {
      const matches: string[] = [];
      for await (const match of globFiles(input, cwd)) matches.push(match);
      matches.sort();
      if (matches.length === 0) state.unmatched.push(input);
      for (const match of matches) {
        let info: Stats;
        try {
          info = await fs.lstat(path.resolve(cwd, match));
        } catch (e) {
          yield { kind: 'error', path: match, message: `cannot stat (${errorCode(e)})` };
          continue;
        }
        yield* top(match, info);
      }
      continue;
    }
    yield { kind: 'error', path: input, message: code === 'ENOENT' ? 'no such file or directory' : `cannot stat (${code})` };
  }
}

/** Paths matching a glob, relative to cwd when the glob is relative. fs.glob when there is one. */
async function* globFiles(pattern: string, cwd: string): AsyncGenerator<string> {
  if (typeof fs.glob === 'function') {
    yield* fs.glob(pattern, { cwd });
    return;
  }
  const re = globToRegExp(pattern);
  const magicAt = pattern.search(GLOB_MAGIC);
  const base = pattern.slice(0, pattern.lastIndexOf('/', magicAt) + 1);
  async function* walkDir(dir: string): AsyncGenerator<string> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(path.resolve(cwd, dir || '.'), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = dir + entry.name;
      if (re.test(rel)) yield rel;
      if (entry.isDirectory()) yield* walkDir(`${rel}/`);
    }
  }
  yield* walkDir(base);
}

/**
 * A small glob: `**` (any depth), `*`, `?`, `[...]`, `{a,b}`; `/` separates. Used only where
 * fs.glob is missing (Node before 22); the action's Node 24 always has it.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:[^/]*/)*' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        const body = glob
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = close;
      }
    } else if (c === '{') {
      braces += 1;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces -= 1;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
