// Node built-ins loaded on demand. `require` rather than `await import()`: measured here on Node 24,
// `await import('node:http')` takes about 27 ms where `require('node:http')` takes about 4 ms (the
// ESM facade of a built-in is the slow part), and the modules below are only needed by some runs.
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export const builtin = {
  http: () => load('node:http') as typeof import('node:http'),
  https: () => load('node:https') as typeof import('node:https'),
  childProcess: () => load('node:child_process') as typeof import('node:child_process'),
};
