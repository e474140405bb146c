#!/usr/bin/env bash
# Installs what pip cannot: Debian's ffmpeg (with libass) and the fonts subtitles render with,
# and curl and jq, which the README's HTTP API examples (run by a test) use.
# Does nothing when they are already there; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(ffmpeg fontconfig fonts-dejavu-core fonts-noto-cjk curl jq)

have_all() {
  # Capture first: `producer | grep -q` under pipefail fails when grep exits early (SIGPIPE).
  local filters fonts
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || return 1
  command -v fc-list >/dev/null 2>&1 || return 1
  command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 || return 1
  filters=$(ffmpeg -hide_banner -filters 2>/dev/null) || return 1
  fonts=$(fc-list 2>/dev/null) || return 1
  grep -q ' subtitles ' <<<"$filters" || return 1
  grep -q 'DejaVuSans.ttf' <<<"$fonts" || return 1
  grep -q 'NotoSansCJK' <<<"$fonts" || return 1
}

if have_all; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "vidp: ffmpeg with libass and the fonts are missing, and installing them needs root." >&2
  echo "      run: sudo apt-get install ${packages[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "vidp: no apt-get here; install ffmpeg (with libass), fontconfig, DejaVu and Noto CJK fonts." >&2
  exit 1
fi

echo "installing ${packages[*]} (Debian packages)..."
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
have_all || { echo "vidp: ffmpeg or fonts still missing after install" >&2; exit 1; }
