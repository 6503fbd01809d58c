#!/usr/bin/env bash
# Checks the packages as a .NET user gets them: packs VmmSharp, VmmSharp.Guests and the vmm tool (VmmSharp.Cli,
# a .NET 10 RID-specific NativeAOT tool: a pointer package plus VmmSharp.Cli.linux-x64) into a local folder
# feed, checks the libraries' nuspec (id, version, MIT licence, README, repository type), installs the tool
# from that feed alone into a temporary tool path and runs `vmm --version` and `vmm info`.
# Usage: scripts/pack-check.sh   (one NativeAOT build; needs unzip, and /dev/kvm for `vmm info`)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'pack-check: %s\n' "$*" >&2; }
die() { printf 'pack-check: error: %s\n' "$*" >&2; exit 1; }
command -v unzip >/dev/null 2>&1 || die "unzip is needed to read the packages (apt-get install unzip)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
version="$(dotnet msbuild src/VmmSharp/VmmSharp.csproj -getProperty:Version)"
[[ -n "$version" ]] || die "no Version in Directory.Build.props"
say "version $version"

# The solution packs what is packable: VmmSharp, VmmSharp.Guests and the tool's pointer package VmmSharp.Cli.
say "packing the solution (the libraries and the vmm tool's pointer package)"
dotnet pack VmmSharp.slnx -c Release -o "$feed" -v quiet -nologo
say "packing the vmm tool's NativeAOT linux-x64 package"
# A publish directory of its own, so that nothing an earlier publish left there ends up in the package.
dotnet pack src/VmmSharp.Cli -c Release -r linux-x64 -o "$feed" -v quiet -nologo -p:PublishDir="$work/publish/"

# check_nuspec ID: the package's nuspec names its id, version, licence, README and repository, and the README is in it.
check_nuspec() {
    local id="$1" nupkg="$feed/$1.$version.nupkg" nuspec
    [[ -f "$nupkg" ]] || die "$nupkg was not made"
    nuspec="$(unzip -p "$nupkg" "$id.nuspec")"
    grep -q "<id>$id</id>" <<<"$nuspec" || die "$id: nuspec has no <id>$id</id>"
    grep -q "<version>$version</version>" <<<"$nuspec" || die "$id: nuspec version is not $version"
    grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || die "$id: nuspec has no MIT licence expression"
    grep -q '<readme>README.md</readme>' <<<"$nuspec" || die "$id: nuspec names no README"
    grep -q '<repository type="git"' <<<"$nuspec" || die "$id: nuspec has no repository type"
    grep -q '<description>.\+</description>' <<<"$nuspec" || die "$id: nuspec has no description"
    # The listing in a variable: grep -q ends early, and unzip's SIGPIPE would fail the pipeline under pipefail.
    local files
    files="$(unzip -l "$nupkg")"
    grep -q ' README.md$' <<<"$files" || die "$id: README.md is not in the package"
    say "$id $version: nuspec has version, MIT licence, README, repository, description"
}
check_nuspec VmmSharp
check_nuspec VmmSharp.Guests
tool_files="$(unzip -l "$feed/VmmSharp.Cli.linux-x64.$version.nupkg")"
grep -q 'tools/any/linux-x64/vmm$' <<<"$tool_files" || die "VmmSharp.Cli.linux-x64 holds no native vmm"

# Only the local feed, and a package cache of its own, so the tool comes from what was just packed.
cat >"$work/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
  </packageSources>
</configuration>
CONFIG
say "installing the vmm tool from the local feed"
NUGET_PACKAGES="$work/packages" dotnet tool install VmmSharp.Cli --version "$version" \
    --tool-path "$work/tools" --configfile "$work/nuget.config" >/dev/null
[[ -x "$work/tools/vmm" ]] || die "the tool installed no vmm command"

shown="$("$work/tools/vmm" --version)"
[[ "$shown" == "$version" || "$shown" == "$version+"* ]] || die "vmm --version says '$shown', not $version"
say "vmm --version: $shown"
"$work/tools/vmm" info
say "ok: VmmSharp $version packs with its metadata; the vmm tool installs from a local feed and runs"
