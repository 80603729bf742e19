// The fixed `github` / `runner` context of every harness job: one repository, one workflow run.
// The same values feed the step environment (GITHUB_*) and the OIDC token claims, so a test can
// cross-check them (e.g. a Vault role bound to `sub`).

export const OWNER = 'octo-org';
export const REPO_NAME = 'octo-repo';
export const REPOSITORY = `${OWNER}/${REPO_NAME}`;
export const REF = 'refs/heads/main';
export const REF_NAME = 'main';
export const SHA = '6dcb09b5b57875f334f61aebed695e2e4193db5e';
export const RUN_ID = '1658821493';
export const RUN_NUMBER = '42';
export const RUN_ATTEMPT = '1';
export const ACTOR = 'octocat';
export const ACTOR_ID = '583231';
export const WORKFLOW = 'CI';
export const WORKFLOW_REF = `${REPOSITORY}/.github/workflows/ci.yml@${REF}`;
export const JOB = 'e2e';
export const EVENT_NAME = 'push';
export const SERVER_URL = 'https://github.com';

/** A PATH like a hosted runner's, without anything from the test process. */
export const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
