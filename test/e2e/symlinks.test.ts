// Symlinks and hard links, end to end through dist/ and the harness: a symlinked GITHUB_WORKSPACE is
// scrubbed (its real tree), a symlinked `paths` entry is scanned, a loop is bounded and reported, a
// scan that scanned nothing fails, and redact never writes through a hard link.
import { linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { MAIN, POST, newJob, repo } from './setup.ts';

const SCAN = path.join(repo, 'dist/scan.js');
const SCAN_YML = path.join(repo, 'scan/action.yml');
const TOKEN = 'npm_SymlinkTestToken_8c2d4e6f1a';

let job: Job;
const outside: string[] = [];
afterEach(async () => {
  await job?.cleanup();
  for (const dir of outside.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempOutside(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  outside.push(dir);
  return dir;
}

async function deliver(extra: Record<string, string> = {}): Promise<StepResult> {
  const main = await job.runMain(MAIN, { 'env-secrets': 'NPM_TOKEN', ...extra }, { env: { NPM_TOKEN: TOKEN } });
  expect(main.exitCode, main.log).toBe(0);
  return main;
}

function ledgerDirs(main: StepResult): string[] {
  const ledger = JSON.parse(main.state.ledger ?? '{}') as { root: string; secretsDir: string };
  return [ledger.root, ledger.secretsDir];
}

const messages = (step: StepResult, level: string): string[] => step.annotations.filter((a) => a.level === level).map((a) => a.message);

describe('workspace scrub and symlinks', () => {
  it('scrubs the real tree when GITHUB_WORKSPACE is a symlink (a self-hosted runner layout)', async () => {
    job = await newJob();
    // The runner sets GITHUB_WORKSPACE itself (a step cannot shadow it), so the job's workspace path
    // becomes the symlink, as on a runner whose work dir is linked to another disk.
    const real = `${job.workspace}-real`;
    renameSync(job.workspace, real);
    symlinkSync(real, job.workspace);
    const main = await deliver();
    const write = await job.runShell('printf "//registry.npmjs.org/:_authToken=%s\\n" "$(cat "$PIPELINE_SECRETS_DIR/NPM_TOKEN")" > .npmrc');
    expect(write.exitCode).toBe(0);
    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(readFileSync(path.join(real, '.npmrc'), 'utf8')).toBe(`//registry.npmjs.org/:_authToken=${'*'.repeat(TOKEN.length)}\n`);
    expect(post.summary).not.toContain('no secret value found');
    expect(post.summary).toMatch(/Workspace scrub: 1 file\(s\) held a secret value/);
    expect(post.log).toMatch(/scrub: NPM_TOKEN found 1 time\(s\) in \.npmrc: redacted/);
    assertNoLeak(job, [main, write, post], [TOKEN], { privateDirs: ledgerDirs(main) });
  });

  it('redact never writes through a hard link to a file outside the workspace: it warns and leaves it', async () => {
    job = await newJob();
    const main = await deliver({ scrub: 'redact' });
    const elsewhere = tempOutside('ps-hardlink-');
    const target = path.join(elsewhere, 'credentials');
    const text = `token=${TOKEN}\n`;
    writeFileSync(target, text);
    linkSync(target, path.join(job.workspace, 'linked.cfg'));
    // A symlink inside the workspace to a file outside it: not followed, so not written through.
    const other = path.join(elsewhere, 'other');
    writeFileSync(other, text);
    symlinkSync(other, path.join(job.workspace, 'pointer.cfg'));
    const post = await job.runPost(POST, main);
    expect(readFileSync(target, 'utf8')).toBe(text);
    expect(readFileSync(other, 'utf8')).toBe(text);
    const warnings = messages(post, 'warning');
    expect(
      warnings.some((w) => w.includes('linked.cfg') && /hard link/.test(w)),
      warnings.join('\n'),
    ).toBe(true);
    expect(
      warnings.some((w) => w.includes('pointer.cfg') && /not followed/.test(w)),
      warnings.join('\n'),
    ).toBe(true);
    expect(post.summary).not.toContain('no secret value found');
    expect(post.summary).toMatch(/linked\.cfg.*not scrubbed/);
  });
});

describe('leak scan and symlinks', () => {
  it('scans a `paths` entry that is a symlink to a directory, and finds the leak', async () => {
    job = await newJob();
    const main = await deliver();
    const dir = tempOutside('ps-linked-');
    mkdirSync(path.join(dir, 'real'));
    writeFileSync(path.join(dir, 'real', 'leak.txt'), `x ${TOKEN}\n`);
    symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
    const scan = await job.runMain(SCAN, { paths: path.join(dir, 'link') }, { actionYml: SCAN_YML });
    expect(scan.exitCode).toBe(1);
    const errors = messages(scan, 'error');
    expect(errors.some((m) => m.includes("secret 'NPM_TOKEN' found as raw") && m.includes(path.join(dir, 'link', 'leak.txt')))).toBe(true);
    expect(scan.summary).not.toContain('No leak found');
    expect(scan.outputs.leaks).toBe('1');
    const post = await job.runPost(POST, main);
    assertNoLeak(job, [main, scan, post], [TOKEN], { privateDirs: ledgerDirs(main) });
  });

  it('follows a symlink inside a scanned directory, bounds a loop and reports it', async () => {
    job = await newJob();
    await deliver();
    const dir = tempOutside('ps-loop-');
    const elsewhere = tempOutside('ps-loop-target-');
    writeFileSync(path.join(elsewhere, 'dump.txt'), `debug ${TOKEN}\n`);
    symlinkSync(elsewhere, path.join(dir, 'external'));
    symlinkSync('.', path.join(dir, 'self'));
    symlinkSync(path.join(dir, 'b'), path.join(dir, 'a'));
    symlinkSync(path.join(dir, 'a'), path.join(dir, 'b'));
    const scan = await job.runMain(SCAN, { paths: dir }, { actionYml: SCAN_YML, timeoutMs: 30_000 });
    expect(scan.exitCode).toBe(1);
    const all = scan.annotations.map((a) => `${a.level}: ${a.message}`);
    expect(
      all.some((m) => m.includes("secret 'NPM_TOKEN'") && m.includes(path.join(dir, 'external', 'dump.txt'))),
      all.join('\n'),
    ).toBe(true);
    expect(
      all.some((m) => m.includes(path.join(dir, 'self')) && /symlink loop/.test(m)),
      all.join('\n'),
    ).toBe(true);
    expect(
      all.some((m) => m.includes(path.join(dir, 'a')) && /symlink loop/.test(m)),
      all.join('\n'),
    ).toBe(true);
    expect(scan.summary).not.toContain('No leak found');
  });

  it('with only a symlink loop to scan, reports it not scanned and fails', async () => {
    job = await newJob();
    await deliver();
    const dir = tempOutside('ps-loop-only-');
    symlinkSync(path.join(dir, 'b'), path.join(dir, 'a'));
    symlinkSync(path.join(dir, 'a'), path.join(dir, 'b'));
    const scan = await job.runMain(SCAN, { paths: path.join(dir, 'a') }, { actionYml: SCAN_YML });
    expect(scan.exitCode).toBe(1);
    expect(scan.summary).not.toContain('No leak found');
    expect(scan.summary).toMatch(/not scanned/);
    expect(messages(scan, 'error').at(-1)).toMatch(/^leak scan: /);
  });

  it('fails when nothing was scanned: a `paths` entry that matches nothing, or neither paths nor images', async () => {
    job = await newJob();
    await deliver();
    const none = await job.runMain(SCAN, { paths: 'dist/**/*.tgz' }, { actionYml: SCAN_YML });
    expect(none.exitCode).toBe(1);
    expect(none.summary).not.toContain('No leak found');
    const last = messages(none, 'error').at(-1) ?? '';
    expect(last).toMatch(/dist\/\*\*\/\*\.tgz/);
    expect(last).toMatch(/matched no file/);
    expect(last).not.toContain('\n');
    expect(none.outputs['sarif-file']).toBeTruthy();

    const nothing = await job.runMain(SCAN, {}, { actionYml: SCAN_YML });
    expect(nothing.exitCode).toBe(1);
    expect(messages(nothing, 'error').at(-1)).toMatch(/^input 'paths': nothing to scan \(.*\): give 'paths' \(.*\) or 'images' \(.*\)/);
    expect(nothing.summary).not.toContain('No leak found');

    // Dockerfile lint alone still runs and passes, but never claims a leak scan.
    writeFileSync(path.join(job.workspace, 'Dockerfile'), 'FROM scratch\n');
    const lintOnly = await job.runMain(SCAN, {}, { actionYml: SCAN_YML });
    expect(lintOnly.exitCode, lintOnly.log).toBe(0);
    expect(lintOnly.summary).not.toContain('No leak found');
    expect(lintOnly.summary).toMatch(/not scanned for leaks/i);
  });
});
