// Loaded on demand (see runner.ts): @actions/core's getIDToken requests the job's OIDC token and
// masks it before returning it.
export { getIDToken } from '@actions/core';
