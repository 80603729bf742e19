// Node built-ins loaded on demand. `require` rather than `await import()`: measured here on Node 24,
// `await import('node:http')` takes about 27 ms where `require('node:http')` takes about 4 ms (the
// ESM facade of a built-in is the slow part), and the modules below are only needed by some runs.
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export const builtin = {
  http: (): typeof import('node:http') => load('node:http'),
  https: (): typeof import('node:https') => load('node:https'),
  childProcess: (): typeof import('node:child_process') => load('node:child_process'),
};
