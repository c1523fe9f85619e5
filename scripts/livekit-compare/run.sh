#!/usr/bin/env bash
# Measures LiveKit's server on lookout-bench meeting's fan-out, on this
# machine, for docs/BENCHMARKS.md. Builds livekit-server (pinned) and this
# tool into .cache/livekit, starts the server on loopback with a new
# secret, runs the fan-out, stops the server. Arguments go to
# livekit-compare (--subscribers, --rates, --warmup, --duration, --pacing).
#
#   scripts/livekit-compare/run.sh --subscribers 100
set -euo pipefail
LIVEKIT_VERSION=v1.13.5
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/.cache/livekit"
mkdir -p "$out"
[ -x "$out/livekit-server-$LIVEKIT_VERSION" ] || {
  GOBIN="$out/gobin" go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
  mv "$out/gobin/server" "$out/livekit-server-$LIVEKIT_VERSION"
}
(cd "$here" && go build -o "$out/livekit-compare" .)

export LIVEKIT_API_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
conf=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$conf"' EXIT
cat > "$conf/livekit.yaml" <<YAML
port: 7880
bind_addresses: ["127.0.0.1"]
rtc:
  udp_port: 7882
  tcp_port: 7881
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
keys:
  bench: $LIVEKIT_API_SECRET
logging:
  level: warn
YAML
"$out/livekit-server-$LIVEKIT_VERSION" --config "$conf/livekit.yaml" >"$conf/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/7880) 2>/dev/null && break
  sleep 0.2
done
# The SDK logs every subscription on stderr; the figures are on stdout.
"$out/livekit-compare" --pid "$server" --url ws://127.0.0.1:7880 "$@" 2>/dev/null
