// The job-wide list of private roots and the side-values file: the list appends each root once;
// the file is 0600, appended to, read back, never through a symlink, never another's; a root is
// proven ours (name, place, owner, mode, marker, secrets directory) before anything in it is read.
import { chmodSync, mkdirSync, promises as fs, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  appendPublicFiles,
  appendSideValues,
  isPublicFile,
  proveRoot,
  PUBLIC_FILES_FILE,
  readPublicFiles,
  readSideValues,
  SIDE_VALUES_FILE,
  splitRoots,
  withRoot,
} from '../../../src/core/job-values.ts';
import { createPrivateDir } from '../../../src/core/private-dir.ts';
import { tempDir } from '../../support/temp.ts';

/** A private root as main makes it, under a RUNNER_TEMP of the test's own (no /dev/shm). */
async function root(userSecretsDir?: string): Promise<{ temp: string; root: string; secretsDir: string }> {
  const temp = tempDir('ps-job-values-');
  const dir = await createPrivateDir({ RUNNER_TEMP: temp }, userSecretsDir, path.join(temp, 'no-shm'));
  return { temp, root: dir.root, secretsDir: dir.secretsDir };
}

describe('the job-wide list', () => {
  it('appends a root once, keeps the order, drops blanks', () => {
    expect(withRoot(undefined, '/a')).toBe('/a');
    expect(withRoot('/a', '/b')).toBe('/a:/b');
    expect(withRoot('/a:/b', '/a')).toBe('/a:/b');
    expect(splitRoots(' /a ::/b:/a:')).toEqual(['/a', '/b']);
    expect(splitRoots(undefined)).toEqual([]);
  });
});

describe('the side-values file', () => {
  it('keeps bytes that are not text as bytes (a decoded keystore the agent superseded), and text as text', async () => {
    const { root: r } = await root();
    const bytes = Buffer.from([0x30, 0x82, 0x00, 0xff, 0xfe, 0x0a]);
    await appendSideValues(r, [
      { name: 'KEYSTORE (superseded)', source: 'superseded', value: bytes },
      { name: 'EMPTY', source: 'superseded', value: Buffer.alloc(0) },
      { name: 'TEXT', source: 'superseded', value: 'plain text' },
    ]);
    const read = await readSideValues(r);
    expect(read.values.map((v) => v.name)).toEqual(['KEYSTORE (superseded)', 'TEXT']);
    expect(Buffer.isBuffer(read.values[0]?.value) && read.values[0].value.equals(bytes)).toBe(true);
    expect(read.values[1]?.value).toBe('plain text');
  });

  it('is created 0600, appended to by each writer, read back with names and sources', async () => {
    const { root: r } = await root();
    await appendSideValues(r, [{ name: 'registry-password (ghcr.io)', source: 'registry-password', value: 'pw-one\nline two' }]);
    await appendSideValues(r, [
      { name: 'vault-token', source: 'vault-token', value: 'hvs.token-1234' },
      { name: 'EMPTY', source: 'superseded', value: '' },
    ]);
    expect(statSync(path.join(r, SIDE_VALUES_FILE)).mode & 0o777).toBe(0o600);
    expect(await readSideValues(r)).toEqual({
      values: [
        { name: 'registry-password (ghcr.io)', source: 'registry-password', value: 'pw-one\nline two' },
        { name: 'vault-token', source: 'vault-token', value: 'hvs.token-1234' },
      ],
      unreadable: 0,
    });
  });

  it('none yet: no values; a line that is not ours is counted, not taken', async () => {
    const { root: r } = await root();
    expect(await readSideValues(r)).toEqual({ values: [], unreadable: 0 });
    writeFileSync(path.join(r, SIDE_VALUES_FILE), '{"name":"x","source":"other","value":"v"}\nnot json\n', { mode: 0o600 });
    expect(await readSideValues(r)).toEqual({ values: [], unreadable: 2 });
  });

  it('never through a symlink, never a file others may read or write', async () => {
    const { temp, root: r } = await root();
    const target = path.join(temp, 'elsewhere');
    writeFileSync(target, '', { mode: 0o600 });
    symlinkSync(target, path.join(r, SIDE_VALUES_FILE));
    await expect(appendSideValues(r, [{ name: 'n', source: 'vault-token', value: 'secret-value' }])).rejects.toMatchObject({
      code: 'ELOOP',
    });
    await expect(readSideValues(r)).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await fs.readFile(target, 'utf8')).toBe('');
    await fs.unlink(path.join(r, SIDE_VALUES_FILE));
    writeFileSync(path.join(r, SIDE_VALUES_FILE), '', { mode: 0o644 });
    chmodSync(path.join(r, SIDE_VALUES_FILE), 0o644);
    await expect(appendSideValues(r, [{ name: 'n', source: 'vault-token', value: 'secret-value' }])).rejects.toThrow(/others/);
    await expect(readSideValues(r)).rejects.toThrow(/others/);
  });
});

describe('the public-files file', () => {
  it('a file is public only by its name AND the content main wrote under it; 0600; no value in it', async () => {
    const { root: r } = await root();
    const ca = '-----BEGIN CERTIFICATE-----\nMIIBpublic-ca\n-----END CERTIFICATE-----\n';
    await appendPublicFiles(r, [{ name: 'client.ca.pem', value: ca }]);
    expect((statSync(path.join(r, PUBLIC_FILES_FILE)).mode & 0o777).toString(8)).toBe('600');
    expect(await fs.readFile(path.join(r, PUBLIC_FILES_FILE), 'utf8')).not.toContain('public-ca');
    const files = await readPublicFiles(r);
    expect(isPublicFile(files, 'client.ca.pem', ca)).toBe(true);
    expect(isPublicFile(files, 'client.ca.pem', Buffer.from(ca))).toBe(true);
    // Rewritten since (or a user's secret under that name): a secret again.
    expect(isPublicFile(files, 'client.ca.pem', `${ca}x`)).toBe(false);
    // The same content under another name (a user's KV secret holding it) is not made public either.
    expect(isPublicFile(files, 'other.ca.pem', ca)).toBe(false);
  });

  it('none: nothing is public; a line that is not ours makes nothing public; never through a symlink', async () => {
    const { root: r, temp } = await root();
    expect((await readPublicFiles(r)).size).toBe(0);
    writeFileSync(path.join(r, PUBLIC_FILES_FILE), 'not json\n{"name": 1}\n', { mode: 0o600 });
    expect((await readPublicFiles(r)).size).toBe(0);
    const elsewhere = path.join(temp, 'elsewhere');
    writeFileSync(elsewhere, '', { mode: 0o600 });
    await fs.rm(path.join(r, PUBLIC_FILES_FILE));
    symlinkSync(elsewhere, path.join(r, PUBLIC_FILES_FILE));
    await expect(readPublicFiles(r)).rejects.toThrow();
    await expect(appendPublicFiles(r, [{ name: 'a.crt', value: 'x' }])).rejects.toThrow();
  });
});

describe('proveRoot', () => {
  it("a root main made: its secrets directory, from its marker (also a user's secrets-dir)", async () => {
    const { temp, root: r, secretsDir } = await root();
    expect(await proveRoot(r, ['/dev/shm', temp])).toEqual({ root: r, secretsDir, userSecretsDir: false });
    const other = tempDir('ps-job-values-user-');
    const user = await root(path.join(other, 'secrets'));
    expect(await proveRoot(user.root, [user.temp])).toEqual({
      root: user.root,
      secretsDir: path.join(other, 'secrets'),
      userSecretsDir: true,
    });
  });

  it.each<[string, (r: { temp: string; root: string; secretsDir: string }) => string]>([
    ['not a Pipeline Secrets private directory', () => 'relative/pipeline-secrets-x'],
    ['not a Pipeline Secrets private directory', (r) => path.join(r.temp, 'other-name')],
    [
      'not directly in',
      (r) => {
        const deeper = path.join(r.temp, 'sub', 'pipeline-secrets-x');
        mkdirSync(deeper, { recursive: true, mode: 0o700 });
        return deeper;
      },
    ],
    [
      'not a directory (a symlink or a file)',
      (r) => {
        const link = path.join(r.temp, 'pipeline-secrets-link');
        symlinkSync(r.root, link);
        return link;
      },
    ],
    [
      'not mode 0700',
      (r) => {
        chmodSync(r.root, 0o750);
        return r.root;
      },
    ],
    [
      'it carries no readable marker (ENOENT)',
      (r) => {
        const bare = path.join(r.temp, 'pipeline-secrets-bare');
        mkdirSync(bare, { mode: 0o700 });
        return bare;
      },
    ],
    [
      'its marker was made for another directory',
      (r) => {
        // The same marker under another name: it names the directory it was made for.
        const moved = path.join(r.temp, 'pipeline-secrets-moved');
        renameSync(r.root, moved);
        return moved;
      },
    ],
    [
      'is gone or replaced',
      (r) => {
        renameSync(r.secretsDir, `${r.secretsDir}-old`);
        mkdirSync(r.secretsDir, { mode: 0o700 });
        return r.root;
      },
    ],
    ['cannot inspect it (ENOENT)', (r) => path.join(r.temp, 'pipeline-secrets-gone')],
  ])('refused: %s', async (reason, make) => {
    const r = await root();
    const proven = await proveRoot(make(r), [r.temp]);
    expect(typeof proven).toBe('string');
    expect(proven).toContain(reason);
  });
});
