// The workspace scrub and links: a symlinked workspace is resolved, links inside it are not
// followed (one pointing outside is reported), and a hard-linked file is never written through.
// Post's scrub phase (scrubJobWorkspace): what it scrubs for, what it logs and reports.
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appendPublicFiles, appendSideValues } from '../../../src/core/job-values.ts';
import { writeExclusive } from '../../../src/core/private-dir.ts';
import { scrubJobWorkspace, scrubWorkspace } from '../../../src/post/scrub.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { mainLeftBehind, TOKEN, VALUES } from './fixtures.ts';

const VALUE = 'scrub-unit-Value-7d3e';
const values = [{ name: 'TOKEN', value: VALUE }];
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function temp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ps-scrub-unit-'));
  dirs.push(dir);
  return dir;
}

describe('scrubWorkspace and links', () => {
  it('resolves a symlinked workspace and reports paths under it as given', async () => {
    const root = temp();
    mkdirSync(path.join(root, 'real'));
    writeFileSync(path.join(root, 'real', '.npmrc'), `t=${VALUE}\n`);
    symlinkSync(path.join(root, 'real'), path.join(root, 'ws'));
    const result = await scrubWorkspace(path.join(root, 'ws'), values, 'redact');
    expect(result.files).toEqual([
      { path: path.join(root, 'ws', '.npmrc'), findings: 1, names: ['TOKEN'], action: 'redacted', scrubbed: true },
    ]);
    expect(readFileSync(path.join(root, 'real', '.npmrc'), 'utf8')).toBe(`t=${'*'.repeat(VALUE.length)}\n`);
    expect(result.notScanned).toBe(0);
  });

  it('never writes through a hard link (redact), removes only the name (delete), reports both', async () => {
    const ws = temp();
    const outside = temp();
    writeFileSync(path.join(outside, 'creds'), `${VALUE}\n`);
    linkSync(path.join(outside, 'creds'), path.join(ws, 'linked'));
    const redact = await scrubWorkspace(ws, values, 'redact');
    expect(readFileSync(path.join(outside, 'creds'), 'utf8')).toBe(`${VALUE}\n`);
    expect(redact.files[0]).toMatchObject({ path: path.join(ws, 'linked'), scrubbed: false });
    expect(redact.files[0]?.action).toMatch(/^left \(a hard link: 2 names .*not written through, not scrubbed\)$/);
    const del = await scrubWorkspace(ws, values, 'delete');
    expect(del.files[0]).toMatchObject({ scrubbed: false });
    expect(del.files[0]?.action).toMatch(/^deleted this name, but left under its 1 other hard link/);
    expect(readFileSync(path.join(outside, 'creds'), 'utf8')).toBe(`${VALUE}\n`);
  });

  it('does not follow a symlink inside the workspace; one pointing outside is reported as not scanned', async () => {
    const ws = temp();
    const outside = temp();
    writeFileSync(path.join(outside, 'secret.txt'), `${VALUE}\n`);
    writeFileSync(path.join(ws, 'inside.txt'), 'nothing\n');
    symlinkSync(path.join(outside, 'secret.txt'), path.join(ws, 'out-link'));
    symlinkSync('inside.txt', path.join(ws, 'in-link'));
    symlinkSync('/nonexistent/x', path.join(ws, 'dangling'));
    const result = await scrubWorkspace(ws, values, 'redact');
    expect(readFileSync(path.join(outside, 'secret.txt'), 'utf8')).toBe(`${VALUE}\n`);
    expect(result.files).toEqual([]);
    expect(result.notScanned).toBe(1);
    expect(result.problems).toEqual([
      `${path.join(ws, 'out-link')}: a symlink to ${path.join(outside, 'secret.txt')}, outside the workspace: not followed, its target not scanned`,
    ]);
  });

  it('throws, not scanned, when the workspace cannot be resolved', async () => {
    await expect(scrubWorkspace(path.join(temp(), 'gone'), values, 'redact')).rejects.toThrow(
      /was not scanned: cannot resolve it \(ENOENT\)/,
    );
  });
});

describe('scrubJobWorkspace', () => {
  it('scrubs for the delivered values and the token, read from their files; logs what it redacted', async () => {
    const left = await mainLeftBehind();
    writeFileSync(path.join(left.workspace, 'dump.txt'), `${VALUES.API_KEY} ${TOKEN}\n`);
    writeFileSync(path.join(left.workspace, 'clean.txt'), 'nothing here\n');
    const runner = fakeRunner();
    const part = await scrubJobWorkspace(runner, left.ledger, 'redact', left.workspace);
    expect(part.problems).toEqual([]);
    expect(part.scrubbed).toEqual([
      { path: path.join(left.workspace, 'dump.txt'), findings: 2, names: ['API_KEY', 'vault-token'], action: 'redacted', scrubbed: true },
    ]);
    expect(runner.infos).toEqual(['scrub: API_KEY, vault-token found 2 time(s) in dump.txt: redacted']);
    expect(readFileSync(path.join(left.workspace, 'dump.txt'), 'utf8')).not.toMatch(/post-unit/);
  });

  it('scrubs for the values without a file too: a registry password given as an input, a value the agent superseded', async () => {
    const left = await mainLeftBehind();
    await appendSideValues(left.dir.root, [
      { name: 'registry-password (ghcr.io)', source: 'registry-password', value: 'post-unit-Registry-Pw-9a1b' },
      { name: 'DB_PASSWORD (superseded)', source: 'superseded', value: 'post-unit-Old-Value-3c4d' },
      // The token is in its token file already: looked for once.
      { name: 'vault-token', source: 'vault-token', value: TOKEN },
    ]);
    writeFileSync(path.join(left.workspace, 'old.txt'), 'post-unit-Old-Value-3c4d post-unit-Registry-Pw-9a1b\n');
    const part = await scrubJobWorkspace(fakeRunner(), left.ledger, 'redact', left.workspace);
    expect(part.scrubbed).toEqual([
      {
        path: path.join(left.workspace, 'old.txt'),
        findings: 2,
        names: ['DB_PASSWORD (superseded)', 'registry-password (ghcr.io)'],
        action: 'redacted',
        scrubbed: true,
      },
    ]);
    expect(readFileSync(path.join(left.workspace, 'old.txt'), 'utf8')).not.toMatch(/post-unit/);
  });

  it("leaves a pki entry's certificate and CA (public: recorded by main) alone in the workspace; scrubs its key", async () => {
    const left = await mainLeftBehind();
    const cert = { 'client.ca.pem': 'post-unit-Public-Ca-5e6f', 'client.key': 'post-unit-Private-Key-7a8b' };
    for (const [name, value] of Object.entries(cert)) {
      await writeExclusive(path.join(left.dir.secretsDir, name), value);
      left.ledger.files.push(path.join(left.dir.secretsDir, name));
    }
    await appendPublicFiles(left.dir.root, [{ name: 'client.ca.pem', value: cert['client.ca.pem'] }]);
    writeFileSync(path.join(left.workspace, 'image-ca.pem'), `${cert['client.ca.pem']}\n`);
    writeFileSync(path.join(left.workspace, 'key.pem'), `${cert['client.key']}\n`);
    const part = await scrubJobWorkspace(fakeRunner(), left.ledger, 'redact', left.workspace);
    expect(part.scrubbed?.map((f) => [path.basename(f.path), f.names])).toEqual([['key.pem', ['client.key']]]);
    expect(readFileSync(path.join(left.workspace, 'image-ca.pem'), 'utf8')).toBe(`${cert['client.ca.pem']}\n`);
  });

  it("warns for each file in 'report' mode and leaves it; says 'no secret value found' for a clean workspace", async () => {
    const left = await mainLeftBehind();
    const runner = fakeRunner();
    expect(await scrubJobWorkspace(runner, left.ledger, 'report', left.workspace)).toEqual({ scrubbed: [], problems: [] });
    writeFileSync(path.join(left.workspace, 'dump.txt'), `${VALUES.DB_PASSWORD}\n`);
    const part = await scrubJobWorkspace(runner, left.ledger, 'report', left.workspace);
    expect(part.scrubbed?.map((f) => f.action)).toEqual(['reported']);
    expect(runner.warnings).toEqual(['scrub: DB_PASSWORD found 1 time(s) in dump.txt: reported']);
    expect(readFileSync(path.join(left.workspace, 'dump.txt'), 'utf8')).toBe(`${VALUES.DB_PASSWORD}\n`);
  });

  it('does nothing when off, without a workspace, or with no value left to look for', async () => {
    const left = await mainLeftBehind();
    const none = { scrubbed: undefined, problems: [] };
    expect(await scrubJobWorkspace(fakeRunner(), left.ledger, 'off', left.workspace)).toEqual(none);
    expect(await scrubJobWorkspace(fakeRunner(), left.ledger, 'redact', undefined)).toEqual(none);
    const empty = { ...left.ledger, files: [] };
    delete empty.tokenFile;
    expect(await scrubJobWorkspace(fakeRunner(), empty, 'redact', left.workspace)).toEqual(none);
  });

  it('says what it could not scan: a workspace that is gone, a link out of it', async () => {
    const left = await mainLeftBehind();
    const gone = await scrubJobWorkspace(fakeRunner(), left.ledger, 'redact', path.join(left.workspace, 'gone'));
    expect(gone.scrubbed).toBeUndefined();
    expect(gone.problems[0]).toMatch(/^scrub: the workspace .*gone was not scanned: cannot resolve it \(ENOENT\)$/);
    symlinkSync(left.dir.root, path.join(left.workspace, 'out'));
    const linked = await scrubJobWorkspace(fakeRunner(), left.ledger, 'redact', left.workspace);
    expect(linked.scrubbed).toBeUndefined();
    expect(linked.problems).toEqual([
      `scrub: ${path.join(left.workspace, 'out')}: a symlink to ${left.dir.root}, outside the workspace: not followed, its target not scanned`,
      'scrub: the workspace was not scanned completely: 1 path(s) not scanned (listed above)',
    ]);
  });
});
