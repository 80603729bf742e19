// The file commands (GITHUB_ENV, GITHUB_OUTPUT, GITHUB_STATE, GITHUB_PATH, GITHUB_STEP_SUMMARY).
//
// Source: actions/runner src/Runner.Worker/FileCommandManager.cs
// - layout: <RUNNER_TEMP>/_runner_file_commands/<prefix><guid>, a fresh empty file per step
//   (InitializeFiles), prefixes add_path_, set_env_, step_summary_, save_state_, set_output_;
// - EnvFileKeyValuePairs: `NAME=VALUE` (first `=`) or `NAME<<DELIM` ... `DELIM` (whichever of `=` /
//   `<<` comes first); lines end at LF only on Linux (a CR stays in the value); heredoc value excludes
//   the newline before the delimiter; errors: empty name/delimiter, delimiter not found, "EOF marker
//   missing new line", neither form;
// - SetEnvFileCommand blocks NODE_OPTIONS; AddPathFileCommand takes each non-empty line.
// The runner deletes a step's files when the next step starts; the harness keeps them until cleanup so
// that assertNoLeak can walk them and tests can read them.

import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const FILE_COMMANDS_DIR = '_runner_file_commands';

export interface FileCommandPaths {
  env: string;
  output: string;
  state: string;
  path: string;
  summary: string;
}

export function createFileCommandFiles(runnerTemp: string): FileCommandPaths {
  const dir = path.join(runnerTemp, FILE_COMMANDS_DIR);
  mkdirSync(dir, { recursive: true });
  const suffix = randomUUID();
  const paths: FileCommandPaths = {
    path: path.join(dir, `add_path_${suffix}`),
    env: path.join(dir, `set_env_${suffix}`),
    summary: path.join(dir, `step_summary_${suffix}`),
    state: path.join(dir, `save_state_${suffix}`),
    output: path.join(dir, `set_output_${suffix}`),
  };
  for (const file of Object.values(paths)) writeFileSync(file, '');
  return paths;
}

/** EnvFileKeyValuePairs.ReadLine (non-Windows): up to the next LF. */
function readLine(text: string, at: { index: number }): { line: string; newline: string | null } | null {
  if (at.index >= text.length) return null;
  const start = at.index;
  const lf = text.indexOf('\n', start);
  if (lf < 0) {
    at.index = text.length;
    return { line: text.substring(start), newline: null };
  }
  at.index = lf + 1;
  return { line: text.substring(start, lf), newline: '\n' };
}

/** EnvFileKeyValuePairs: throws an Error with the runner's message on malformed content. */
export function parseKeyValueFile(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const at = { index: 0 };
  let read = readLine(text, at);
  while (read !== null) {
    const line = read.line;
    if (line !== '') {
      const equalsIndex = line.indexOf('=');
      const heredocIndex = line.indexOf('<<');
      if (equalsIndex >= 0 && (heredocIndex < 0 || equalsIndex < heredocIndex)) {
        // The runner's empty-name check tests the whole line, so `=value` yields the name ''.
        pairs.push([line.substring(0, equalsIndex), line.substring(equalsIndex + 1)]);
      } else if (heredocIndex >= 0 && (equalsIndex < 0 || heredocIndex < equalsIndex)) {
        const name = line.substring(0, heredocIndex);
        const delimiter = line.substring(heredocIndex + 2);
        if (name === '' || delimiter === '') {
          throw new Error(`Invalid format '${line}'. Name must not be empty and delimiter must not be empty`);
        }
        const startIndex = at.index;
        let endIndex = at.index;
        let temp = readLine(text, at);
        while (temp?.line !== delimiter) {
          if (temp === null) throw new Error(`Invalid value. Matching delimiter not found '${delimiter}'`);
          if (temp.newline === null) throw new Error('Invalid value. EOF marker missing new line.');
          endIndex = at.index - temp.newline.length;
          temp = readLine(text, at);
        }
        pairs.push([name, endIndex > startIndex ? text.substring(startIndex, endIndex) : '']);
      } else {
        throw new Error(`Invalid format '${line}'`);
      }
    }
    read = readLine(text, at);
  }
  return pairs;
}

/** AddPathFileCommand: File.ReadAllLines, skipping empty lines. */
export function parsePathFile(text: string): string[] {
  return text.split(/\r\n|\r|\n/).filter((line) => line !== '');
}

/** SetEnvFileCommand._setEnvBlockList */
export const ENV_BLOCK_LIST: readonly string[] = ['NODE_OPTIONS'];
