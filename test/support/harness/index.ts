// The runner harness: run bundled action entry points exactly as the GitHub Actions runner does.
// See job.ts (steps), file-commands.ts, commands.ts, masking.ts (the runner's encoders), oidc.ts and
// leak.ts (the project's no-leak invariant).

export { Job, REPO_ROOT, type JobOptions, type StepOptions, type StepResult } from './job.ts';
export { assertNoLeak } from './leak.ts';
export { SecretMasker, RUNNER_ENCODERS, addMaskValues } from './masking.ts';
export { parseKeyValueFile } from './file-commands.ts';
export { GITHUB_OIDC_ISSUER, DEFAULT_AUDIENCE, type OidcInfo } from './oidc.ts';
export { inputEnvName } from './action-yml.ts';
