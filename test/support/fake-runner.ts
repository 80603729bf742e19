// A Runner (src/core/runner.ts) that records every call, for unit tests that drive a step's run
// function without the runner's processes: what was masked, logged, exported, saved and failed.
import type { Runner } from '../../src/core/runner.ts';

export interface FakeRunner extends Runner {
  readonly masked: string[];
  readonly infos: string[];
  readonly warnings: string[];
  readonly debugs: string[];
  readonly failures: string[];
  readonly summaries: string[];
  readonly exported: Map<string, string>;
  readonly outputs: Map<string, string>;
  readonly state: Map<string, string>;
  readonly annotations: Array<{ level: string; message: string; file?: string | undefined; line?: number | undefined }>;
  /** Everything the step wrote anywhere a reader of the log or summary could see, in one string. */
  visible(): string;
}

export function fakeRunner(options: { state?: Record<string, string>; idToken?: (audience?: string) => Promise<string> } = {}): FakeRunner {
  const r = {
    masked: [] as string[],
    infos: [] as string[],
    warnings: [] as string[],
    debugs: [] as string[],
    failures: [] as string[],
    summaries: [] as string[],
    exported: new Map<string, string>(),
    outputs: new Map<string, string>(),
    state: new Map<string, string>(Object.entries(options.state ?? {})),
    annotations: [] as FakeRunner['annotations'],
    setSecret: (value: string) => void r.masked.push(value),
    info: (message: string) => void r.infos.push(message),
    warning: (message: string) => void r.warnings.push(message),
    debug: (message: string) => void r.debugs.push(message),
    exportVariable: (name: string, value: string) => void r.exported.set(name, value),
    setOutput: (name: string, value: string) => void r.outputs.set(name, value),
    saveState: (name: string, value: string) => void r.state.set(name, value),
    getState: (name: string) => r.state.get(name) ?? '',
    appendSummary: async (markdown: string) => void r.summaries.push(markdown),
    getIDToken: options.idToken ?? (async () => Promise.reject(new Error('no OIDC token in this fake runner'))),
    setFailed: (message: string) => void r.failures.push(message),
    annotate: (level: string, message: string, where?: { file?: string; line?: number }) =>
      void r.annotations.push({ level, message, file: where?.file, line: where?.line }),
    visible: () =>
      [...r.infos, ...r.warnings, ...r.debugs, ...r.failures, ...r.summaries, ...r.annotations.map((a) => a.message)].join('\n'),
  };
  return r;
}
