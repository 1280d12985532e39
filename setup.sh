#!/usr/bin/env bash
# Sets coach up on a Debian or Ubuntu machine: the system packages it needs, a virtual
# environment in .venv, and coach itself (editable, with the Piper neural voice and the test
# tools). Safe to run again: it installs only what is missing. Needs root or sudo only when a
# system package is missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
# System packages coach uses at run time or in its tests (espeak-ng: the system voice;
# sox and ffmpeg's ffprobe: tests read rendered audio and MP3 chapters back with them;
# libportaudio2: sounddevice's PortAudio, which PyPI's Linux wheels do not carry;
# libasound2-plugins: PortAudio's ALSA reaches a PulseAudio or PipeWire server through it;
# pulseaudio and pulseaudio-utils: the tests' private sound server with null sinks).
APT_PACKAGES=(espeak-ng sox ffmpeg libportaudio2 libasound2-plugins pulseaudio pulseaudio-utils)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ! command -v "$PYTHON" >/dev/null; then
  missing+=(python3 python3-venv)
elif ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3-venv)  # Debian splits venv's pip bootstrap into its own package
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "setup.sh: these system packages are missing and I am not root: ${missing[*]}" >&2
    echo "setup.sh: install them (apt-get install ${missing[*]}) or run me as root" >&2
    exit 1
  fi
  echo "setup.sh: installing system packages: ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: coach needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  echo "setup.sh: set PYTHON=/path/to/python3.11 and run me again" >&2
  exit 1
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --editable '.[neural,test]' >&2
echo "setup.sh: ready; coach is .venv/bin/coach" >&2
