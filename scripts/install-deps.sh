#!/usr/bin/env bash
# Installs every Debian bookworm package vigil needs to build, test, run and benchmark.
# Idempotent and non-interactive: packages already present are skipped, and apt is only
# touched when something is missing. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang-format clang-tidy
  clang libclang-rt-14-dev llvm-14  # sanitizer presets and scripts/fuzz.sh: clang, libFuzzer + sanitizer runtimes, symbolizer
  # libraries (see README "Dependencies" for why each is there)
  librdkafka-dev libtorch-dev libopenblas0-openmp libhiredis-dev
  libboost1.81-dev libgtest-dev libgmock-dev libbenchmark-dev
  libconcurrentqueue-dev libsimdjson-dev libyaml-cpp-dev libspdlog-dev
  prometheus-cpp-dev
  libcli11-dev  # command lines of the tools and scoring_bench (a Debian library, not hand-written parsers)
  # runtime services and tools used by the run script, tests and benchmarks
  redis-server redis-tools kcat python3 python3-torch python3-yaml
  # bench/python_consumer.py: the consumer a team would write in an afternoon (stream_bench baseline)
  python3-confluent-kafka python3-redis
  # benchmarks and checks: wrk + FastAPI/uvicorn (the baseline vigil replaces), promtool
  wrk python3-fastapi python3-uvicorn prometheus
  # FastAPI as it is deployed: uvicorn's standard extras, the httptools parser and uvloop
  python3-httptools python3-uvloop
  nginx-light  # bench/http_bench.sh: the fixed-body ceiling vigil's HTTP side-port is measured against
  gnuplot-nox  # bench/run_all.sh: the PNG plots in BENCHMARKS.md
  chromium fonts-dejavu-core python3-websocket  # tests/ui: the live page in headless Chromium
  # tests/deploy: `docker-compose config` (no daemon needed), promtool (prometheus, above) and
  # python3-yaml (above) check deploy/
  docker-compose
)
# tests/deploy: `kubectl kustomize deploy/k8s`. Debian's kubectl is kubernetes-client; a kubectl
# already on the PATH is kept (the Google Cloud CLI's `kubectl` package, on the development
# machines, owns /usr/bin/kubectl, so dpkg would refuse kubernetes-client next to it). Bookworm's
# kubernetes-client is 1.20, whose kustomize is v2.0.3: deploy/k8s uses only fields that version
# knows (the deploy check makes sure), so it renders the same objects with either kubectl.
if ! command -v kubectl >/dev/null 2>&1; then PACKAGES+=(kubernetes-client); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
