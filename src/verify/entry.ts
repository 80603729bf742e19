// Entry of the verify sub-action: wires the real runner and exec into runVerify.
import { nodeExec } from '../core/exec.ts';
import { actionsRunner } from '../core/runner.ts';
import { runVerify } from './run.ts';

await runVerify({ env: process.env, runner: actionsRunner, exec: nodeExec });
