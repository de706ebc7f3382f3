#!/usr/bin/env bash
# The test command (README, .ci/run): install what is missing, then the emu kernel tests under
# AddressSanitizer, the C++ tests (ctest, kernels, emulator), the type check, and vitest last so its
# summary line ends the output. `npm test` without its own `npm run build:ts`: setup.sh has just compiled
# the TypeScript (npm ci's `prepare`, or `npm run build`), and each compile is one more serial stage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/test-emu-asan.sh
npm run test:native
npm run typecheck
npx vitest run
