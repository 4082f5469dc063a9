#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 60-drbd: the replicated block device, dual-primary (seed: "Building the DRBD Array").
#   - the backing device exists: the kickstart makes the RAID1 md; if it is not there, it is assembled,
#     or created from the one unused partition of each disk (only partitions with no signature at all);
#   - the rendered drbd.conf / global_common.conf / <resource>.res installed and parsed by drbdadm;
#   - `drbdadm create-md` only when the backing device carries no signature at all (otherwise refuse);
#   - `drbdadm adjust` (every run: it attaches a missing disk; a local disk is required), bounded wait
#     until connected, the sync rate from the definition;
#   - the lowest nodeid alone runs `drbdadm -- --overwrite-data-of-peer primary`, once ever: only while
#     both disks are still Inconsistent/Inconsistent (a rerun sees UpToDate and skips it);
#   - the peer waits until that initial sync has started, then both become primary (a refused
#     `drbdadm primary` is tried again, 5 times, as DRBD's own sh-b-pri does);
#   - storage.managed_by: init: drbd on at boot, only now that the metadata exists.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
fb_step_init 60-drbd

RES="$AN_DRBD_RESOURCE"

backing_present() { [ -b "$(fb_path "$AN_DRBD_BACKING")" ]; }

# backing_member DISK: MEMBER becomes the unused partition of DISK the backing RAID1 is made of (empty
# when there is none): the largest one that carries no signature at all and is not an md member (the
# kickstart leaves it unformatted: the same rule as its %post). A failed probe stops the step, so
# this runs in the step's shell, not in $(...).
backing_member() {
    local disk="$1" part dev size sigs best_size=0
    MEMBER=""
    for part in "$(fb_path "/sys/block/$disk")/$disk"*; do
        [ -e "$part/size" ] || continue
        dev="/dev/${part##*/}"
        size="$(cat "$part/size")"
        [ "$size" -gt 2048 ] || continue                      # extended partition
        sigs="$(fb_signatures "$(fb_path "$dev")")" || fb_probe_failed "mdadm --create $AN_DRBD_BACKING" "$dev" "$sigs"
        [ -z "$sigs" ] || continue
        if mdadm --examine "$(fb_path "$dev")" >/dev/null 2>&1; then continue; fi
        if [ "$size" -gt "$best_size" ]; then MEMBER="$dev"; best_size="$size"; fi
    done
}

create_md() {
    local disk members="" n=0
    for disk in $AN_INSTALL_DISKS; do
        backing_member "$disk"
        [ -n "$MEMBER" ] || die "no unused partition on $disk for the RAID1 $AN_DRBD_BACKING" \
            "every partition of $disk carries a signature or belongs to an array; create $AN_DRBD_BACKING yourself and rerun"
        members="$members $MEMBER"
        n=$((n + 1))
    done
    fb_intent_set md-create "$AN_DRBD_BACKING:$members"
    info "creating RAID1 $AN_DRBD_BACKING from$members (they carried no signature)"
    local paths=() m
    for m in $members; do paths+=("$(fb_path "$m")"); done
    mdadm --create "$(fb_path "$AN_DRBD_BACKING")" --run --level=1 --raid-devices="$n" --metadata=1.2 \
        --homehost=localhost.localdomain "${paths[@]}" </dev/null
    mdadm --detail --brief "$(fb_path "$AN_DRBD_BACKING")" >>"$(fb_path /etc/mdadm.conf)"
}

ensure_backing() {
    backing_present && return 0
    case "$AN_DRBD_BACKING" in
        /dev/md*)
            info "$AN_DRBD_BACKING is not running: assembling RAID arrays"
            mdadm --assemble --scan >/dev/null 2>&1 || true
            backing_present && return 0
            if [ "${AN_INSTALL_RAID:-no}" = yes ]; then
                create_md
            fi
            ;;
    esac
    backing_present || die "DRBD backing device $AN_DRBD_BACKING does not exist" \
        "create it (RAID1: 'mdadm --create $AN_DRBD_BACKING --level=1 --raid-devices=2 <the two unused partitions>', then 'mdadm --detail --brief $AN_DRBD_BACKING >> /etc/mdadm.conf') and rerun 'an-cluster-firstboot run'"
}

install_config() {
    fb_install_staged etc/drbd.conf 0644 || true
    fb_install_staged etc/drbd.d/global_common.conf 0644 || true
    fb_install_staged "etc/drbd.d/${RES}.res" 0644 || die "etc/drbd.d/${RES}.res is not staged" "restage the node files"
    local out
    out="$(drbdadm dump "$RES" 2>&1 >/dev/null)" || die "drbdadm cannot parse the configuration of $RES: $out" \
        "check /etc/drbd.d/${RES}.res; its 'on' names must match 'uname -n' ($AN_NODE_FQDN)"
}

create_drbd_md() {
    local dev
    dev="$(fb_path "$AN_DRBD_BACKING")"
    if fb_guard_destructive drbd-create-md "$dev" drbd "drbdadm create-md $RES"; then
        info "creating DRBD metadata on $AN_DRBD_BACKING (the device carried no signature)"
        drbdadm create-md "$RES" </dev/null
    fi
}

# The peer side: the lowest node's disk is UpToDate (it ran overwrite-data-of-peer; we may still be the
# SyncTarget) or ours is. One read of dstate: the peer's half is DUnknown unless connected, so this
# cannot pass on a stale mix of "not Inconsistent/Inconsistent" and "connected" read at two moments.
initial_sync_started() {
    case "$(fb_drbd_dstate)" in UpToDate/* | */UpToDate) return 0 ;; esac
    return 1
}
both_primary() { [ "$(fb_drbd_role)" = "Primary/Primary" ]; }
# The peer's half of the disk state is a disk: a peer that a boot-time `drbd start` left Diskless
# (connected, no metadata yet) says nothing about whether the initial sync is still to be done.
peer_has_disk() {
    case "$(fb_drbd_dstate)" in */UpToDate | */Inconsistent | */Outdated | */Consistent) return 0 ;; esac
    return 1
}

make_primary() {
    if fb_is_lowest; then
        local ds
        fb_wait "$AN_PEER_NAME to attach its DRBD disk (it is $(fb_drbd_dstate | cut -d/ -f2))" peer_has_disk
        ds="$(fb_drbd_dstate)"
        if [ "$ds" = "Inconsistent/Inconsistent" ]; then
            fb_intent_set drbd-overwrite-data-of-peer "$AN_DRBD_DEVICE"
            info "lowest nodeid: starting the initial sync from this node (overwrite-data-of-peer)"
            drbdadm -- --overwrite-data-of-peer primary "$RES"
        else
            debug "disk states $ds: the initial sync happened already"
        fi
    else
        fb_wait "$AN_PEER_NAME (lowest nodeid) to start the initial DRBD sync" initial_sync_started
    fi
    case "$(fb_drbd_role)" in
        Primary/*) ;;
        *) fb_drbd_primary ;;
    esac
    fb_wait "both nodes to be DRBD primary" both_primary
    info "DRBD $RES: $(fb_drbd_role) $(fb_drbd_dstate)"
}

main() {
    ensure_backing
    install_config
    fb_ensure_cman
    create_drbd_md
    fb_drbd_up
    drbdsetup "$AN_DRBD_DEVICE" syncer -r "$AN_DRBD_SYNC_RATE"
    make_primary
    # Only now may the boot-time `drbd start` run: before the metadata existed it would leave the
    # resource Diskless (step 40 leaves drbd off for this step to switch on).
    if [ "$AN_MANAGED_BY" = init ]; then
        chkconfig drbd on
        info "drbd starts at boot from now on"
    fi
}

main "$@"
