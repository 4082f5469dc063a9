#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 90-rgmanager: the resource manager (seed: "Making VMs Highly Available").
#   - the full cluster.conf, with <rm> (failover domains, one <vm> per VM with live migration, the
#     storage services in rgmanager mode), is installed on both nodes with config_version bumped by
#     one above the one cman runs;
#   - each node announces on the shared GFS2 filesystem that it has the new file; once both have it,
#     the lowest nodeid activates it cluster-wide with `cman_tool version -r <N> -S` (cman 3.0.12:
#     -r needs the version; without -S it runs ccs_sync from ricci, which is not installed: the file
#     is already on both nodes); the peer waits for it;
#   - once this node's DRBD disk is UpToDate (the initial sync done: bounded wait) rgmanager on and
#     started, so no VM runs on a disk still being synced; `clustat` shows both nodes (bounded wait).
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
fb_step_init 90-rgmanager

SIGNAL_DIR="$(fb_path "$AN_GFS2_MOUNT")/.an-cluster/rm-config"

running_version() { cman_tool version 2>/dev/null | awk '{print $NF}'; }

# conf_as_version N: the staged cluster.conf (with <rm>) as config_version N
conf_as_version() { sed "s/\(<cluster[^>]*config_version=\"\)[0-9][0-9]*\"/\1${1}\"/" "$FB_STAGED_CLUSTER_CONF"; }

install_full_conf() {
    local target="$1"
    grep -q '<rm[ >/]' "$FB_STAGED_CLUSTER_CONF" || die "$FB_STAGED_CLUSTER_CONF has no <rm> section" "re-render the node files: cluster.conf carries the rgmanager configuration"
    if fb_install_cluster_conf "cluster.conf with <rm>" conf_as_version "$target"; then
        info "installed /etc/cluster/cluster.conf with <rm> as config_version $target"
    fi
}

peer_has_conf() { [ "$(cat "$SIGNAL_DIR/$AN_PEER_NAME" 2>/dev/null)" = "$1" ]; }
cluster_runs() { [ "$(running_version)" -ge "$1" ] 2>/dev/null; }

# Both members Online with rgmanager running on them (rgmanager 3.0.12 src/utils/clustat.c
# txt_member_state: "Online[, Local][, rgmanager|, RG-Master|, RG-Worker]"): a peer whose rgmanager
# is not up yet cannot take over a service.
clustat_shows_both() {
    local out rg="Online(, Local)?(, Estranged)?, (rgmanager|RG-Master|RG-Worker)"
    out="$(clustat 2>/dev/null)" || return 1
    printf '%s\n' "$out" | grep -q "Member Status: Quorate" || return 1
    printf '%s\n' "$out" | grep -Eq "^ *(${AN_NODE_FQDN//./\\.}|$AN_NODE_NAME) +[0-9]+ $rg" || return 1
    printf '%s\n' "$out" | grep -Eq "^ *(${AN_PEER_FQDN//./\\.}|$AN_PEER_NAME) +[0-9]+ $rg" || return 1
}

# rgmanager starts the VMs. Not on a disk still being synced (Inconsistent): if the peer failed before
# the initial sync ended, they would lose their storage. The sync of a large disk takes hours, hence
# a bound of its own (AN_FIRSTBOOT_SYNC_TIMEOUT, default one day); a timeout is a temporary failure,
# and the service tries again.
disk_uptodate() { case "$(fb_drbd_dstate)" in UpToDate/*) return 0 ;; esac; return 1; }
wait_disk_uptodate() {
    disk_uptodate && return 0
    info "DRBD $AN_DRBD_RESOURCE: $(fb_drbd_cstate) $(fb_drbd_dstate): rgmanager (and the VMs) wait for this node's initial sync"
    FB_TIMEOUT="${AN_FIRSTBOOT_SYNC_TIMEOUT:-86400}" fb_wait \
        "this node's DRBD disk to be UpToDate (initial sync from $AN_PEER_NAME; 'cat /proc/drbd' shows its progress)" disk_uptodate
}

main() {
    local staged target
    fb_ensure_cman
    fb_ensure_drbd_primary
    fb_ensure_vg_active
    fb_ensure_mounted
    # the full configuration goes in one config_version above the one 50-cman started cman with
    staged="$(fb_config_version_of "$FB_STAGED_CLUSTER_CONF")"
    [ -n "$staged" ] || die "no config_version in $FB_STAGED_CLUSTER_CONF" "restage the node files"
    target=$((staged + 1))
    if cluster_runs "$target"; then
        debug "cman already runs config_version $(running_version)"
    else
        install_full_conf "$target"
        mkdir -p "$SIGNAL_DIR"
        echo "$target" | fb_write_file "$SIGNAL_DIR/$AN_NODE_NAME" 0644
        if fb_is_lowest; then
            fb_wait "$AN_PEER_NAME to install cluster.conf version $target" peer_has_conf "$target"
            info "activating cluster.conf version $target: cman_tool version -r $target -S"
            cman_tool version -r "$target" -S || die "'cman_tool version -r $target -S' failed" "compare /etc/cluster/cluster.conf on both nodes, then rerun"
        fi
        fb_wait "the cluster to run cluster.conf version $target" cluster_runs "$target"
    fi
    wait_disk_uptodate
    chkconfig rgmanager on
    fb_service_start rgmanager
    fb_wait "clustat to show both nodes online with rgmanager" clustat_shows_both
    info "rgmanager running; services: ${AN_VMS:-none}"
}

main "$@"
