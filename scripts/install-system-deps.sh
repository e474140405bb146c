#!/usr/bin/env bash
# Installs what pip cannot: Debian's ffmpeg (with libass) and the fonts subtitles render with.
# Does nothing when they are already there; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(ffmpeg fontconfig fonts-dejavu-core fonts-noto-cjk)

have_all() {
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || return 1
  ffmpeg -hide_banner -filters 2>/dev/null | grep -q ' subtitles ' || return 1
  command -v fc-list >/dev/null 2>&1 || return 1
  fc-list | grep -q 'DejaVuSans.ttf' || return 1
  fc-list | grep -q 'NotoSansCJK' || return 1
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
