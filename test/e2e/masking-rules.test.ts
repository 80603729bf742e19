// End to end, through dist/ and the runner harness against a real OpenBao: what is registered with
// the runner's masker (the delivered form of each selected value, as a whole and in its encodings;
// nothing of the fields not selected), what is refused (a `*` key that gives no name, exports
// without the runner's file commands) and where the summary says the files are.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import { ALL_VALUES, MAIN, POST, newJob, privateDirsOf, startVault } from './setup.ts';

const NESTED_KEY = 'nested-private-key-7781-zq';
const CLIENT_ID = 'client-id-5555-xw';
const SA = JSON.stringify({ type: 'service_account', creds: { private_key: NESTED_KEY, client_id: CLIENT_ID }, project: 'proj-1234' });
const ODD_VALUE = 'odd-key-value-4242-qp';
const OK_VALUE = 'ok-key-value-9191-mn';
const ENV_VALUE = 'exported-value-3131-vb';

let vault: OpenBao;
let token: string;
let job: Job;

beforeAll(async () => {
  vault = await startVault();
  await vault.putKv('secret', 'ci/shapes', { sa: SA, flag: true, pin: 'x' });
  await vault.putKv('secret', 'ci/odd', { '@@': ODD_VALUE, ok: OK_VALUE });
  await vault.putKv('secret', 'ci/export', { value: ENV_VALUE });
  token = await vault.createToken({ policies: ['ci'], ttl: '600s' });
});
afterAll(async () => {
  await vault?.stop();
});
afterEach(async () => {
  await job?.cleanup();
});

function check(steps: StepResult[], extra: string[] = []): void {
  assertNoLeak(job, steps, [...ALL_VALUES, NESTED_KEY, CLIENT_ID, SA, ODD_VALUE, OK_VALUE, ENV_VALUE, ...extra], {
    privateDirs: privateDirsOf(steps),
  });
}

describe('what is masked', () => {
  it('masks the delivered form of a dotted-path selection into a JSON string as a whole, and its base64', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: 'secret/data/ci/shapes sa.creds | CREDS' });
    expect(main.exitCode, main.log).toBe(0);
    const delivered = JSON.stringify({ private_key: NESTED_KEY, client_id: CLIENT_ID });
    const file = path.join(main.outputs['secrets-dir'] ?? '', 'CREDS');
    expect(await fs.readFile(file, 'utf8')).toBe(delivered);
    expect(main.masks).toContain(delivered);

    const printed = await job.runShell('base64 -w0 "$PIPELINE_SECRETS_DIR/CREDS"; echo; cat "$PIPELINE_SECRETS_DIR/CREDS"; echo');
    expect(printed.exitCode, printed.log).toBe(0);
    expect(printed.stdout).toContain(Buffer.from(delivered).toString('base64')); // raw: printed by design
    const lines = printed.log.split('\n');
    expect(lines).toContain('***');
    const b64 = Buffer.from(delivered).toString('base64');
    for (let i = 0; i + 8 <= b64.length; i += 4) expect(printed.log).not.toContain(b64.slice(i, i + 8));
    expect(printed.log).not.toContain('private_key');
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post]);
  });

  it('does not register fields that were not selected: an unselected `flag: true` leaves "true" readable', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: 'secret/data/ci/shapes sa.creds | CREDS' });
    expect(main.exitCode, main.log).toBe(0);
    expect(main.masks).not.toContain('true');
    expect(main.masks).not.toContain('x');
    const printed = await job.runShell('echo "the build is true to its word"');
    expect(printed.log).toContain('the build is true to its word');
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post]);
  });

  it('delivers a selected 1-character value with a warning that names the secret and says it is not masked', async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, {
      url: vault.url,
      token,
      secrets: 'secret/data/ci/shapes pin | PIN\nsecret/data/ci/shapes flag | FLAG',
    });
    expect(main.exitCode, main.log).toBe(0);
    const dir = main.outputs['secrets-dir'] ?? '';
    expect(await fs.readFile(path.join(dir, 'PIN'), 'utf8')).toBe('x');
    expect(await fs.readFile(path.join(dir, 'FLAG'), 'utf8')).toBe('true');
    const warnings = main.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    const pin = warnings.find((w) => w.includes("'PIN'"));
    expect(pin).toMatch(/not masked/);
    expect(warnings.find((w) => w.includes("'FLAG'"))).toMatch(/not masked/);
    expect(main.masks).not.toContain('x');
    expect(main.masks).not.toContain('true');
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post]);
  });
});

describe('what is refused', () => {
  it("refuses a '*' key that gives an empty name, naming the path and the key, not the value", async () => {
    job = await newJob();
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: 'secret/data/ci/odd *' });
    expect(main.exitCode).toBe(1);
    const errors = main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    expect(errors).toHaveLength(1);
    const message = errors[0] ?? '';
    expect(message).toContain('@@');
    expect(message).toContain('ci/odd');
    expect(message).toMatch(/empty name/);
    expect(message).not.toMatch(/already exists/);
    expect(message).not.toContain('\n');
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post]);
  });

  it('refuses export-env when the runner gives no GITHUB_ENV file, and never prints the value', async () => {
    job = await newJob();
    const main = await job.runMain(
      MAIN,
      { url: vault.url, token, secrets: 'secret/data/ci/export value | EXPORTED', 'export-env': 'true' },
      { wrap: ['env', '-u', 'GITHUB_ENV'] },
    );
    expect(main.exitCode).toBe(1);
    expect(main.stdout).not.toMatch(/^::set-(env|output)/m);
    const lines = main.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'));
    expect(lines.some((l) => l.includes(ENV_VALUE))).toBe(false);
    const error = main.annotations.find((a) => a.level === 'error')?.message ?? '';
    expect(error).toMatch(/GITHUB_ENV/);
    expect(error).toMatch(/file command/);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post]);
  });
});

describe('where the summary says the files are', () => {
  it('does not call a secrets-dir on disk tmpfs', async () => {
    job = await newJob();
    const dir = path.join(job.runnerTemp, 'on-disk-secrets');
    const main = await job.runMain(MAIN, { url: vault.url, token, secrets: 'secret/data/ci/export value | V', 'secrets-dir': dir });
    expect(main.exitCode, main.log).toBe(0);
    expect(main.outputs['secrets-dir']).toBe(dir);
    expect(main.summary).toContain('on-disk-secrets');
    expect(main.summary).not.toMatch(/tmpfs/);
    expect(main.summary).toMatch(/on disk/);
    expect(main.log).not.toMatch(/\(tmpfs\)/);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    check([main, post]);
  });
});
