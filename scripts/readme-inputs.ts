// Generates the README's input and output tables from action.yml (and scan/action.yml when it
// exists), between <!-- inputs:NAME --> markers, so the two cannot drift.
//   node scripts/readme-inputs.ts          rewrite README.md
//   node scripts/readme-inputs.ts --check  exit 1 if README.md is stale
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';

interface ActionYml {
  inputs?: Record<string, { description?: string; default?: string; required?: boolean }>;
  outputs?: Record<string, { description?: string }>;
}

function cell(text: string): string {
  return text
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}

export function tables(file: string): string {
  const action = parse(readFileSync(file, 'utf8')) as ActionYml;
  const lines = ['| input | default | description |', '| --- | --- | --- |'];
  for (const [name, input] of Object.entries(action.inputs ?? {})) {
    const fallback = input.default !== undefined && input.default !== '' ? `\`${input.default}\`` : '';
    lines.push(`| \`${name}\` | ${fallback} | ${cell(input.description ?? '')} |`);
  }
  lines.push('', '| output | description |', '| --- | --- |');
  for (const [name, output] of Object.entries(action.outputs ?? {})) lines.push(`| \`${name}\` | ${cell(output.description ?? '')} |`);
  return lines.join('\n');
}

export function render(readme: string): string {
  return readme.replace(/(<!-- inputs:([\w./-]+) -->)[\s\S]*?(<!-- \/inputs -->)/g, (_m, open: string, file: string, close: string) =>
    existsSync(file) ? `${open}\n${tables(file)}\n${close}` : `${open}\n${close}`,
  );
}

if (import.meta.main) {
  const current = readFileSync('README.md', 'utf8');
  const next = render(current);
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error('README.md input tables are stale: run `node scripts/readme-inputs.ts`');
      process.exit(1);
    }
  } else writeFileSync('README.md', next);
}
