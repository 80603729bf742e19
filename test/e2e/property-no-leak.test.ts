// Property: whatever a secret value looks like (unicode, new lines, JSON, quotes, percent signs,
// runner command syntax, 4 to 4,096 characters), and whichever way a run ends (success, exports, a
// missing key, a missing path, a 403, a bad input line, Vault unreachable, a value pasted into the
// env-secrets name position, a missing workflow secret), the value appears in the raw stdout of main and post
// only inside `::add-mask::` lines: never in argv, state, the summary, annotations, stderr or any
// file outside the private directory (assertNoLeak, test/support/harness/leak.ts). Debug is on.
//
// Runtime: each fast-check run is one main and one post through dist/ against a real OpenBao, and
// carries VALUES_PER_RUN generated values (two KV secrets read with `*` / `**`, plus env-secrets and
// one pasted value). One property per way of ending, RUNS_PER_KIND runs each: 9 x 4 runs x 41 values
// drive 1,476 values through the action in 36 mains and 36 posts (about 10 s
// on two cores). Post runs after every main, failed ones included.
//
// Replay: a failure prints FC_SEED and FC_PATH; `FC_SEED=<seed> FC_PATH=<path> npx vitest run
// test/e2e/property-no-leak.test.ts -t '<kind>:'` runs the shrunk counterexample again. FC_RUNS
// overrides RUNS_PER_KIND.
//
// False positives are designed out: the checker searches a value and each trimmed line of it with
// 4+ characters, so every such line carries a marker core (one non-ASCII letter that appears in none
// of the action's own text, then 3 to 12 random letters and digits). A value can then never be a
// piece of fixed log text, a key name or a number the summary prints; lines without a core are kept
// under 4 characters. Values never hold NUL (an environment variable cannot).
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTooWeakToMask } from '../../src/core/mask.ts';
import { assertNoLeak, type StepResult } from '../support/harness/index.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { MAIN, POST, newJob, privateDirsOf } from './setup.ts';

const RUNS_PER_KIND = Number(process.env.FC_RUNS ?? 4);
const VAULT_A = 16; // values at prop/rN/a, read with `* | A_`
const VAULT_B = 16; // values at prop/rN/b, read with `**` (or left unselected when a key is missing)
const ENV_VALUES = 8; // values through env-secrets
const VALUES_PER_RUN = VAULT_A + VAULT_B + ENV_VALUES + 1; // + the value pasted into a name position
const MIN_TOTAL = 1000;

/** Not in any text the action prints (summary.ts and verify.ts use →, ⚠️, ✅, ❌). */
const MARKERS = ['ж', 'ø', '漢', 'ß', 'Ω', 'ŋ', 'ÿ', '🔑', 'ｷ', 'Ǳ'];
const ALNUM = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'];

const KINDS = [
  'success',
  'export',
  'missing-key',
  'missing-path',
  'forbidden',
  'bad-line',
  'unreachable',
  'env-name-position',
  'missing-env',
  'secrets-name-position',
] as const;
type Kind = (typeof KINDS)[number];
// Found by this property: a value pasted into the name position of a `secrets` line
// (`<path> <key> | <value>`) used to be quoted in the refusal; it no longer is (secret-spec.ts).
const KINDS_RUN: readonly Kind[] = KINDS;

// ---- generators ---------------------------------------------------------------------------------

const noBreaks = (s: string): string => s.replace(/[\r\n\0]/g, ' ');

/** A marker core: makes the line it sits in unique and never part of the action's own text. */
const core = fc
  .tuple(fc.constantFrom(...MARKERS), fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 3, maxLength: 12 }))
  .map(([m, s]) => m + s);

/** Pieces without line breaks: unicode, quotes, percent encodings, runner command syntax, JSON chars. */
const fragment = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 16 }).map(noBreaks),
  fc.string({ unit: 'binary-ascii', maxLength: 8 }).map(noBreaks),
  fc.constantFrom(
    '"',
    "'",
    '`',
    '%',
    '%%',
    '%25',
    '%0A',
    '%0D',
    '%3A',
    '%2C',
    '::',
    '::add-mask::',
    '::error::',
    '::endgroup::',
    '##[error]',
    '\\',
    '\\n',
    '\\u0000',
    '$',
    '${{',
    '}}',
    '{"a":1}',
    '{',
    '}',
    '[',
    ']',
    ' ',
    '\t',
    '=',
    '|',
    ';',
    ',',
    '#',
    '*',
    '?',
    '<<EOF',
    'EOF',
    '\u2028',
    '\u0085',
    '\u00a0',
    '\u200b',
    '\u001b[31m',
    '<script>',
    '&amp;',
    'é', // e + combining acute
  ),
);

const line = fc
  .tuple(fc.array(fragment, { maxLength: 4 }), core, fc.array(fragment, { maxLength: 4 }))
  .map(([before, c, after]) => before.join('') + c + after.join(''));

/** A line the checker does not search on its own (under 4 characters once trimmed). */
const shortLine = fc.constantFrom('', ' ', '}', '{', '--', '"', '%', '==', '\t', '],');
const lineBreak = fc.constantFrom('\n', '\r\n', '\r');

const multiline = fc
  .tuple(
    fc.array(fc.oneof({ arbitrary: line, weight: 3 }, { arbitrary: shortLine, weight: 1 }), { minLength: 2, maxLength: 8 }),
    fc.array(lineBreak, { minLength: 8, maxLength: 8 }),
    fc.boolean(),
  )
  .map(([lines, breaks, trailing]) => lines.map((l, i) => (i === 0 ? l : (breaks[i] ?? '\n') + l)).join('') + (trailing ? '\n' : ''));

/** A flat JSON object: every key holds a core, so each line of the pretty form does, or is `{` / `}`. */
const jsonObject = fc.dictionary(
  line,
  fc.oneof(line, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.string()),
  { minKeys: 1, maxKeys: 5 },
);
const json = fc.tuple(jsonObject, fc.constantFrom(0, 2, '\t')).map(([o, indent]) => JSON.stringify(o, null, indent));

/** Long single-line values (hundreds to thousands of characters) with the core anywhere in them. */
const long = fc
  .tuple(fc.string({ unit: 'grapheme', maxLength: 1500 }), core, fc.string({ unit: 'binary-ascii', maxLength: 1500 }))
  .map(([a, c, b]) => noBreaks(a) + c + noBreaks(b));

/** The bounds: exactly 4 characters, and exactly 4,096. */
const shortest = fc
  .tuple(
    fc.constantFrom(...MARKERS.filter((m) => m.length === 1)),
    fc.string({ unit: fc.constantFrom(...ALNUM, '%', '"', "'"), minLength: 3, maxLength: 3 }),
  )
  .map(([m, s]) => m + s);
const longest = fc
  .tuple(core, fc.string({ unit: fc.constantFrom(...ALNUM, '%', '"', "'", ' ', '\\', '{', '}', 'ü'), minLength: 4100, maxLength: 4100 }))
  .map(([c, pad]) => (c + pad).slice(0, 4096));

/** Every 4+ character trimmed line holds a marker, so the checker cannot match the action's own text. */
function checkable(value: string): boolean {
  if (value.length < 4 || value.length > 4096 || value.includes('\0') || isTooWeakToMask(value)) return false;
  return value.split(/\r\n|\r|\n/).every((l) => l.trim().length < 4 || MARKERS.some((m) => l.includes(m)));
}

const secretValue = fc
  .oneof(
    { arbitrary: line, weight: 4 },
    { arbitrary: multiline, weight: 3 },
    { arbitrary: json, weight: 3 },
    { arbitrary: long, weight: 1 },
    { arbitrary: shortest, weight: 1 },
    { arbitrary: longest, weight: 1 },
  )
  .filter(checkable);

/**
 * A value pasted into the name position of env-secrets (`<value>=VAR`): one line, no ',' (the
 * separator), not a valid name (holds a space and a quote), so it is refused.
 */
const pastedValue = fc
  .tuple(core, fc.constantFrom(' "', " '", ' %', ' ::', ' $'), core)
  .map(([a, sep, b]) => a + sep + b)
  .filter(checkable);

const scenario = fc.record({
  a: fc.array(secretValue, { minLength: VAULT_A, maxLength: VAULT_A }),
  b: fc.array(secretValue, { minLength: VAULT_B, maxLength: VAULT_B }),
  env: fc.array(secretValue, { minLength: ENV_VALUES, maxLength: ENV_VALUES }),
  pasted: pastedValue,
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

// ---- the action ---------------------------------------------------------------------------------

let vault: OpenBao;
let token: string;
let noPolicyToken: string;
let runNo = 0;
let valuesDriven = 0;
const kindsSeen = new Set<Kind>();

beforeAll(async () => {
  vault = await OpenBao.start();
  await vault.enableKv('secret', 2);
  await vault.addPolicy('prop', [{ path: 'secret/data/prop/*', capabilities: ['read'] }]);
  token = await vault.createToken({ policies: ['prop'], ttl: '900s' });
  noPolicyToken = await vault.createToken({ policies: ['default'], ttl: '900s' });
}, 60_000);
afterAll(async () => {
  await vault?.stop();
});

/** What the first error annotation of main says for each failing kind. */
const EXPECTED_ERROR: Partial<Record<Kind, RegExp>> = {
  'missing-key': /key 'nosuchkey' not found at .*keys there: k16, k17/,
  'missing-path': /prop\/r\d+\/none/,
  forbidden: /403/,
  'bad-line': /^input 'secrets': line 2: found 1 word/,
  unreachable: /127\.0\.0\.1:9/,
  'env-name-position': /^input 'env-secrets': line 9: a name may hold only/,
  'missing-env': /PS_NOT_SET/,
  'secrets-name-position': /the name after '\|' may hold only/,
};

const key = (i: number): string => `k${String(i).padStart(2, '0')}`;

/** A label for a value in a failure message: its shape, never its text. */
function shape(value: string): string {
  const hash = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12);
  const traits = [
    /[\r\n]/.test(value) && 'multi-line',
    /^\s*[{[]/.test(value) && 'json',
    /%/.test(value) && 'percent',
    /["'`]/.test(value) && 'quotes',
    /::|##\[/.test(value) && 'command-syntax',
    value.trim() !== value && 'padded',
  ].filter(Boolean);
  return `length ${value.length}, sha256 ${hash}${traits.length ? `, ${traits.join(', ')}` : ''}`;
}

/** Text for an assertion message, with every value (and line of it) replaced by <value>. */
function scrubbed(text: string, values: readonly string[]): string {
  let out = text;
  const needles = values.flatMap((v) => [v, ...v.split(/\r\n|\r|\n/).map((l) => l.trim())]).filter((n) => n.length >= 4);
  for (const n of needles.sort((x, y) => y.length - x.length)) out = out.split(n).join('<value>');
  return out;
}

async function runScenario(kind: Kind, s: Scenario): Promise<void> {
  const n = ++runNo;
  const base = `prop/r${n}`;
  await vault.putKv('secret', `${base}/a`, Object.fromEntries(s.a.map((v, i) => [key(i), v])));
  await vault.putKv('secret', `${base}/b`, Object.fromEntries(s.b.map((v, i) => [key(VAULT_A + i), v])));
  const envVars = Object.fromEntries(s.env.map((v, i) => [`PS_ENV_${i}`, v]));
  const envLines = s.env.map((_, i) => `E${i}=PS_ENV_${i}`);

  const lines = [`secret/data/${base}/a * | A_`, `secret/${base}/b **`];
  const inputs: Record<string, string> = { url: vault.url, token, retries: '0', timeout: '20' };
  switch (kind) {
    case 'success':
      break;
    case 'export':
      inputs['export-env'] = 'true';
      inputs['export-outputs'] = 'true';
      break;
    case 'missing-key': // the error lists b's keys; b's values are never selected
      lines[1] = `secret/${base}/b nosuchkey | B`;
      break;
    case 'missing-path':
      lines.push(`secret/${base}/none k00 | NONE`);
      break;
    case 'forbidden':
      inputs['token'] = noPolicyToken;
      break;
    case 'bad-line':
      lines.splice(1, 0, `secret/${base}/a`);
      break;
    case 'unreachable':
      inputs['url'] = 'http://127.0.0.1:9';
      break;
    case 'env-name-position':
      envLines.push(`${s.pasted}=PS_ENV_0`);
      break;
    case 'secrets-name-position':
      lines.push(`secret/${base}/a k00 | ${s.pasted}`);
      break;
    case 'missing-env':
      envLines.push('GONE=PS_NOT_SET');
      break;
  }
  inputs['secrets'] = lines.join('\n');
  inputs['env-secrets'] = envLines.join('\n');

  const values = [...s.a, ...s.b, ...s.env, s.pasted];
  valuesDriven += values.length;
  kindsSeen.add(kind);
  const job = await newJob({ debug: true });
  try {
    const main = await job.runMain(MAIN, inputs, { env: envVars });
    const post = await job.runPost(POST, main);
    const steps: StepResult[] = [main, post];
    try {
      assertNoLeak(job, steps, values, { privateDirs: privateDirsOf(steps) });
    } catch (error) {
      // assertNoLeak names values by index: add each leaked value's shape.
      const message = (error as Error).message.replace(
        /secret #(\d+) \([^)]*\)/g,
        (_, i: string) => `value #${i} (${shape(values[Number(i)] ?? '')})`,
      );
      throw new Error(`run ${n}, kind ${kind}: ${message}`, { cause: error });
    }
    const expectedExit = kind === 'success' || kind === 'export' ? 0 : 1;
    const firstError = main.annotations.find((a) => a.level === 'error')?.message ?? '(no error annotation)';
    expect(main.exitCode, `kind ${kind}: ${scrubbed(firstError, values)}`).toBe(expectedExit);
    // The run ended the way this kind provokes, not on some earlier error.
    if (EXPECTED_ERROR[kind] !== undefined) expect(scrubbed(firstError, values)).toMatch(EXPECTED_ERROR[kind]);
    expect(post.exitCode, `kind ${kind}: post ${scrubbed(post.log, values)}`).toBe(0);
    if (expectedExit === 0) {
      // Every value was delivered (so it was really driven through masking, files and exports).
      expect(Object.keys(main.state).length).toBeGreaterThan(0);
      for (const v of values.slice(0, VAULT_A + VAULT_B + ENV_VALUES))
        expect(main.masks.includes(v), `a value was not masked (${shape(v)})`).toBe(true);
    }
  } finally {
    await job.cleanup();
  }
}

describe('property: no generated value leaks, on any path the harness can provoke', () => {
  // eslint-disable-next-line vitest/expect-expect -- fast-check's report is the assertion: a failed property throws it
  it.each(KINDS_RUN)(
    `%s: ${RUNS_PER_KIND} runs x ${VALUES_PER_RUN} values through main and post, debug on`,
    async (kind) => {
      const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : (Date.now() ^ (Math.random() * 0x100000000)) | 0;
      const replayPath = process.env.FC_PATH;
      const replay = `FC_SEED=${seed}${replayPath ? ` FC_PATH=${replayPath}` : ''} npx vitest run test/e2e/property-no-leak.test.ts -t '${kind}:'`;
      console.log(`property-no-leak ${kind}: seed ${seed} (replay: ${replay})`);
      const details = await fc.check(
        fc.asyncProperty(scenario, (s) => runScenario(kind, s)),
        {
          seed,
          numRuns: RUNS_PER_KIND,
          // Shrinking a failure reruns the action many times: bounded so the report lands within the test's timeout.
          interruptAfterTimeLimit: 90_000,
          markInterruptAsFailure: true,
          endOnFailure: process.env.FC_NO_SHRINK === '1',
          ...(replayPath ? { path: replayPath } : {}),
        },
      );
      if (details.failed) {
        const report = fc.defaultReportMessage(details) ?? '';
        // The shrunk text of each value the error names (test data, not real secrets).
        const shrunk = details.counterexample?.[0];
        const all = shrunk ? [...shrunk.a, ...shrunk.b, ...shrunk.env, shrunk.pasted] : [];
        const named = [...new Set([...String(details.errorInstance).matchAll(/value #(\d+)/g)].map((m) => Number(m[1])))].slice(0, 5);
        const shapes = named.map((i) => `value #${i} shrunk to ${JSON.stringify(all[i]?.slice(0, 200))}`).join('\n');
        throw new Error(
          `property failed (${kind}): replay with FC_SEED=${details.seed} FC_PATH=${details.counterexamplePath ?? ''} npx vitest run test/e2e/property-no-leak.test.ts -t '${kind}:'\n` +
            `${String(details.errorInstance)}\n${shapes}\n${report.length > 4000 ? report.slice(0, 4000) + '\n... (cut)' : report}`,
        );
      }
    },
    120_000,
  );

  it(`drove at least ${MIN_TOTAL} values through the action`, (ctx) => {
    // eslint-disable-next-line vitest/no-disabled-tests -- skipped only on a replay, or when -t picked one kind
    if (process.env.FC_PATH !== undefined || process.env.FC_RUNS !== undefined || kindsSeen.size < KINDS_RUN.length) ctx.skip();
    console.log(`property-no-leak: ${valuesDriven} values in ${runNo} runs of main + post`);
    expect(valuesDriven).toBeGreaterThanOrEqual(MIN_TOTAL);
  });
});
