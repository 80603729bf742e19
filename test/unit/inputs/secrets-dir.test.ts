// The secrets directory verify and the leak scan read, and the message when it cannot be read.
import { describe, expect, it } from 'vitest';
import { getSecretsDir, unreadableSecretsDir } from '../../../src/inputs/secrets-dir.ts';

describe('the secrets directory', () => {
  it('is secrets-dir when given, else PIPELINE_SECRETS_DIR from an earlier step', () => {
    expect(getSecretsDir({ 'INPUT_SECRETS-DIR': '/a', PIPELINE_SECRETS_DIR: '/b' })).toEqual({ path: '/a', from: 'secrets-dir' });
    expect(getSecretsDir({ PIPELINE_SECRETS_DIR: '/b' })).toEqual({ path: '/b', from: 'PIPELINE_SECRETS_DIR' });
    expect(getSecretsDir({ PIPELINE_SECRETS_DIR: ' ' })).toBeUndefined();
  });

  it('one that cannot be read is an input error saying where its path came from', () => {
    const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    expect(unreadableSecretsDir({ path: '/a', from: 'secrets-dir' }, enoent).message).toBe("input 'secrets-dir': cannot read /a (ENOENT)");
    const fromEnv = unreadableSecretsDir({ path: '/b', from: 'PIPELINE_SECRETS_DIR' }, enoent, '/b/X');
    expect(fromEnv.message).toBe(
      "input 'secrets-dir': not given, and /b/X (from PIPELINE_SECRETS_DIR, set by an earlier Pipeline Secrets step) cannot be read (ENOENT)",
    );
    expect(fromEnv.cause).toBe(enoent);
  });
});
