#!/usr/bin/env bash
# Packs every package and proves that each one works from its .nupkg alone, with nothing coming from a
# project reference:
#   1. `dotnet pack` the solution into artifacts/packages, and check each package's metadata and files;
#   2. for each library package, a fresh project (`dotnet new console`, or `dotnet new xunit` for
#      MessageQueue.Testing) in a temporary directory outside the repository, with a nuget.config that adds
#      the packed folder to the machine's sources, `dotnet add package <id> --version <packed version>`,
#      the example from that package's README.md as the program, run, and its output compared with the
#      output the README shows;
#   3. the `mq` tool installed from the packed folder into a tool path, `mq demo` run twice (the second
#      run catches up on what the first left in its store) and `mq inspect` on the store.
#
# Usage: eng/check-packages.sh     (from anywhere; needs the .NET 10 SDK and unzip)
# Exit status 0 when every check passed; non-zero, with the failing step's log, otherwise.
set -euo pipefail

source "$(dirname "$0")/lib/packages.sh"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "packages: FAILED: $*" >&2; exit 1; }
show_and_fail() { sed 's/^/  | /' "$1" >&2; fail "$2"; }

# id, kind (lib or tool); every packable project must be listed here.
expected_packages=(
  "MessageQueue lib"
  "MessageQueue.DependencyInjection lib"
  "MessageQueue.Sqlite lib"
  "MessageQueue.Testing lib"
  "MessageQueue.RabbitMQ lib"
  "MessageQueue.Cli tool"
)

# ------------------------------------------------------------------ 1. pack, and check what was packed
pack_all "$work/pack.log" || show_and_fail "$work/pack.log" "dotnet pack"
version="$(package_version)"
[ -n "$version" ] || fail "could not read the package version"

packed=$(find "$packages" -maxdepth 1 -name '*.nupkg' | wc -l)
[ "$packed" -eq "${#expected_packages[@]}" ] \
  || fail "dotnet pack made $packed packages, expected ${#expected_packages[@]}: $(ls "$packages")"

for entry in "${expected_packages[@]}"; do
  read -r id kind <<< "$entry"
  nupkg="$packages/$id.$version.nupkg"
  snupkg="$packages/$id.$version.snupkg"
  [ -f "$nupkg" ] || fail "$id: $nupkg is missing"
  [ -f "$snupkg" ] || fail "$id: the symbol package $snupkg is missing"
  nuspec="$(unzip -p "$nupkg" "$id.nuspec")"
  files="$(unzip -Z1 "$nupkg")"
  for field in "<id>$id</id>" "<version>$version</version>" '<license type="expression">MIT</license>' \
               '<readme>README.md</readme>' '<authors>' '<description>' '<tags>' '<projectUrl>' '<repository type="git"'; do
    grep -qF "$field" <<< "$nuspec" || fail "$id: the nuspec lacks $field"
  done
  grep -qx 'README.md' <<< "$files" || fail "$id: README.md is not in the package"
  if [ "$kind" = lib ]; then
    grep -qx "lib/net10.0/$id.dll" <<< "$files" || fail "$id: lib/net10.0/$id.dll is not in the package"
    grep -qx "lib/net10.0/$id.xml" <<< "$files" || fail "$id: the XML documentation is not in the package"
    # Listings and entries are read whole before grep -q looks at them: under pipefail, a grep -q that stops at
    # its first match can kill the producer with SIGPIPE, and the pipeline then fails although the match was there.
    symbols="$(unzip -Z1 "$snupkg")"
    grep -qx "lib/net10.0/$id.pdb" <<< "$symbols" || fail "$id: the symbol package has no $id.pdb"
    # Every library's public surface is tracked by PublicApiAnalyzers (src/Directory.Build.props): both files
    # exist, start with #nullable enable, and the project, as MSBuild evaluates it, references the analyzer and
    # hands it both files. The analyzer is a build-time tool, so the package must not depend on it.
    for api_file in PublicAPI.Shipped.txt PublicAPI.Unshipped.txt; do
      [ -f "$repo/src/$id/$api_file" ] || fail "$id: src/$id/$api_file is missing (see eng/update-public-api.sh)"
      [ "$(head -n 1 "$repo/src/$id/$api_file")" = "#nullable enable" ] \
        || fail "$id: src/$id/$api_file does not start with #nullable enable"
    done
    items="$(dotnet msbuild "$repo/src/$id/$id.csproj" -getItem:PackageReference -getItem:AdditionalFiles -p:Configuration=Release)"
    grep -qF '"Identity": "Microsoft.CodeAnalysis.PublicApiAnalyzers"' <<< "$items" \
      || fail "$id: the project does not reference Microsoft.CodeAnalysis.PublicApiAnalyzers"
    for api_file in PublicAPI.Shipped.txt PublicAPI.Unshipped.txt; do
      grep -qF "/src/$id/$api_file\"" <<< "$items" || fail "$id: src/$id/$api_file is not an AdditionalFiles item of the project"
    done
    if grep -qF 'Microsoft.CodeAnalysis.PublicApiAnalyzers' <<< "$nuspec"; then
      fail "$id: the package depends on Microsoft.CodeAnalysis.PublicApiAnalyzers (it needs PrivateAssets=\"all\")"
    fi
    if [ "${CI:-}" = "true" ]; then
      # ContinuousIntegrationBuild maps the build's paths to /_/, so the assembly names no build machine's
      # folders: its debug directory points at /_/src/<id>/obj/.../<id>.pdb.
      unzip -p "$nupkg" "lib/net10.0/$id.dll" > "$work/$id.dll"
      grep -aqF "/_/src/$id/obj/" "$work/$id.dll" \
        || fail "$id: the assembly was not built with ContinuousIntegrationBuild (its PDB path is not mapped to /_/)"
      if grep -aqF "$repo/" "$work/$id.dll"; then
        fail "$id: the assembly contains the build machine's path $repo/"
      fi
    fi
  else
    grep -qF '<packageType name="DotnetTool" />' <<< "$nuspec" || fail "$id: not a .NET tool package"
    grep -qx "tools/net10.0/any/DotnetToolSettings.xml" <<< "$files" || fail "$id: DotnetToolSettings.xml is missing"
    tool_settings="$(unzip -p "$nupkg" tools/net10.0/any/DotnetToolSettings.xml)"
    grep -qF 'Command Name="mq"' <<< "$tool_settings" \
      || fail "$id: the tool's command is not mq"
  fi
done
echo "packages: packed ${#expected_packages[@]} packages, version $version, each with README, MIT licence, repository, XML docs and a .snupkg"

# ------------------------------------------------------------------ 2. each library package's README example
use_consumer_cache
write_nuget_config "$work"

# The first ```<lang> block under "## Example" of a README, verbatim.
example_block() {
  awk -v lang="$2" '
    /^## Example/ { section = 1; next }
    section && /^## / { exit }
    section && !inside && $0 == "```" lang { inside = 1; next }
    inside && $0 == "```" { exit }
    inside { print }
  ' "$1"
}

# Every line the README shows must appear in the output, in that order; "exact" also allows no other line.
compare_output() {
  local expected="$1" actual="$2" mode="$3" name="$4"
  if [ "$mode" = exact ]; then
    diff -u "$expected" "$actual" > "$work/$name.diff" || show_and_fail "$work/$name.diff" "$name: the output differs from the README's"
    return
  fi
  local at=0 line
  while IFS= read -r line; do
    local found
    found="$(tail -n "+$((at + 1))" "$actual" | grep -nF -- "$line" | head -n 1 | cut -d: -f1 || true)"
    [ -n "$found" ] || { echo "expected, in order: $line" >> "$work/$name.missing"; cat "$actual" >> "$work/$name.missing"; show_and_fail "$work/$name.missing" "$name: the output lacks a line the README shows"; }
    at=$((at + found))
  done < "$expected"
}

# package id, template, output check, extra packages (id@version)
examples=(
  "MessageQueue console exact"
  "MessageQueue.DependencyInjection console in-order Microsoft.Extensions.Hosting@10.0.14"
  "MessageQueue.Sqlite console exact"
  "MessageQueue.Testing xunit in-order"
  "MessageQueue.RabbitMQ console exact"
)

# The RabbitMQ example needs a server on 127.0.0.1:5672 (eng/rabbitmq.sh start); .ci/run starts one, and with
# CI=true a missing server is a failure. Elsewhere that example is skipped, saying so.
rabbitmq_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

for entry in "${examples[@]}"; do
  read -r id template mode extras <<< "$entry"
  if [ "$id" = MessageQueue.RabbitMQ ] && [ "${CI:-}" != "true" ] && ! rabbitmq_answers; then
    echo "packages: $id: README example skipped: no RabbitMQ server on 127.0.0.1:5672 (start one with eng/rabbitmq.sh start)"
    continue
  fi
  readme="$repo/src/$id/README.md"
  name="Uses${id//./}"
  dir="$work/$name"
  example_block "$readme" csharp > "$work/$name.cs"
  example_block "$readme" text > "$work/$name.expected"
  [ -s "$work/$name.cs" ] || fail "$id: no csharp block under '## Example' in $readme"
  [ -s "$work/$name.expected" ] || fail "$id: no text block (the expected output) under '## Example' in $readme"

  dotnet new "$template" -n "$name" -o "$dir" > "$work/$name.log" 2>&1 || show_and_fail "$work/$name.log" "$id: dotnet new $template"
  if [ "$template" = xunit ]; then
    rm -f "$dir"/UnitTest1.cs
    cp "$work/$name.cs" "$dir/ExampleTests.cs"
  else
    cp "$work/$name.cs" "$dir/Program.cs"
  fi
  (cd "$dir" && dotnet add package "$id" --version "$version") >> "$work/$name.log" 2>&1 \
    || show_and_fail "$work/$name.log" "$id: dotnet add package $id --version $version"
  for extra in $extras; do
    (cd "$dir" && dotnet add package "${extra%@*}" --version "${extra#*@}") >> "$work/$name.log" 2>&1 \
      || show_and_fail "$work/$name.log" "$id: dotnet add package ${extra%@*}"
  done
  grep -q "ProjectReference" "$dir/$name.csproj" && fail "$id: the consumer project has a project reference"

  if [ "$template" = xunit ]; then
    (cd "$dir" && dotnet test -c Release -nologo) > "$work/$name.out" 2>&1 \
      || show_and_fail "$work/$name.out" "$id: the README's tests did not pass"
  else
    (cd "$dir" && dotnet build -c Release -nologo -v quiet) >> "$work/$name.log" 2>&1 \
      || show_and_fail "$work/$name.log" "$id: the README example does not build against the package"
    (cd "$dir" && dotnet "bin/Release/net10.0/$name.dll") > "$work/$name.out" 2>&1 \
      || show_and_fail "$work/$name.out" "$id: the README example exited with an error"
  fi
  # The assembly came from the package in the consumer cache, not from the repository.
  [ -f "$NUGET_PACKAGES/${id,,}/$version/lib/net10.0/$id.dll" ] || fail "$id: $version was not restored from the packed folder"
  compare_output "$work/$name.expected" "$work/$name.out" "$mode" "$name"
  echo "packages: $id: dotnet new $template + dotnet add package $id $version; the README example ran and printed what the README shows"
done

# ------------------------------------------------------------------ 3. the mq tool
dotnet tool install MessageQueue.Cli --version "$version" --tool-path "$work/tools" --add-source "$packages" \
  > "$work/tool.log" 2>&1 || show_and_fail "$work/tool.log" "dotnet tool install MessageQueue.Cli"
mkdir -p "$work/demo"
(cd "$work/demo" && "$work/tools/mq" demo) > "$work/demo1.out" 2>&1 || show_and_fail "$work/demo1.out" "mq demo (first run) exited non-zero"
(cd "$work/demo" && "$work/tools/mq" demo) > "$work/demo2.out" 2>&1 || show_and_fail "$work/demo2.out" "mq demo (second run) exited non-zero"
demo2="$(tr -s ' \n' ' ' < "$work/demo2.out")"
grep -qF "caught up on 6 of 6 kept by the last run" <<< "$demo2" \
  || show_and_fail "$work/demo2.out" "mq demo (second run) did not catch up on the 6 messages the first run kept"
(cd "$work/demo" && "$work/tools/mq" inspect mq-demo.db) > "$work/inspect.out" 2>&1 \
  || show_and_fail "$work/inspect.out" "mq inspect exited non-zero"
grep -qF "audit" "$work/inspect.out" || show_and_fail "$work/inspect.out" "mq inspect does not show the durable subscription 'audit'"
echo "packages: mq $version installed with dotnet tool install --tool-path; mq demo passed twice (the second run caught up across the restart); mq inspect read the store"
