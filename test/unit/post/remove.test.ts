// removeDelivered: post's deletions, on a real private root made by main's createPrivateDir.
import { promises as fs, mkdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeDelivered, removeWorkspaceFiles } from '../../../src/post/remove.ts';
import { appendSideValues, SIDE_VALUES_FILE } from '../../../src/core/job-values.ts';
import { createPrivateDir, fileId, ROOT_MARKER } from '../../../src/core/private-dir.ts';
import { exists, mainLeftBehind, tmp, TOKEN } from './fixtures.ts';

const idOf = (file: string): string => fileId(statSync(file, { bigint: true }));

describe('removeWorkspaceFiles', () => {
  it('deletes each rendered file that is still the one main wrote, by its device:inode', async () => {
    const ws = tmp();
    const npmrc = path.join(ws, '.npmrc');
    writeFileSync(npmrc, 'rendered');
    mkdirSync(path.join(ws, '.kube'));
    const kube = path.join(ws, '.kube', 'config');
    writeFileSync(kube, 'rendered');
    const ledger = {
      workspaceFiles: [
        { path: npmrc, id: idOf(npmrc) },
        { path: kube, id: idOf(kube) },
      ],
    };
    expect(await removeWorkspaceFiles(ledger, ws, undefined)).toEqual({ workspaceFilesRemoved: [npmrc, kube], problems: [] });
    expect([await exists(npmrc), await exists(kube)]).toEqual([false, false]);
    // A second run: gone already, no problem.
    expect(await removeWorkspaceFiles(ledger, ws, undefined)).toEqual({ workspaceFilesRemoved: [], problems: [] });
  });

  it('takes the device:inode the agent gives for a file it rendered again', async () => {
    const ws = tmp();
    const file = path.join(ws, '.npmrc');
    writeFileSync(file, 'main');
    const mainId = idOf(file);
    writeFileSync(path.join(ws, 'new'), 'agent');
    renameSync(path.join(ws, 'new'), file);
    const ledger = { workspaceFiles: [{ path: file, id: mainId }] };
    const status = { rendered: [{ name: 'npmrc', path: file, bytes: 5, renders: 1, id: idOf(file) }] };
    expect((await removeWorkspaceFiles(ledger, ws, status)).workspaceFilesRemoved).toEqual([file]);
  });

  it('leaves a file replaced since, one without a recorded id, a symlink, and anything outside the workspace', async () => {
    const ws = tmp();
    const replaced = path.join(ws, 'replaced');
    writeFileSync(replaced, 'main');
    const id = idOf(replaced);
    writeFileSync(path.join(ws, 'other'), 'a step of the user');
    renameSync(path.join(ws, 'other'), replaced);
    const unproven = path.join(ws, 'unproven');
    writeFileSync(unproven, 'x');
    const outsideDir = tmp();
    const outside = path.join(outsideDir, 'file');
    writeFileSync(outside, "not the job's");
    const link = path.join(ws, 'link');
    symlinkSync(outside, link);
    const ledger = {
      workspaceFiles: [{ path: replaced, id }, { path: unproven }, { path: outside, id: idOf(outside) }, { path: link, id: idOf(outside) }],
    };
    const result = await removeWorkspaceFiles(ledger, ws, undefined);
    expect(result).toEqual({
      workspaceFilesRemoved: [],
      problems: [
        `rendered file ${replaced}: not the file main wrote (replaced since); left in place`,
        `rendered file ${unproven}: main recorded no identity for it (it stopped while writing it): not proven main's; left in place`,
        `rendered file ${outside}: not in the workspace; left in place`,
        `rendered file ${link}: not a regular file of this user; left in place`,
      ],
    });
    for (const f of [replaced, unproven, outside, link]) expect(await exists(f)).toBe(true);
  });

  it('does nothing without workspace files, and leaves them all without a workspace to check against', async () => {
    expect(await removeWorkspaceFiles({}, undefined, undefined)).toEqual({ workspaceFilesRemoved: [], problems: [] });
    const ws = tmp();
    writeFileSync(path.join(ws, 'f'), 'x');
    const result = await removeWorkspaceFiles(
      { workspaceFiles: [{ path: path.join(ws, 'f'), id: idOf(path.join(ws, 'f')) }] },
      undefined,
      undefined,
    );
    expect(result.problems).toEqual([`rendered file ${path.join(ws, 'f')}: not in the workspace; left in place`]);
  });
});

describe('removeDelivered', () => {
  it('removes every file, the token file and the root, and counts them', async () => {
    const left = await mainLeftBehind();
    expect(await removeDelivered(left.ledger)).toEqual({ filesRemoved: 3, dirsRemoved: [left.dir.root], problems: [] });
    expect(await exists(left.dir.root)).toBe(false);
  });

  it('removes the side-values file by name, uncounted, even where the root itself must stay', async () => {
    const left = await mainLeftBehind();
    await appendSideValues(left.dir.root, [{ name: 'vault-token', source: 'vault-token', value: TOKEN }]);
    // Without its marker the root is not provably ours, and it is not empty: it stays, the side values do not.
    await fs.unlink(path.join(left.dir.root, ROOT_MARKER));
    writeFileSync(path.join(left.dir.root, 'other'), 'x');
    expect(await removeDelivered(left.ledger)).toEqual({ filesRemoved: 3, dirsRemoved: [], problems: [] });
    expect(await exists(path.join(left.dir.root, SIDE_VALUES_FILE))).toBe(false);
    expect(await exists(left.dir.root)).toBe(true);
  });

  it('counts no file already gone, and is no problem then (a second run)', async () => {
    const left = await mainLeftBehind();
    await removeDelivered(left.ledger);
    expect(await removeDelivered(left.ledger)).toEqual({ filesRemoved: 0, dirsRemoved: [], problems: [] });
  });

  it("removes a user's secrets directory only when nothing else is in it", async () => {
    const runnerTemp = tmp();
    const userDir = path.join(tmp(), 'secrets');
    const dir = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, userDir, path.join(runnerTemp, 'no-shm'));
    writeFileSync(path.join(userDir, 'A'), 'value');
    writeFileSync(path.join(userDir, 'theirs.txt'), 'not ours');
    const ledger = { root: dir.root, secretsDir: userDir, userSecretsDir: true, files: [path.join(userDir, 'A')], leases: [] };
    expect(await removeDelivered(ledger)).toEqual({
      filesRemoved: 1,
      dirsRemoved: [dir.root],
      problems: [`${userDir} still holds files this action did not write (theirs.txt); left in place`],
    });
    expect(await exists(path.join(userDir, 'theirs.txt'))).toBe(true);
    const empty = await createPrivateDir({ RUNNER_TEMP: runnerTemp }, path.join(tmp(), 'secrets'), path.join(runnerTemp, 'no-shm'));
    const removed = await removeDelivered({ root: empty.root, secretsDir: empty.secretsDir, userSecretsDir: true, files: [], leases: [] });
    expect(removed.dirsRemoved).toEqual([empty.secretsDir, empty.root]);
  });

  it('leaves a root that is not a Pipeline Secrets directory, or carries no marker and is not empty', async () => {
    const notOurs = tmp();
    expect((await removeDelivered({ root: notOurs, files: [], leases: [] })).problems).toEqual([
      `${notOurs} is not a Pipeline Secrets directory; left in place`,
    ]);
    const unmarked = path.join(tmp(), 'pipeline-secrets-x');
    mkdirSync(path.join(unmarked, 'secrets'), { recursive: true });
    writeFileSync(path.join(unmarked, 'something'), '');
    expect(await removeDelivered({ root: unmarked, files: [], leases: [] })).toEqual({ filesRemoved: 0, dirsRemoved: [], problems: [] });
    expect(await exists(path.join(unmarked, 'something'))).toBe(true);
    const emptyUnmarked = path.join(tmp(), 'pipeline-secrets-y');
    mkdirSync(path.join(emptyUnmarked, 'secrets'), { recursive: true });
    expect((await removeDelivered({ root: emptyUnmarked, files: [], leases: [] })).dirsRemoved).toEqual([emptyUnmarked]);
  });
});
