// The unit tier (`npm run test:unit`): tests that need no root, no services (no OpenBao, dockerd,
// PostgreSQL, slapd) and no package installs, so they run in seconds as any user. `npm test` runs
// these and every other test (vitest.config.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/support/harness.test.ts'],
    testTimeout: 10_000,
    // One worker process runs many files: a fresh one per file cost more than the tests themselves
    // (77 files: 20.9 s wall isolated, 10.5 s not, on 2 cores). Unit tests restore what they stub.
    isolate: false,
  },
});
