#!/usr/bin/env bash
# Give Dawn (npm `webgpu`) a Vulkan adapter on a machine without a GPU:
# Mesa's lavapipe (Vulkan on the CPU). Bookworm's own Mesa 22 is too old for
# Dawn; the one in bookworm-backports (Mesa 25) works.
#
#   sudo bash scripts/setup-webgpu.sh
#
# Idempotent: exits at once when an adapter is already found.
set -euo pipefail

cd "$(dirname "$0")/.."

# Prints the adapter's info and exits 0 when Dawn finds one, exits 1 otherwise.
probe() {
  node --input-type=module -e '
    import { create, globals } from "webgpu";
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const a = await gpu.requestAdapter();
    if (!a) process.exit(1);
    const i = a.info;
    console.log(`adapter: ${i.vendor} / ${i.architecture} / ${i.device} / ${i.description}`);
    // Dawn keeps native threads alive; leave explicitly.
    process.exit(0);
  ' 2>/dev/null
}

if [[ ! -d node_modules/webgpu ]]; then
  echo "node_modules/webgpu is missing: run npm install first (the probe uses it)" >&2
  exit 1
fi

if probe; then
  exit 0
fi

if [[ ! -r /etc/os-release ]] || ! grep -q '^ID=debian' /etc/os-release; then
  echo "No WebGPU adapter found, and this is not Debian: install a Vulkan driver" >&2
  echo "(Mesa's lavapipe, package mesa-vulkan-drivers, Mesa >= 24) by hand." >&2
  exit 1
fi
if [[ $EUID -ne 0 ]]; then
  echo "Run as root: sudo bash scripts/setup-webgpu.sh" >&2
  exit 1
fi

. /etc/os-release
backports="${VERSION_CODENAME}-backports"
src=/etc/apt/sources.list.d/debian.sources
dst=/etc/apt/sources.list.d/wgtorch-backports.sources

if ! grep -rqs "$backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  [[ -r $src ]] || { echo "$src not found: add $backports to apt by hand" >&2; exit 1; }
  # Copy this machine's own Debian stanza (the one listing the plain codename),
  # so mirror, keyring and components stay whatever the machine already trusts.
  awk -v code="$VERSION_CODENAME" -v bp="$backports" '
    BEGIN { RS = ""; ORS = "\n" }
    {
      n = split($0, lines, "\n"); hit = 0
      for (i = 1; i <= n; i++)
        if (lines[i] ~ /^Suites:/) {
          m = split(lines[i], w, /[ \t]+/)
          for (j = 2; j <= m; j++) if (w[j] == code) hit = 1
        }
      if (!hit) next
      for (i = 1; i <= n; i++)
        print (lines[i] ~ /^Suites:/ ? "Suites: " bp : lines[i])
      exit
    }' "$src" > "$dst.tmp"
  if [[ ! -s $dst.tmp ]]; then
    rm -f "$dst.tmp"
    echo "No stanza with Suites: $VERSION_CODENAME in $src" >&2
    exit 1
  fi
  mv "$dst.tmp" "$dst"
  echo "added $dst"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y -t "$backports" mesa-vulkan-drivers libvulkan1

if ! probe; then
  echo "Installed lavapipe, but Dawn still finds no adapter." >&2
  exit 1
fi
