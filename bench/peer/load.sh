#!/usr/bin/env bash
# Drive a GraphQL endpoint on loopback with wrk for a fixed time and print one RESULT line:
#   requests req_per_s p50_ms p90_ms p99_ms max_ms non200 graphql_errors socket_errors
# Usage: bench/peer/load.sh URL BODY.json [DURATION=10s] [CONNECTIONS=16] [HEADER]
#   BODY.json is a GraphQL request ({"query": ..., "variables": ...}); HEADER e.g. "Authorization: Bearer X".
# Needs wrk (Debian package "wrk").
set -euo pipefail
URL=$1; BODY=$2; DUR=${3:-10s}; CONN=${4:-16}; HDR=${5:-}
case "$URL" in http://127.0.0.1:*|http://localhost:*) ;; *) echo "refusing non-loopback URL: $URL" >&2; exit 2;; esac
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
WRK_BODY_FILE=$BODY WRK_HEADER=$HDR timeout 120 wrk -t1 -c"$CONN" -d"$DUR" --timeout 10s --latency \
  -s "$(dirname "$0")/post.lua" "$URL" | grep '^RESULT'
