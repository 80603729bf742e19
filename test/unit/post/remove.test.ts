// removeDelivered: post's deletions, on a real private root made by main's createPrivateDir.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeDelivered } from '../../../src/post/remove.ts';
import { createPrivateDir } from '../../../src/core/private-dir.ts';
import { exists, mainLeftBehind, tmp } from './fixtures.ts';

describe('removeDelivered', () => {
  it('removes every file, the token file and the root, and counts them', async () => {
    const left = await mainLeftBehind();
    expect(await removeDelivered(left.ledger)).toEqual({ filesRemoved: 3, dirsRemoved: [left.dir.root], problems: [] });
    expect(await exists(left.dir.root)).toBe(false);
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
