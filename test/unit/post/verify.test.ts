// verifyBeforeCleanup: `verify-container` in post, against a fake docker CLI; by presence and byte
// count only, reported in the summary, a mismatch or a docker failure a problem of the report.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MaskRegistry } from '../../../src/core/mask.ts';
import { verifyBeforeCleanup } from '../../../src/post/verify.ts';
import { fakeRunner } from '../../support/fake-runner.ts';
import { fakeExec, tmp } from './fixtures.ts';

function secretsDir(): string {
  const dir = path.join(tmp(), 'secrets');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'A'), '12345');
  writeFileSync(path.join(dir, 'B'), '123');
  return dir;
}

describe('verifyBeforeCleanup', () => {
  it('runs nothing without verify-container or without a secrets directory', async () => {
    const docker = fakeExec();
    const runner = fakeRunner();
    const masks = new MaskRegistry(runner);
    const deps = { runner, exec: docker.exec };
    expect(
      await verifyBeforeCleanup(
        deps,
        { files: [], leases: [], secretsDir: secretsDir() },
        { verifyContainer: undefined, verifyPath: '/run/secrets' },
        masks,
      ),
    ).toEqual({ problems: [] });
    expect(
      await verifyBeforeCleanup(deps, { files: [], leases: [] }, { verifyContainer: 'app', verifyPath: '/run/secrets' }, masks),
    ).toEqual({ problems: [] });
    expect(docker.calls).toEqual([]);
  });

  it('reports each secret in the summary, and a missing or resized one as a problem', async () => {
    const docker = fakeExec(() => ({ stdout: 'A 5\nB 4\n' }));
    const runner = fakeRunner();
    const part = await verifyBeforeCleanup(
      { runner, exec: docker.exec },
      { files: [], leases: [], secretsDir: secretsDir() },
      { verifyContainer: 'app', verifyPath: '/secrets' },
      new MaskRegistry(runner),
    );
    expect(docker.calls[0]?.args).toEqual(expect.arrayContaining(['exec', '--', 'app', '/secrets', 'A', 'B']));
    expect(part).toEqual({ problems: ["verify-container 'app': missing or of another size at /secrets: B"] });
    expect(runner.summaries.join('\n')).toContain('1 of 2 secret(s) present at /secrets');
  });

  it("makes docker's failure a problem, scrubbed of every masked value", async () => {
    const docker = fakeExec(() => ({ exitCode: 1, stderr: 'Error: no such container: app-post-unit-Value-9' }));
    const runner = fakeRunner();
    const masks = new MaskRegistry(runner);
    masks.add('post-unit-Value-9');
    const part = await verifyBeforeCleanup(
      { runner, exec: docker.exec },
      { files: [], leases: [], secretsDir: secretsDir() },
      { verifyContainer: 'app', verifyPath: '/run/secrets' },
      masks,
    );
    expect(part.problems).toEqual(["verify-container 'app': Error: no such container: app-***"]);
  });
});
