import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base64Embedded } from '../../src/encodings.ts';
import { derivedForms, MaskRegistry, MIN_FORM_LENGTH } from '../../src/mask.ts';
import type { Runner } from '../../src/runner.ts';

function recorder(): { runner: Runner; masked: string[] } {
  const masked: string[] = [];
  const runner = { setSecret: (v: string) => masked.push(v) } as unknown as Runner;
  return { runner, masked };
}

describe('base64Embedded', () => {
  it('is found inside base64 of any longer stream holding the value, at every alignment', () => {
    for (let round = 0; round < 200; round++) {
      const value = randomBytes(4 + (round % 40));
      const prefix = randomBytes(round % 7);
      const suffix = randomBytes((round * 3) % 5);
      const stream = Buffer.concat([prefix, value, suffix]).toString('base64');
      const core = base64Embedded(value, (prefix.length % 3) as 0 | 1 | 2);
      expect(core.length).toBeGreaterThan(0);
      expect(stream.includes(core)).toBe(true);
    }
  });

  it('covers base64("user:" + password) as a docker config holds it', () => {
    const password = 'p@ss-W0rd-with-length';
    const forms = derivedForms(password);
    const auth = Buffer.from(`ci-bot:${password}`).toString('base64');
    expect(forms.some((form) => form.length >= 16 && auth.includes(form))).toBe(true);
  });
});

describe('derivedForms', () => {
  it('adds lines, JSON fields, hex, base64url and leaves out forms shorter than the minimum', () => {
    const value = JSON.stringify({ user: 'svc', key: '-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----', n: 12345 });
    const forms = derivedForms(value);
    expect(forms).toContain('-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----');
    expect(forms).toContain('AAAABBBB');
    expect(forms).toContain('12345');
    expect(forms).not.toContain('svc');
    expect(forms).toContain(Buffer.from(value).toString('hex'));
    expect(forms).toContain(Buffer.from(value).toString('hex').toUpperCase());
    expect(forms.every((f) => f.length >= MIN_FORM_LENGTH)).toBe(true);
    expect(forms).not.toContain(value);
  });

  it('registers each trimmed line of a multi-line value', () => {
    const forms = derivedForms('line-one\r\n  line-two  \n\nab\n');
    expect(forms).toEqual(expect.arrayContaining(['line-one', 'line-two']));
    expect(forms).not.toContain('ab');
  });
});

describe('MaskRegistry', () => {
  it('registers every form once and scrubs them from text', () => {
    const { runner, masked } = recorder();
    const masks = new MaskRegistry(runner);
    expect(masks.add('s3cr3t-value')).toBe(true);
    masks.add('s3cr3t-value');
    expect(new Set(masked).size).toBe(masked.length);
    expect(masked[0]).toBe('s3cr3t-value');
    const b64 = Buffer.from('s3cr3t-value').toString('base64url');
    expect(masks.scrub(`failed with s3cr3t-value and ${b64}`)).toBe('failed with *** and ***');
  });

  it('still masks a value shorter than the minimum but reports it', () => {
    const { runner, masked } = recorder();
    const masks = new MaskRegistry(runner);
    expect(masks.add('abc')).toBe(false);
    expect(masked[0]).toBe('abc');
    // Its derived forms follow the same rule as any other: registered only when long enough.
    expect(masked.slice(1).every((form) => form.length >= MIN_FORM_LENGTH)).toBe(true);
    expect(masked).toContain('616263');
  });
});
