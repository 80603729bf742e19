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

  it('gives the two newcomer commands (the demo in the README, the tests in CONTRIBUTING.md), and .ci/run calls the test one', () => {
    expect(readFileSync('README.md', 'utf8')).toContain('npm ci && npm run demo');
    expect(readFileSync('CONTRIBUTING.md', 'utf8')).toContain('npm ci && npm test');
    expect(readFileSync('.ci/run', 'utf8')).toContain('npm ci --no-audit --no-fund && npm test');
  });
});
