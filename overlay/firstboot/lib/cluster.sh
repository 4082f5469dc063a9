# shellcheck shell=bash
# an-cluster-firstboot: bring back what an earlier step set up, after a reboot in the middle of the run.
#
# Steps 50-90 depend on the cluster stack being up: cman, DRBD primary, clvmd and the VG, the GFS2
# mount. After a power cut the node reboots and resumes at a later step; with storage.managed_by:
# rgmanager nothing starts DRBD/clvmd/GFS2 at boot, so each step first ensures (idempotently) what
# it stands on. None of these run a one-time command: they only start, attach, activate and mount.

# The rendered cluster.conf as staged: 50-cman installs it without <rm>, 90-rgmanager with it.
FB_STAGED_CLUSTER_CONF="${FB_STAGE}/etc/cluster/cluster.conf"

fb_config_version_of() {
    sed -n 's/.*<cluster[^>]*config_version="\([0-9][0-9]*\)".*/\1/p' "$1" | head -n 1
}

# fb_install_cluster_conf WHAT FILTER [ARG...]: /etc/cluster/cluster.conf (0640: it holds the fence
# passwords) becomes what FILTER prints, once ccs_config_validate (when installed) accepts it; WHAT
# names it in the refusal. Status 1 when the file held exactly that already.
fb_install_cluster_conf() {
    FB_CONF_WHAT="$1"
    shift
    FB_CHECK=_fb_cluster_conf_valid fb_update "$(fb_path /etc/cluster/cluster.conf)" 0640 "$@"
}

# cluster 3.0.12 ccs_config_validate: -f FILE checks a file against the schema (-l and -f together
# are refused, exit 255)
_fb_cluster_conf_valid() {
    command -v ccs_config_validate >/dev/null 2>&1 || return 0
    ccs_config_validate -f "$1" >/dev/null ||
        die "$FB_CONF_WHAT does not validate" "run 'ccs_config_validate -f $FB_STAGED_CLUSTER_CONF' to see why"
}

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

# fb_drbd_has_disk: the local half of the disk state is a disk (not Diskless, Failed or attaching).
fb_drbd_has_disk() {
    case "$(fb_drbd_dstate)" in UpToDate/* | Inconsistent/* | Outdated/* | Consistent/*) return 0 ;; esac
    return 1
}

# Bring the resource to what its configuration says, then wait (bounded) until it is connected.
# `drbdadm adjust` every time: it attaches a missing disk and connects a missing network (the same
# command the drbd init script runs), and does nothing to what is already as configured. A boot-time
# `drbd start` before the metadata existed leaves the resource Diskless but connecting; only a local
# disk will do (DRBD 8.3.7 user/drbdadm_adjust.c adm_adjust).
fb_drbd_up() {
    modprobe drbd
    local out
    out="$(drbdadm adjust "$AN_DRBD_RESOURCE" 2>&1)" || die "'drbdadm adjust $AN_DRBD_RESOURCE' failed: $out" \
        "check 'cat /proc/drbd' and /etc/drbd.d/$AN_DRBD_RESOURCE.res, then rerun 'an-cluster-firstboot run'"
    fb_drbd_has_disk || die "DRBD $AN_DRBD_RESOURCE has no local disk ($(fb_drbd_dstate)) after 'drbdadm adjust'" \
        "check that $AN_DRBD_BACKING exists and carries DRBD metadata ('drbdadm dump-md $AN_DRBD_RESOURCE'), see dmesg, then rerun 'an-cluster-firstboot run'"
    fb_wait "DRBD $AN_DRBD_RESOURCE to connect to $AN_PEER_NAME ($AN_PEER_SN_IP)" fb_drbd_connected
}

# How often a refused `drbdadm primary` is tried, one second apart: what DRBD's own boot-time
# `drbdadm sh-b-pri` does, because a role change is refused while another state change (the start of
# a resync, the peer's own role change) is under way (8.3.7 user/drbdadm_main.c sh_b_pri).
FB_DRBD_PRIMARY_TRIES=5

# fb_drbd_primary: make the resource Primary, retrying a refusal (bounded); stops the step if it stays refused.
fb_drbd_primary() {
    local try out
    for ((try = 1; ; try++)); do
        info "drbdadm primary $AN_DRBD_RESOURCE"
        out="$(drbdadm primary "$AN_DRBD_RESOURCE" 2>&1)" && return 0
        [ "$try" -lt "$FB_DRBD_PRIMARY_TRIES" ] || break
        warn "'drbdadm primary $AN_DRBD_RESOURCE' was refused (try $try of $FB_DRBD_PRIMARY_TRIES): $(printf '%s' "$out" | head -n 1); trying again in 1s"
        sleep 1
    done
    die "'drbdadm primary $AN_DRBD_RESOURCE' failed $FB_DRBD_PRIMARY_TRIES times ($(fb_drbd_cstate) $(fb_drbd_dstate)): $out" \
        "check 'cat /proc/drbd' on both nodes, then rerun 'an-cluster-firstboot run'"
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
            fb_drbd_primary
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
