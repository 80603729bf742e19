// Entry of the renewal agent (dist/agent.js), started detached by main with `renew: true`.
// Reads its config from stdin, runs until post stops it (SIGTERM), its private directory
// disappears, or its max lifetime passes.
import { Agent, type AgentConfig } from './agent.ts';
import { nodeExec } from '../core/exec.ts';
import { loadVaultClient } from '../vault/client.ts';

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AgentConfig;
const agent = new Agent(config, { loadVaultClient, exec: nodeExec });
process.on('SIGTERM', () => agent.stop());
process.on('SIGINT', () => agent.stop());
try {
  await agent.run();
} catch (error) {
  await agent.log(`agent failed: ${error instanceof Error ? error.message : String(error)}`).catch(() => {});
  process.exitCode = 1;
}
