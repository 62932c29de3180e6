#!/usr/bin/env bash
# List the loaded tools, then call a few of them, from the repository root.
# Prerequisite: `make plugins` (builds the binary and the plugins).
set -euo pipefail
cd "$(dirname "$0")/.."
LAUNCH="${CARGO_TARGET_DIR:-target}/release/launch"

"$LAUNCH" tools list
"$LAUNCH" tools call calculator_evaluate '{"expression": "2 * (3 + 4) ^ 2"}'
"$LAUNCH" tools call clock_now '{"time-zone": "Europe/Paris"}'
"$LAUNCH" tools call text_transform '{"text": "  Hello World ", "ops": ["trim", {"to-case": "kebab"}]}'
# A failing call: one line on stderr, exit status 1.
"$LAUNCH" tools call calculator_evaluate '{"expression": "1 / 0"}' || echo "(exit status $?)"
