import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { render } from '../../scripts/readme-inputs.ts';

describe('README', () => {
  it('lists every input and output of action.yml (regenerate with node scripts/readme-inputs.ts)', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(render(readme)).toBe(readme);
    const action = parse(readFileSync('action.yml', 'utf8')) as { inputs: object; outputs: object };
    for (const name of [...Object.keys(action.inputs), ...Object.keys(action.outputs)]) expect(readme).toContain(`| \`${name}\` |`);
  });

  it('gives the two newcomer commands, and .ci/run calls the test one', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
    expect(readFileSync('.ci/run', 'utf8')).toContain('npm ci --no-audit --no-fund && npm test');
  });
});
