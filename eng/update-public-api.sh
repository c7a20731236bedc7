#!/usr/bin/env bash
# Brings each shipped library's PublicAPI.Unshipped.txt up to date with its code, as the analyzer's code fix
# would in an IDE (Microsoft.CodeAnalysis.PublicApiAnalyzers, wired in src/Directory.Build.props).
#
# It rebuilds the tracked projects with warnings left as warnings, then, for each project:
#   - RS0016 (a public symbol that no file declares): its line is added to PublicAPI.Unshipped.txt;
#   - RS0017 (a declared symbol that is gone): its line is removed from PublicAPI.Unshipped.txt, or, when
#     PublicAPI.Shipped.txt declares it, marked `*REMOVED*` in PublicAPI.Unshipped.txt (a breaking change).
# Lines stay sorted (ordinal) under `#nullable enable`. It repeats until the build reports neither, then prints
# any other RS00xx diagnostic (they need a decision in the code, not a line in a file) and exits non-zero if
# there is one.
#
#   eng/update-public-api.sh          after a deliberate API change; review the diff and commit it
#   eng/update-public-api.sh --ship   at a release: moves every Unshipped line into PublicAPI.Shipped.txt
#
# A new library starts with both files holding only `#nullable enable`; this script then fills its Unshipped file.
# Needs the .NET 10 SDK. Runs from anywhere.
set -euo pipefail

case "${1:-}" in
  "" | --ship) ;;
  *) echo "usage: eng/update-public-api.sh [--ship]" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
header='#nullable enable'

# The tracked projects: every project in src/ with a PublicAPI.Unshipped.txt beside it.
mapfile -t projects < <(cd "$repo" && find src -mindepth 2 -maxdepth 2 -name PublicAPI.Unshipped.txt -printf '%h\n' | sort)
[ "${#projects[@]}" -gt 0 ] || { echo "public API: no src/*/PublicAPI.Unshipped.txt found" >&2; exit 1; }

# Writes the header, then the given lines (a file) sorted and without duplicates, into $2.
write_sorted() {
  { echo "$header"; grep -v -x -e "$header" -e '' "$1" | LC_ALL=C sort -u || true; } > "$2.tmp"
  mv "$2.tmp" "$2"
}

if [ "${1:-}" = "--ship" ]; then
  for dir in "${projects[@]}"; do
    shipped="$repo/$dir/PublicAPI.Shipped.txt" unshipped="$repo/$dir/PublicAPI.Unshipped.txt"
    grep -v -x -e "$header" -e '' "$unshipped" > "$work/unshipped" || true
    # A *REMOVED* line takes its symbol out of Shipped; every other line goes in.
    sed -n 's/^\*REMOVED\*//p' "$work/unshipped" > "$work/removed"
    grep -v -x -F -f "$work/removed" "$shipped" > "$work/shipped" || true
    grep -v '^\*REMOVED\*' "$work/unshipped" >> "$work/shipped" || true
    write_sorted "$work/shipped" "$shipped"
    echo "$header" > "$unshipped"
    echo "public API: $dir: $(wc -l < "$work/unshipped") line(s) moved to PublicAPI.Shipped.txt"
  done
  exit 0
fi

# A solution filter with the tracked projects only, so that one rebuild compiles each of them once.
{
  echo '{ "solution": { "path": "'"$repo/MessageQueue.sln"'", "projects": ['
  for i in "${!projects[@]}"; do
    name="$(basename "${projects[$i]}")"
    printf '  "%s"%s\n' "${projects[$i]}/$name.csproj" "$([ "$i" -lt $((${#projects[@]} - 1)) ] && echo ,)"
  done
  echo '] } }'
} > "$work/public-api.slnf"

for round in 1 2 3; do
  # --no-incremental: the compiler, and so the analyzer, runs even where the outputs are up to date.
  # Errors (a broken build) are printed below; RS0016/RS0017 are warnings here, not errors.
  dotnet build "$work/public-api.slnf" -c Release --no-incremental -nologo -p:TreatWarningsAsErrors=false \
    > "$work/build.log" 2>&1 || true
  # One line per diagnostic and location: "<id>\t<project dir>\t<symbol>". A symbol declared in several files
  # (a partial type) is reported once per file, and the build repeats warnings in its summary: sort -u.
  sed -n -E "s#^.*: (warning|error) (RS0016|RS0017): Symbol '(.*)' (is not part of the declared public API|is part of the declared API, but is either not public or could not be found).* \[(.*)/[^/]*\.csproj(::[^]]*)?\]\$#\2\t\5\t\3#p" \
    "$work/build.log" | LC_ALL=C sort -u > "$work/changes"
  if [ ! -s "$work/changes" ]; then
    break
  fi
  for dir in "${projects[@]}"; do
    shipped="$repo/$dir/PublicAPI.Shipped.txt" unshipped="$repo/$dir/PublicAPI.Unshipped.txt"
    awk -F '\t' -v d="$repo/$dir" '$2 == d && $1 == "RS0016" { print $3 }' "$work/changes" > "$work/added"
    awk -F '\t' -v d="$repo/$dir" '$2 == d && $1 == "RS0017" { print $3 }' "$work/changes" > "$work/gone"
    [ -s "$work/added" ] || [ -s "$work/gone" ] || continue
    grep -v -x -F -f "$work/gone" "$unshipped" > "$work/lines" || true
    cat "$work/added" >> "$work/lines"
    # A shipped symbol that is gone stays in Shipped until the release, and Unshipped records its removal.
    grep -x -F -f "$work/gone" "$shipped" | sed 's/^/*REMOVED*/' >> "$work/lines" || true
    write_sorted "$work/lines" "$unshipped"
    echo "public API: $dir: $(wc -l < "$work/added") added, $(wc -l < "$work/gone") removed"
  done
done

if [ -s "$work/changes" ]; then
  echo "public API: the files still differ from the code after 3 rounds; the last build's log follows" >&2
  cat "$work/build.log" >&2
  exit 1
fi
others="$(grep -E ': (warning|error) RS00[0-9][0-9]:' "$work/build.log" | LC_ALL=C sort -u || true)"
errors="$(grep -E ': error [A-Z]+[0-9]+:' "$work/build.log" | LC_ALL=C sort -u || true)"
if [ -n "$others" ] || [ -n "$errors" ]; then
  printf '%s\n' "$others" "$errors" | sed '/^$/d' >&2
  echo "public API: the files are up to date, but the build reports the diagnostics above" >&2
  exit 1
fi
echo "public API: every PublicAPI.Unshipped.txt matches the code (${#projects[@]} projects)"
