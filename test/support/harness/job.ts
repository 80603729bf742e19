// One workflow job on a hosted Linux runner: fresh RUNNER_TEMP / GITHUB_WORKSPACE / HOME, the job's
// env, prepend-path and secret masker carried from step to step, and steps run as the runner runs them.
//
// Sources (actions/runner):
// - src/Runner.Worker/Handlers/NodeScriptActionHandler.cs: node `<entry>` with cwd = workspace, env =
//   step env + INPUT_* + the github/runner context vars, stdout and stderr both through OutputManager.
// - src/Runner.Worker/Handlers/Handler.cs: INPUT_*, and PATH = GITHUB_PATH additions (latest first) +
//   the step's PATH.
// - src/Runner.Worker/ActionRunner.cs + ExecutionContext: post gets the main step's inputs again and
//   STATE_<name> for each state it saved (core.getState reads process.env[`STATE_${name}`]).
// - src/Runner.Worker/Handlers/ScriptHandler(Helpers).cs: `run:` with `shell: bash` is
//   `bash --noprofile --norc -eo pipefail {0}`, the script written to a file in RUNNER_TEMP.
// - src/Runner.Worker/FileCommandManager.cs: see file-commands.ts (processed after the process ends;
//   a parse error fails the step with "Unable to process file command '<ctx>' successfully.").

import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadActionInputs, resolveInputs } from './action-yml.ts';
import { CommandProcessor, type Annotation } from './commands.ts';
import * as ctx from './context.ts';
import { createFileCommandFiles, ENV_BLOCK_LIST, parseKeyValueFile, parsePathFile, type FileCommandPaths } from './file-commands.ts';
import { addMaskValues, SecretMasker } from './masking.ts';
import { OidcIssuer, type OidcInfo } from './oidc.ts';
import { killGroup, runProcess } from './process.ts';
import { getStepMeta, setStepMeta, type StepMeta } from './step-meta.ts';

/** The repository root (test/support/harness/../../..). */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');

export interface JobOptions {
  env?: Record<string, string>;
  debug?: boolean;
  oidc?: boolean;
  oidcClaims?: Record<string, unknown>;
}

export interface StepOptions {
  actionYml?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  cwd?: string;
  /** Runs the node entry under a wrapper command, e.g. ['unshare', '-m', 'sh', '-c', '... "$@"', 'sh']. */
  wrap?: string[];
}

export interface StepResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  log: string;
  outputs: Record<string, string>;
  env: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  path: string[];
  annotations: Array<{ level: 'error' | 'warning' | 'notice' | 'debug'; message: string; file?: string; line?: number }>;
  masks: string[];
  files: { state: string; env: string; output: string; summary: string };
}

interface StepPlan {
  kind: StepMeta['kind'];
  name: string;
  file: string;
  args: string[];
  inputEnv: Record<string, string>;
  extraEnv: Record<string, string>; // STATE_* for post
  githubAction: string;
  actionPath?: string;
  opts: StepOptions;
  preAnnotations: Annotation[];
}

export class Job {
  readonly root: string;
  readonly runnerTemp: string;
  readonly workspace: string;
  readonly home: string;
  readonly oidc?: OidcInfo;
  readonly env: Record<string, string> = {};
  readonly masks = new Set<string>();

  readonly #masker = new SecretMasker();
  readonly #jobEnv: Record<string, string>;
  readonly #debug: boolean;
  readonly #issuer: OidcIssuer | undefined;
  readonly #prependPath: string[] = [];
  readonly #processGroups = new Set<number>();
  readonly #roots = new Set<string>();
  readonly #actionIds = new Map<string, number>();
  readonly #githubToken = `ghs_${randomBytes(18).toString('base64url')}`;
  readonly #eventPath: string;

  private constructor(root: string, opts: JobOptions, issuer: OidcIssuer | undefined) {
    this.root = root;
    this.home = path.join(root, 'home');
    this.runnerTemp = path.join(root, 'work', '_temp');
    this.workspace = path.join(root, 'work', ctx.REPO_NAME, ctx.REPO_NAME);
    for (const dir of [this.home, this.runnerTemp, this.workspace]) mkdirSync(dir, { recursive: true });
    // The runner writes the event payload under RUNNER_TEMP/_github_workflow.
    this.#eventPath = path.join(this.runnerTemp, '_github_workflow', 'event.json');
    mkdirSync(path.dirname(this.#eventPath), { recursive: true });
    writeFileSync(
      this.#eventPath,
      JSON.stringify({ ref: ctx.REF, after: ctx.SHA, repository: { full_name: ctx.REPOSITORY }, sender: { login: ctx.ACTOR } }),
    );
    this.#jobEnv = { ...opts.env };
    this.#debug = opts.debug ?? true;
    this.#issuer = issuer;
    if (issuer) this.oidc = issuer.info;
  }

  static async create(opts: JobOptions = {}): Promise<Job> {
    const root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'harness-job-')));
    const issuer = opts.oidc ? await OidcIssuer.start(opts.oidcClaims ?? {}) : undefined;
    return new Job(root, opts, issuer);
  }

  /** The runner's masking with the job's secrets so far. */
  mask(text: string): string {
    return this.#masker.maskSecrets(text);
  }

  async runMain(entry: string, inputs: Record<string, string> = {}, opts: StepOptions = {}): Promise<StepResult> {
    const actionYml = path.resolve(opts.actionYml ?? path.join(REPO_ROOT, 'action.yml'));
    if (!existsSync(actionYml)) throw new Error(`harness: action.yml not found at ${actionYml}`);
    const actionPath = path.dirname(actionYml);
    const resolved = resolveInputs(loadActionInputs(actionYml), inputs, this.#contexts(actionPath));
    const preAnnotations: Annotation[] = [];
    if (resolved.unexpected.length > 0) {
      const valid = [...loadActionInputs(actionYml).declared.keys()].map((k) => `'${k}'`).join(', ');
      const given = resolved.unexpected.map((k) => `'${k}'`).join(', ');
      preAnnotations.push({ level: 'warning', message: `Unexpected input(s) ${given}, valid inputs are [${valid}]` });
    }
    return this.#runStep({
      kind: 'main',
      name: `main (${path.basename(entry)})`,
      ...nodeCommand(entry, opts),
      inputEnv: resolved.env,
      extraEnv: {},
      githubAction: this.#nextActionId('__self'),
      actionPath,
      opts,
      preAnnotations,
    });
  }

  async runPost(entry: string, main: StepResult, opts: StepOptions = {}): Promise<StepResult> {
    const meta = getStepMeta(main);
    if (!meta || meta.kind !== 'main') throw new Error('harness: runPost needs the StepResult of a runMain step of this job');
    const stateEnv: Record<string, string> = {};
    for (const [name, value] of Object.entries(main.state)) stateEnv[`STATE_${name}`] = value;
    const plan: StepPlan = {
      kind: 'post',
      name: `post (${path.basename(entry)})`,
      ...nodeCommand(entry, opts),
      inputEnv: meta.inputEnv,
      extraEnv: stateEnv,
      githubAction: meta.githubAction,
      opts,
      preAnnotations: [],
    };
    if (meta.actionPath !== undefined) plan.actionPath = meta.actionPath;
    return this.#runStep(plan);
  }

  async runShell(script: string, opts: StepOptions = {}): Promise<StepResult> {
    const scriptPath = path.join(this.runnerTemp, `${randomUUID()}.sh`);
    writeFileSync(scriptPath, script);
    const githubAction = this.#nextActionId('__run');
    return this.#runStep({
      kind: 'run',
      name: `run (${githubAction})`,
      file: 'bash',
      args: ['--noprofile', '--norc', '-eo', 'pipefail', scriptPath],
      inputEnv: {},
      extraEnv: {},
      githubAction,
      opts,
      preAnnotations: [],
    });
  }

  /** Stop what the steps left running (the runner kills orphans at job end), the issuer, the dirs. */
  async cleanup(): Promise<void> {
    for (const pid of this.#processGroups) killGroup(pid, 'SIGKILL');
    this.#processGroups.clear();
    await this.#issuer?.stop();
    rmSync(this.root, { recursive: true, force: true });
    // A test that runs main without post (or whose post refused a tampered ledger) would leave the
    // private directory main made in /dev/shm, which outlives the job: the machine's, not the test's.
    for (const root of this.#roots) rmSync(root, { recursive: true, force: true });
    this.#roots.clear();
  }

  /** Remembers the private directory a main step's ledger names, if it is one this action makes. */
  #noteRoot(ledger: string): void {
    try {
      const root = (JSON.parse(ledger) as { root?: unknown }).root;
      if (typeof root === 'string' && /^\/dev\/shm\/pipeline-secrets-[^/]+$/.test(root)) this.#roots.add(root);
    } catch {
      // not a ledger this harness can read: nothing to remember
    }
  }

  // GITHUB_ACTION: `__self` / `__run`, then `_2`, `_3` ... like the runner's generated step ids.
  #nextActionId(base: string): string {
    const n = (this.#actionIds.get(base) ?? 0) + 1;
    this.#actionIds.set(base, n);
    return n === 1 ? base : `${base}_${n}`;
  }

  #contexts(actionPath: string): Record<string, Record<string, string>> {
    return {
      github: {
        token: this.#githubToken,
        workspace: this.workspace,
        repository: ctx.REPOSITORY,
        repository_owner: ctx.OWNER,
        server_url: ctx.SERVER_URL,
        api_url: 'https://api.github.com',
        ref: ctx.REF,
        sha: ctx.SHA,
        run_id: ctx.RUN_ID,
        actor: ctx.ACTOR,
        action_path: actionPath,
      },
      runner: { temp: this.runnerTemp, os: 'Linux', arch: 'X64', name: 'GitHub Actions 1' },
    };
  }

  #runnerEnv(plan: StepPlan, files: FileCommandPaths): Record<string, string> {
    const env: Record<string, string> = {
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTION: plan.githubAction,
      GITHUB_ACTOR: ctx.ACTOR,
      GITHUB_ACTOR_ID: ctx.ACTOR_ID,
      GITHUB_API_URL: 'https://api.github.com',
      GITHUB_BASE_REF: '',
      GITHUB_EVENT_NAME: ctx.EVENT_NAME,
      GITHUB_EVENT_PATH: this.#eventPath,
      GITHUB_GRAPHQL_URL: 'https://api.github.com/graphql',
      GITHUB_HEAD_REF: '',
      GITHUB_JOB: ctx.JOB,
      GITHUB_REF: ctx.REF,
      GITHUB_REF_NAME: ctx.REF_NAME,
      GITHUB_REF_PROTECTED: 'false',
      GITHUB_REF_TYPE: 'branch',
      GITHUB_REPOSITORY: ctx.REPOSITORY,
      GITHUB_REPOSITORY_ID: '123456789',
      GITHUB_REPOSITORY_OWNER: ctx.OWNER,
      GITHUB_REPOSITORY_OWNER_ID: '9919',
      GITHUB_RETENTION_DAYS: '90',
      GITHUB_RUN_ATTEMPT: ctx.RUN_ATTEMPT,
      GITHUB_RUN_ID: ctx.RUN_ID,
      GITHUB_RUN_NUMBER: ctx.RUN_NUMBER,
      GITHUB_SERVER_URL: ctx.SERVER_URL,
      GITHUB_SHA: ctx.SHA,
      GITHUB_WORKFLOW: ctx.WORKFLOW,
      GITHUB_WORKFLOW_REF: ctx.WORKFLOW_REF,
      GITHUB_WORKFLOW_SHA: ctx.SHA,
      GITHUB_WORKSPACE: this.workspace,
      GITHUB_ENV: files.env,
      GITHUB_OUTPUT: files.output,
      GITHUB_STATE: files.state,
      GITHUB_PATH: files.path,
      GITHUB_STEP_SUMMARY: files.summary,
      RUNNER_ARCH: 'X64',
      RUNNER_ENVIRONMENT: 'github-hosted',
      RUNNER_NAME: 'GitHub Actions 1',
      RUNNER_OS: 'Linux',
      RUNNER_TEMP: this.runnerTemp,
      RUNNER_WORKSPACE: path.dirname(this.workspace),
    };
    if (plan.actionPath !== undefined) env['GITHUB_ACTION_PATH'] = plan.actionPath;
    if (this.#debug) {
      env['RUNNER_DEBUG'] = '1';
      env['ACTIONS_STEP_DEBUG'] = 'true';
    }
    if (this.#issuer) {
      env['ACTIONS_ID_TOKEN_REQUEST_URL'] = this.#issuer.info.url;
      env['ACTIONS_ID_TOKEN_REQUEST_TOKEN'] = this.#issuer.requestToken;
    }
    return env;
  }

  async #runStep(plan: StepPlan): Promise<StepResult> {
    const files = createFileCommandFiles(this.runnerTemp);
    // Minimal base (never the test process's env), then job env, GITHUB_ENV of earlier steps, step
    // env, inputs, state, and last the runner's own context variables, which user env cannot shadow.
    const env: Record<string, string> = {
      PATH: `${path.dirname(process.execPath)}:${ctx.BASE_PATH}`,
      HOME: this.home,
      LANG: 'C.UTF-8',
      ...this.#jobEnv,
      ...this.env,
      ...plan.opts.env,
      ...plan.inputEnv,
      ...plan.extraEnv,
      ...this.#runnerEnv(plan, files),
    };
    if (this.#prependPath.length > 0) env['PATH'] = [...this.#prependPath].reverse().join(':') + ':' + (env['PATH'] ?? '');

    const annotations: StepResult['annotations'] = [...plan.preAnnotations];
    const logLines: string[] = plan.preAnnotations.map((a) => this.mask(`##[${a.level}]${a.message}`));
    const masks: string[] = [];
    const addMaskLines = new Set<number>();
    const commands = { stdout: new CommandProcessor(this.#debug), stderr: new CommandProcessor(this.#debug) };
    const lineNo = { stdout: 0, stderr: 0 };

    const outcome = await runProcess({
      file: plan.file,
      args: plan.args,
      cwd: plan.opts.cwd ?? this.workspace,
      env,
      timeoutMs: plan.opts.timeoutMs ?? 60_000,
      onLine: (stream, line) => {
        const index = lineNo[stream]++;
        const effects = commands[stream].process(line);
        if (effects.isAddMask && stream === 'stdout') addMaskLines.add(index);
        for (const data of effects.masks) {
          masks.push(data);
          for (const value of addMaskValues(data)) {
            this.masks.add(value);
            this.#masker.addValue(value);
          }
        }
        annotations.push(...effects.annotations);
        // Masked with the secrets known when the line arrives, as the runner writes its log live.
        if (effects.log !== undefined) logLines.push(...effects.log.split('\n').map((l) => this.mask(l)));
      },
    });
    if (outcome.pid !== undefined) this.#processGroups.add(outcome.pid);
    if (outcome.timedOut) {
      const message = `The action has timed out after ${plan.opts.timeoutMs ?? 60_000} ms.`;
      annotations.push({ level: 'error', message });
      logLines.push(`##[error]${message}`);
    }

    // FileCommandManager.ProcessFiles, after the process has ended.
    // A file the step deleted counts as empty (the runner only debug-logs "File does not exist").
    const read = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');
    const raw = {
      state: read(files.state),
      env: read(files.env),
      output: read(files.output),
      path: read(files.path),
      summary: read(files.summary),
    };
    const debugLog: string[] = [];
    const fileError = (context: string, error: unknown): void => {
      const detail = error instanceof Error ? error.message : String(error);
      for (const message of [`Unable to process file command '${context}' successfully.`, detail]) {
        annotations.push({ level: 'error', message });
        debugLog.push(`##[error]${message}`);
      }
    };
    const result: StepResult = {
      exitCode: outcome.exitCode,
      stdout: outcome.stdout,
      stderr: outcome.stderr,
      log: '',
      outputs: {},
      env: {},
      state: {},
      summary: raw.summary,
      path: [],
      annotations,
      masks,
      files: { state: files.state, env: files.env, output: files.output, summary: files.summary },
    };
    try {
      result.path = parsePathFile(raw.path);
      for (const entry of result.path) {
        const existing = this.#prependPath.indexOf(entry);
        if (existing >= 0) this.#prependPath.splice(existing, 1);
        this.#prependPath.push(entry);
      }
    } catch (error) {
      fileError('path', error);
    }
    try {
      for (const [name, value] of parseKeyValueFile(raw.env)) {
        if (ENV_BLOCK_LIST.some((blocked) => blocked.toLowerCase() === name.toLowerCase())) {
          const message = `Can't store ${name} output parameter using '$GITHUB_ENV' command.`;
          annotations.push({ level: 'error', message });
          debugLog.push(`##[error]${message}`);
          continue;
        }
        result.env[name] = value;
        this.env[name] = value;
        debugLog.push(`##[debug]${name}='${value}'`);
      }
    } catch (error) {
      fileError('env', error);
    }
    try {
      for (const [name, value] of parseKeyValueFile(raw.state)) {
        result.state[name] = value;
        debugLog.push(`##[debug]Save intra-action state ${name} = ${value}`);
        if (name === 'ledger') this.#noteRoot(value);
      }
    } catch (error) {
      fileError('state', error);
    }
    try {
      for (const [name, value] of parseKeyValueFile(raw.output)) {
        result.outputs[name] = value;
        debugLog.push(`##[debug]Set output ${name} = ${value}`);
      }
    } catch (error) {
      fileError('output', error);
    }
    for (const line of debugLog) {
      if (line.startsWith('##[debug]') && !this.#debug) continue;
      logLines.push(...line.split(/\r\n|\r|\n/).map((l) => this.mask(l)));
    }
    result.log = logLines.join('\n');

    const meta: StepMeta = {
      kind: plan.kind,
      name: plan.name,
      inputEnv: plan.inputEnv,
      githubAction: plan.githubAction,
      argv: outcome.argv,
      addMaskLines,
      raw,
    };
    if (plan.actionPath !== undefined) meta.actionPath = plan.actionPath;
    setStepMeta(result, meta);
    return result;
  }
}

/** The command line of a node entry step, optionally under a wrapper command. */
function nodeCommand(entry: string, opts: StepOptions): { file: string; args: string[] } {
  const [wrapper, ...wrapperArgs] = opts.wrap ?? [];
  if (wrapper === undefined) return { file: process.execPath, args: [path.resolve(entry)] };
  return { file: wrapper, args: [...wrapperArgs, process.execPath, path.resolve(entry)] };
}
