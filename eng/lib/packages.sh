# Shared by eng/check-packages.sh and eng/check-readme-app.sh: pack the repository's packages and create
# fresh consumer projects that get them only from the packed .nupkg files, as a user's project would.
# Source it; it defines functions and sets `repo`. Needs the .NET 10 SDK.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
packages="$repo/artifacts/packages"

# The one version of every package, as the build computes it (src/Directory.Build.props).
package_version() {
  dotnet msbuild "$repo/src/MessageQueue/MessageQueue.csproj" -getProperty:Version -p:Configuration=Release
}

# Packs every packable project of the solution into artifacts/packages, replacing what was there.
pack_all() {
  local log="$1"
  rm -rf "$packages"
  dotnet pack "$repo/MessageQueue.sln" -c Release -nologo > "$log" 2>&1
}

# A private NuGet cache for the consumer projects. Packages are cached by id and version, so a cached
# copy of an earlier MessageQueue 0.1.0 would hide the one just packed: those are removed first, while the
# Microsoft.Extensions packages stay cached between runs. The user's own cache is never touched.
use_consumer_cache() {
  export NUGET_PACKAGES="${MQ_CONSUMER_NUGET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/messagequeue/consumer-packages}"
  mkdir -p "$NUGET_PACKAGES"
  rm -rf "$NUGET_PACKAGES"/messagequeue*
}

# Writes a nuget.config into a directory outside the repository (so that none of the repository's
# Directory.*.props apply): the packed folder, plus the sources the machine already uses.
write_nuget_config() {
  local dir="$1"
  cat > "$dir/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="messagequeue-local" value="$packages" />
  </packageSources>
</configuration>
CONFIG
}
