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
  apache2-dev libldap2-dev libsasl2-dev rsync
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
# Cobbler 3.3 for tests/integration/test_cobbler.py, in its own venv: the project talks to it over
# XML-RPC only, and its wheel puts etc/ var/ usr/ into site-packages. Its dependencies mod_wsgi and
# python-ldap build from source (apache2-dev, libldap2-dev, libsasl2-dev above); about 20 s.
[ -x .venv-cobbler/bin/python ] || "$PY" -m venv .venv-cobbler
.venv-cobbler/bin/python -m pip install -q "cobbler==3.3.10"
echo "setup: done (.venv ready; run 'make all' or 'make test')"
