// Loaded on demand (see exec.ts): @actions/exec is bundled apart, for runs that use docker.
export { getExecOutput } from '@actions/exec';
