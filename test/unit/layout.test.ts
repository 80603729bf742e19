// The source tree's shape, checked so that it stays readable: one folder per runtime entry over
// shared engines, imports running one way (an entry's folder -> the engines, never back), no import
// cycle, INPUT_* read only in src/inputs/, no file that needs scrolling without saying why, and a
// unit test beside every module (or a line saying which end-to-end test covers it).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every .ts file under dir, as paths relative to the repository root. */
function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.posix.join(dir, name);
    if (statSync(file).isDirectory()) return tsFiles(file);
    return name.endsWith('.ts') ? [file] : [];
  });
}

const SOURCES = tsFiles('src');

/** The code without its comments (a comment may mention INPUT_; only code can read it). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
}

/** The src/ files a file imports (static, type-only and dynamic), resolved. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+\.ts)'/g)].map((m) =>
    path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1] ?? '')),
  );
}

/** The folder of src/ a file is in: src/main/pipeline.ts -> main. */
const folder = (file: string): string => file.split('/')[1] ?? '';

// Which folders each folder may import from (itself always). Entries' folders at the top, engines
// below; an engine never imports an entry's folder, so each bundle's code is found by its folder.
const MAY_IMPORT: Record<string, readonly string[]> = {
  core: [],
  inputs: ['core'],
  scan: ['core'],
  vault: ['core', 'inputs'],
  docker: ['core', 'inputs'],
  templates: ['core'],
  agent: ['core', 'inputs', 'vault', 'templates'],
  verify: ['core', 'inputs'],
  'leak-scan': ['core', 'inputs', 'vault', 'scan'],
  main: ['core', 'inputs', 'vault', 'docker', 'agent', 'templates'],
  post: ['core', 'inputs', 'vault', 'docker', 'agent', 'verify', 'scan'],
};

describe('the source layout', () => {
  it('every src/ file sits in a known folder', () => {
    const unknown = SOURCES.filter((f) => !(folder(f) in MAY_IMPORT));
    expect(unknown).toEqual([]);
  });

  it('imports run one way: no folder imports one above it, nothing imports an entry', () => {
    const wrong: string[] = [];
    for (const file of SOURCES) {
      for (const target of importsOf(file)) {
        if (target.endsWith('/entry.ts')) wrong.push(`${file} imports the entry ${target}`);
        const from = folder(file);
        const to = folder(target);
        if (from !== to && !(MAY_IMPORT[from] ?? []).includes(to)) wrong.push(`${file} -> ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import cycle', () => {
    const graph = new Map(SOURCES.map((f) => [f, importsOf(f)]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of SOURCES) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('reads INPUT_* only in src/inputs/', () => {
    const readers = SOURCES.filter((f) => folder(f) !== 'inputs').filter((f) => {
      const text = withoutComments(readFileSync(f, 'utf8'));
      return /INPUT_|\bgetInput\(/.test(text);
    });
    expect(readers).toEqual([]);
  });

  it('a file over 300 lines says at its top why it is long', () => {
    const long = SOURCES.filter((f) => {
      const text = readFileSync(f, 'utf8');
      if (text.replace(/\n$/, '').split('\n').length <= 300) return false;
      const header = text.slice(0, text.search(/^(import|export)\b/m));
      // e.g. "About 320 lines: ..." saying why it stays one file.
      return !/\b\d+ lines\b/i.test(header);
    });
    expect(long, 'split the file, or say in its header comment why it is long').toEqual([]);
  });

  it('every module has a unit test at the mirrored path, or its folder README names the end-to-end test', () => {
    const missing: string[] = [];
    for (const file of SOURCES) {
      const rel = file.slice('src/'.length);
      const mirrored = `test/unit/${rel.replace(/\.ts$/, '.test.ts')}`;
      if (existsSync(mirrored)) continue;
      const readme = path.posix.join('test/unit', path.posix.dirname(rel), 'README.md');
      // The README's list item (up to the next item or blank line) that names the module.
      const name = new RegExp(
        '`(?:src/)?(?:' + path.posix.dirname(rel).replace(/[.]/g, '\\.') + '/)?' + path.posix.basename(file).replace('.', '\\.') + '`',
      );
      const item = existsSync(readme)
        ? readFileSync(readme, 'utf8')
            .split(/\n(?=- )|\n\s*\n/)
            .find((entry) => entry.startsWith('- ') && name.test(entry))
        : undefined;
      const e2e = item?.match(/test\/e2e\/[\w-]+\.test\.ts/g) ?? [];
      if (e2e.length === 0 || !e2e.every((t) => existsSync(t)))
        missing.push(`${file}: no ${mirrored}, no line in ${readme} naming an existing test/e2e file`);
    }
    expect(missing).toEqual([]);
  });
});
