// parsePkiInput: hashicorp/vault-action's `pki` lines (`<mount>/issue/<role> {json}`, `;` or new
// lines), with an optional `| NAME`; the mount post revokes at; one-line errors that never echo a body.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.ts';
import { parsePkiInput, pkiDefaultName } from '../../../src/inputs/pki.ts';

describe('parsePkiInput', () => {
  it.each([
    ['pki/issue/ci {"common_name": "a.test"}', { path: 'pki/issue/ci', mount: 'pki', name: 'ci', body: { common_name: 'a.test' } }],
    ['/pki_int/issue/web-server {"common_name":"a"} | WEB', { path: 'pki_int/issue/web-server', mount: 'pki_int', name: 'WEB' }],
    // vault-action's output name: '-' dropped, '.' as '__'
    ['pki/issue/web-server.v2 {}', { name: 'webserver__v2' }],
    ['pki/issuer/older/issue/ci {"common_name": "a"}', { mount: 'pki', path: 'pki/issuer/older/issue/ci' }],
    ['team/pki/issue/ci {"common_name": "a"}', { mount: 'team/pki' }],
    ['pki/issue/ci {"common_name": "a; b | c", "private_key_format": "pkcs8"}|client', { name: 'client' }],
  ])('%s', (input, expected) => {
    const [entry] = parsePkiInput(input);
    expect(entry).toMatchObject(expected);
  });

  it('splits on new lines and semicolons outside the JSON body, keeping line numbers', () => {
    const entries = parsePkiInput('pki/issue/a {"x": ";"} ; pki/issue/b {}\n\n# comment\npki/issue/c {} | C;\n');
    expect(entries.map((e) => [e.line, e.name])).toEqual([
      [1, 'a'],
      [1, 'b'],
      [4, 'C'],
    ]);
  });

  it.each([
    ['pki/issue/ci', /^input 'pki': line 1: expected '<mount>\/issue\/<role> \{"common_name": "..."\} \[\| NAME\]'$/],
    ['pki/roles/ci {}', /line 1: 'pki\/roles\/ci' is not an issue path like 'pki\/issue\/ROLE'/],
    ['pki/sign/ci {}', /is not an issue path/],
    ['../issue/ci {}', /is not an issue path/],
    ['pki/issue/ci {"common_name": "secret-looking-body"', /^input 'pki': line 1: the JSON body has no closing '\}'$/],
    ['pki/issue/ci {"common_name": secret-looking-body}', /^input 'pki': line 1: the body is not valid JSON$/],
    ['pki/issue/ci {} extra', /line 1: only '\| NAME' may follow the JSON body/],
    ['pki/issue/ci {} | ../x', /line 1: the name after '\|' may hold only/],
    ['pki/issue/--- {}', /line 1: the role '---' gives an empty name; add '\| NAME'/],
    ['pki/issue/ci {"format": "der"}', /line 1: "format" must be "pem": the files are PEM/],
    ['pki/issue/ci {"private_key_format": "der"}', /"private_key_format" must be "pem" or "pkcs8"/],
    ['pki/issue/ci {}\npki/other/issue/ci {}', /line 2: the name 'ci' is taken by line 1; give one of them '\| NAME'/],
  ])('refuses %j', (input, message) => {
    expect(() => parsePkiInput(input)).toThrow(InputError);
    expect(() => parsePkiInput(input)).toThrow(message);
  });

  it('never echoes the body or a name that was refused', () => {
    for (const input of ['pki/issue/ci {"k": hunter2-body}', 'pki/issue/ci {} | hunter2/name']) {
      expect(() => parsePkiInput(input)).toThrow(/^(?!.*hunter2).*$/);
    }
  });

  it('an empty input has no entries', () => {
    expect(parsePkiInput('')).toEqual([]);
    expect(parsePkiInput('  \n# only a comment\n')).toEqual([]);
  });

  it('names like vault-action', () => {
    expect(pkiDefaultName('Test')).toBe('Test');
    expect(pkiDefaultName('my-role.x')).toBe('myrole__x');
  });
});
