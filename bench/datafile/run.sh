#!/usr/bin/env bash
# Validation speed of core::validate_datafile on generated datafiles of about 1, 6.5 and 10 MB.
# Needs build/release (./dev build). Usage: bench/datafile/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -std=c++20 -O2 -DNDEBUG -Ilib bench/datafile/validate_bench.cpp \
  build/release/lib/libdfhook_core.a -lcrypto -o "$out/validate_bench"
for flags in 800 5000 7800; do
  python3 scripts/gen-datafile.py --project-id 1234 --revision 42 --flags "$flags" \
    > "$out/flags-$flags.json"
done
cd "$out"
./validate_bench flags-800.json flags-5000.json flags-7800.json
