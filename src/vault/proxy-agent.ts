// Loaded on demand (see transport.ts): https-proxy-agent is bundled apart, for runs behind a proxy.
export { HttpsProxyAgent } from 'https-proxy-agent';
