#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 30-xen: make this node a clustered Xen dom0 (seed: "Setting Up Xen", "Disabling Automatic Kernel
# Updates", "Configure Networking", "Enabling Migration"):
#   - grub: a Xen entry (xen.gz + the dom0 kernel as a module) exists and is the default;
#   - yum: exclude=kernel* so no update replaces the dom0 kernel the DRBD module was built for;
#   - /etc/xen/scripts/an-network-script turns every bridged NIC into a bridge, named in xend-config.sxp;
#   - the libvirt default network (virbr0) is removed;
#   - xend's relocation server is on (or off, per definition) and only accepts the peer.
# The new kernel takes effect at the next boot; xend starts with our files in 50-cman, before cman.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
fb_step_init 30-xen

# grub_with_xen GRUB_CONF: GRUB_CONF with a Xen entry (added if missing: built from the dom0 kernel's
# own entry, so root= and rd_MD_UUID= stay this install's) as the default.
grub_with_xen() {
    local body err
    body="$(fb_mktemp)"
    err="$(fb_mktemp)"
    if ! awk -v kver="$AN_XEN_DOM0_KERNEL" -v mem="$AN_XEN_DOM0_MEM" -v xver="$AN_XEN_VERSION" '
        function flush() { if (ntitle > 0) { has_xen[ntitle] = cur_xen } }
        { lines[NR] = $0 }
        /^[ \t]*title[ \t]/ { flush(); ntitle++; cur_xen = 0; start[ntitle] = NR; next }
        ntitle > 0 && /^[ \t]*kernel[ \t]+[^ \t]*xen[^ \t]*\.gz/ { cur_xen = 1 }
        ntitle > 0 && /^[ \t]*root[ \t]/ { rootl[ntitle] = $0 }
        ntitle > 0 && /^[ \t]*kernel[ \t]/ && index($2, "vmlinuz-" kver) { dom0 = ntitle; kpath = $2; kargs = ""; for (i = 3; i <= NF; i++) kargs = kargs " " $i }
        ntitle > 0 && /^[ \t]*initrd[ \t]/ { initrd[ntitle] = $2 }
        /^[ \t]*default[ \t]*=/ { defline = NR }
        END {
            flush()
            xen = 0
            for (t = 1; t <= ntitle; t++) if (has_xen[t]) { xen = t; break }
            add = 0
            if (!xen) {
                if (!dom0) { print "no grub entry boots the dom0 kernel vmlinuz-" kver > "/dev/stderr"; exit 3 }
                add = 1; xen = ntitle + 1
                prefix = kpath; sub(/vmlinuz-.*/, "", prefix)
            }
            for (i = 1; i <= NR; i++) {
                if (i == defline) { print "default=" (xen - 1); continue }
                print lines[i]
            }
            if (!defline) { }
            if (add) {
                print "title Xen " xver ", Linux " kver
                if (rootl[dom0] != "") print rootl[dom0]
                print "\tkernel " prefix "xen.gz dom0_mem=" mem
                print "\tmodule " kpath kargs
                if (initrd[dom0] != "") print "\tmodule " initrd[dom0]
            }
            if (!defline) print "default=" (xen - 1) > "/dev/stderr"
        }' "$1" >"$body" 2>"$err"; then
        die "cannot set up grub's Xen entry: $(cat "$err")" "install the dom0 kernel ${AN_XEN_DOM0_KERNEL} and xen-hypervisor, then rerun"
    fi
    # grub.conf had no default= line: awk printed one (to stderr) to put at the top
    cat "$err" "$body"
}

grub_xen_entry() {
    local conf="$1"
    [ -f "$conf" ] || die "$conf not found" "is grub installed? the Xen entry needs /boot/grub/grub.conf"
    if fb_update "$conf" 0600 grub_with_xen "$conf"; then
        info "grub: the Xen $AN_XEN_VERSION entry with dom0 kernel $AN_XEN_DOM0_KERNEL is the default"
    fi
}

yum_exclude_kernel() {
    local conf
    conf="$(fb_path /etc/yum.conf)"
    [ -f "$conf" ] || die "$conf not found" "is yum installed?"
    if grep -Eq '^exclude=.*kernel\*' "$conf"; then return 0; fi
    if grep -q '^exclude=' "$conf"; then
        fb_rewrite "$conf" 0644 sed 's/^exclude=\(.*\)$/exclude=\1 kernel*/' "$conf"
    else
        echo 'exclude=kernel*' >>"$conf"
    fi
    info "yum: exclude=kernel* (the DRBD module is built for kernel $AN_XEN_DOM0_KERNEL)"
}

# The rendered xend-config.sxp (relocation restricted to the peer, the network script) and
# an-network-script (one bridge per bridged NIC) are the only source of those settings. The
# kickstart installed both before xend ever started; here they are checked (and put in place if
# the install did not). xend reads them only at its start: never under a running xend.
xen_files() {
    local rel mode
    [ -f "$(fb_path /etc/xen/xend-config.sxp)" ] || die "/etc/xen/xend-config.sxp not found" "install the xen package from the an-cluster repository, then rerun"
    for rel in $FB_XEN_FILES; do
        [ -f "$FB_STAGE/$rel" ] || die "$rel is not staged" "restage the node files (see docs/firstboot.md) and rerun"
        cmp -s "$FB_STAGE/$rel" "$(fb_path "/$rel")" && continue
        if fb_service_running xend; then
            die "xend is running with another /$rel than the staged one" \
                "reboot (xend is off until 40-init-order; at boot it starts before cman), or stop xend while cman is stopped, then rerun"
        fi
        mode=0644
        case "$rel" in */scripts/*) mode=0755 ;; esac
        warn "/$rel was not installed by the kickstart: installing it now"
        fb_install_staged "$rel" "$mode"
    done
}

remove_virbr0() {
    local net autostart
    net="$(fb_path /etc/libvirt/qemu/networks/default.xml)"
    autostart="$(fb_path /etc/libvirt/qemu/networks/autostart/default.xml)"
    if [ -s "$net" ]; then
        : >"$net"
        info "libvirt: emptied the default network (virbr0)"
    fi
    rm -f "$autostart"
    if command -v virsh >/dev/null 2>&1; then
        virsh net-destroy default >/dev/null 2>&1 || true
    fi
}

main() {
    grub_xen_entry "$(fb_path /boot/grub/grub.conf)"
    yum_exclude_kernel
    xen_files
    remove_virbr0
}

main "$@"
