// Binary secrets end to end (`?encoding=` / `secret-encoding`), through dist/ against a real
// OpenBao: a PKCS#12 keystore made by `openssl pkcs12 -export`, stored base64 in KV v2 as `base64`
// prints it (wrapped at 76 columns), delivered byte for byte and read by `openssl pkcs12 -info` in a
// later step; used as a BuildKit secret file by the real docker engine; refused as an env var in one
// line; and found by the leak scan as bytes and as its stored base64. Every test asserts the invariant.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isText } from '../../src/core/decode.ts';
import { BASE_PATH } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { ensureBaseImage, sharedEngine } from '../support/services/docker.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, newJob, privateDirsOf, repo } from './setup.ts';

const SCAN = path.join(repo, 'dist/scan.js');
const SCAN_YML = path.join(repo, 'scan/action.yml');
const PASSWORD = 'keystore-Pa55-for-ci-7d2e';

let vault: OpenBao;
let token: string;
let job: Job;
/** The keystore's bytes, and its stored form: base64 wrapped at 76 columns, as `base64 FILE` prints it. */
let p12: Buffer;
let stored: string;
const outside: string[] = [];

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Every text form of the keystore a leak would show: the stored base64, each of its lines, unwrapped, hex. */
function keystoreForms(): string[] {
  return [stored, ...stored.split('\n').filter((l) => l !== ''), p12.toString('base64'), p12.toString('hex'), PASSWORD];
}

function check(steps: StepResult[], extra: string[] = []): void {
  assertNoLeak(job, steps, [...keystoreForms(), ...extra], { privateDirs: privateDirsOf(steps) });
}

beforeAll(async () => {
  // A real keystore: a self-signed certificate and its key, exported by openssl, outside the job.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-decode-p12-'));
  try {
    const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=ci.example',
      '-days',
      '1',
      '-keyout',
      `${dir}/k.pem`,
      '-out',
      `${dir}/c.pem`,
    );
    openssl('pkcs12', '-export', '-in', `${dir}/c.pem`, '-inkey', `${dir}/k.pem`, '-passout', `pass:${PASSWORD}`, '-out', `${dir}/ks.p12`);
    p12 = readFileSync(`${dir}/ks.p12`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  stored = p12.toString('base64').replace(/.{76}/g, '$&\n');
  vault = await OpenBao.start();
  await vault.enableKv('secret', 2);
  await vault.putKv('secret', 'ci/keystore', { p12: stored, password: PASSWORD, p12hex: p12.toString('hex').toUpperCase() });
  await vault.addPolicy('ci', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
  token = await vault.createToken({ policies: ['ci'], ttl: '1800s' });
});
afterAll(async () => {
  await vault?.stop();
});
afterEach(async () => {
  await job?.cleanup();
  for (const dir of outside.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('a base64-stored PKCS#12 keystore', () => {
  it('is delivered byte-identical and read by openssl pkcs12 -info in a later step, with nothing of it in the log', async () => {
    expect(isText(p12)).toBe(false); // a DER keystore: not UTF-8, so only a file can hold it
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: [
        'secret/data/ci/keystore?encoding=base64 p12 | KEYSTORE_P12',
        'secret/data/ci/keystore?encoding=hex p12hex | KEYSTORE_HEX',
        'secret/data/ci/keystore password | KEYSTORE_PASSWORD',
      ].join('\n'),
    });
    expect(main.exitCode, main.log).toBe(0);
    const dir = main.outputs['secrets-dir'] ?? '';
    const file = await fs.readFile(path.join(dir, 'KEYSTORE_P12'));
    expect(sha256(file)).toBe(sha256(p12));
    expect(sha256(await fs.readFile(path.join(dir, 'KEYSTORE_HEX')))).toBe(sha256(p12));
    expect((await fs.stat(path.join(dir, 'KEYSTORE_P12'))).mode & 0o777).toBe(0o600);
    // The summary counts the decoded bytes; the env-file leaves the keystore out, saying so.
    expect(main.summary).toMatch(new RegExp(`\\| KEYSTORE\\\\_P12 \\|.*\\| file \\| ${p12.length} \\|`));
    expect(await fs.readFile(main.outputs['env-file'] ?? '', 'utf8')).toBe(`KEYSTORE_PASSWORD=${PASSWORD}\n`);
    expect(main.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toEqual([
      "secret 'KEYSTORE_P12' decodes to bytes that are not UTF-8 text and is left out of the env-file (no env var can hold them); use its file",
      "secret 'KEYSTORE_HEX' decodes to bytes that are not UTF-8 text and is left out of the env-file (no env var can hold them); use its file",
    ]);

    const info = await job.runShell(
      'openssl pkcs12 -info -noout -in "$PIPELINE_SECRETS_DIR/KEYSTORE_P12" -passin "file:$PIPELINE_SECRETS_DIR/KEYSTORE_PASSWORD" 2>&1',
    );
    expect(info.exitCode, info.log).toBe(0);
    expect(info.log).toMatch(/MAC: sha256/);
    expect(info.log).not.toMatch(/invalid password|error/i);
    // A debugging step that prints the keystore as base64 (wrapped, as stored, and on one line) and
    // as hex: every line of it is masked (its raw stdout holds them by design, so it is not in the
    // check below: the runner masks its log).
    const printed = await job.runShell(
      [
        'base64 "$PIPELINE_SECRETS_DIR/KEYSTORE_P12"',
        'base64 -w0 "$PIPELINE_SECRETS_DIR/KEYSTORE_P12"; echo',
        'od -An -tx1 -v "$PIPELINE_SECRETS_DIR/KEYSTORE_P12" | tr -d " \\n"; echo',
      ].join('\n'),
    );
    expect(printed.exitCode, printed.log).toBe(0);
    const lines = printed.log.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBe(stored.split('\n').filter((l) => l !== '').length + 2);
    expect(lines.filter((l) => l.trim() !== '***')).toEqual([]);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, info, post], [token]);
  });

  it('is a BuildKit secret file: a RUN --mount=type=secret build sees exactly its bytes', async () => {
    const engine = await sharedEngine();
    await ensureBaseImage(engine);
    const env = { ...engine.env, PATH: `${path.dirname(process.execPath)}:${BASE_PATH}` };
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      {
        url: vault.url,
        token,
        'secret-encoding': 'base64',
        secrets: 'secret/data/ci/keystore p12 | KEYSTORE_P12',
        'build-secrets': 'keystore=KEYSTORE_P12',
      },
      { env },
    );
    expect(main.exitCode, main.log).toBe(0);
    const context = path.join(job.workspace, 'ctx');
    await fs.mkdir(context);
    await fs.writeFile(
      path.join(context, 'Dockerfile'),
      'FROM ps-busybox:latest\nRUN --mount=type=secret,id=keystore,required=true sha256sum /run/secrets/keystore | cut -d" " -f1 > /sum\n',
    );
    const tag = `ps-decode-build-${Date.now()}`;
    const build = await job.runShell(`/usr/bin/docker build --network none --no-cache $BUILD_SECRET_ARGS -t ${tag} ctx`, {
      env: { ...env, BUILD_SECRET_ARGS: main.outputs['build-secret-args'] ?? '' },
    });
    expect(build.exitCode, build.log).toBe(0);
    const sum = await engine.run(['run', '--rm', '--network', 'none', tag, 'cat', '/sum']);
    expect(sum.stdout.trim()).toBe(sha256(p12));
    const saved = await engine.run(['save', tag]);
    expect(saved.stdoutBytes.includes(p12)).toBe(false);
    await engine.run(['rmi', '-f', tag]);
    const post = await job.runPost(POST, main, { env });
    expect(post.exitCode, post.log).toBe(0);
    check([main, build, post], [token]);
  });

  it('with export-env fails in one line naming the line, and delivers nothing', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/keystore password | KEYSTORE_PASSWORD\nsecret/data/ci/keystore?encoding=base64 p12 | KEYSTORE_P12',
      'export-env': 'true',
    });
    expect(main.exitCode).toBe(1);
    const errors = main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    expect(errors).toEqual([
      "secrets line 2: secret 'KEYSTORE_P12' decodes from base64 to bytes that are not UTF-8 text, which no environment variable can hold (export-env: true exports every secret); it can only be the file $PIPELINE_SECRETS_DIR/KEYSTORE_P12: fetch it in a step without export-env",
    ]);
    expect(job.env.KEYSTORE_PASSWORD).toBeUndefined();
    expect(job.env.PIPELINE_SECRETS_DIR).toBeUndefined();
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post], [token]);
  });

  it('in a template fails in one line naming the template, its line and the placeholder, before anything is written', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/keystore?encoding=base64 p12 | KEYSTORE_P12\nsecret/data/ci/keystore password | KEYSTORE_PASSWORD',
      templates: 'app-conf <<EOF\npassword={{KEYSTORE_PASSWORD}}\nkeystore={{#base64}}{{KEYSTORE_P12}}{{/base64}}\nEOF',
    });
    expect(main.exitCode).toBe(1);
    expect(main.annotations.filter((a) => a.level === 'error').map((a) => a.message)).toEqual([
      "input 'templates': template 'app-conf' line 2 (input line 3): {{KEYSTORE_P12}} is secret 'KEYSTORE_P12', whose decoded value is not UTF-8 text; a template inserts text: use its file ($PIPELINE_SECRETS_DIR/KEYSTORE_P12) instead",
    ]);
    expect(main.outputs['secrets-dir']).toBeUndefined();
    const post = await job.runPost(POST, main);
    check([main, post], [token]);
  });

  it('a value that is not valid base64 fails its line without showing it', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/keystore?encoding=base64 password | NOT_BASE64',
    });
    expect(main.exitCode).toBe(1);
    expect(main.annotations.filter((a) => a.level === 'error').map((a) => a.message)).toEqual([
      "secrets line 1: the value of key 'password' at 'secret/data/ci/keystore' is not valid base64 (its length (25 characters without padding) cannot be base64); store it base64-encoded, or give this line another ?encoding= (utf8: as stored)",
    ]);
    const post = await job.runPost(POST, main);
    check([main, post], [token]);
  });
});

describe('a keystore kept base64 in a workflow secret (env-secrets)', () => {
  it('is delivered byte-identical from env-secrets with ?encoding=base64, and openssl reads it', async () => {
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      { 'env-secrets': 'KEYSTORE=KEYSTORE_B64?encoding=base64, KEYSTORE_PASSWORD' },
      { env: { KEYSTORE_B64: p12.toString('base64'), KEYSTORE_PASSWORD: PASSWORD } },
    );
    expect(main.exitCode, main.log).toBe(0);
    expect(sha256(await fs.readFile(path.join(main.outputs['secrets-dir'] ?? '', 'KEYSTORE')))).toBe(sha256(p12));
    const info = await job.runShell(
      'openssl pkcs12 -info -noout -in "$PIPELINE_SECRETS_DIR/KEYSTORE" -passin "file:$PIPELINE_SECRETS_DIR/KEYSTORE_PASSWORD" 2>&1',
    );
    expect(info.exitCode, info.log).toBe(0);
    expect(info.log).toMatch(/MAC: sha256/);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, info, post]);
  });
});

describe('the renewal agent and a decoded keystore', () => {
  it('rewrites the file with the new bytes when the stored base64 is rotated, decoding it as main did', async () => {
    const v2 = Buffer.concat([Buffer.from([0x30, 0x82, 0xff, 0xfe]), p12.subarray(4)]); // other bytes, still not text
    await vault.putKv('secret', 'ci/rotating', { p12: stored });
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/rotating?encoding=base64 p12 | KEYSTORE_P12',
      renew: 'true',
      'refresh-interval': '1',
      'agent-max-lifetime': '120',
    });
    expect(main.exitCode, main.log).toBe(0);
    const file = path.join(main.outputs['secrets-dir'] ?? '', 'KEYSTORE_P12');
    expect(sha256(await fs.readFile(file))).toBe(sha256(p12));
    await vault.putKv('secret', 'ci/rotating', { p12: v2.toString('base64') });
    const deadline = Date.now() + 15_000;
    while (sha256(await fs.readFile(file)) !== sha256(v2)) {
      if (Date.now() > deadline) throw new Error('the agent did not rewrite the keystore within 15 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const log = await fs.readFile(path.join(path.dirname(main.outputs['secrets-dir'] ?? ''), 'agent.log'), 'utf8');
    expect(log).toContain(`rewrote KEYSTORE_P12 (${v2.length} bytes)`);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post], [token, v2.toString('base64'), v2.toString('hex')]);
  }, 60_000);
});

describe('a write line with ?encoding=', () => {
  it('decodes the base64 plaintext transit/decrypt answers with (the real transit engine)', async () => {
    await vault.enableEngine('transit', 'transit');
    await vault.call('POST', 'transit/keys/app', { body: {} });
    const plain = 'decrypted-Secret-9a1c\nsecond line of it';
    const encrypted = await vault.call('POST', 'transit/encrypt/app', { body: { plaintext: Buffer.from(plain).toString('base64') } });
    const ciphertext = encrypted.data.ciphertext as string;
    await vault.addPolicy('transit', [{ path: 'transit/decrypt/app', capabilities: ['update'] }]);
    const transitToken = await vault.createToken({ policies: ['transit'], ttl: '600s' });
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token: transitToken,
      secrets: `write transit/decrypt/app?encoding=base64 {"ciphertext": "${ciphertext}"} plaintext | PLAIN`,
      'export-outputs': 'true',
    });
    expect(main.exitCode, main.log).toBe(0);
    expect(await fs.readFile(path.join(main.outputs['secrets-dir'] ?? '', 'PLAIN'), 'utf8')).toBe(plain);
    expect(main.outputs.PLAIN).toBe(plain);
    const post = await job.runPost(POST, main);
    // Decoded text is masked with its lines, and so is the base64 Vault answered with.
    check([main, post], [transitToken, plain, ...plain.split('\n'), Buffer.from(plain).toString('base64')]);
  });
});

describe('the leak scan and a decoded keystore', () => {
  it('finds the planted keystore as bytes and as its stored base64, naming the secret, never printing it', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: 'secret/data/ci/keystore?encoding=base64 p12 | KEYSTORE_P12' });
    expect(main.exitCode, main.log).toBe(0);
    const artifacts = mkdtempSync(path.join(os.tmpdir(), 'ps-decode-artifacts-'));
    outside.push(artifacts);
    writeFileSync(path.join(artifacts, 'app.p12'), p12);
    writeFileSync(path.join(artifacts, 'values.yaml'), `keystore: |\n  ${stored.trimEnd().replaceAll('\n', '\n  ')}\n`);
    writeFileSync(path.join(artifacts, 'inline.json'), JSON.stringify({ p12: p12.toString('base64') }));
    writeFileSync(path.join(artifacts, 'clean.txt'), 'nothing here\n'.repeat(100));
    const scan = await job.runMain(SCAN, { paths: artifacts }, { actionYml: SCAN_YML });
    expect(scan.exitCode).toBe(1);
    const errors = scan.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    const found = (file: string, encoding: RegExp): boolean =>
      errors.some((m) => m.includes("secret 'KEYSTORE_P12'") && m.includes(path.join(artifacts, file)) && encoding.test(m));
    expect(found('app.p12', /found as raw /), errors.join('\n')).toBe(true);
    expect(found('values.yaml', /found as base64-line /), errors.join('\n')).toBe(true);
    expect(found('inline.json', /found as base64 /), errors.join('\n')).toBe(true);
    expect(errors.some((m) => m.includes('clean.txt'))).toBe(false);
    const post = await job.runPost(POST, main);
    check([main, scan, post], [token]);
  });
});
