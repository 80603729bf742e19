// Tests of the runner harness itself, driven by tiny throwaway entry scripts (never the project's dist).
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertNoLeak,
  DEFAULT_AUDIENCE,
  GITHUB_OIDC_ISSUER,
  inputEnvName,
  Job,
  parseKeyValueFile,
  REPO_ROOT,
  RUNNER_ENCODERS,
  SecretMasker,
  type JobOptions,
  type StepResult,
} from './harness/index.ts';
import * as enc from './harness/masking.ts';

let dir: string;
let actionYml: string;
let job: Job | undefined;

// Helpers the entry scripts share: @actions/core's escaping and a file-command appender.
const PRELUDE = `
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
const esc = (s) => String(s).replace(/%/g, '%25').replace(/\\r/g, '%0D').replace(/\\n/g, '%0A');
const mask = (s) => process.stdout.write('::add-mask::' + esc(s) + '\\n');
const put = (file, name, value) => {
  const d = 'ghadelimiter_' + randomUUID();
  fs.appendFileSync(process.env[file], name + '<<' + d + '\\n' + value + '\\n' + d + '\\n');
};
`;

function entry(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, PRELUDE + body);
  return file;
}

async function newJob(opts: JobOptions = {}): Promise<Job> {
  job = await Job.create(opts);
  return job;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'harness-test-'));
  actionYml = path.join(dir, 'action.yml');
  writeFileSync(
    actionYml,
    [
      'name: harness-test',
      'inputs:',
      '  vault-url:',
      '    default: https://vault.example:8200',
      '  secrets:',
      '    description: declared without a default',
      '  Some Input:',
      "    default: 'a b'",
      '  flag:',
      '    default: true',
      '  where:',
      '    default: ${{ runner.temp }}/x',
      'runs:',
      '  using: node24',
      '  main: main.js',
      '  post: post.js',
      '',
    ].join('\n'),
  );
});
afterEach(async () => {
  await job?.cleanup();
  job = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('steps: inputs, environment, file commands', () => {
  it('passes action.yml defaults overlaid with explicit inputs as INPUT_*, in a minimal runner env', async () => {
    process.env['HARNESS_CANARY'] = 'from-the-test-process';
    const j = await newJob({ env: { VAULT_ADDR: 'http://127.0.0.1:1' } });
    const dump = entry(
      'dump.mjs',
      `put('GITHUB_OUTPUT', 'dump', JSON.stringify({ env: process.env, cwd: process.cwd(), argv: process.argv }));`,
    );
    const step = await j.runMain(dump, { 'vault-url': 'https://override', extra: 'x' }, { actionYml, env: { STEP_VAR: 's' } });
    delete process.env['HARNESS_CANARY'];
    expect(step.exitCode, step.log).toBe(0);
    const { env, cwd, argv } = JSON.parse(step.outputs['dump'] ?? '{}') as { env: Record<string, string>; cwd: string; argv: string[] };
    expect(env['INPUT_VAULT-URL']).toBe('https://override');
    expect(env['INPUT_SECRETS']).toBe(''); // declared without default: set, empty
    expect(env[inputEnvName('Some Input')]).toBe('a b');
    expect(env['INPUT_SOME_INPUT']).toBe('a b');
    expect(env['INPUT_FLAG']).toBe('true');
    expect(env['INPUT_WHERE']).toBe(`${j.runnerTemp}/x`);
    expect(env['INPUT_EXTRA']).toBe('x');
    expect(step.annotations).toContainEqual({ level: 'warning', message: expect.stringContaining("Unexpected input(s) 'extra'") });
    expect(env['HARNESS_CANARY']).toBeUndefined();
    expect(env['HOME']).toBe(j.home);
    expect(cwd).toBe(j.workspace);
    expect(argv[0]).toBe(process.execPath);
    expect(env).toMatchObject({
      VAULT_ADDR: 'http://127.0.0.1:1',
      STEP_VAR: 's',
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'octo-org/octo-repo',
      RUNNER_OS: 'Linux',
      RUNNER_TEMP: j.runnerTemp,
      GITHUB_WORKSPACE: j.workspace,
      GITHUB_ACTION_PATH: dir,
      GITHUB_ACTION: '__self',
      RUNNER_DEBUG: '1',
      ACTIONS_STEP_DEBUG: 'true',
    });
    expect(env['GITHUB_OUTPUT']).toBe(step.files.output);
    expect(path.dirname(step.files.output)).toBe(path.join(j.runnerTemp, '_runner_file_commands'));
    expect(path.basename(step.files.state)).toMatch(/^save_state_[0-9a-f-]{36}$/);
    expect(env['ACTIONS_ID_TOKEN_REQUEST_URL']).toBeUndefined();
  });

  it('parses heredoc outputs/state/env/path, hands STATE_* and inputs to post, carries env and path on', async () => {
    const j = await newJob();
    const main = entry(
      'fc-main.mjs',
      `fs.appendFileSync(process.env.GITHUB_OUTPUT, 'single=one=two\\n');
       put('GITHUB_OUTPUT', 'multi', 'line1\\nline2');
       put('GITHUB_STATE', 'ledger', '{"files":[]}');
       fs.appendFileSync(process.env.GITHUB_STATE, 'plain=x\\n');
       put('GITHUB_ENV', 'FROM_MAIN', 'hello\\nworld');
       fs.appendFileSync(process.env.GITHUB_ENV, 'SIMPLE=v\\n');
       fs.appendFileSync(process.env.GITHUB_PATH, '/opt/harness-bin\\n');
       fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, '# Summary\\n');`,
    );
    const post = entry(
      'fc-post.mjs',
      `put('GITHUB_OUTPUT', 'seen', JSON.stringify({ ledger: process.env.STATE_ledger, plain: process.env.STATE_plain,
         url: process.env['INPUT_VAULT-URL'], env: process.env.FROM_MAIN, action: process.env.GITHUB_ACTION }));`,
    );
    const m = await j.runMain(main, { 'vault-url': 'https://given' }, { actionYml });
    expect(m.outputs).toEqual({ single: 'one=two', multi: 'line1\nline2' });
    expect(m.state).toEqual({ ledger: '{"files":[]}', plain: 'x' });
    expect(m.env).toEqual({ FROM_MAIN: 'hello\nworld', SIMPLE: 'v' });
    expect(m.path).toEqual(['/opt/harness-bin']);
    expect(m.summary).toBe('# Summary\n');
    expect(j.env).toEqual({ FROM_MAIN: 'hello\nworld', SIMPLE: 'v' });
    expect(m.log).toContain('##[debug]Save intra-action state plain = x');

    const later = await j.runShell(
      'echo "$FROM_MAIN" | wc -l\necho "path=$PATH" >> "$GITHUB_OUTPUT"\necho "who=$GITHUB_ACTION" >> "$GITHUB_OUTPUT"',
    );
    expect(later.exitCode).toBe(0);
    expect(later.stdout.trim()).toBe('2');
    expect(later.outputs['path']).toMatch(/^\/opt\/harness-bin:/);
    expect(later.outputs['who']).toBe('__run');

    const p = await j.runPost(post, m);
    expect(p.exitCode, p.log).toBe(0);
    expect(JSON.parse(p.outputs['seen'] ?? '{}')).toEqual({
      ledger: '{"files":[]}',
      plain: 'x',
      url: 'https://given',
      env: 'hello\nworld',
      action: '__self',
    });
  });

  it('fails a malformed file command like the runner, and parses the runner forms exactly', async () => {
    const j = await newJob();
    const bad = entry(
      'fc-bad.mjs',
      `fs.appendFileSync(process.env.GITHUB_OUTPUT, 'no separator here\\n');
       fs.appendFileSync(process.env.GITHUB_ENV, 'K<<EOF\\nvalue without end\\n');
       fs.appendFileSync(process.env.GITHUB_ENV.replace('set_env_', 'nothing_'), '');`,
    );
    const step = await j.runMain(bad, {}, { actionYml });
    const errors = step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    expect(errors).toEqual([
      "Unable to process file command 'env' successfully.",
      "Invalid value. Matching delimiter not found 'EOF'",
      "Unable to process file command 'output' successfully.",
      "Invalid format 'no separator here'",
    ]);
    expect(parseKeyValueFile('a=1\n\nb<<X\nl1\r\nl2\nX\nc<<X\nX\n')).toEqual([
      ['a', '1'],
      ['b', 'l1\r\nl2'],
      ['c', ''],
    ]);
    expect(() => parseKeyValueFile('<<X\nv\nX\n')).toThrow(/Name must not be empty/);
    expect(() => parseKeyValueFile('k<<X\nlast')).toThrow('Invalid value. EOF marker missing new line.');
  });

  it('kills a step at its timeout (exitCode null) and reaps background processes at cleanup', async () => {
    const j = await newJob();
    const hang = entry('hang.mjs', `setInterval(() => {}, 1000);`);
    const started = Date.now();
    const step = await j.runMain(hang, {}, { actionYml, timeoutMs: 400 });
    expect(step.exitCode).toBeNull();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(step.annotations.some((a) => a.level === 'error' && /timed out/.test(a.message))).toBe(true);

    const bg = entry(
      'bg.mjs',
      `import { spawn } from 'node:child_process';
       const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
       c.unref();
       fs.appendFileSync(process.env.GITHUB_OUTPUT, 'pid=' + c.pid + '\\n');`,
    );
    const s = await j.runMain(bg, {}, { actionYml });
    const pid = Number(s.outputs['pid']);
    expect(s.exitCode).toBe(0);
    expect(() => process.kill(pid, 0)).not.toThrow(); // outlives its step, like on the runner
    await j.cleanup();
    job = undefined;
    // Gone, or a zombie waiting for init to reap it.
    const running = (): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && running(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(running()).toBe(false);
  });
});

describe('workflow commands', () => {
  it('processes annotations with the runner unescaping, groups, stop-commands, legacy commands, both streams', async () => {
    const j = await newJob();
    const lines = [
      '::error file=src/a%2Cb.ts,line=3,col=1::bad%0Anews 100%25',
      '::warning::w1',
      '::notice title=T::n1',
      '::debug::d1',
      '::group::G',
      '::endgroup::',
      '::stop-commands::pause-token-123',
      '::warning::ignored',
      '::add-mask::not-a-mask',
      '::pause-token-123::',
      '::warning::w2',
      '::set-output name=x::y',
      '::save-state name=s::v',
      '##[warning]legacy form',
      '  ::notice::leading space',
      '::unknown::stays',
      '::add-mask::   ',
    ];
    const cmds = entry(
      'cmds.mjs',
      `process.stdout.write(${JSON.stringify(lines.join('\n') + '\n')}); process.stderr.write('::warning::from-stderr\\n');`,
    );
    const step = await j.runMain(cmds, {}, { actionYml });
    const messages = step.annotations.map((a) => `${a.level}:${a.message}`);
    expect(step.annotations[0]).toEqual({ level: 'error', message: 'bad\nnews 100%', file: 'src/a,b.ts', line: 3 });
    expect(messages).toEqual(
      expect.arrayContaining([
        'warning:w1',
        'notice:n1',
        'debug:d1',
        'warning:w2',
        'warning:legacy form',
        'notice:leading space',
        'warning:from-stderr',
      ]),
    );
    expect(messages).not.toContain('warning:ignored');
    expect(messages.filter((m) => m.includes('is deprecated and will be disabled soon'))).toHaveLength(2);
    expect(messages).toContain("warning:Can't add secret mask for empty string in ##[add-mask] command.");
    expect(step.outputs).toEqual({}); // legacy set-output takes no effect here
    expect(step.state).toEqual({});
    expect(j.masks.has('not-a-mask')).toBe(false);
    expect(step.log).toContain('::add-mask::not-a-mask'); // printed as-is while stopped
    expect(step.log).toContain('::warning::ignored');
    expect(step.log).toContain('##[group]G');
    expect(step.log).toContain('##[debug]d1');
    expect(step.log).toContain('::unknown::stays');
  });
});

describe('masking: the runner encoders', () => {
  it('derives exactly what ValueEncoders.cs derives', () => {
    expect(enc.base64StringEscape('foobar')).toBe('Zm9vYmFy');
    expect(enc.base64StringEscape('f')).toBe('Zg==');
    expect(enc.base64StringEscapeShift('foobar', 1)).toBe('b29iYXI=');
    expect(enc.base64StringEscapeShift('foobar', 2)).toBe('b2Jhcg==');
    expect(enc.base64StringEscapeShift('ab', 2)).toBe(enc.base64StringEscape('ab')); // too short: unshifted
    expect(enc.commandLineArgumentEscape('a"b')).toBe('a\\"b');
    expect(enc.expressionStringEscape("it's")).toBe("it''s");
    expect(enc.jsonStringEscape('a"b\\c\n\t\u0001\u2028')).toBe('a\\"b\\\\c\\n\\t\\u0001\\u2028');
    expect(enc.uriDataEscape("a b-._~/?&=é!'()*")).toBe('a%20b-._~%2F%3F%26%3D%C3%A9%21%27%28%29%2A');
    expect(enc.xmlDataEscape(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
    expect(enc.trimDoubleQuotes('"abcdefghij"')).toBe('abcdefghij');
    expect(enc.trimDoubleQuotes('"abcdef"')).toBe(''); // length 8: not > 8
    expect(enc.powerShellPreAmpersandEscape('secretpart1&secretpart2&secretpart3')).toBe('secretpart1&secretpart2&');
    expect(enc.powerShellPreAmpersandEscape('secretpart1&+secretpart2&secretpart3')).toBe('secretpart1&+');
    expect(enc.powerShellPreAmpersandEscape('ab&cdefghij')).toBe('');
    expect(enc.powerShellPostAmpersandEscape('secretpart1&secretpart2&secretpart3')).toBe('secretpart3');
    expect(enc.powerShellPostAmpersandEscape('secretpart1&+secretpart2&secretpart3')).toBe('ecretpart2&secretpart3');
    expect(enc.powerShellPostAmpersandEscape('secretpart1&abc')).toBe('');
    expect(enc.powerShellPostAmpersandEscape('abcdefgh&+')).toBe('');
    const masker = new SecretMasker();
    masker.addValue('abc');
    masker.addValue('bcd');
    expect(masker.maskSecrets('xabcdx abc')).toBe('x***x ***'); // overlapping ranges merge
  });

  it('masks every derived encoding and every line of a multi-line value in the log', async () => {
    const j = await newJob();
    const secret = `Pa"ss'w<o>rd&+Xtail-part-9 é`;
    const quoted = '"quoted-secret-value"';
    const multi = '-----BEGIN KEY-----\n  line-two-value  \nline3\n';
    const encodings = RUNNER_ENCODERS.map((e) => e.encode(secret)).filter((v) => v !== '');
    expect(encodings).toHaveLength(RUNNER_ENCODERS.length - 1); // all but TrimDoubleQuotes apply
    const m = entry(
      'mask.mjs',
      `const { SECRET, QUOTED, MULTI, ENCODINGS } = process.env;
       console.log('before:' + SECRET);
       mask(SECRET); mask(QUOTED); mask(MULTI);
       for (const e of JSON.parse(ENCODINGS)) console.log('enc:' + e);
       console.log('b64:' + Buffer.from('user:' + SECRET).toString('base64'));
       console.log('trim:' + QUOTED.slice(1, -1));
       console.log('line:line-two-value');
       process.stdout.write(MULTI);
       console.log('part:BEGIN');`,
    );
    const step = await j.runMain(
      m,
      {},
      {
        actionYml,
        env: { SECRET: secret, QUOTED: quoted, MULTI: multi, ENCODINGS: JSON.stringify(encodings) },
      },
    );
    expect(step.exitCode, step.log).toBe(0);
    expect(step.masks).toEqual([secret, quoted, multi]);
    expect([...j.masks]).toEqual([secret, quoted, multi, '-----BEGIN KEY-----', 'line-two-value', 'line3']);
    const log = step.log.split('\n');
    expect(log.filter((l) => l.startsWith('enc:'))).toEqual(encodings.map(() => 'enc:***'));
    expect(log.find((l) => l.startsWith('b64:'))).toMatch(/^b64:[A-Za-z0-9+/]+\*\*\*$/); // shift-1 form
    expect(log).toContain('trim:***');
    expect(log).toContain('line:***');
    expect(log).toContain('part:BEGIN'); // a part of a line is not a secret
    expect(log).toEqual(expect.arrayContaining(['***', '  ***  ', '***'])); // each line of MULTI, trimmed
    expect(log).toContain(`before:${secret}`); // printed before add-mask: the runner could not mask it
    expect(step.log).not.toContain('::add-mask::');
    expect(j.mask(`x${secret}y`)).toBe('x***y');
  });
});

describe('OIDC issuer', () => {
  it('issues RS256 tokens with GitHub claims to a bearer holder, honouring &audience=', async () => {
    const j = await newJob({ oidc: true, oidcClaims: { environment: 'production' } });
    const oidc = j.oidc;
    if (!oidc) throw new Error('no issuer');
    const core = path.join(REPO_ROOT, 'node_modules/@actions/core/lib/core.js');
    const get = entry(
      'oidc.mjs',
      `import * as core from ${JSON.stringify(core)};
       const token = await core.getIDToken('vault-ci');
       const dflt = await core.getIDToken();
       const anon = await fetch(process.env.ACTIONS_ID_TOKEN_REQUEST_URL);
       core.setOutput('token', token); core.setOutput('dflt', dflt); core.setOutput('anon', anon.status);`,
    );
    const step = await j.runMain(get, {}, { actionYml });
    expect(step.exitCode, step.log).toBe(0);
    const token = step.outputs['token'] ?? '';
    expect(step.masks).toContain(token); // core.getIDToken masks it
    expect(step.outputs['anon']).toBe('401');
    const decode = (jwt: string): Record<string, unknown> => {
      const [h, p, s] = jwt.split('.');
      const ok = verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey(oidc.publicKeyPem), Buffer.from(s ?? '', 'base64url'));
      expect(ok).toBe(true);
      expect(JSON.parse(Buffer.from(h ?? '', 'base64url').toString())).toMatchObject({ alg: 'RS256', typ: 'JWT' });
      return JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<string, unknown>;
    };
    const claims = decode(token);
    expect(claims).toMatchObject({
      iss: GITHUB_OIDC_ISSUER,
      aud: 'vault-ci',
      sub: 'repo:octo-org/octo-repo:environment:production',
      environment: 'production',
      repository: 'octo-org/octo-repo',
      repository_owner: 'octo-org',
      ref: 'refs/heads/main',
      job_workflow_ref: 'octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main',
      event_name: 'push',
    });
    expect(Number(claims['exp']) - Number(claims['iat'])).toBe(300);
    expect(typeof claims['jti']).toBe('string');
    expect(decode(step.outputs['dflt'] ?? '')['aud']).toBe(DEFAULT_AUDIENCE);
    expect(oidc.audienceSeen).toEqual(['vault-ci', DEFAULT_AUDIENCE]);
    expect(oidc.issuer).toBe('https://token.actions.githubusercontent.com');
  });
});

describe('assertNoLeak', () => {
  const SECRET = 'leak-canary-value-31337';
  // One entry, many ways to leak; the mode arrives in env (env is not a leak channel it checks).
  const LEAKY = `
    import { spawnSync } from 'node:child_process';
    import path from 'node:path';
    const S = process.env.S;
    mask(S);
    const priv = path.join(process.env.RUNNER_TEMP, 'private');
    fs.mkdirSync(priv, { recursive: true });
    fs.writeFileSync(path.join(priv, 'value'), S);
    fs.appendFileSync(process.env.GITHUB_STATE, 'dir=' + priv + '\\n');
    put('GITHUB_ENV', 'ASKED_FOR', S);
    put('GITHUB_OUTPUT', 'asked-for', S);
    switch (process.env.MODE) {
      case 'stdout': console.log('the value is ' + S); break;
      case 'stderr': console.error(S); break;
      case 'state': fs.appendFileSync(process.env.GITHUB_STATE, 'oops=' + S + '\\n'); break;
      case 'summary': fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, '| ' + S + ' |\\n'); break;
      case 'annotation': console.log('::error::cannot use ' + S); break;
      case 'workspace': fs.writeFileSync(path.join(process.env.GITHUB_WORKSPACE, 'debug.txt'), 'x' + S); break;
      case 'base64': fs.mkdirSync(path.join(process.env.HOME, '.docker'));
        fs.writeFileSync(path.join(process.env.HOME, '.docker/config.json'), JSON.stringify({ auths: { r: { auth: Buffer.from('ci:' + S).toString('base64') } } })); break;
      case 'argv': spawnSync(process.execPath, ['-e', 'setTimeout(() => {}, 300)', S]); break;
      case 'line': console.log('second-line-of-it'); break;
    }
  `;
  const cases: Array<[mode: string, where: RegExp]> = [
    ['stdout', /stdout line 2, outside ::add-mask::/], // line 1 is the ::add-mask::
    ['stderr', /stderr/],
    ['state', /GITHUB_STATE/],
    ['summary', /step summary/],
    ['annotation', /annotation #0 \(error\)/],
    ['workspace', /in file .*octo-repo\/debug\.txt/],
    ['base64', /in file .*\.docker\/config\.json \(base64\)/],
    ['argv', /argv\[3\] of process 'node'/],
  ];

  async function leakyRun(mode: string, secret = SECRET): Promise<{ j: Job; step: StepResult; priv: string }> {
    const j = await newJob();
    const step = await j.runMain(path.join(dir, 'leaky.mjs'), {}, { actionYml, env: { S: secret, MODE: mode } });
    expect(step.exitCode, step.log).toBe(0);
    return { j, step, priv: path.join(j.runnerTemp, 'private') };
  }

  beforeAll(() => {
    entry('leaky.mjs', LEAKY);
  });

  it('passes a clean step (value only in ::add-mask::, the private dir, and asked-for env/output)', async () => {
    const { j, step, priv } = await leakyRun('clean');
    expect(step.outputs['asked-for']).toBe(SECRET);
    expect(() => assertNoLeak(j, [step], [SECRET], { privateDirs: [priv] })).not.toThrow();
    // Without the private dir exemption the delivered file itself is reported.
    expect(() => assertNoLeak(j, [step], [SECRET])).toThrow(/in file .*private\/value/);
  });

  it.each(cases)('fails on a leak to %s, naming where and never the value', async (mode, where) => {
    const { j, step, priv } = await leakyRun(mode);
    let message = '';
    try {
      assertNoLeak(j, [step], [SECRET], { privateDirs: [priv] });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(where);
    expect(message).toContain(`length ${SECRET.length}`);
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(Buffer.from(SECRET).toString('base64').slice(0, 12));
  });

  it('checks each line of a multi-line secret on its own', async () => {
    const multi = 'first-line-of-it\nsecond-line-of-it';
    const { j, step, priv } = await leakyRun('line', multi);
    expect(() => assertNoLeak(j, [step], [multi], { privateDirs: [priv] })).toThrow(/stdout line \d+, outside ::add-mask::/);
  });
});
