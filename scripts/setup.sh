#!/bin/sh
# Install everything the pipeline and its tests need on Debian 12: system tools (apt) and a
# Python virtualenv in .venv with the project installed in editable mode. Idempotent.
# Run as root or with sudo available. Fedora/CentOS hosts: see README "Other hosts".
set -eu
cd "$(dirname "$0")/.."

APT_PACKAGES="
  make python3 python3-venv python3-pip git
  xorriso genisoimage isomd5sum isolinux syslinux syslinux-common syslinux-utils pxelinux
  qemu-system-x86 busybox-static cpio linux-image-cloud-amd64
  createrepo-c dnf rpm rpm2cpio rpmlint gcc flex
  drbd-utils lvm2 gfs2-utils util-linux iproute2 shellcheck bats libxml2-utils iptables hostname
  gnupg curl time iputils-ping tzdata
  dnsmasq-base binutils
  dosfstools fdisk mtools p7zip-full
"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $APT_PACKAGES
else
  echo "setup: no apt-get here; install the equivalents of: $APT_PACKAGES" >&2
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup: done (.venv ready; run 'make all' or 'make test')"
