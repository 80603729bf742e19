// What is registered with the runner's log masker for a value (its delivered form, lines, JSON
// leaves and their encodings), what is left out as too weak to mask, and the scrub of error text.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteForms, derivedForms, isTooWeakToMask, MaskRegistry, MIN_FORM_LENGTH } from '../../../src/core/mask.ts';
import type { Runner } from '../../../src/core/runner.ts';

function recorder(): { runner: Runner; masked: string[] } {
  const masked: string[] = [];
  const runner = { setSecret: (v: string) => masked.push(v) } as unknown as Runner;
  return { runner, masked };
}

describe('MaskRegistry.add with a runner that takes several values at once', () => {
  it('hands over a value and all its new forms in one call, the value first, the same forms as one by one', () => {
    const batches: string[][] = [];
    const batched = {
      setSecret: () => expect.unreachable(),
      setSecrets: (v: readonly string[]) => batches.push([...v]),
    } as unknown as Runner;
    const single = recorder();
    const value = JSON.stringify({ user: 'svc-account', key: 'line-one\nline-two' });
    new MaskRegistry(single.runner).add(value);
    const registry = new MaskRegistry(batched);
    expect(registry.add(value)).toBe(true);
    expect(batches).toHaveLength(1);
    expect(batches[0]?.[0]).toBe(value);
    expect(batches[0]).toEqual(single.masked);
    // A form registered before is not handed over again.
    registry.add('line-one');
    expect(batches[1]).toEqual([]);
  });
});

describe('derivedForms', () => {
  it('covers base64("user:" + password) as a docker config holds it', () => {
    const password = 'p@ss-W0rd-with-length';
    const forms = derivedForms(password);
    const auth = Buffer.from(`ci-bot:${password}`).toString('base64');
    expect(forms.some((form) => form.length >= 16 && auth.includes(form))).toBe(true);
  });

  it('adds lines, JSON fields, hex, base64url and leaves out forms shorter than the minimum', () => {
    const value = JSON.stringify({ user: 'svc', key: '-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----', n: 12345 });
    const forms = derivedForms(value);
    expect(forms).toContain('-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----');
    expect(forms).toContain('AAAABBBB');
    // A bare number (like a short one) would mask that text everywhere in the log.
    expect(forms).not.toContain('12345');
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
  it("scrubs a value from Node's base64, base64url and hex of any stream that holds it", () => {
    const value = fc.string({ unit: 'binary', minLength: 4, maxLength: 24 }).filter((v) => !isTooWeakToMask(v));
    const bytes = fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(value, bytes, bytes, (secret, prefix, suffix) => {
        const masks = new MaskRegistry(recorder().runner);
        expect(masks.add(secret)).toBe(true);
        const stream = Buffer.concat([prefix, Buffer.from(secret, 'utf8'), suffix]);
        for (const text of [
          stream.toString('base64'),
          stream.toString('base64url'),
          stream.toString('hex'),
          stream.toString('hex').toUpperCase(),
        ]) {
          expect(masks.scrub(text), text).toContain('***');
        }
      }),
      { numRuns: 200 },
    );
  });

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

  it('registers nothing for a value too weak to mask usefully, and reports it', () => {
    const { runner, masked } = recorder();
    const masks = new MaskRegistry(runner);
    for (const weak of ['x', 'abc', 'true', 'false', ' true\n', '8080', '-1.5e3', 'null']) expect(masks.add(weak), weak).toBe(false);
    expect(masked).toEqual([]);
    expect(masks.scrub('x abc true 8080')).toBe('x abc true 8080');
  });
});

describe('isTooWeakToMask', () => {
  it('is true for short text, true/false/null and numbers under 8 characters, false for anything else', () => {
    for (const weak of ['', 'a', 'ab ', 'abc', 'true', 'false', 'null', '1234', '-42', '3.14159', '1e10', ' 65535 ']) {
      expect(isTooWeakToMask(weak), JSON.stringify(weak)).toBe(true);
    }
    // A number of 8 or more characters is rare in a log and may be the secret itself: masked.
    for (const strong of ['abcd', 'True!', 'truex', '1234-5678', '0x1234', '12 34', 'p@ss', '12345678', '402938475610']) {
      expect(isTooWeakToMask(strong), JSON.stringify(strong)).toBe(false);
    }
  });
});

describe('the delivered form of a value', () => {
  it('registers the whole, its lines and JSON leaves, and the encodings of each', () => {
    const delivered = JSON.stringify({ private_key: 'nested-private-key-7781', client_id: 'cid-5555-xyz', port: 5432, on: true });
    const { runner, masked } = recorder();
    const masks = new MaskRegistry(runner);
    expect(masks.add(delivered)).toBe(true);
    expect(masked[0]).toBe(delivered);
    expect(masked).toContain('nested-private-key-7781');
    expect(masked).toContain(Buffer.from('nested-private-key-7781').toString('base64url'));
    expect(masked).toContain(Buffer.from('nested-private-key-7781').toString('hex'));
    expect(masked).toContain(Buffer.from(delivered).toString('base64url'));
    // Leaves too weak to mask are left out: they would mask every "5432" and "true" in the log.
    expect(masked).not.toContain('5432');
    expect(masked).not.toContain('true');
    expect(masked.every((form) => !isTooWeakToMask(form) || /^[0-9a-fA-F]+$/.test(form))).toBe(true);
  });

  it('leaves out weak lines of a multi-line value but keeps the rest', () => {
    const forms = derivedForms('enabled\ntrue\n42\nline-with-secret\r\nab');
    expect(forms).toEqual(expect.arrayContaining(['enabled', 'line-with-secret', Buffer.from('line-with-secret').toString('hex')]));
    for (const weak of ['true', '42', 'ab']) expect(forms).not.toContain(weak);
  });

  it('keeps an encoding even when it looks like a number (hex of a strong value)', () => {
    const forms = derivedForms('abcd');
    expect(forms).toContain('61626364');
  });
});

describe('byteForms and addForms (decoded bytes that are not text)', () => {
  const bytes = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37 + 250) % 256));
  it('the standard base64 whole and as `base64` wraps it at 76 columns, and hex', () => {
    const b64 = bytes.toString('base64');
    expect(byteForms(bytes)).toEqual([
      b64,
      b64.slice(0, 76),
      b64.slice(76, 152),
      b64.slice(152, 228),
      b64.slice(228),
      bytes.toString('hex'),
    ]);
    expect(byteForms(Buffer.from([0xff, 0x00]))).toEqual(['/wA=', 'ff00']); // no wrap below 76; nothing shorter than 4
  });

  it('registers each form as given, once, without deriving encodings of it', () => {
    const { runner, masked } = recorder();
    const masks = new MaskRegistry(runner);
    masks.addForms(['abcdefgh', 'abcdefgh', 'abc']);
    expect(masked).toEqual(['abcdefgh']);
  });
});
