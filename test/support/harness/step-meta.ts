// What the harness knows about a StepResult beyond its public fields: kept beside it (not on it) so
// that the public StepResult stays exactly the documented shape.

import type { StepResult } from './job.ts';

export interface StepMeta {
  kind: 'main' | 'post' | 'run';
  name: string; // for messages: `main (main.js)`, `post (post.js)`, `run #2`
  inputEnv: Record<string, string>; // INPUT_* given to a main step (reused by its post)
  actionPath?: string; // GITHUB_ACTION_PATH
  githubAction: string; // GITHUB_ACTION
  argv: string[][]; // step process first, then descendants seen in its session
  addMaskLines: ReadonlySet<number>; // indices (splitLines of stdout) consumed as ::add-mask::
  raw: { state: string; env: string; output: string; path: string; summary: string };
}

const metas = new WeakMap<StepResult, StepMeta>();

export function setStepMeta(step: StepResult, meta: StepMeta): void {
  metas.set(step, meta);
}

export function getStepMeta(step: StepResult): StepMeta | undefined {
  return metas.get(step);
}
