import js from '@eslint/js';
import vitest from '@vitest/eslint-plugin';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/.out/**'] },
  js.configs.recommended,
  // Type-aware: the code starts promises early and awaits them later, so a promise that is never
  // awaited (or handed where a callback's result is ignored) must be caught by the linter.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // A stray console.log could print a value; the runner interface is the only way out.
      'no-console': ['error'],
      // Closures that refer to a value created just after them (server <-> handler) need a let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['test/**'],
    ...vitest.configs.recommended,
    rules: {
      ...vitest.configs.recommended.rules,
      // vitest's expect takes a message as its second argument (`expect(code, log)`): used throughout.
      'vitest/valid-expect': ['error', { maxArgs: 2 }],
      // Tests that assert through the harness's checkers (`check` looks for leaked values in the logs).
      'vitest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expect*', 'check', 'failing'] }],
      // The fault and mistake matrices assert one outcome or the other by case, on purpose.
      'vitest/no-conditional-expect': 'off',
    },
  },
  {
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: {
      'no-console': 'off',
      // Tests, benches and scripts read JSON answers, YAML files and logs as parsed `any` by design;
      // typing each probe would add casts, not checks. These stay on in src/, which handles input.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Fakes of async interfaces (exec, waitFor's probes) are written async to match their shape.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Plain JavaScript (this file, the CI fixtures) is not in tsconfig.json: no type information.
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // CI fixtures run by the runner as plain Node scripts; they print workflow commands on purpose.
    files: ['.github/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', fetch: 'readonly', console: 'readonly' } },
    rules: { 'no-console': 'off' },
  },
);
