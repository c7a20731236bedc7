#!/usr/bin/env bash
# Checks that the README's "Use it in an ASP.NET Core or worker app" snippet works as a newcomer would
# use it: a fresh `dotnet new web` project outside the repository, Program.cs and appsettings.json replaced
# by the README's two code blocks, `dotnet add package` of the packed MessageQueue.DependencyInjection and
# MessageQueue.Sqlite, then run on 127.0.0.1 and driven over HTTP with curl.
#
# Usage: eng/check-readme-app.sh            (from anywhere; needs the .NET 10 SDK and curl)
# It packs the solution first, unless MQ_PACKED=1 says artifacts/packages is fresh (eng/check-packages.sh
# has just packed it, as in .ci/run).
# Exit status 0 when the app answered as the README says; non-zero, with the app's log, otherwise.
set -euo pipefail

source "$(dirname "$0")/lib/packages.sh"
work="$(mktemp -d)"
app_pid=""
cleanup() {
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then kill -KILL "$app_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "readme-app: FAILED: $*" >&2; [ -f "$work/app.log" ] && sed 's/^/  app| /' "$work/app.log" >&2; exit 1; }

# The first ```csharp and the first ```json block after the section heading, verbatim.
extract() {
  awk -v lang="$1" '
    /^## Use it in an ASP.NET Core or worker app/ { section = 1; next }
    section && /^## / { exit }
    section && !inside && $0 == "```" lang { inside = 1; next }
    inside && $0 == "```" { exit }
    inside { print }
  ' "$repo/README.md"
}

if [ "${MQ_PACKED:-}" != "1" ]; then
  pack_all "$work/pack.log" || { cat "$work/pack.log" >&2; fail "dotnet pack"; }
fi
version="$(package_version)"
use_consumer_cache
write_nuget_config "$work"

cd "$work"
dotnet new web -n ReadmeApp -o ReadmeApp >/dev/null || fail "dotnet new web"
cd ReadmeApp
extract csharp > Program.cs
extract json > appsettings.json
[ -s Program.cs ] || fail "no csharp block found in the README section"
[ -s appsettings.json ] || fail "no json block found in the README section"

# The README's install lines, with the packed version.
for id in MessageQueue.DependencyInjection MessageQueue.Sqlite; do
  dotnet add package "$id" --version "$version" > "$work/add.log" 2>&1 || { cat "$work/add.log" >&2; fail "dotnet add package $id"; }
done
dotnet build -c Release -nologo -v quiet > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "the README snippet does not build"; }

dotnet bin/Release/net10.0/ReadmeApp.dll --urls http://127.0.0.1:0 > "$work/app.log" 2>&1 &
app_pid=$!

address=""
for _ in $(seq 1 300); do   # at most 30 s
  address="$(grep -o 'Now listening on: http://127\.0\.0\.1:[0-9]*' "$work/app.log" | head -n 1 | sed 's/Now listening on: //' || true)"
  [ -n "$address" ] && break
  kill -0 "$app_pid" 2>/dev/null || fail "the app exited before listening"
  sleep 0.1
done
[ -n "$address" ] || fail "the app did not print its address within 30 s"

status="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$address/orders" \
  -H 'content-type: application/json' -d '{"id":7,"item":"coffee"}')"
[ "$status" = "202" ] || fail "POST /orders answered $status, expected 202"

shipment=""
for _ in $(seq 1 100); do   # at most 10 s for the hosted handler to run
  shipment="$(curl -s -f "$address/orders/7" || true)"
  [ -n "$shipment" ] && break
  sleep 0.1
done
expected='{"orderId":7,"item":"coffee","attempt":1}'
[ "$shipment" = "$expected" ] || fail "GET /orders/7 answered '$shipment', expected '$expected'"

missing="$(curl -s -o /dev/null -w '%{http_code}' "$address/orders/8")"
[ "$missing" = "404" ] || fail "GET /orders/8 answered $missing, expected 404"

# A graceful stop: the host stops the handler and logs what it handled.
kill -TERM "$app_pid"
for _ in $(seq 1 300); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$app_pid" 2>/dev/null; then fail "the app did not stop within 30 s of SIGTERM"; fi
wait "$app_pid" && exit_code=0 || exit_code=$?
app_pid=""
[ "$exit_code" -eq 0 ] || fail "the app exited with $exit_code after SIGTERM"
grep -q "Handler ShipOrder stopped: 1 messages handled" "$work/app.log" || fail "the stop log line is missing"
[ -f orders.db ] || fail "the SQLite store orders.db was not created"

echo "readme-app: passed (POST $address/orders -> hosted handler -> GET $shipment; graceful stop logged)"
