// builtin: the Node built-ins some runs need are loaded when first asked for, not when the bundle
// starts. Checked in a fresh Node, whose list of loaded built-ins the test runner has not filled.
import { execFileSync } from 'node:child_process';
import * as childProcess from 'node:child_process';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtin } from '../../../src/core/builtin.ts';

describe('builtin', () => {
  it("gives Node's own modules", () => {
    expect(builtin.http().request).toBe(http.request);
    expect(builtin.https().Agent).toBe(https.Agent);
    expect(builtin.childProcess().spawn).toBe(childProcess.spawn);
  });

  it('loads none of them on import, and each only when asked for', () => {
    const script = `
      const loaded = () => process.moduleLoadList.filter((m) => /^NativeModule (http|https|child_process)$/.test(m)).sort();
      const { builtin } = await import(${JSON.stringify(path.resolve('src/core/builtin.ts'))});
      const seen = { atImport: loaded() };
      builtin.childProcess();
      seen.afterChildProcess = loaded();
      builtin.http();
      seen.afterHttp = loaded();
      process.stdout.write(JSON.stringify(seen));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      atImport: [],
      afterChildProcess: ['NativeModule child_process'],
      afterHttp: ['NativeModule child_process', 'NativeModule http'],
    });
  });
});
