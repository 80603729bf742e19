// The `compose-services` input of the main step: which delivered secrets each docker compose service
// gets, one line per service, `SERVICE: NAME, NAME`. Main writes them into a compose override
// (src/main/compose.ts) that attaches each name to its service as a file secret at
// /run/secrets/NAME. Whether each NAME is a secret of this step is checked once the secrets are
// known (main), before anything is written; here, only the shape of each line.
import { InputError } from '../core/errors.ts';
import { getInput, isSafeName, type Env } from './common.ts';

export interface ComposeService {
  /** The service's name in the user's compose file. */
  readonly service: string;
  /** The secrets it gets, in the order given. */
  readonly names: readonly string[];
  /** The line of `compose-services` it came from, for messages. */
  readonly line: number;
}

const INPUT = 'compose-services';

// Compose's own rule for a service name and a secret key (its schema's pattern): ASCII only, so a
// name of ours with letters beyond ASCII (allowed by isSafeName) cannot be a compose secret.
const COMPOSE_NAME = /^[A-Za-z0-9._-]+$/;
/** A service name as compose takes it, for messages. */
const SERVICE_RULE = "ASCII letters, digits, '_', '-' and '.'";
/** A secret name compose takes: ours (isSafeName) in compose's ASCII alphabet, for messages. */
const COMPOSE_SECRET_RULE = "ASCII letters, digits, '_', '-' and '.', not starting with '.' or '-'";

/** Whether compose takes `name` as a secret's key (and it is a secret name of ours). */
export function isComposeSecretName(name: string): boolean {
  return isSafeName(name) && COMPOSE_NAME.test(name);
}

/**
 * `compose-services` lines (blank lines and `#` comments skipped). A name that breaks the rules is
 * refused without being echoed: a value pasted where a name goes must not reach the log.
 */
export function parseComposeServices(env: Env): ComposeService[] {
  const out: ComposeService[] = [];
  getInput(env, INPUT)
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const text = raw.trim();
      if (text === '' || text.startsWith('#')) return;
      const line = index + 1;
      const colon = text.indexOf(':');
      if (colon < 0) throw new InputError(INPUT, `line ${line}: expected 'SERVICE: NAME, NAME' (the service, a colon, its secrets)`);
      const service = text.slice(0, colon).trim();
      if (!COMPOSE_NAME.test(service)) {
        throw new InputError(INPUT, `line ${line}: the part before ':' is not a compose service name (${SERVICE_RULE})`);
      }
      const names = text
        .slice(colon + 1)
        .split(/[\s,]+/)
        .filter((n) => n !== '');
      if (names.length === 0) {
        throw new InputError(
          INPUT,
          `line ${line}: service '${service}' gets no secret; list its secrets after the colon, or leave the line out`,
        );
      }
      names.forEach((name, i) => {
        if (!isComposeSecretName(name)) {
          throw new InputError(
            INPUT,
            `line ${line}: secret ${i + 1} of service '${service}' is not a secret name compose takes (${COMPOSE_SECRET_RULE}); give names, never values`,
          );
        }
        if (names.indexOf(name) !== i) {
          throw new InputError(INPUT, `line ${line}: secret '${name}' is listed twice for service '${service}'; list it once`);
        }
      });
      const earlier = out.find((s) => s.service === service);
      if (earlier) {
        throw new InputError(
          INPUT,
          `line ${line}: service '${service}' is listed on line ${earlier.line} too; give each service one line with all its secrets`,
        );
      }
      out.push({ service, names, line });
    });
  return out;
}
