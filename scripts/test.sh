#!/usr/bin/env bash
# The test command (README, .ci/run): install what is missing, then the C++ core tests (ctest),
# the emu kernel tests under AddressSanitizer, the type check, and vitest last so its summary line
# ends the output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build:ts
bash scripts/test-emu-asan.sh
npm test
