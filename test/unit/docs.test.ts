// The documentation's relative links resolve: each linked file exists, and each #anchor is a
// heading of the page it points to (GitHub's heading ids). Words that only make sense inside the
// team stay out of it, and the action is always referred to by its published name.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const PAGES = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The text outside fenced code blocks and inline code spans. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').replace(/(`+)[\s\S]*?\1/g, '');
}

/** GitHub's ids for a page's headings: lower case, punctuation dropped, spaces to '-', repeats numbered. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const match of markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = (match[1] ?? '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] ?? '');
}

const INTERNAL_WORDS = [/REFERENCE\.md/, /design card/i, /\bthe seed\b/i, /\bseed's\b/i, /\bissue \d/i, /\bthe double\b/i, /OWNER\/REPO/];

/** The TypeScript files of a tree, .out/ (bench output) left out. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !path.join(e.parentPath, e.name).includes(`${path.sep}.out${path.sep}`))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('documentation', () => {
  it('has the pages the README links to', () => {
    for (const page of ['docs/leak-scan.md', 'docs/renewal-agent.md', 'docs/docker.md', 'CONTRIBUTING.md', 'LICENSE'])
      expect(existsSync(page), page).toBe(true);
  });

  it('computes heading ids as GitHub does', () => {
    const ids = anchors(
      '# The `secrets` input\n## Migrating from hashicorp/vault-action\n## Docker, the leak scan and long jobs\n## A\n## A\n',
    );
    expect([...ids]).toEqual([
      'the-secrets-input',
      'migrating-from-hashicorpvault-action',
      'docker-the-leak-scan-and-long-jobs',
      'a',
      'a-1',
    ]);
  });

  it.each(PAGES)('%s: every relative link and anchor resolves', (page) => {
    const broken: string[] = [];
    for (const link of links(readFileSync(page, 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
      const [file = '', anchor] = link.split('#');
      const target = file === '' ? page : path.normalize(path.join(path.dirname(page), file));
      if (!existsSync(target)) {
        broken.push(`${link}: no file ${target}`);
        continue;
      }
      if (anchor !== undefined && !anchors(readFileSync(target, 'utf8')).has(anchor))
        broken.push(`${link}: no heading #${anchor} in ${target}`);
    }
    expect(broken).toEqual([]);
  });

  it.each(PAGES)('%s: no team-internal words, one name for the action', (page) => {
    const text = readFileSync(page, 'utf8');
    for (const word of INTERNAL_WORDS) expect(text, `${page}: ${word}`).not.toMatch(word);
    for (const [, ref] of text.matchAll(/uses:\s*(pipeline-secrets\/[^\s`'",]+)/g))
      expect(ref).toMatch(/^pipeline-secrets\/pipeline-secrets(\/scan|\/verify|\/\.github\/workflows\/deploy\.yml)?@v1$/);
  });

  it('comments and messages in src/, test/, bench/ and scripts/ say the thing itself, not team-internal words', () => {
    const self = path.join('test', 'unit', 'docs.test.ts');
    const found: string[] = [];
    for (const file of ['src', 'test', 'bench', 'scripts'].flatMap(sources)) {
      if (file === self) continue;
      const text = readFileSync(file, 'utf8');
      // OWNER/REPO is left out: code may describe a claim's format (the OIDC `sub`) with it.
      for (const word of INTERNAL_WORDS.filter((w) => w.source !== 'OWNER\\/REPO')) if (word.test(text)) found.push(`${file}: ${word}`);
    }
    expect(found).toEqual([]);
  });
});
