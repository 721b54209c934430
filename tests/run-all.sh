#!/usr/bin/env bash
# Every test: type check, unit tests (Pulumi mocks), then the real-engine suite. Installs and starts
# the Docker engine and builds the local test images first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/images/setup-engine.sh
bash tests/images/build.sh
npx tsc --noEmit -p .
npx jest --selectProjects unit
# The full run owns the engine: clusters left by an earlier run (a restarted engine revives them) go first.
npm run -s e2e:clean
npx jest --selectProjects e2e --runInBand
