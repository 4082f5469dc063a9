#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 80-gfs2: the shared GFS2 filesystem (seed: "Format Our CLVM LV With The GFS2 File System").
#   - the lowest nodeid alone runs `mkfs.gfs2 -p lock_dlm -j <journals> -t <cluster>:<lv>`, only if the
#     LV carries no signature at all (a filesystem there makes the step refuse), and tags the LV
#     an_cluster_mkfs_gfs2_done once mkfs returned 0; an earlier mkfs cut short (our intent, our LV,
#     no tag) runs again;
#   - the peer waits (bounded) for that tag before it mounts;
#   - both add the fstab line by UUID (rw,suid,dev,exec,nouser,async,noatime,nodiratime 0 0: no `auto`, so a boot without
#     the cluster does not drop to single user) and mount it; domU_config is created on it;
#   - then the nodes' root ssh keys are exchanged through it (the first trusted channel between them).
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
fb_step_init 80-gfs2

LV_DEV="/dev/${AN_VG}/${AN_GFS2_LV}"
MNT="$AN_GFS2_MOUNT"
# noatime,nodiratime: an atime update is DLM lock traffic (mount.gfs2 3.0.12 util.c takes both)
FSTAB_OPTS="rw,suid,dev,exec,nouser,async,noatime,nodiratime"

lv_path() { fb_path "$LV_DEV"; }
is_our_gfs2() {
    [ "$(blkid -p -o value -s TYPE "$(lv_path)" 2>/dev/null)" = gfs2 ] &&
        [ "$(blkid -p -o value -s LABEL "$(lv_path)" 2>/dev/null)" = "$AN_GFS2_LOCK_TABLE" ]
}

# The LV tag that says mkfs.gfs2 on it returned 0 (set right after; LVM 2.02.73 lvchange --addtag,
# tag characters A-Z a-z 0-9 _ + . -). mkfs.gfs2 writes the superblock with the lock table before the
# journals, rindex and statfs, so a GFS2 signature alone is no proof that it finished.
DONE_TAG="an_cluster_mkfs_gfs2_done"
mkfs_done() {
    lvs --noheadings -o lv_tags "$AN_VG/$AN_GFS2_LV" 2>/dev/null | tr -d ' ' | tr ',' '\n' | grep -qx "$DONE_TAG"
}
gfs2_ready() { mkfs_done && is_our_gfs2; }

# mkfs_must_run: status 0 (run mkfs.gfs2) or 1 (done already); a refusal stops the step. An intent
# without the completion tag is a mkfs.gfs2 cut short (a power cut): on our own LV, still blank or
# carrying only our own GFS2 superblock, it runs again.
mkfs_must_run() {
    local sigs
    if mkfs_done; then return 1; fi
    # the intent is recorded only when the LV was blank: what is on it now is that earlier mkfs's
    if fb_intent_has mkfs-gfs2; then
        sigs="$(fb_signatures "$(lv_path)")" || fb_probe_failed "mkfs.gfs2 on $LV_DEV" "$LV_DEV" "$sigs"
        if [ -z "$sigs" ] || { [ "$sigs" = gfs2 ] && is_our_gfs2; }; then
            info "mkfs.gfs2 on $LV_DEV did not finish in an earlier run (no '$DONE_TAG' tag): running it again"
            return 0
        fi
    fi
    fb_guard_destructive mkfs-gfs2 "$(lv_path)" gfs2 "mkfs.gfs2 on $LV_DEV" \
        "lvchange --addtag $DONE_TAG $AN_VG/$AN_GFS2_LV"
}

make_fs() {
    if mkfs_must_run; then
        info "mkfs.gfs2 -p lock_dlm -j $AN_GFS2_JOURNALS -t $AN_GFS2_LOCK_TABLE $LV_DEV"
        # -O: no interactive question; the device was checked just above.
        # shellcheck disable=SC2086 # AN_MKFS_GFS2_OPTS: extra options (e.g. a small journal size)
        mkfs.gfs2 -O -p lock_dlm -j "$AN_GFS2_JOURNALS" -t "$AN_GFS2_LOCK_TABLE" ${AN_MKFS_GFS2_OPTS:-} "$(lv_path)" </dev/null
        lvchange --addtag "$DONE_TAG" "$AN_VG/$AN_GFS2_LV" >/dev/null ||
            die "cannot tag $LV_DEV as complete ('lvchange --addtag $DONE_TAG $AN_VG/$AN_GFS2_LV' failed)" \
                "check 'service clvmd status' and 'lvs $AN_VG', then rerun 'an-cluster-firstboot run'"
        info "mkfs.gfs2 on $LV_DEV complete (tag $DONE_TAG)"
    fi
    is_our_gfs2 || die "$LV_DEV carries a GFS2 filesystem with lock table '$(blkid -p -o value -s LABEL "$(lv_path)" 2>/dev/null)', not $AN_GFS2_LOCK_TABLE" \
        "nothing was changed; fix the lock table with 'tunegfs2 -o locktable=$AN_GFS2_LOCK_TABLE $LV_DEV' if that filesystem is the one to keep"
}

# domU configs the definition ships (staged as <mount>/domU_config/<vm>): put there when absent,
# never over one an admin wrote; only VMs that have one start (rgmanager storage: an-vm-start enables
# them; init storage: they are autostart="1").
install_domu_configs() {
    local f rel
    for f in "${FB_STAGE}${MNT}"/domU_config/*; do
        [ -f "$f" ] || continue
        rel="${MNT#/}/domU_config/${f##*/}"
        [ -e "$(fb_path "/$rel")" ] || fb_install_staged "$rel" 0644
    done
}

# other_mounts FSTAB, other_keys KNOWN_HOSTS: the lines that are not for our mount, our peer
other_mounts() { awk -v m="$MNT" '$2 != m || /^[ \t]*#/' "$1"; }
other_keys() { awk -v n="$AN_PEER_NAME," 'index($1, n) != 1' "$1"; }

fstab_line() {
    local uuid line
    uuid="$(blkid -p -o value -s UUID "$(lv_path)" | tr 'A-F' 'a-f')"   # findfs/mount want lower case
    [ -n "$uuid" ] || die "no UUID on $LV_DEV" "check it with 'blkid -p $LV_DEV'"
    line="UUID=$uuid $MNT gfs2 $FSTAB_OPTS 0 0"
    if fb_replace_line "$(fb_path /etc/fstab)" 0644 "$line" other_mounts; then
        info "fstab: $line"
    fi
}

# Keys through the shared filesystem (only the two nodes can write it): publish our root key and host
# key, then trust the peer's root key and record its host key under all of its names.
exchange_ssh_keys() {
    local dir pub hostpub auth known peer_pub peer_host line
    dir="$(fb_path "$MNT")/.an-cluster/ssh"
    pub="$(fb_path /root/.ssh/id_rsa.pub)"
    hostpub="$(fb_path /etc/ssh/ssh_host_rsa_key.pub)"
    auth="$(fb_path /root/.ssh/authorized_keys)"
    known="$(fb_path /root/.ssh/known_hosts)"
    if [ ! -f "$pub" ] || [ ! -f "$hostpub" ]; then
        die "root's ssh key or the host key is missing" \
            "redo step 20-ssh-trust: 'an-cluster-firstboot reset 20-ssh-trust; an-cluster-firstboot run'"
    fi
    mkdir -p "$dir"
    fb_write_file "$dir/$AN_NODE_NAME.pub" 0644 <"$pub"
    fb_write_file "$dir/$AN_NODE_NAME.host.pub" 0644 <"$hostpub"
    peer_pub="$dir/$AN_PEER_NAME.pub"
    peer_host="$dir/$AN_PEER_NAME.host.pub"
    fb_wait "$AN_PEER_NAME to publish its ssh keys on $MNT" test -s "$peer_host"
    fb_wait "$AN_PEER_NAME to publish its ssh keys on $MNT" test -s "$peer_pub"
    if ! grep -qxF "$(cat "$peer_pub")" "$auth"; then
        cat "$peer_pub" >>"$auth"
        info "root trusts $AN_PEER_NAME's key: ssh between the nodes needs no password"
    fi
    line="$AN_PEER_NAME,$AN_PEER_FQDN,$AN_PEER_BCN_IP,$AN_PEER_SN_IP $(awk '{print $1, $2}' "$peer_host")"
    if fb_replace_line "$known" 0644 "$line" other_keys; then
        info "known_hosts: $AN_PEER_NAME's host key (ssh to the peer checks it strictly)"
    fi
}

main() {
    fb_ensure_cman
    fb_ensure_drbd_primary
    fb_ensure_vg_active
    [ -b "$(lv_path)" ] || die "$LV_DEV does not exist" "step 70-clvm creates and activates it; check 'lvs $AN_VG'"
    if fb_is_lowest; then
        make_fs
    else
        fb_wait "$AN_PEER_NAME (lowest nodeid) to finish mkfs.gfs2 on $LV_DEV (LV tag $DONE_TAG)" gfs2_ready
    fi
    fstab_line
    fb_ensure_mounted
    mkdir -p "$(fb_path "$MNT")/domU_config"
    install_domu_configs
    exchange_ssh_keys
}

main "$@"
