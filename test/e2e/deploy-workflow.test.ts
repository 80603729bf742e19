// The shipped reusable workflow, .github/workflows/deploy.yml, replayed step by step in the order
// its YAML gives, against real parts: the private dockerd with BuildKit and Debian's docker-registry
// (test/support/services/docker.ts) and a real OpenBao with a jwt role bound to the audience `sigstore`,
// logged in to with the harness job's OIDC token. Nothing about the order is written here: the
// steps, their `if:` conditions, `with:` and `env:` come from the YAML, evaluated with a small
// implementation of GitHub's expression language, so a reordered workflow (a push before the scan)
// replays reordered and fails.
//
// How each step runs:
// - `run:` steps run as written, through the harness (bash -eo pipefail, GITHUB_ENV / GITHUB_OUTPUT).
// - This project's actions (`pipeline-secrets/pipeline-secrets@…`, its `/verify` and `/scan`, or
//   `./`) run from dist/ (main.js, verify.js, scan.js; post.js at the end) with the step's `with:`.
// - docker/build-push-action cannot run here (it is a remote action that drives `docker buildx`
//   with a builder set up by docker/setup-buildx-action). It is translated to the equivalent
//   `DOCKER_BUILDKIT=1 docker build --secret id=ID,src=PATH … -t TAG CONTEXT` on the test engine,
//   with `--network none` added because the test engine has no bridge network. Its push and load
//   semantics are kept: `push: true` pushes the tags right after the build, and without `load: true`
//   on a builder that is not the docker driver the image is removed from the local store, as
//   setup-buildx's default docker-container driver would never have put it there.
// - docker/setup-buildx-action only records its driver; actions/checkout does nothing (the test
//   writes the workspace); github/codeql-action/upload-sarif checks the SARIF file it would upload.
// - Any other action fails the test: a new step must be taught to this replay first.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fs, readFileSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import * as ctx from '../support/harness/context.ts';
import { assertNoLeak, Job, type StepResult } from '../support/harness/index.ts';
import { ensureBaseImage, sharedEngine, startRegistry, type DockerEngine, type Registry } from '../support/services/docker.ts';
import { OpenBao } from '../support/services/openbao.ts';
import { createdToken, MAIN, POST, privateDirsOf, repo } from './setup.ts';

const WORKFLOW_FILE = path.join(repo, '.github/workflows/deploy.yml');
const VERIFY = path.join(repo, 'dist/verify.js');
const SCAN = path.join(repo, 'dist/scan.js');
const REGISTRY_PASSWORD = 'deploy-registry-Pa55-e61b0c';
const NPM_TOKEN = 'npm_deployWorkflowToken_4c7d21a9';
const AUDIENCE = 'sigstore';

// ---------------------------------------------------------------------------------------------------
// the workflow

interface WorkflowStep {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string | boolean;
  with?: Record<string, string | number | boolean>;
  env?: Record<string, string | number | boolean>;
}
interface Workflow {
  on: { workflow_call: { inputs: Record<string, { type: string; default?: string | boolean | number; required?: boolean }> } };
  jobs: Record<string, { env?: Record<string, string>; steps: WorkflowStep[]; permissions?: Record<string, string> }>;
}

function loadWorkflow(): Workflow {
  return parse(readFileSync(WORKFLOW_FILE, 'utf8')) as Workflow;
}

const stepLabel = (step: WorkflowStep, index: number): string => step.id ?? step.name ?? step.uses ?? `step ${index + 1}`;

// ---------------------------------------------------------------------------------------------------
// GitHub's expression language, the part a workflow uses: contexts with property access (names may
// hold '-'), string / number / boolean / null literals, ! == != && || ( ), and the status functions.

type Value = string | number | boolean | null | { [key: string]: Value };

/** A scalar input as the workflow would spell it in an expression; '' for null or a mapping. */
function scalar(v: Value | undefined): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}
interface Contexts {
  [name: string]: Value;
}
interface Status {
  failed: boolean;
}

function tokenize(expr: string): string[] {
  const tokens: string[] = [];
  const re = /\s*(?:('(?:[^']|'')*')|(==|!=|&&|\|\||[!()])|([A-Za-z_][A-Za-z0-9_.-]*)|(\d+(?:\.\d+)?))/y;
  let at = 0;
  while (at < expr.length) {
    if (/^\s*$/.test(expr.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(expr);
    if (!m) throw new Error(`expression: cannot read '${expr.slice(at)}' in '${expr}'`);
    tokens.push((m[1] ?? m[2] ?? m[3] ?? m[4]) as string);
    at = re.lastIndex;
  }
  return tokens;
}

const truthy = (v: Value): boolean => !(v === null || v === false || v === 0 || v === '');
const asString = (v: Value): string => (v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
function loose(a: Value, b: Value): boolean {
  // GitHub compares strings case-insensitively and coerces mixed types to numbers.
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  if (typeof a === typeof b) return a === b;
  const num = (v: Value): number => (v === null ? 0 : typeof v === 'boolean' ? Number(v) : v === '' ? 0 : Number(v));
  return num(a) === num(b);
}

function evaluate(expr: string, contexts: Contexts, status: Status): Value {
  const tokens = tokenize(expr);
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const take = (expected?: string): string => {
    const t = tokens[i++];
    if (t === undefined || (expected !== undefined && t !== expected))
      throw new Error(`expression: expected ${expected ?? 'more'} in '${expr}'`);
    return t;
  };
  const primary = (): Value => {
    const t = take();
    if (t === '(') {
      const v = or();
      take(')');
      return v;
    }
    if (t === '!') return !truthy(primary());
    if (t.startsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
    if (/^\d/.test(t)) return Number(t);
    if (t === 'true' || t === 'false') return t === 'true';
    if (t === 'null') return null;
    if (peek() === '(') {
      take('(');
      take(')');
      if (t === 'success') return !status.failed;
      if (t === 'failure') return status.failed;
      if (t === 'always') return true;
      if (t === 'cancelled') return false;
      throw new Error(`expression: unknown function ${t}() in '${expr}'`);
    }
    const [head, ...rest] = t.split('.');
    if (head === undefined || !(head in contexts)) throw new Error(`expression: unknown context '${head}' in '${expr}'`);
    let v: Value = contexts[head] ?? null;
    for (const key of rest) v = v !== null && typeof v === 'object' ? (v[key] ?? null) : null;
    return v;
  };
  const comparison = (): Value => {
    let left = primary();
    while (peek() === '==' || peek() === '!=') {
      const op = take();
      const right = primary();
      left = op === '==' ? loose(left, right) : !loose(left, right);
    }
    return left;
  };
  const and = (): Value => {
    let left = comparison();
    while (peek() === '&&') {
      take();
      const right = comparison();
      left = truthy(left) ? right : left;
    }
    return left;
  };
  const or = (): Value => {
    let left = and();
    while (peek() === '||') {
      take();
      const right = and();
      left = truthy(left) ? left : right;
    }
    return left;
  };
  const value = or();
  if (i !== tokens.length) throw new Error(`expression: unexpected '${tokens[i]}' in '${expr}'`);
  return value;
}

/** `${{ … }}` substituted in a string, as the runner does for `with:`, `env:` and `run:`. */
function interpolate(text: string | number | boolean, contexts: Contexts, status: Status): string {
  return String(text).replace(/\$\{\{(.*?)\}\}/gs, (_, expr: string) => asString(evaluate(expr, contexts, status)));
}

/** A step's `if:`: without a status function it is `success() && (…)`; no `if:` is `success()`. */
function condition(cond: string | boolean | undefined, contexts: Contexts, status: Status): boolean {
  if (cond === undefined) return !status.failed;
  if (typeof cond === 'boolean') return cond && !status.failed;
  const expr = cond.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, '$1');
  const full = /\b(success|failure|always|cancelled)\(\)/.test(expr) ? expr : `success() && (${expr})`;
  return truthy(evaluate(full, contexts, status));
}

// ---------------------------------------------------------------------------------------------------
// the replay

interface Replayed {
  label: string;
  uses?: string;
  outcome: 'success' | 'failure' | 'skipped';
  result?: StepResult;
  outputs: Record<string, string>;
}
interface Replay {
  steps: Replayed[];
  results: StepResult[];
  mains: StepResult[];
  posts: StepResult[];
  tokens: string[];
  sarifUploads: Array<{ file: string; results: number }>;
  /** What each step did, in order: a label per step that ran. */
  ran: string[];
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const lines = (s: string): string[] =>
  s
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '');

let engine: DockerEngine;
let registry: Registry;
let vault: OpenBao;
let shimDir: string;
let job: Job | undefined;
const images: string[] = [];

/** Env of every step: the test engine as the runner's Docker, its docker CLI first on PATH. */
const stepEnv = (): Record<string, string> => ({ ...engine.env, PATH: `${shimDir}:${path.dirname(process.execPath)}:${ctx.BASE_PATH}` });

async function replay(
  workflow: Workflow,
  callerInputs: Record<string, string | boolean>,
  checkout: (workspace: string) => Promise<void>,
): Promise<Replay> {
  const [jobName, jobDef] = Object.entries(workflow.jobs)[0] ?? [];
  if (jobName === undefined || jobDef === undefined) throw new Error('deploy.yml has no job');
  const inputs: Record<string, Value> = {};
  for (const [name, def] of Object.entries(workflow.on.workflow_call.inputs)) {
    const given = callerInputs[name];
    if (given === undefined && def.required) throw new Error(`input '${name}' is required by the workflow`);
    inputs[name] = given ?? def.default ?? (def.type === 'boolean' ? false : '');
  }
  for (const name of Object.keys(callerInputs)) if (!(name in inputs)) throw new Error(`the workflow has no input '${name}'`);

  const status: Status = { failed: false };
  const github: Record<string, Value> = {
    actor: ctx.ACTOR,
    sha: ctx.SHA,
    repository: ctx.REPOSITORY,
    run_id: ctx.RUN_ID,
    run_attempt: ctx.RUN_ATTEMPT,
    ref: ctx.REF,
  };
  const stepsCtx: Record<string, Value> = {};
  const base: Contexts = { inputs, github, steps: stepsCtx, env: {} };
  const jobEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(jobDef.env ?? {})) jobEnv[k] = interpolate(v, base, status);

  job = await Job.create({ debug: true, oidc: true, env: { ...jobEnv, ...stepEnv() } });
  const current = job;
  github['workspace'] = current.workspace;
  const oidc = current.oidc;
  if (!oidc) throw new Error('harness gave no OIDC issuer');
  await vault.addJwtRole(scalar(inputs['vault-auth-mount']) || 'jwt', scalar(inputs['vault-role']), {
    publicKeyPem: oidc.publicKeyPem,
    boundIssuer: oidc.issuer,
    boundAudiences: [AUDIENCE],
    boundClaims: { repository: ctx.REPOSITORY },
    policies: ['deploy'],
    ttl: '600s',
  });

  const out: Replay = { steps: [], results: [], mains: [], posts: [], tokens: [], sarifUploads: [], ran: [] };
  let driver = 'docker'; // the default builder of a runner with Docker: the engine's own BuildKit

  for (const [index, step] of jobDef.steps.entries()) {
    const label = stepLabel(step, index);
    // env: the job's (and what GITHUB_ENV exported), then the step's own.
    const envCtx: Record<string, Value> = { ...jobEnv, ...current.env };
    const contexts: Contexts = { ...base, env: envCtx };
    const own: Record<string, string> = {};
    for (const [k, v] of Object.entries(step.env ?? {})) own[k] = interpolate(v, contexts, status);
    Object.assign(envCtx, own);
    const record = (outcome: Replayed['outcome'], outputs: Record<string, string> = {}, result?: StepResult): void => {
      const entry: Replayed = { label, outcome, outputs };
      if (step.uses !== undefined) entry.uses = step.uses;
      if (result) {
        entry.result = result;
        out.results.push(result);
      }
      out.steps.push(entry);
      if (outcome === 'failure') status.failed = true;
      if (step.id !== undefined) stepsCtx[step.id] = { outputs, outcome, conclusion: outcome };
      if (outcome !== 'skipped') out.ran.push(label);
    };
    if (!condition(step.if, contexts, status)) {
      record('skipped');
      continue;
    }
    const withs: Record<string, string> = {};
    for (const [k, v] of Object.entries(step.with ?? {})) withs[k] = interpolate(v, contexts, status);
    const env = { ...stepEnv(), ...own };

    if (step.run !== undefined) {
      const result = await current.runShell(interpolate(step.run, contexts, status), { env, timeoutMs: 180_000 });
      record(result.exitCode === 0 ? 'success' : 'failure', result.outputs, result);
      continue;
    }
    const uses = step.uses ?? '';
    const action = uses.replace(/@.*$/, '');
    if (action === 'actions/checkout') {
      await checkout(current.workspace);
      record('success');
    } else if (action === 'pipeline-secrets/pipeline-secrets' || uses === './') {
      const main = await current.runMain(MAIN, withs, { env });
      out.mains.push(main);
      out.tokens.push(createdToken(main));
      record(main.exitCode === 0 ? 'success' : 'failure', main.outputs, main);
    } else if (action === 'pipeline-secrets/pipeline-secrets/verify' || uses === './verify') {
      const result = await current.runMain(VERIFY, withs, { env, actionYml: path.join(repo, 'verify/action.yml') });
      record(result.exitCode === 0 ? 'success' : 'failure', result.outputs, result);
    } else if (action === 'pipeline-secrets/pipeline-secrets/scan' || uses === './scan') {
      const result = await current.runMain(SCAN, withs, { env, actionYml: path.join(repo, 'scan/action.yml'), timeoutMs: 180_000 });
      record(result.exitCode === 0 ? 'success' : 'failure', result.outputs, result);
    } else if (action === 'docker/setup-buildx-action') {
      driver = withs['driver'] || 'docker-container';
      record('success');
    } else if (action === 'docker/build-push-action') {
      const result = await current.runShell(buildScript(withs, driver, current.workspace), { env, timeoutMs: 300_000 });
      record(result.exitCode === 0 ? 'success' : 'failure', {}, result);
    } else if (action === 'github/codeql-action/upload-sarif') {
      const file = withs['sarif_file'] ?? '';
      const sarif = existsSync(file)
        ? (JSON.parse(readFileSync(file, 'utf8')) as { version?: string; runs?: Array<{ results?: unknown[] }> })
        : undefined;
      const ok = sarif?.version === '2.1.0' && Array.isArray(sarif.runs);
      if (ok) out.sarifUploads.push({ file, results: (sarif.runs ?? []).reduce((n, r) => n + (r.results?.length ?? 0), 0) });
      record(ok ? 'success' : 'failure');
    } else {
      throw new Error(`step '${label}': the replay does not know the action '${uses}'`);
    }
  }
  // Post steps, in reverse order of their main steps (post-if: always()).
  for (const main of [...out.mains].reverse()) {
    const post = await current.runPost(POST, main, { env: stepEnv() });
    out.posts.push(post);
    out.results.push(post);
  }
  return out;
}

/** docker/build-push-action's `with:` as the equivalent `docker build` (and push) on the test engine. */
function buildScript(withs: Record<string, string>, driver: string, workspace: string): string {
  const known = new Set(['context', 'file', 'build-args', 'tags', 'load', 'push', 'provenance', 'sbom', 'secret-files']);
  for (const key of Object.keys(withs)) if (!known.has(key)) throw new Error(`build-push-action: the replay does not translate '${key}'`);
  const context = withs['context'] ?? '';
  if (context === '') throw new Error('build-push-action without `context` builds the Git context, not the workspace: not translated');
  const tags = lines(withs['tags'] ?? '');
  if (tags.length === 0) throw new Error('build-push-action: no tags');
  const args = ['build', '--network', 'none'];
  if (withs['file']) args.push('-f', path.resolve(workspace, withs['file']));
  for (const arg of (withs['build-args'] ?? '').split('\n').filter((l) => l.trim() !== '')) args.push('--build-arg', arg.trim());
  for (const line of (withs['secret-files'] ?? '').split('\n').filter((l) => l.trim() !== '')) {
    const eq = line.indexOf('=');
    args.push('--secret', `id=${line.slice(0, eq).trim()},src=${line.slice(eq + 1).trim()}`);
  }
  for (const tag of tags) args.push('-t', tag);
  args.push(context);
  const script = [`DOCKER_BUILDKIT=1 docker ${args.map(shellQuote).join(' ')}`];
  if (withs['push'] === 'true') for (const tag of tags) script.push(`docker push ${shellQuote(tag)}`);
  const loaded = withs['load'] === 'true' || driver === 'docker';
  if (!loaded) script.push(`docker image rm ${tags.map(shellQuote).join(' ')} >/dev/null`);
  return script.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------------
// the registry, asked directly

async function registryGet(pathname: string, accept?: string): Promise<{ status: number; body: string; digest: string | null }> {
  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
  const response = await fetch(`http://${registry.host}${pathname}`, {
    headers: { authorization: `Basic ${auth}`, ...(accept ? { accept } : {}) },
  });
  return { status: response.status, body: await response.text(), digest: response.headers.get('docker-content-digest') };
}

/** The tags of `name` in the registry ([] when the repository does not exist: 404 NAME_UNKNOWN). */
async function registryTags(name: string): Promise<string[]> {
  const { status, body } = await registryGet(`/v2/${name}/tags/list`);
  if (status === 404) return [];
  expect(status, body).toBe(200);
  return (JSON.parse(body) as { tags: string[] | null }).tags ?? [];
}

// ---------------------------------------------------------------------------------------------------

beforeAll(async () => {
  engine = await sharedEngine();
  await ensureBaseImage(engine);
  // The workflow's default registry-username is the actor who started the run.
  registry = await startRegistry({ engine, username: ctx.ACTOR, password: REGISTRY_PASSWORD });
  vault = await OpenBao.start();
  await vault.enableKv('secret', 2);
  await vault.putKv('secret', 'ci/registry', { password: REGISTRY_PASSWORD });
  await vault.putKv('secret', 'ci/npm', { token: NPM_TOKEN });
  await vault.addPolicy('deploy', [{ path: 'secret/data/ci/*', capabilities: ['read'] }]);
  // The docker CLI of the engine's package (the one that builds with BuildKit from DOCKER_BUILDKIT=1).
  shimDir = mkdtempSync(path.join(os.tmpdir(), 'ps-deploy-bin-'));
  symlinkSync('/usr/bin/docker', path.join(shimDir, 'docker'));
}, 180_000);

afterAll(async () => {
  if (images.length > 0) await engine?.run(['image', 'rm', '-f', ...images]);
  await registry?.stop();
  await vault?.stop();
  if (shimDir) rmSync(shimDir, { recursive: true, force: true });
});
afterEach(async () => {
  await job?.cleanup();
  job = undefined;
});

const CLEAN_DOCKERFILE =
  'FROM ps-busybox:latest\nRUN --mount=type=secret,id=npm,required=true wc -c < /run/secrets/npm > /npm-token-bytes\n';
// The mistake the scan is there for: the mounted secret copied into a layer.
const LEAKY_DOCKERFILE = 'FROM ps-busybox:latest\nRUN --mount=type=secret,id=npm,required=true cp /run/secrets/npm /npm-token\n';

/** Runs the workflow on a workspace holding `dockerfile`, as a caller with these inputs would. */
async function deploy(
  dockerfile: string,
  workflow = loadWorkflow(),
  extraInputs: Record<string, string | boolean> = {},
): Promise<{ run: Replay; name: string; tag: string; workflow: Workflow }> {
  const name = `deploy-app-${randomBytes(4).toString('hex')}`;
  const tag = `build-${randomBytes(3).toString('hex')}`;
  images.push(`${registry.host}/${name}:${tag}`);
  const inputs = {
    'vault-url': vault.url,
    'vault-role': 'deploy',
    'jwt-audience': AUDIENCE,
    image: `${registry.host}/${name}`,
    tag,
    registry: registry.host,
    ...extraInputs,
  };
  // actions/checkout's part: the caller's repository in the workspace.
  const checkout = (workspace: string): Promise<void> => fs.writeFile(path.join(workspace, 'Dockerfile'), dockerfile);
  return { run: await replay(workflow, inputs, checkout), name, tag, workflow };
}

function outcomes(run: Replay): Record<string, string> {
  return Object.fromEntries(run.steps.map((s) => [s.label, s.outcome]));
}

function noLeak(run: Replay): void {
  if (!job) throw new Error('no job');
  assertNoLeak(job, run.results, [REGISTRY_PASSWORD, NPM_TOKEN, ...run.tokens.filter((t) => t !== '')], {
    privateDirs: privateDirsOf(run.mains),
  });
}

const indexOfUses = (workflow: Workflow, action: string): number =>
  workflow.jobs.deploy?.steps.findIndex((s) => (s.uses ?? '').replace(/@.*$/, '') === action) ?? -1;

describe('the reusable deploy workflow, replayed from its YAML', () => {
  it('declares what a deploy needs and the permissions its steps use', () => {
    const workflow = loadWorkflow();
    const inputs = workflow.on.workflow_call.inputs;
    for (const name of [
      'vault-url',
      'vault-role',
      'jwt-audience',
      'image',
      'tag',
      'registry',
      'secrets',
      'build-secrets',
      'context',
      'dockerfile',
    ])
      expect(Object.keys(inputs)).toContain(name);
    const job = workflow.jobs.deploy;
    expect(job?.permissions).toMatchObject({ 'id-token': 'write', 'security-events': 'write', contents: 'read' });
    // Third-party actions are pinned by commit SHA.
    for (const step of job?.steps ?? []) {
      const uses = step.uses ?? '';
      if (uses === '' || uses.startsWith('./') || uses.startsWith('pipeline-secrets/')) continue;
      expect(uses, 'pinned by commit SHA').toMatch(/@[0-9a-f]{40}$/);
    }
  });

  it('without a leak: builds with the secret mounted, verifies, scans, pushes the scanned image, uploads SARIF; post cleans up', async () => {
    const { run, name, tag, workflow } = await deploy(CLEAN_DOCKERFILE);
    const failed = run.steps.filter((s) => s.outcome === 'failure').map((s) => `${s.label}:\n${s.result?.log ?? ''}`);
    expect(failed, failed.join('\n\n')).toEqual([]);
    expect(
      run.steps.every((s) => s.outcome === 'success'),
      JSON.stringify(outcomes(run)),
    ).toBe(true);
    expect(run.ran).toEqual(workflow.jobs.deploy?.steps.map(stepLabel));
    // Nothing reached the registry before the scan had passed.
    expect(run.ran.indexOf('push')).toBeGreaterThan(run.ran.indexOf('scan'));
    expect(run.ran.indexOf('scan')).toBeGreaterThan(run.ran.indexOf('build'));

    // The OIDC token carried the caller's audience: the role is bound to `sigstore` only.
    expect(job?.oidc?.audienceSeen).toEqual([AUDIENCE]);
    // The build read the secret through the mount: the verify container proved it by byte count too.
    const verify = run.steps.find((s) => s.uses?.includes('/verify@'));
    expect(verify?.result?.summary).toContain(`| NPM_TOKEN | ${NPM_TOKEN.length} | ${NPM_TOKEN.length} | ✅ |`);
    const scan = run.steps.find((s) => s.label === 'scan');
    expect(scan?.outputs.leaks).toBe('0');

    // The scanned image is in the registry, and the workflow's digest output names it.
    expect(await registryTags(name)).toEqual([tag]);
    const push = run.steps.find((s) => s.label === 'push');
    const manifest = await registryGet(
      `/v2/${name}/manifests/${tag}`,
      'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    );
    expect(manifest.status).toBe(200);
    expect(push?.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(push?.outputs.digest).toBe(manifest.digest);
    expect(push?.outputs.image).toBe(`${registry.host}/${name}:${tag}`);

    expect(run.sarifUploads).toHaveLength(1);
    expect(run.sarifUploads[0]?.results).toBe(0);
    for (const post of run.posts) expect(post.exitCode, post.log).toBe(0);
    expect(run.posts[0]?.summary).toContain(`Logged out of: ${registry.host}`);
    expect(existsSync(run.mains[0]?.outputs['docker-config'] ?? '/nonexistent')).toBe(false);
    noLeak(run);
  }, 600_000);

  it('with a secret copied into a layer: the scan fails, nothing is pushed, the SARIF with the finding is uploaded', async () => {
    const { run, name } = await deploy(LEAKY_DOCKERFILE);
    const byLabel = outcomes(run);
    expect(byLabel['build'], JSON.stringify(byLabel)).toBe('success');
    expect(byLabel['scan']).toBe('failure');
    const scan = run.steps.find((s) => s.label === 'scan');
    expect(Number(scan?.outputs.leaks)).toBeGreaterThan(0);
    expect(scan?.result?.annotations.filter((a) => a.level === 'error').some((a) => a.message.includes('NPM_TOKEN'))).toBe(true);
    expect(byLabel['push']).toBe('skipped');
    expect(await registryTags(name)).toEqual([]);
    expect(run.sarifUploads).toHaveLength(1);
    expect(run.sarifUploads[0]?.results).toBeGreaterThan(0);
    for (const post of run.posts) expect(post.exitCode, post.log).toBe(0);
    noLeak(run);
  }, 600_000);

  it("the reviewer's setup is caught too: setup-buildx's default driver without load, and push: true in the build", async () => {
    const workflow = loadWorkflow();
    const steps = workflow.jobs.deploy?.steps ?? [];
    const buildx = steps[indexOfUses(workflow, 'docker/setup-buildx-action')];
    const build = steps[indexOfUses(workflow, 'docker/build-push-action')];
    if (!buildx || !build?.with) throw new Error('no setup-buildx or build-push-action step');
    delete buildx.with;
    delete build.with['load'];
    build.with['push'] = true;
    // As in the workflow the review was about, no verify step (it would pull the pushed image back).
    const { run, name, tag } = await deploy(LEAKY_DOCKERFILE, workflow, { verify: false });
    const scan = run.steps.find((s) => s.label === 'scan');
    expect(scan?.outcome, JSON.stringify(outcomes(run))).toBe('failure');
    // The image never reached the engine's store, so `docker save` had nothing to read ...
    expect(scan?.result?.annotations.some((a) => a.level === 'error' && /docker save .* failed/.test(a.message))).toBe(true);
    // ... and the leak was published by the build.
    expect(await registryTags(name)).toEqual([tag]);
  }, 600_000);

  it('the replay follows the YAML: the same workflow with the push moved before the scan publishes the leak', async () => {
    const workflow = loadWorkflow();
    const steps = workflow.jobs.deploy?.steps ?? [];
    const pushAt = steps.findIndex((s) => s.id === 'push');
    const scanAt = indexOfUses(workflow, 'pipeline-secrets/pipeline-secrets/scan');
    expect(pushAt).toBeGreaterThan(scanAt);
    const [push] = steps.splice(pushAt, 1);
    if (!push) throw new Error('no push step');
    delete push.if; // its condition names the scan, which has not run yet
    steps.splice(scanAt, 0, push);
    const { run, name, tag } = await deploy(LEAKY_DOCKERFILE, workflow);
    expect(outcomes(run)['scan']).toBe('failure');
    // What the test above asserts would fail for this order: the leaky image is in the registry.
    expect(await registryTags(name)).toEqual([tag]);
  }, 600_000);
});
