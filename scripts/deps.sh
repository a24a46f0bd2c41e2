#!/usr/bin/env bash
# Installs the Debian packages RadGrid builds and tests with, when any is missing.
# Not root: prints the command to run instead.
set -euo pipefail

packages=(redis-server libhiredis-dev libsqlite3-dev libzstd-dev zlib1g-dev pkg-config zstd
  libjpeg62-turbo-dev libcharls-dev libopenjp2-7-dev libopenjph-dev dcmtk libgdcm-tools openjph-tools python3-pip
  chromium fonts-noto-cjk orthanc orthanc-dicomweb stunnel4 systemd libonnx-testdata prometheus)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
command="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "missing packages: ${missing[*]}" >&2
  echo "run as root:  apt-get update && $command" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$command
