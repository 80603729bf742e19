// The edge between the action and the Actions runner. Modules talk to this interface, never to
// @actions/core directly, so tests can hand in a fake and the entry files wire in the real thing.
import { exportVariable, getState, saveState, setOutput, summary } from '@actions/core';
import { writeSync } from 'node:fs';
import { EOL } from 'node:os';
import { DeliveryError } from './errors.ts';
import { inert } from './log-safe.ts';

export interface Runner {
  /** Registers a value with the runner's log masker (emits ::add-mask::). */
  setSecret(value: string): void;
  /**
   * Registers several values at once: all their ::add-mask:: lines in one write (a value and its
   * derived forms are about ten lines, each otherwise a write of its own). Optional: without it,
   * each value goes through setSecret.
   */
  setSecrets?(values: readonly string[]): void;
  info(message: string): void;
  warning(message: string): void;
  debug(message: string): void;
  exportVariable(name: string, value: string): void;
  setOutput(name: string, value: string): void;
  saveState(name: string, value: string): void;
  getState(name: string): string;
  appendSummary(markdown: string): Promise<void>;
  getIDToken(audience?: string): Promise<string>;
  setFailed(message: string): void;
  /** An annotation tied to a file (and line) in the workspace, where the runner can show it. */
  annotate(level: 'error' | 'warning' | 'notice', message: string, where?: { file?: string; line?: number; title?: string }): void;
}

// Outside text (file, member and key names, paths, Vault and docker messages, the agent's log) is
// made inert here, at the one edge every message crosses, not at the call sites: nothing can forget
// it. core.info writes its message raw, so a name holding "\n::error::" or "  ::stop-commands::"
// would run as a command; warning/error/debug escape CR and LF but pass ESC and the rest through.
// The action's own messages are single lines, so making every message one line loses nothing (a
// bug's stack, debug output only, reads as one line with `\n` in it).
// setSecret stays raw (the runner must mask the true value), and since the printed form of a value
// holding a control character differs from the value, such a value is masked here, before `inert`.
const rewrittenSecrets = new Set<string>();

function safe(message: string): string {
  let out = message;
  for (const value of [...rewrittenSecrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(value)) out = out.split(value).join('***');
  }
  return inert(out);
}

/**
 * Without the runner's file command for it, @actions/core's exportVariable and setOutput fall back
 * to `::set-env::` / `::set-output::` commands on stdout: the value itself printed to the log. Refused.
 */
function requireFileCommand(file: 'GITHUB_ENV' | 'GITHUB_OUTPUT', what: string): void {
  if (process.env[file]) return;
  throw new DeliveryError(
    `cannot ${what}: the runner's file command ${file} is not set (GITHUB_ENV and GITHUB_OUTPUT are how a step hands env vars and outputs to later steps), and the action never falls back to the set-env/set-output workflow commands, which would print values to the log; run on a runner that provides GITHUB_ENV and GITHUB_OUTPUT (actions/runner 2.297.0 or later), and do not unset them in the step's env`,
  );
}

/**
 * The step's log (stdout, which the runner reads): every line the action prints goes through this
 * one writer, in order, each call one write(2) that returns once all of it is out, so a mask line
 * is out before anything written after it. Written to fd 1 directly: process.stdout does the same
 * on a pipe, but setting it up (net, streams) costs about 2 ms of every run.
 */
export const stepLog = {
  write(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    for (let done = 0; done < bytes.length;) {
      try {
        done += writeSync(1, bytes, done);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // Nobody reads the log any more: nothing to print to.
        if (code === 'EPIPE') return;
        // fd 1 made non-blocking by another process sharing it, and its pipe full: wait for the reader.
        if (code !== 'EAGAIN') throw error;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
  },
};

/** @actions/core's escapeData (workflow command data) and escapeProperty (its properties). */
const escapeData = (text: string): string => text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (text: string): string => escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');

/**
 * A workflow command line exactly as @actions/core's issueCommand writes it: properties with a
 * value only, after a space whenever any property was given (its toCommandProperties).
 */
function command(name: string, message: string, properties: Record<string, string | number> = {}): void {
  const given = Object.keys(properties).length > 0;
  const props = Object.entries(properties)
    .filter(([, v]) => v !== '' && v !== 0)
    .map(([k, v]) => `${k}=${escapeProperty(String(v))}`)
    .join(',');
  stepLog.write(`::${name}${given ? ` ${props}` : ''}::${escapeData(message)}${EOL}`);
}

/** An ::add-mask:: line as @actions/core's setSecret writes it. */
function maskLine(value: string): string {
  if (value !== '' && inert(value) !== value) rewrittenSecrets.add(value);
  return `::add-mask::${escapeData(value)}${EOL}`;
}

export const actionsRunner: Runner = {
  setSecret: (value) => stepLog.write(maskLine(value)),
  // One write for all the lines (each would be a write(2) on the runner's pipe), on the stream every
  // other message goes to: the lines come out before anything written after this call.
  setSecrets: (values) => {
    if (values.length > 0) stepLog.write(values.map(maskLine).join(''));
  },
  info: (message) => stepLog.write(`${safe(message)}${EOL}`),
  warning: (message) => command('warning', safe(message)),
  debug: (message) => command('debug', safe(message)),
  exportVariable: (name, value) => {
    requireFileCommand('GITHUB_ENV', `set env var '${name}' for later steps`);
    exportVariable(name, value);
  },
  setOutput: (name, value) => {
    requireFileCommand('GITHUB_OUTPUT', `set output '${name}'`);
    setOutput(name, value);
  },
  saveState,
  getState,
  appendSummary: async (markdown) => {
    // Without GITHUB_STEP_SUMMARY (a local run) there is nowhere to write; that is not an error.
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await summary.addRaw(markdown, true).write();
  },
  // @actions/core's OIDC client pulls in its HTTP client (undici, tunnel): loaded only by jobs
  // that use OIDC, so every other run starts faster.
  getIDToken: async (audience) => (await import('./oidc-token.ts')).getIDToken(audience),
  setFailed: (message) => {
    process.exitCode = 1;
    command('error', safe(message));
  },
  annotate: (level, message, where = {}) => {
    // The properties given, in @actions/core's order (title, file, line).
    const props: Record<string, string | number> = {};
    if (where.title !== undefined) props.title = safe(where.title);
    if (where.file !== undefined) props.file = safe(where.file);
    if (where.line !== undefined) props.line = where.line;
    command(level, safe(message), props);
  },
};
