// The leak-scan sub-action and the workspace scrub, end to end through dist/ and the harness.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BASE_PATH } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { ensureBaseImage, sharedEngine } from '../support/services/docker.ts';
import { MAIN, POST, newJob, repo } from './setup.ts';

const SCAN = path.join(repo, 'dist/scan.js');
const SCAN_YML = path.join(repo, 'scan/action.yml');
const TOKEN = 'npm_ScanTestToken_5f1e9a2b7c';
const PASSWORD = 'registry-Scan-Pa55-0d4c';

let job: Job;
const outside: string[] = [];
afterEach(async () => {
  await job?.cleanup();
  for (const dir of outside.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function deliver(extra: Record<string, string> = {}): Promise<StepResult> {
  const main = await job.runMain(
    MAIN,
    { 'env-secrets': 'NPM_TOKEN, REGISTRY_PASSWORD', ...extra },
    { env: { NPM_TOKEN: TOKEN, REGISTRY_PASSWORD: PASSWORD } },
  );
  expect(main.exitCode, main.log).toBe(0);
  return main;
}

function ledgerDirs(main: StepResult): string[] {
  const ledger = JSON.parse(main.state.ledger ?? '{}') as { root: string; secretsDir: string };
  return [ledger.root, ledger.secretsDir];
}

/** A directory of artifacts outside the job's dirs, with values planted in several encodings. */
function plantedArtifacts(): { dir: string; expected: Array<[string, string]> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-artifacts-'));
  outside.push(dir);
  writeFileSync(path.join(dir, '.npmrc'), `registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=${TOKEN}\n`);
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ auths: { 'ghcr.io': { auth: Buffer.from(`ci-bot:${PASSWORD}`).toString('base64') } } }),
  );
  writeFileSync(path.join(dir, 'url.txt'), `https://ci:${encodeURIComponent(`${PASSWORD}/x`)}@example.com\n`);
  writeFileSync(path.join(dir, 'clean.log'), 'nothing to see here\n'.repeat(1000));
  const inner = path.join(dir, 'inner');
  execFileSync('mkdir', ['-p', inner]);
  writeFileSync(path.join(inner, 'debug.txt'), `token hex: ${Buffer.from(TOKEN).toString('hex')}\n`);
  execFileSync('tar', ['-czf', path.join(dir, 'bundle.tar.gz'), '-C', inner, 'debug.txt']);
  rmSync(inner, { recursive: true });
  return {
    dir,
    expected: [
      ['.npmrc', 'NPM_TOKEN'],
      ['config.json', 'REGISTRY_PASSWORD'],
      ['url.txt', 'REGISTRY_PASSWORD'],
      ['bundle.tar.gz!debug.txt', 'NPM_TOKEN'],
    ],
  };
}

describe('leak scan sub-action', () => {
  it('finds every planted value in its encoding, with file, line and offset, and never prints a value', async () => {
    job = await newJob();
    const main = await deliver();
    const { dir, expected } = plantedArtifacts();
    const scan = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML });
    expect(scan.exitCode).toBe(1);
    const errors = scan.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    for (const [file, name] of expected) {
      expect(
        errors.some((m) => m.includes(`secret '${name}'`) && m.includes(path.join(dir, file))),
        `${name} in ${file}`,
      ).toBe(true);
    }
    expect(errors.some((m) => /found as hex in .*bundle\.tar\.gz!debug\.txt line 1 at byte 11$/.test(m))).toBe(true);
    expect(errors.some((m) => /REGISTRY_PASSWORD' found as base64@\d/.test(m))).toBe(true);
    expect(errors.some((m) => /NPM_TOKEN' found as raw in .*\.npmrc line 2 at byte 70$/.test(m))).toBe(true);
    expect(errors.at(-1)).toMatch(/^leak scan: 4 leak\(s\) of /);
    expect(scan.outputs.leaks).toBe('4');
    const sarif = JSON.parse(readFileSync(scan.outputs['sarif-file'] ?? '', 'utf8'));
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs[0].results.filter((r: { ruleId: string }) => r.ruleId === 'leaked-secret')).toHaveLength(4);
    const report = readFileSync(scan.outputs.report ?? '', 'utf8');
    expect(report).not.toContain(TOKEN);
    expect(scan.summary).toContain('4 leak(s) found');
    // The scan's own outputs (SARIF, report) live in RUNNER_TEMP and hold no value: the invariant holds.
    const post = await job.runPost(POST, main);
    assertNoLeak(job, [main, scan, post], [TOKEN, PASSWORD], { privateDirs: ledgerDirs(main) });
  });

  it('scans on every core with the findings of one thread: files, and the big layers of a saved image', async () => {
    expect(os.availableParallelism(), 'this test needs at least 2 cores (the scan uses one worker thread per core)').toBeGreaterThan(1);
    job = await newJob();
    const main = await deliver();
    const { dir } = plantedArtifacts();
    // An image as `docker save -o` writes it: layers of 10 MiB (over the 4 MiB hand-off size, and
    // the image over the 16 MiB scanned in the step's own thread before workers start) with values
    // in them, scanned by whichever worker is free while the image's tar is walked by another.
    const image = path.join(dir, 'image');
    execFileSync('mkdir', ['-p', path.join(image, 'l1'), path.join(image, 'l2')]);
    const filler = (seed: number): string =>
      Array.from({ length: 5 * 2 ** 16 }, (_, i) => `l${(i * seed) % 9973}\n`.padEnd(16, '.')).join('');
    writeFileSync(path.join(image, 'l1', 'layer.txt'), `${filler(3)}NPM_TOKEN=${TOKEN}\n${filler(5)}`);
    writeFileSync(path.join(image, 'l2', 'layer.txt'), `${filler(7)}${filler(11)}${Buffer.from(PASSWORD).toString('base64')}\n`);
    execFileSync('tar', ['--format=ustar', '-cf', path.join(dir, 'image.tar'), '-C', image, 'l1', 'l2']);
    rmSync(image, { recursive: true });
    const all = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML });
    const one = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML, wrap: ['taskset', '-c', '0'] });
    expect(all.exitCode, all.log).toBe(1);
    expect(one.exitCode, one.log).toBe(1);
    const report = (r: StepResult): { findings: unknown[]; problems: unknown[] } =>
      JSON.parse(readFileSync(r.outputs.report ?? '', 'utf8')) as { findings: unknown[]; problems: unknown[] };
    expect(report(all).findings).toEqual(report(one).findings);
    expect(report(all).problems).toEqual([]);
    expect(all.annotations.slice(0, -1)).toEqual(one.annotations.slice(0, -1)); // the last names its own report file
    expect(all.outputs.leaks).toBe('6');
    const layers = all.annotations.map((a) => a.message).filter((m) => m.includes('image.tar!'));
    expect(layers).toEqual([
      expect.stringMatching(/secret 'NPM_TOKEN' found as raw in .*image\.tar!l1\/layer\.txt line 327681 at byte 5242890$/),
      expect.stringMatching(/secret 'REGISTRY_PASSWORD' found as base64 in .*image\.tar!l2\/layer\.txt line 655361 at byte 10485760$/),
    ]);
    // dist/scan.js is also the worker: the action ran once (one set of masks, one summary).
    expect(all.masks).toEqual(one.masks);
    expect(all.summary.split('leak(s) found').length).toBe(2);
    const post = await job.runPost(POST, main);
    assertNoLeak(job, [main, all, one, post], [TOKEN, PASSWORD], { privateDirs: ledgerDirs(main) });
  });

  it('is clean on artifacts without the values, and reports bad inputs while scanning the rest', async () => {
    job = await newJob();
    const main = await deliver();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-clean-'));
    outside.push(dir);
    writeFileSync(path.join(dir, 'app.log'), 'all good\n'.repeat(10000));
    const clean = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML });
    expect(clean.exitCode, clean.log).toBe(0);
    expect(clean.outputs.leaks).toBe('0');
    expect(clean.summary).toContain('No leak found');

    writeFileSync(path.join(dir, 'broken.tar.gz'), Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(64, 7)]));
    writeFileSync(path.join(dir, 'leak.txt'), `x ${TOKEN}\n`);
    const bad = await job.runMain(
      SCAN,
      { paths: `${dir}/does-not-exist\n${dir}` },
      { actionYml: SCAN_YML, env: { DOCKER_HOST: 'unix:///nonexistent.sock' } },
    );
    expect(bad.exitCode).toBe(1);
    const messages = bad.annotations.map((a) => `${a.level}: ${a.message}`);
    expect(messages.some((m) => m.startsWith('error:') && m.includes('does-not-exist'))).toBe(true);
    expect(messages.some((m) => m.startsWith('error:') && m.includes('broken.tar.gz'))).toBe(true);
    expect(messages.some((m) => m.includes("secret 'NPM_TOKEN' found as raw") && m.includes('leak.txt'))).toBe(true);
    const images = await job.runMain(
      SCAN,
      { images: 'ps-busybox:latest' },
      { actionYml: SCAN_YML, env: { DOCKER_HOST: 'unix:///nonexistent.sock', PATH: `${path.dirname(process.execPath)}:${BASE_PATH}` } },
    );
    expect(images.exitCode).toBe(1);
    expect(
      images.annotations.some(
        (a) => a.level === 'error' && /image:ps-busybox:latest.*docker save ps-busybox:latest failed/.test(a.message),
      ),
    ).toBe(true);
    const post = await job.runPost(POST, main);
    assertNoLeak(job, [main, clean, bad, images, post], [TOKEN, PASSWORD], { privateDirs: ledgerDirs(main) });
  });

  it('without any value to look for, says so', async () => {
    job = await newJob();
    const scan = await job.runMain(SCAN, { paths: job.workspace }, { actionYml: SCAN_YML });
    expect(scan.exitCode).toBe(1);
    expect(scan.annotations.find((a) => a.level === 'error')?.message).toMatch(
      /^input 'secrets-dir': not given and PIPELINE_SECRETS_DIR is not set, so there are no values to look for: run Pipeline Secrets in an earlier step/,
    );
  });

  it('lints Dockerfiles: warnings with file:line, a failure only with fail-on-lint', async () => {
    job = await newJob();
    const main = await deliver();
    await fs.writeFile(path.join(job.workspace, 'Dockerfile'), 'FROM ps-busybox:latest\nARG NPM_TOKEN\nCOPY .npmrc /root/\n');
    const lint = await job.runMain(SCAN, {}, { actionYml: SCAN_YML });
    expect(lint.exitCode, lint.log).toBe(0);
    const warnings = lint.annotations.filter((a) => a.level === 'warning');
    expect(warnings.map((w) => [w.file, w.line])).toEqual([
      ['Dockerfile', 2],
      ['Dockerfile', 3],
    ]);
    expect(warnings[0]?.message).toMatch(/RUN --mount=type=secret,id=npm_token/);
    const strict = await job.runMain(SCAN, { 'fail-on-lint': 'true' }, { actionYml: SCAN_YML });
    expect(strict.exitCode).toBe(1);
    const post = await job.runPost(POST, main);
    assertNoLeak(job, [main, lint, strict, post], [TOKEN, PASSWORD], { privateDirs: ledgerDirs(main) });
  });

  it('catches a secret passed as ARG in a real image (history and layer); the secret-mount build is clean', async () => {
    const engine = await sharedEngine();
    await ensureBaseImage(engine);
    job = await newJob();
    const main = await deliver({ 'build-secrets': 'npm=NPM_TOKEN' });
    const env = { ...engine.env, PATH: `${path.dirname(process.execPath)}:${BASE_PATH}` };
    const tag = `ps-scan-${Date.now()}`;
    const ctx = mkdtempSync(path.join(os.tmpdir(), 'ps-scan-ctx-'));
    outside.push(ctx);
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      'FROM ps-busybox:latest\nRUN --mount=type=secret,id=npm wc -c < /run/secrets/npm > /size\n',
    );
    const good = await job.runShell(`DOCKER_BUILDKIT=1 /usr/bin/docker build --network none --no-cache $ARGS -t ${tag}-good ${ctx}`, {
      env: { ...env, ARGS: main.outputs['build-secret-args'] ?? '' },
    });
    expect(good.exitCode, good.log).toBe(0);
    const leakyCtx = mkdtempSync(path.join(os.tmpdir(), 'ps-scan-leaky-'));
    outside.push(leakyCtx);
    writeFileSync(path.join(leakyCtx, 'Dockerfile'), 'FROM ps-busybox:latest\nARG NPM_TOKEN\nRUN echo "$NPM_TOKEN" > /token-copy\n');
    // The mistake under test passes the value on a command line, so it is built outside the job.
    const leaky = await engine.run([
      'build',
      '--network',
      'none',
      '--no-cache',
      '--build-arg',
      `NPM_TOKEN=${TOKEN}`,
      '-t',
      `${tag}-leaky`,
      leakyCtx,
    ]);
    expect(leaky.code, leaky.stderr).toBe(0);
    try {
      const cleanScan = await job.runMain(SCAN, { images: `${tag}-good` }, { actionYml: SCAN_YML, env });
      expect(cleanScan.exitCode, cleanScan.log).toBe(0);
      expect(cleanScan.outputs.leaks).toBe('0');
      const leakScan = await job.runMain(SCAN, { images: `${tag}-leaky` }, { actionYml: SCAN_YML, env });
      expect(leakScan.exitCode).toBe(1);
      const found = leakScan.annotations.filter((a) => a.level === 'error').map((a) => a.message);
      expect(found.some((m) => m.includes(`image:${tag}-leaky!history`))).toBe(true);
      expect(
        found.some(
          (m) => /image:ps-scan-\d+-leaky!.*layer\.tar|image:ps-scan-\d+-leaky!.*\.tar/.test(m) || /image:ps-scan-\d+-leaky!blobs/.test(m),
        ),
      ).toBe(true);
      const post = await job.runPost(POST, main, { env });
      assertNoLeak(job, [main, good, cleanScan, leakScan, post], [TOKEN, PASSWORD], { privateDirs: ledgerDirs(main) });
    } finally {
      await engine.run(['rmi', '-f', `${tag}-good`, `${tag}-leaky`]);
    }
  }, 120_000);
});

describe('workspace scrub in post', () => {
  it.each([
    ['redact', (after: string, before: string) => expect(after).toBe(before.replace(TOKEN, '*'.repeat(TOKEN.length)))],
    ['delete', (after: string | undefined) => expect(after).toBeUndefined()],
    ['report', (after: string, before: string) => expect(after).toBe(before)],
  ] as const)('scrub: %s', async (mode, expectNpmrc) => {
    job = await newJob();
    const main = await deliver({ scrub: mode });
    const write = await job.runShell(
      'printf "//registry.npmjs.org/:_authToken=%s\\nalways-auth=true\\n" "$(cat "$PIPELINE_SECRETS_DIR/NPM_TOKEN")" > .npmrc; printf "untouched\\n" > README.txt',
    );
    expect(write.exitCode).toBe(0);
    const before = readFileSync(path.join(job.workspace, '.npmrc'), 'utf8');
    const readme = readFileSync(path.join(job.workspace, 'README.txt'));
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    const after = await fs.readFile(path.join(job.workspace, '.npmrc'), 'utf8').catch(() => undefined);
    (expectNpmrc as (a: string | undefined, b: string) => void)(after, before);
    expect(readFileSync(path.join(job.workspace, 'README.txt')).equals(readme)).toBe(true);
    expect(post.summary).toMatch(/Workspace scrub: 1 file\(s\) held a secret value/);
    expect(post.log).toMatch(
      new RegExp(
        `scrub: NPM_TOKEN found 1 time\\(s\\) in \\.npmrc: ${mode === 'report' ? 'reported' : mode === 'redact' ? 'redacted' : 'deleted'}`,
      ),
    );
    if (mode !== 'report') assertNoLeak(job, [main, write, post], [TOKEN, PASSWORD], { privateDirs: ledgerDirs(main) });
  });
});
