import { describe, expect, it } from 'vitest';
import { lintDockerfile } from '../../../src/leak-scan/dockerfile-lint.ts';

describe('lintDockerfile', () => {
  it('finds secrets in ARG/ENV and credential files in COPY/ADD, with file:line and the secret-mount fix', () => {
    const text = [
      'FROM node:24', // 1
      'ARG NPM_TOKEN', // 2
      'ARG VERSION=1.0', // 3
      'ENV DB_PASSWORD=hunter2 MODE=prod', // 4
      'ENV API_KEY abc', // 5
      'COPY .npmrc package.json ./', // 6
      'COPY --chown=node:node \\', // 7
      '  id_rsa /root/.ssh/', // 8
      'ADD ["certs/server.key", "/etc/ssl/"]', // 9
      'RUN --mount=type=secret,id=npm_token npm ci', // 10
      'ENV DEPLOY_TARGET=prod', // 11
      'COPY src/ /app/', // 12
    ].join('\n');
    const findings = lintDockerfile('Dockerfile', text, ['DEPLOY_TARGET']);
    expect(findings.map((f) => [f.line, f.rule])).toEqual([
      [2, 'secret-arg'],
      [4, 'secret-env'],
      [5, 'secret-env'],
      [6, 'credential-copy'],
      [7, 'credential-copy'],
      [9, 'credential-copy'],
      [11, 'secret-env'],
    ]);
    expect(findings[0]?.message).toMatch(/RUN --mount=type=secret,id=npm_token/);
    expect(findings[6]?.message).toMatch(/is a secret delivered in this job/);
  });

  it('ignores comments, heredoc bodies and clean files', () => {
    const text = 'FROM x\n# ARG TOKEN\nRUN <<EOF\nARG PASSWORD\nEOF\nCOPY app/ /app\n';
    expect(lintDockerfile('Dockerfile', text)).toEqual([]);
  });
});
