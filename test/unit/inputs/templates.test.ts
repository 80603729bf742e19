// The `templates` input: both entry forms, the options, and every mistake as one line naming the
// input, the entry's line and what to do; and its place in parseInputs (export-env, file-owner).
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { parseInputs } from '../../../src/inputs/main.ts';
import { parseTemplatesInput } from '../../../src/inputs/templates.ts';
import { thrown } from '../../support/errors.ts';

const plain = { exportEnv: false, fileAccess: undefined };
const withEnv = { exportEnv: true, fileAccess: undefined };

function error(raw: string, context: Parameters<typeof parseTemplatesInput>[1] = withEnv): string {
  const e = thrown(() => parseTemplatesInput(raw, context), InputError);
  expect(e.input).toBe('templates');
  expect(e.message).not.toContain('\n');
  return e.message;
}

describe('parseTemplatesInput', () => {
  it('reads the example of the spec: an inline template, a file template, options', () => {
    const raw = [
      'npmrc <<EOF env=NPM_CONFIG_USERCONFIG',
      '//registry.example.com/:_authToken={{NPM_TOKEN}}',
      'always-auth=true',
      'EOF',
      '',
      '# the netrc for curl and git',
      'netrc < .github/netrc.tmpl env=NETRC mode=0400',
      'kubeconfig < deploy/kubeconfig.tmpl path=.kube/config',
    ].join('\n');
    expect(parseTemplatesInput(raw, withEnv)).toEqual([
      {
        name: 'npmrc',
        line: 1,
        source: { kind: 'inline', text: '//registry.example.com/:_authToken={{NPM_TOKEN}}\nalways-auth=true\n', firstLine: 2 },
        destination: undefined,
        envVar: 'NPM_CONFIG_USERCONFIG',
        mode: 0o600,
      },
      {
        name: 'netrc',
        line: 7,
        source: { kind: 'file', file: '.github/netrc.tmpl' },
        destination: undefined,
        envVar: 'NETRC',
        mode: 0o400,
      },
      {
        name: 'kubeconfig',
        line: 8,
        source: { kind: 'file', file: 'deploy/kubeconfig.tmpl' },
        destination: '.kube/config',
        envVar: undefined,
        mode: 0o600,
      },
    ]);
  });

  it('keeps an inline body as written: indentation, blank lines, # lines; the marker line may be indented', () => {
    const [entry] = parseTemplatesInput('cfg <<END\n  indented: {{A}}\n\n# not a comment here\n  END\n', plain);
    expect(entry?.source).toEqual({ kind: 'inline', text: '  indented: {{A}}\n\n# not a comment here\n', firstLine: 2 });
  });

  it('takes CRLF line ends, `<<` with a space before the marker, and no space around `<`', () => {
    expect(parseTemplatesInput('a << EOF\r\nx\r\nEOF\r\nb<t/b.tmpl', plain).map((e) => [e.name, e.source])).toEqual([
      ['a', { kind: 'inline', text: 'x\n', firstLine: 2 }],
      ['b', { kind: 'file', file: 't/b.tmpl' }],
    ]);
  });

  it('an empty input is no templates', () => {
    expect(parseTemplatesInput('', plain)).toEqual([]);
  });

  it.each([
    ['npmrc', "line 1: 'npmrc' is not a template entry: write `NAME < path/in/repo.tmpl` or `NAME <<EOF`"],
    ['npmrc <<', "line 1: 'npmrc <<' is not a template entry"],
    ['.hidden < a.tmpl', "line 1: template name '.hidden' is not valid: use letters, digits"],
    ['a < x.tmpl\na < y.tmpl', "line 2: template name 'a' is used twice; give each template its own name"],
    ['a <<EOF\nx\n', "line 1: template 'a' has no closing line 'EOF': end its lines with a line that is exactly EOF"],
    ['a < /etc/passwd', "line 1: template 'a': '/etc/passwd' must be a file path relative to the repository (GITHUB_WORKSPACE), inside it"],
    ['a < ../other/x', "line 1: template 'a': '../other/x' must be a file path relative to the repository"],
    ['a < x.tmpl owner=1000', "line 1: template 'a': 'owner=1000' is not an option; the options are path=, env= and mode="],
    ['a < x.tmpl mode', "line 1: template 'a': 'mode' is not an option"],
    ['a < x.tmpl mode=0400 mode=0600', "line 1: template 'a': mode= is given twice"],
    [
      'a < x.tmpl path=/tmp/x',
      "line 1: template 'a': path='/tmp/x' must be a file path relative to the workspace (GITHUB_WORKSPACE), inside it",
    ],
    ['a < x.tmpl path=sub/../../x', "line 1: template 'a': path='sub/../../x' must be a file path relative to the workspace"],
    ['a < x.tmpl path=dir/', "line 1: template 'a': path='dir/' must be a file path"],
    ['a < x.tmpl env=1BAD', "line 1: template 'a': env='1BAD' is not an environment variable name this action may set"],
    ['a < x.tmpl env=PIPELINE_SECRETS_DIR', "line 1: template 'a': env='PIPELINE_SECRETS_DIR' is not an environment variable name"],
    ['a < x.tmpl mode=0644', "line 1: template 'a': mode=0644 is not one of 0400, 0440, 0600, 0640"],
    ['a < x.tmpl mode=rw', "line 1: template 'a': mode=rw is not one of 0400, 0440, 0600, 0640"],
    ['a < x.tmpl mode=0640', "line 1: template 'a': mode=0640 lets a group read: name the group in file-owner as UID:GID"],
    ['a < x.tmpl path=.npmrc\nb < y.tmpl path=./.npmrc', "line 2: templates 'a' and 'b' both write path=.npmrc"],
    ['a < x.tmpl env=NETRC\nb < y.tmpl env=NETRC', "line 2: templates 'a' and 'b' both set env=NETRC"],
  ])('%j', (raw, message) => {
    expect(error(raw)).toContain(`input 'templates': ${message}`);
  });

  it('env= needs export-env: the entry and the input to set are named', () => {
    expect(error('\nnpmrc < x.tmpl env=NPM_CONFIG_USERCONFIG', plain)).toBe(
      "input 'templates': line 2: template 'npmrc': env=NPM_CONFIG_USERCONFIG exports the rendered file's path only with 'export-env: true'; set it, or drop env=",
    );
  });

  it('a group-readable mode with a GID in file-owner is taken', () => {
    const [entry] = parseTemplatesInput('a < x.tmpl mode=0440', { exportEnv: false, fileAccess: { uid: 1000, gid: 1000, mode: 0o440 } });
    expect(entry?.mode).toBe(0o440);
  });
});

describe('parseInputs: templates', () => {
  const base = { 'INPUT_ENV-SECRETS': 'NPM_TOKEN' };

  it('is in the config, in input order, checked against export-env and file-owner', () => {
    expect(parseInputs(base).templates).toEqual([]);
    const config = parseInputs({
      ...base,
      'INPUT_EXPORT-ENV': 'true',
      INPUT_TEMPLATES: 'npmrc <<EOF env=NPM_CONFIG_USERCONFIG\nx={{NPM_TOKEN}}\nEOF',
    });
    expect(config.templates.map((t) => [t.name, t.envVar])).toEqual([['npmrc', 'NPM_CONFIG_USERCONFIG']]);
    expect(() => parseInputs({ ...base, INPUT_TEMPLATES: 'a < x.tmpl env=NETRC' })).toThrow(/export-env: true/);
    expect(() => parseInputs({ ...base, 'INPUT_FILE-OWNER': '1000', INPUT_TEMPLATES: 'a < x.tmpl mode=0440' })).toThrow(/name the group/);
    expect(parseInputs({ ...base, 'INPUT_FILE-OWNER': '1000:1000', INPUT_TEMPLATES: 'a < x.tmpl mode=0440' }).templates[0]?.mode).toBe(
      0o440,
    );
  });
});
