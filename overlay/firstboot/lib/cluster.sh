# shellcheck shell=bash
# an-cluster-firstboot: bring back what an earlier step set up, after a reboot in the middle of the run.
#
# Steps 50-90 depend on the cluster stack being up: cman, DRBD primary, clvmd and the VG, the GFS2
# mount. After a power cut the node reboots and resumes at a later step; with storage.managed_by:
# rgmanager nothing starts DRBD/clvmd/GFS2 at boot, so each step first ensures (idempotently) what
# it stands on. None of these run a one-time command: they only start, attach, activate and mount.

# Our Xen files (the kickstart installed them before xend ever started; 30-xen checks them) are
# what xend reads at its start: xend-config.sxp and the network script it names.
FB_XEN_FILES="etc/xen/xend-config.sxp etc/xen/scripts/an-network-script"

fb_xen_files_in_place() {
    local rel
    for rel in $FB_XEN_FILES; do
        cmp -s "$FB_STAGE/$rel" "$(fb_path "/$rel")" || return 1
    done
}

# xend up, with our files, before cman: its network script (Xen 4.0.1 network-bridge op_start)
# takes each bridged NIC down to move its address to the bridge, which totem would not survive.
# Never a (re)start of xend under a running cman: the peer fences this node (seed).
fb_ensure_xend() {
    fb_xen_files_in_place || die "/etc/xen/xend-config.sxp or the network script differs from the staged one" \
        "'an-cluster-firstboot reset 30-xen && an-cluster-firstboot run' puts them in place"
    fb_service_running xend && return 0
    if fb_service_running cman; then
        die "xend is not running but cman is: starting xend now would take the bridged NICs down under cman (the peer fences this node)" \
            "reboot: at boot xend (S12) builds its bridges before cman (S14); then 'an-cluster-firstboot run'"
    fi
    info "starting xend: its network script builds the bridges now, before cman"
    service xend start || die "'service xend start' failed" "see /var/log/xen/xend.log, fix the cause, then rerun 'an-cluster-firstboot run'"
}

fb_ensure_cman() {
    fb_service_running cman || fb_ensure_xend
    fb_service_start cman
}

fb_drbd_cstate() { drbdadm cstate "$AN_DRBD_RESOURCE" 2>/dev/null | head -n 1; }
fb_drbd_dstate() { drbdadm dstate "$AN_DRBD_RESOURCE" 2>/dev/null | head -n 1; }
fb_drbd_role() { drbdadm role "$AN_DRBD_RESOURCE" 2>/dev/null | head -n 1; }

fb_drbd_connected() {
    case "$(fb_drbd_cstate)" in Connected | SyncSource | SyncTarget | PausedSyncS | PausedSyncT | WFBitMapS | WFBitMapT) return 0 ;; esac
    return 1
}

# Attach and connect the resource if it is down, then wait (bounded) until it is connected.
fb_drbd_up() {
    modprobe drbd
    case "$(fb_drbd_cstate)" in
        "" | Unconfigured)
            info "drbdadm up $AN_DRBD_RESOURCE"
            drbdadm up "$AN_DRBD_RESOURCE" || die "'drbdadm up $AN_DRBD_RESOURCE' failed" \
                "check 'cat /proc/drbd' and /etc/drbd.d/$AN_DRBD_RESOURCE.res, then rerun 'an-cluster-firstboot run'"
            ;;
        StandAlone)
            drbdadm connect "$AN_DRBD_RESOURCE" || true
            ;;
    esac
    fb_wait "DRBD $AN_DRBD_RESOURCE to connect to $AN_PEER_NAME ($AN_PEER_SN_IP)" fb_drbd_connected
}

# After the initial sync was started (60-drbd): up, connected and primary again.
fb_ensure_drbd_primary() {
    fb_drbd_up
    case "$(fb_drbd_role)" in
        Primary/*) ;;
        *)
            case "$(fb_drbd_dstate)" in
                Inconsistent/Inconsistent | */DUnknown | "")
                    die "DRBD $AN_DRBD_RESOURCE has no UpToDate disk ($(fb_drbd_dstate)): not making it primary" \
                        "check 'cat /proc/drbd' on both nodes; 'an-cluster-firstboot reset 60-drbd' redoes the DRBD step"
                    ;;
            esac
            info "drbdadm primary $AN_DRBD_RESOURCE"
            drbdadm primary "$AN_DRBD_RESOURCE" || die "'drbdadm primary $AN_DRBD_RESOURCE' failed ($(fb_drbd_dstate))" \
                "check 'cat /proc/drbd' on both nodes, then rerun 'an-cluster-firstboot run'"
            ;;
    esac
}

fb_ensure_vg_active() {
    fb_service_start clvmd
    vgchange -a y "$AN_VG" >/dev/null || die "cannot activate volume group $AN_VG" "check 'vgs $AN_VG' and 'service clvmd status'"
}

fb_ensure_mounted() {
    mkdir -p "$(fb_path "$AN_GFS2_MOUNT")"
    fb_mounted "$AN_GFS2_MOUNT" && return 0
    info "mounting $AN_GFS2_MOUNT"
    mount "$AN_GFS2_MOUNT" || die "mounting $AN_GFS2_MOUNT failed" "check 'service cman status', 'service clvmd status' and dmesg"
}
