// Runs the worked examples of docs/templates.md as they are written: a test takes an example's
// fenced block from the page (the one after its `<!-- example: ID -->` line), replaces the example
// hosts with this machine's servers, and runs the job's steps in order through the runner harness,
// as the runner would: the Pipeline Secrets actions from dist/ (post steps at the end, last main
// first), `run:` steps with bash, `actions/checkout` as the files the test already put in the
// workspace. Only the expressions the examples use are evaluated (github.sha, github.workspace,
// runner.temp, steps.ID.outputs.NAME); anything else fails the test rather than run on a guess.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { SHA } from '../support/harness/context.ts';
import type { Job, StepResult } from '../support/harness/index.ts';
import { MAIN, POST, repo } from './setup.ts';

export const DOC = path.join(repo, 'docs', 'templates.md');

const ACTIONS: Record<string, { entry: string; actionYml: string }> = {
  'pipeline-secrets/pipeline-secrets@v1': { entry: MAIN, actionYml: path.join(repo, 'action.yml') },
  'pipeline-secrets/pipeline-secrets/scan@v1': {
    entry: path.join(repo, 'dist', 'scan.js'),
    actionYml: path.join(repo, 'scan', 'action.yml'),
  },
};

/** The text of the fenced block right after `<!-- example: ID -->` in docs/templates.md, without its fences. */
export function docBlock(id: string): string {
  const page = readFileSync(DOC, 'utf8');
  const at = page.indexOf(`<!-- example: ${id} -->\n`);
  if (at < 0) throw new Error(`docs/templates.md has no example '${id}'`);
  const block = /^\n*(```+)[^\n]*\n([\s\S]*?)^\1$/m.exec(page.slice(at + `<!-- example: ${id} -->\n`.length));
  if (!block || block.index !== 0) throw new Error(`docs/templates.md: example '${id}' is not followed by a fenced block`);
  return block[2] ?? '';
}

/** `text` with each [from, to] replaced everywhere, in order (put longer forms, e.g. whole URLs, first). */
export function replaceAll(text: string, replacements: ReadonlyArray<readonly [string, string]>): string {
  let out = text;
  for (const [from, to] of replacements) {
    if (!out.includes(from)) throw new Error(`'${from}' is not in the example: the test and docs/templates.md disagree`);
    out = out.replaceAll(from, to);
  }
  return out;
}

export interface DocStep {
  readonly id?: string;
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Record<string, string>;
  readonly env?: Record<string, string>;
}

/** The steps of the one job of example `id`, its hosts replaced. */
export function docSteps(id: string, replacements: ReadonlyArray<readonly [string, string]>): DocStep[] {
  const doc = parse(replaceAll(docBlock(id), replacements)) as { jobs?: Record<string, { steps?: unknown[] }> };
  const jobs = Object.values(doc.jobs ?? {});
  if (jobs.length !== 1) throw new Error(`example '${id}': expected one job, found ${jobs.length}`);
  const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');
  const record = (v: unknown): Record<string, string> | undefined =>
    typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, text(x)])) : undefined;
  return (jobs[0]?.steps ?? []).map((raw) => {
    const s = raw as Record<string, unknown>;
    const step: { -readonly [K in keyof DocStep]: DocStep[K] } = {};
    if (s.id !== undefined) step.id = text(s.id);
    if (s.name !== undefined) step.name = text(s.name);
    if (s.uses !== undefined) step.uses = text(s.uses);
    if (s.run !== undefined) step.run = text(s.run);
    const w = record(s.with);
    if (w) step.with = w;
    const e = record(s.env);
    if (e) step.env = e;
    return step;
  });
}

export interface DocRunOptions {
  /** The environment every step gets from the test (PATH with the tools, DOCKER_HOST...). */
  readonly env?: Record<string, string>;
  /** Inputs of the Pipeline Secrets main step that the test sets differently, each said in the test. */
  readonly overrides?: Record<string, string>;
}

/** One run of an example's job: steps in order, one call at a time, so a test can act in between. */
export class DocRun {
  readonly results = new Map<string, StepResult>();
  readonly all: StepResult[] = [];
  readonly #mains: StepResult[] = [];
  #next = 0;

  readonly job: Job;
  readonly steps: readonly DocStep[];
  readonly opts: DocRunOptions;

  constructor(job: Job, steps: readonly DocStep[], opts: DocRunOptions = {}) {
    this.job = job;
    this.steps = steps;
    this.opts = opts;
  }

  /** Runs every step not run yet up to the one with `id` (which must come later), and returns its result. */
  async until(id: string, extra: { env?: Record<string, string> } = {}): Promise<StepResult> {
    const at = this.steps.findIndex((s, i) => i >= this.#next && s.id === id);
    if (at < 0) throw new Error(`no step '${id}' after step ${this.#next} of the example`);
    let last: StepResult | undefined;
    while (this.#next <= at) last = await this.#run(this.steps[this.#next++] as DocStep, extra.env ?? {});
    if (!last) throw new Error(`step '${id}' ran nothing (actions/checkout?)`);
    return last;
  }

  /** The post steps, as the runner runs them at the end of the job: the last main step's first. */
  async post(extra: { env?: Record<string, string> } = {}): Promise<StepResult[]> {
    if (this.#next < this.steps.length) throw new Error(`post before step ${this.#next} of ${this.steps.length} ran`);
    const posts: StepResult[] = [];
    for (const main of [...this.#mains].reverse()) {
      const post = await this.job.runPost(POST, main, { env: { ...this.opts.env, ...extra.env } });
      posts.push(post);
      this.all.push(post);
    }
    return posts;
  }

  /** The first Pipeline Secrets main step's result. */
  get main(): StepResult {
    const main = this.#mains[0];
    if (!main) throw new Error('no Pipeline Secrets step has run');
    return main;
  }

  #expand(text: string): string {
    return text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr: string) => {
      if (expr === 'github.sha') return SHA;
      if (expr === 'github.workspace') return this.job.workspace;
      if (expr === 'runner.temp') return this.job.runnerTemp;
      const output = /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(expr);
      const value = output ? this.results.get(output[1] ?? '')?.outputs[output[2] ?? ''] : undefined;
      if (value === undefined) throw new Error(`the example's expression \${{ ${expr} }} cannot be evaluated here`);
      return value;
    });
  }

  async #run(step: DocStep, extraEnv: Record<string, string>): Promise<StepResult | undefined> {
    const env = {
      ...this.opts.env,
      ...extraEnv,
      ...Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, this.#expand(v)])),
    };
    let result: StepResult;
    if (step.run !== undefined) {
      result = await this.job.runShell(this.#expand(step.run), { env });
    } else if (step.uses?.startsWith('actions/checkout@')) {
      return undefined; // the test wrote the repository's files into the workspace
    } else {
      const action = ACTIONS[step.uses ?? ''];
      if (!action) throw new Error(`the example uses ${step.uses ?? '(nothing)'}, which this harness cannot run`);
      const inputs = Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, this.#expand(v)]));
      const isMain = action.entry === MAIN;
      result = await this.job.runMain(action.entry, isMain ? { ...inputs, ...this.opts.overrides } : inputs, {
        env,
        actionYml: action.actionYml,
      });
      if (isMain) this.#mains.push(result);
    }
    if (step.id !== undefined) this.results.set(step.id, result);
    this.all.push(result);
    return result;
  }
}
