// Inputs of a `uses:` step, as the runner hands them to a node action.
//
// Sources (actions/runner):
// - src/Runner.Worker/ActionManifestManager.cs ConvertInputs: every declared input gets its `default`
//   or, without one, the empty string; so a declared input is always set.
// - src/Runner.Worker/ActionRunner.cs: `with:` values win (keys case-insensitive); undeclared `with:`
//   keys are still passed, with the warning "Unexpected input(s) ...".
// - src/Runner.Worker/Handlers/Handler.cs AddInputsToEnvironment: env `INPUT_` + name with ' ' -> '_',
//   upper-cased (dashes kept), value ?? ''.
// @actions/core getInput reads the same name: process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`].

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export function inputEnvName(name: string): string {
  return `INPUT_${name.replaceAll(' ', '_').toUpperCase()}`;
}

export interface ActionInputs {
  declared: Map<string, string>; // name -> default ('' when none), in action.yml order
}

export function loadActionInputs(actionYml: string): ActionInputs {
  const doc: unknown = parse(readFileSync(actionYml, 'utf8'));
  const declared = new Map<string, string>();
  const inputs = isRecord(doc) ? doc['inputs'] : undefined;
  if (isRecord(inputs)) {
    for (const [name, meta] of Object.entries(inputs)) {
      const def = isRecord(meta) ? meta['default'] : undefined;
      // A default is a YAML scalar; anything else (none, null, a mapping) declares none.
      declared.set(name, typeof def === 'string' || typeof def === 'number' || typeof def === 'boolean' ? String(def) : '');
    }
  }
  return { declared };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Evaluate `${{ ... }}` in a default. Only context paths (e.g. `github.token`, `runner.temp`) and
 * quoted literals are supported; anything else throws so a test never runs on a silently wrong value.
 */
export function evaluateDefault(text: string, contexts: Record<string, Record<string, string>>): string {
  return text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr: string) => {
    const literal = /^'((?:[^']|'')*)'$/.exec(expr);
    if (literal) return (literal[1] ?? '').replaceAll("''", "'");
    const pathMatch = /^([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)$/.exec(expr);
    const value = pathMatch ? contexts[pathMatch[1] ?? '']?.[pathMatch[2] ?? ''] : undefined;
    if (value === undefined) throw new Error(`harness: cannot evaluate input default expression '\${{ ${expr} }}'`);
    return value;
  });
}

export interface ResolvedInputs {
  env: Record<string, string>; // INPUT_* variables
  unexpected: string[]; // explicit inputs the action does not declare
}

export function resolveInputs(
  action: ActionInputs,
  explicit: Record<string, string>,
  contexts: Record<string, Record<string, string>>,
): ResolvedInputs {
  const env: Record<string, string> = {};
  const given = new Map(Object.entries(explicit).map(([k, v]) => [k.toLowerCase(), { name: k, value: v }]));
  const unexpected: string[] = [];
  for (const [name, def] of action.declared) {
    const override = given.get(name.toLowerCase());
    env[inputEnvName(name)] = override ? override.value : evaluateDefault(def, contexts);
  }
  const declaredLower = new Set([...action.declared.keys()].map((k) => k.toLowerCase()));
  for (const [lower, { name, value }] of given) {
    if (declaredLower.has(lower)) continue;
    unexpected.push(name);
    env[inputEnvName(name)] = value;
  }
  return { env, unexpected };
}
