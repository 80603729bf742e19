// End to end: each common mistake gets a one-line message that names the input, line or path and
// says what to do, in the error annotation and in the job summary, through the bundled dist/ entries
// against a real OpenBao (a TLS listener beside the plain one, jwt auth verifying the harness's
// OIDC tokens). Every case ends with the no-leak invariant.
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { makePki, type Pki } from '../support/services/tls.ts';
import { ALL_VALUES, MAIN, POST, VALUES, newJob, privateDirsOf, repo } from './setup.ts';

const SCAN = path.join(repo, 'dist/scan.js');
const SCAN_YML = path.join(repo, 'scan/action.yml');
const VERIFY = path.join(repo, 'dist/verify.js');
const VERIFY_YML = path.join(repo, 'verify/action.yml');

let bao: OpenBao;
let pki: Pki;
let job: Job | undefined;
/** A token whose policy reads secret/data/ci/*: the default of every case. */
let token: string;

beforeAll(async () => {
  pki = await makePki();
  bao = await OpenBao.start({ tls: { certFile: path.join(pki.dir, 'server.pem'), keyFile: path.join(pki.dir, 'server.key') } });
  await bao.enableKv('secret', 2);
  await bao.putKv('secret', 'ci/app', { password: VALUES.password, 'api-key': VALUES.apiKey });
  await bao.putKv('secret', 'prod/db', { password: 'prod-only-value-x' });
  await bao.addPolicy('ci', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
  token = await bao.createToken({ policies: ['ci'], ttl: '600s' });
}, 60_000);
afterAll(async () => {
  await bao?.stop();
  await pki?.cleanup();
});
afterEach(async () => {
  await job?.cleanup();
  job = undefined;
});

interface Case {
  /** The mistake, as a user would describe it. */
  readonly mistake: string;
  /** Inputs of the step, over a valid main step's (url, token, one secret line). */
  readonly inputs: () => Promise<Record<string, string>> | Record<string, string>;
  /** The one error annotation (or, with `warning`, the warning) the step must give. */
  readonly expected: RegExp;
  readonly entry?: 'main' | 'scan' | 'verify';
  readonly oidc?: boolean;
  /** A warning, the step succeeding: the mistake is not fatal but must not stay silent. */
  readonly warning?: boolean;
  /** More values that must not leak. */
  readonly extra?: () => string[];
}

const CASES: Case[] = [
  {
    mistake: 'method jwt without `permissions: id-token: write`',
    inputs: () => ({ method: 'jwt', role: 'ci' }),
    expected: /^input 'method': 'jwt' needs the job's GitHub OIDC token.*add `permissions: id-token: write` to the job/,
  },
  {
    mistake: 'http:// to an HTTPS Vault',
    inputs: () => ({ url: (bao.tlsUrl ?? '').replace(/^https:/, 'http:') }),
    expected: /is an HTTPS server: use https:\/\/ in 'url'/,
  },
  {
    mistake: 'a token Vault does not know (invalid or revoked)',
    inputs: () => ({ token: 's.NotARealTokenOfThisVault0' }),
    expected:
      /^secrets line 1: GET secret\/data\/ci\/app: Vault answered 403 permission denied: the Vault token is invalid, expired or revoked \(auth\/token\/lookup-self is refused too\)/,
    extra: () => ['s.NotARealTokenOfThisVault0'],
  },
  {
    mistake: 'an expired token',
    inputs: async () => {
      const shortLived = await bao.createToken({ policies: ['ci'], ttl: '1s' });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      return { token: shortLived };
    },
    expected: /^secrets line 1: .*403.*the Vault token is invalid, expired or revoked/,
  },
  {
    mistake: 'a path the policy does not allow',
    inputs: () => ({ secrets: 'secret/data/ci/app password\nsecret/prod/db password | PROD' }),
    expected:
      /^secrets line 2: GET secret\/data\/prod\/db: Vault answered 403 permission denied: the token is valid but its policies do not allow this; grant 'read' on 'secret\/data\/prod\/db'/,
    extra: () => ['prod-only-value-x'],
  },
  {
    mistake: 'a path that does not exist',
    inputs: () => ({ secrets: 'secret/data/ci/app password\n\nsecret/ci/missing password' }),
    expected:
      /^secrets line 3: GET secret\/data\/ci\/missing: Vault answered 404.*nothing at 'secret\/ci\/missing'.*end the line with ' \?' if the entry is optional/,
  },
  {
    mistake: 'a JWT audience the role does not bind',
    oidc: true,
    inputs: async () => {
      const oidc = job?.oidc;
      if (!oidc) throw new Error('harness gave no OIDC issuer');
      await bao.addJwtRole('jwt-aud', 'ci', {
        publicKeyPem: oidc.publicKeyPem,
        boundIssuer: oidc.issuer,
        boundAudiences: ['vault-ci'],
        policies: ['ci'],
      });
      return { method: 'jwt', mount: 'jwt-aud', role: 'ci' };
    },
    expected: /^POST auth\/jwt-aud\/login: Vault answered 400 .*aud.*set 'jwt-audience' to one of the role's bound_audiences/,
  },
  {
    mistake: '`renew: true` with a token that expires before agent-max-lifetime',
    warning: true,
    inputs: () => ({ renew: 'true', 'agent-max-lifetime': '3600' }),
    expected: /^renew: the token given in 'token' expires in \d+ s, before 'agent-max-lifetime' \(3600 s\).*use a login method/,
  },
  {
    mistake: 'a line without `|` and a name as a third word',
    inputs: () => ({ secrets: 'secret/data/ci/app password DB_PASSWORD' }),
    expected: /^input 'secrets': line 1: found 3 words and no '\|'; write '<path> <key> \| NAME'/,
  },
  {
    mistake: 'a JSONata expression with spaces',
    inputs: () => ({ secrets: 'secret/data/ci/app $join([password, "x"], " ") | JOINED' }),
    expected: /^input 'secrets': line 1: .*JSONata expressions are not supported, only a key or a dotted key path/,
  },
  {
    mistake: 'a typo in scrub',
    inputs: () => ({ scrub: 'redacted' }),
    expected: /^input 'scrub': 'redacted' is not one of redact, delete, report, off$/,
  },
  {
    mistake: 'a boolean that is not true or false (export-env)',
    inputs: () => ({ 'export-env': 'yes' }),
    expected: /^input 'export-env': 'yes' is not a boolean; use true or false$/,
  },
  {
    mistake: 'a boolean of a method not in use (unwrap-secret-id with method token)',
    inputs: () => ({ 'unwrap-secret-id': 'on' }),
    expected: /^input 'unwrap-secret-id': 'on' is not a boolean; use true or false$/,
  },
  {
    mistake: 'renew: 1',
    inputs: () => ({ renew: '1' }),
    expected: /^input 'renew': '1' is not a boolean; use true or false$/,
  },
  {
    mistake: 'the scan with fail-on-leak: flase',
    entry: 'scan',
    inputs: () => ({ paths: '.', 'fail-on-leak': 'flase' }),
    expected: /^input 'fail-on-leak': 'flase' is not a boolean; use true or false$/,
  },
  {
    mistake: 'the scan with fail-on-lint: yes',
    entry: 'scan',
    inputs: () => ({ paths: '.', 'fail-on-lint': 'yes' }),
    expected: /^input 'fail-on-lint': 'yes' is not a boolean; use true or false$/,
  },
  {
    mistake: 'verify with fail-on-mismatch: no',
    entry: 'verify',
    inputs: () => ({ container: 'ps-mistakes-app', 'secrets-dir': '.', 'fail-on-mismatch': 'no' }),
    expected: /^input 'fail-on-mismatch': 'no' is not a boolean; use true or false$/,
  },
  {
    mistake: 'verify of a container docker cannot reach names its own input',
    entry: 'verify',
    inputs: () => ({ container: 'ps-mistakes-none', 'secrets-dir': '.' }),
    expected: /^container 'ps-mistakes-none': /,
  },
];

describe('a message for each mistake that says what to do', () => {
  it.each(CASES.map((c) => [c.mistake, c] as const))('%s', async (_, c) => {
    job = await newJob(c.oidc ? { oidc: true } : {});
    const inputs = await c.inputs();
    const steps: StepResult[] = [];
    let step: StepResult;
    if (c.entry === 'scan') step = await job.runMain(SCAN, inputs, { actionYml: SCAN_YML });
    else if (c.entry === 'verify') step = await job.runMain(VERIFY, inputs, { actionYml: VERIFY_YML });
    else step = await job.runMain(MAIN, { url: bao.url, token, secrets: 'secret/data/ci/app password', ...inputs });
    steps.push(step);

    const errors = step.annotations.filter((a) => a.level === 'error');
    if (c.warning) {
      expect(step.exitCode, step.log).toBe(0);
      expect(errors).toEqual([]);
      const warnings = step.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
      expect(
        warnings.filter((w) => c.expected.test(w)),
        warnings.join('\n'),
      ).toHaveLength(1);
    } else {
      expect(step.exitCode, step.log).toBe(1);
      expect(errors, step.log).toHaveLength(1);
      const message = errors[0]?.message ?? '';
      expect(message).toMatch(c.expected);
      expect(message).not.toMatch(/\n|\bat .*\(.*:\d+:\d+\)/); // one line, no stack trace
      expect(message).not.toMatch(/verify-container/); // a sub-action names its own inputs
      // The reason in the job summary too, the same text.
      expect(step.summary).toContain(message);
    }
    if (c.entry === undefined) {
      const post = await job.runPost(POST, step);
      expect(post.exitCode, post.log).toBe(0);
      steps.push(post);
    }
    assertNoLeak(job, steps, [...ALL_VALUES, token, ...(c.extra?.() ?? [])], { privateDirs: privateDirsOf(steps) });
  });
});
