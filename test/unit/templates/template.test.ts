// The template engine: what it renders (values raw, filters after their inner text, Mustache's
// standalone-line rule), every error it gives (one line naming the input, the template, the line
// and the tag, never a value), and, as a property, that a rendered file printed line by line
// through the runner's masker (test/support/harness/masking.ts) shows no value once main's masks
// (MaskRegistry.add of each value, then of each filter output) are in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { checkSecretNames, checkTextSecrets, parseTemplate, renderTemplate, type TemplateSource } from '../../../src/templates/template.ts';
import { thrown } from '../../support/errors.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { base64Needles, secretNeedles } from '../../support/harness/leak.ts';
import { addMaskValues, SecretMasker } from '../../support/harness/masking.ts';

const WHERE: TemplateSource = { name: 'npmrc', inputLine: 2 };

function render(text: string, values: Record<string, string>): { text: string; derived: readonly string[] } {
  return renderTemplate(parseTemplate(WHERE, text), (name) => values[name]);
}

function error(text: string, where: TemplateSource = WHERE): string {
  const e = thrown(() => parseTemplate(where, text), InputError);
  expect(e.input).toBe('templates');
  expect(e.message).not.toContain('\n');
  return e.message;
}

describe('renderTemplate', () => {
  it('inserts each value raw: no HTML escaping of & < > " \' / ` =', () => {
    const value = `a&b<c>d"e'f/g\`h=i`;
    for (const tag of ['{{T}}', '{{{T}}}', '{{& T}}', '{{ T }}']) expect(render(`x=${tag};`, { T: value }).text).toBe(`x=${value};`);
  });

  it('looks names up as they are: dotted names, Object.prototype names, a secret named like a filter', () => {
    const values = { 'db.password': 'dotted-value', constructor: 'proto-value', url: 'secret-called-url' };
    expect(render('{{db.password}} {{constructor}} {{url}} {{#url}}{{url}}{{/url}}', values).text).toBe(
      'dotted-value proto-value secret-called-url secret-called-url',
    );
  });

  it('renders a filter over its rendered inner text; filters nest; comments render nothing', () => {
    const out = render(
      '_auth={{#base64}}{{U}}:{{P}}{{/base64}}{{! the npm auth }}\n"{{#json}}{{P}}{{/json}}" {{#url}}{{#base64}}{{P}}{{/base64}}{{/url}}',
      {
        U: 'ci-user',
        P: 'p@ss"\nword',
      },
    );
    const b64 = Buffer.from('ci-user:p@ss"\nword').toString('base64');
    const inner = Buffer.from('p@ss"\nword').toString('base64');
    expect(out.text).toBe(`_auth=${b64}\n"p@ss\\"\\nword" ${encodeURIComponent(inner)}`);
    // Every filter output that holds a secret, innermost first, for main to mask.
    expect(out.derived).toEqual([b64, 'p@ss\\"\\nword', inner, encodeURIComponent(inner)]);
  });

  it('a filter over constant text is no secret: nothing to mask', () => {
    expect(render('{{#base64}}user:{{/base64}}{{T}}', { T: 'tok-value' })).toEqual({ text: 'dXNlcjo=tok-value', derived: [] });
  });

  it('follows Mustache on standalone lines: a line holding only a section tag goes, with its line break', () => {
    const text = 'data: |\n  {{#base64}}\n{{CERT}}\n  {{/base64}}\nend\n';
    expect(render(text, { CERT: 'pem-body' }).text).toBe(`data: |\n${Buffer.from('pem-body\n').toString('base64')}end\n`);
  });

  it('keeps text without tags as it is, and an empty template is an empty file', () => {
    expect(render('always-auth=true\n', {}).text).toBe('always-auth=true\n');
    expect(render('', {}).text).toBe('');
  });

  it('lists each secret a template uses once, in the order of first use, filters included', () => {
    expect(parseTemplate(WHERE, '{{B}}{{#base64}}{{A}}:{{B}}{{/base64}}{{{C}}}{{& A}}').secrets).toEqual(['B', 'A', 'C']);
  });

  it('refuses to render a name it has no value for (a bug: names are checked first)', () => {
    expect(() => render('{{MISSING}}', {})).toThrow(/no value for 'MISSING'/);
  });
});

describe('parseTemplate errors: one line, the input, the template, the line and the tag', () => {
  it.each([
    [
      'a\n{{#upper}}x{{/upper}}',
      "template 'npmrc' line 2 (input line 3): {{#upper}} is not a filter; the filters are {{#base64}}, {{#json}}, {{#url}}",
    ],
    ['{{^base64}}x{{/base64}}', "template 'npmrc' line 1 (input line 2): {{^base64}}: inverted sections are not supported"],
    ['a\nb\n{{> partial}}', "template 'npmrc' line 3 (input line 4): {{> partial}}: partials are not supported"],
    ['x\n{{=<% %>=}}\n<% T %>', "template 'npmrc' line 2 (input line 3): set-delimiter tags ({{=<% %>=}}) are not supported"],
    ['{{#base64}}\nx\n', "template 'npmrc' line 1 (input line 2): {{#base64}} is not closed: end it with {{/base64}}"],
    ['{{#base64}}\n{{/json}}', "template 'npmrc' line 2 (input line 3): {{/json}} does not close {{#base64}} (opened on line 1)"],
    ['x\n{{/json}}', "template 'npmrc' line 2 (input line 3): {{/json}} closes no open section"],
    ['a\nb {{T', "template 'npmrc' line 2 (input line 3): a tag opened with '{{' is not closed with '}}'"],
  ])('%j', (text, message) => {
    expect(error(text)).toContain(`input 'templates': ${message}`);
  });

  it('names the repository file of a file template', () => {
    expect(error('ok\n{{#x}}{{/x}}', { name: 'netrc', file: '.github/netrc.tmpl' })).toMatch(
      /^input 'templates': template 'netrc' line 2 \(\.github\/netrc\.tmpl\): \{\{#x\}\} is not a filter/,
    );
  });

  it('shows at most 60 characters of a long tag', () => {
    const message = error(`{{#${'x'.repeat(200)}}}{{/${'x'.repeat(200)}}}`);
    expect(message).toContain(`{{#${'x'.repeat(57)}...`);
    expect(message.length).toBeLessThan(250);
  });
});

describe('checkSecretNames', () => {
  const template = parseTemplate(WHERE, 'a\n//r/:_authToken={{NPM_TOKN}}\n{{#base64}}{{U}}{{/base64}}');

  it('passes when every placeholder names a secret of the step', () => {
    expect(() => checkSecretNames(template, ['NPM_TOKN', 'U', 'OTHER'])).not.toThrow();
  });

  it('names the template, the line and the placeholder, and the step secrets by name (never a value)', () => {
    const e = thrown(() => checkSecretNames(template, ['NPM_TOKEN', 'U']), InputError);
    expect(e.message).toBe(
      "input 'templates': template 'npmrc' line 2 (input line 3): {{NPM_TOKN}} names no secret of this step (this step's secrets are NPM_TOKEN, U)",
    );
    expect(thrown(() => checkSecretNames(template, ['NPM_TOKN']), InputError).message).toContain(
      'line 3 (input line 4): {{U}} names no secret',
    );
    expect(thrown(() => checkSecretNames(template, []), InputError).message).toContain('(this step has none)');
  });
});

describe('checkTextSecrets', () => {
  const template = parseTemplate(WHERE, 'a\nkeystore={{#base64}}{{KEYSTORE}}{{/base64}}\npw={{PW}}');

  it('passes when no placeholder names a secret whose decoded value is not text', () => {
    expect(() => checkTextSecrets(template, ['OTHER'])).not.toThrow();
  });

  it('names the template, the line and the tag of a secret that is not text', () => {
    expect(thrown(() => checkTextSecrets(template, ['KEYSTORE']), InputError).message).toBe(
      "input 'templates': template 'npmrc' line 2 (input line 3): {{KEYSTORE}} is secret 'KEYSTORE', whose decoded value is not UTF-8 text; a template inserts text: use its file ($PIPELINE_SECRETS_DIR/KEYSTORE) instead",
    );
  });
});

// Values the runner can mask: at least 8 characters, no line a bare number or shorter than 5.
const CHARS = 'abcdefXYZ:@/"\\&<>é!%+= '.split('');
const line = fc.array(fc.constantFrom(...CHARS), { minLength: 5, maxLength: 14 }).map((c) => `q${c.join('')}Z`);
const value = fc.array(line, { minLength: 1, maxLength: 3 }).map((lines) => lines.join('\n'));
const NAMES = ['A', 'B', 'C'];
/** A template from placeholders, literal text and (nested) filters. */
const piece: fc.Memo<string> = fc.memo((depth) =>
  depth <= 1
    ? fc.oneof(
        fc.constantFrom(...NAMES).map((n) => `{{${n}}}`),
        fc.constantFrom('user=', ':', '\n', ' x '),
      )
    : fc.oneof(
        fc.constantFrom(...NAMES).map((n) => `{{${n}}}`),
        fc.constantFrom('user=', ':', '\n', ' x '),
        fc
          .tuple(fc.constantFrom('base64', 'json', 'url'), fc.array(piece(depth - 1), { minLength: 1, maxLength: 3 }))
          .map(([f, body]) => `{{#${f}}}${body.join('')}{{/${f}}}`),
      ),
);

describe('masking, as a property', () => {
  it('a rendered file printed line by line through the runner masker shows no value, in no encoding', () => {
    fc.assert(
      fc.property(fc.tuple(value, value, value), fc.array(piece(3), { minLength: 1, maxLength: 6 }), (values, pieces) => {
        const secrets = Object.fromEntries(NAMES.map((n, i) => [n, values[i] ?? '']));
        const runner = fakeRunner();
        const masks = new MaskRegistry(runner);
        // As main does: each value masked when it arrives, each filter output before the file is written.
        for (const v of Object.values(secrets)) masks.add(v);
        const rendered = render(pieces.join(''), secrets);
        for (const form of rendered.derived) masks.add(form);
        const masker = new SecretMasker();
        for (const registered of runner.masked) for (const v of addMaskValues(registered)) masker.addValue(v);
        for (const printed of rendered.text.split('\n').map((l) => masker.maskSecrets(l))) {
          for (const v of Object.values(secrets)) {
            for (const needle of secretNeedles(v)) expect(printed).not.toContain(needle);
            for (const needle of secretNeedles(v).flatMap(base64Needles)) expect(printed).not.toContain(needle);
          }
          for (const form of rendered.derived) expect(printed).not.toContain(form);
        }
      }),
      { numRuns: 300 },
    );
  });
});
