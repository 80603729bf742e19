// The edge between the action and the Actions runner. Modules talk to this interface, never to
// @actions/core directly, so tests can hand in a fake and the entry files wire in the real thing.
import * as core from '@actions/core';

export interface Runner {
  /** Registers a value with the runner's log masker (emits ::add-mask::). */
  setSecret(value: string): void;
  info(message: string): void;
  warning(message: string): void;
  debug(message: string): void;
  error(message: string): void;
  isDebug(): boolean;
  exportVariable(name: string, value: string): void;
  setOutput(name: string, value: string): void;
  saveState(name: string, value: string): void;
  getState(name: string): string;
  appendSummary(markdown: string): Promise<void>;
  getIDToken(audience?: string): Promise<string>;
  setFailed(message: string): void;
}

export const actionsRunner: Runner = {
  setSecret: (value) => core.setSecret(value),
  info: (message) => core.info(message),
  warning: (message) => core.warning(message),
  debug: (message) => core.debug(message),
  error: (message) => core.error(message),
  isDebug: () => core.isDebug(),
  exportVariable: (name, value) => core.exportVariable(name, value),
  setOutput: (name, value) => core.setOutput(name, value),
  saveState: (name, value) => core.saveState(name, value),
  getState: (name) => core.getState(name),
  appendSummary: async (markdown) => {
    // Without GITHUB_STEP_SUMMARY (a local run) there is nowhere to write; that is not an error.
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(markdown, true).write();
  },
  getIDToken: (audience) => core.getIDToken(audience),
  setFailed: (message) => core.setFailed(message),
};
