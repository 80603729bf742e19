// Entry of the verify sub-action: wires the real runner and exec into runVerify.
import { nodeExec } from './exec.ts';
import { actionsRunner } from './runner.ts';
import { runVerify } from './verify-step.ts';

await runVerify({ env: process.env, runner: actionsRunner, exec: nodeExec });
