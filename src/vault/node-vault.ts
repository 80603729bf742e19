// Loaded on demand (see client.ts): node-vault and its dependencies are bundled apart so runs
// without Vault entries never load them.
export { default } from 'node-vault';
