// file-owner / file-mode: input validation and the ACL entries. Applying them on /dev/shm (as root,
// and through setfacl as other uids) is test/e2e/file-access.test.ts: it needs root and the acl package.
import { describe, expect, it } from 'vitest';
import { aclSpec } from '../../../src/core/file-access.ts';
import { parseFileAccess } from '../../../src/inputs/main.ts';

const input = (owner: string, mode = ''): ReturnType<typeof parseFileAccess> =>
  parseFileAccess({ 'INPUT_FILE-OWNER': owner, 'INPUT_FILE-MODE': mode });

describe('parseFileAccess', () => {
  it('takes UID or UID:GID and the four modes, with defaults by what is given', () => {
    expect(parseFileAccess({})).toBeUndefined();
    expect(input('1000')).toEqual({ uid: 1000, mode: 0o400 });
    expect(input('1000:1001')).toEqual({ uid: 1000, gid: 1001, mode: 0o440 });
    expect(input('1000:1000', '0640')).toEqual({ uid: 1000, gid: 1000, mode: 0o640 });
    expect(input('1000', '600')).toEqual({ uid: 1000, mode: 0o600 });
    expect(input('', '0400')).toEqual({ mode: 0o400 });
  });

  it.each([
    ['node', '', /^input 'file-owner': 'node' is not UID or UID:GID in numbers/],
    ['1000:', '', /^input 'file-owner': '1000:'/],
    ['-1', '', /^input 'file-owner': '-1'/],
    ['4294967295', '', /^input 'file-owner': '4294967295'/],
    ['1000', '0644', /^input 'file-mode': '0644' is not one of 0400, 0440, 0600, 0640 \(secret files are never readable by others\)$/],
    ['1000', '0444', /^input 'file-mode': '0444' is not one of/],
    ['1000', 'u+r', /^input 'file-mode': 'u\+r' is not one of/],
    ['1000', '0440', /^input 'file-mode': '0440' lets a group read: name the group in file-owner as UID:GID$/],
    ['', '0640', /^input 'file-mode': '0640' lets a group read/],
  ])('refuses file-owner %j file-mode %j in one line naming the input', (owner, mode, expected) => {
    expect(() => input(owner, mode)).toThrow(expected);
  });

  it('gives ACL entries with only the named uid and gid', () => {
    expect(aclSpec({ uid: 1000, mode: 0o400 }, 'file')).toBe('u:1000:r--');
    expect(aclSpec({ uid: 1000, gid: 50, mode: 0o640 }, 'file')).toBe('u:1000:rw-,g:50:r--');
    expect(aclSpec({ uid: 1000, gid: 50, mode: 0o400 }, 'file')).toBe('u:1000:r--');
    expect(aclSpec({ uid: 1000, gid: 50, mode: 0o440 }, 'dir')).toBe('u:1000:--x,g:50:--x');
  });
});
