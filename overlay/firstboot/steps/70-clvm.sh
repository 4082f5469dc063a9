#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 70-clvm: clustered LVM on the DRBD device (seed: "Setting Up CLVM").
#   - LVM cluster-aware (lvmconf --enable-cluster, or the rendered lvm.conf) with the drbd-only filter,
#     so LVM never sees the same PV through the backing device; the device cache dropped;
#   - clvmd started;
#   - the lowest nodeid alone: pvcreate on the DRBD device (only if it carries no signature), the
#     clustered VG and the LVs (GFS2 LV and one per VM), each only if absent;
#   - the peer waits (bounded) until it sees them, then both activate the VG.
# AN_VGCREATE_OPTS (default "-c y") is the clustered flag; the test harness's LVM has no clvmd.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
fb_step_init 70-clvm

VGCREATE_OPTS="${AN_VGCREATE_OPTS--c y}"

# drbd_only_filter LVM_CONF: LVM_CONF with the active filter line(s) of the devices section commented
# out and ours after the first
drbd_only_filter() {
    awk '
        /^[ \t]*filter[ \t]*=/ { print "    #" $0; if (!done) { print "    filter = [ \"a|/dev/drbd*|\", \"r/.*/\" ]"; done = 1 }; next }
        /^[ \t]*devices[ \t]*\{/ { indev = 1 }
        indev && /^[ \t]*\}/ && !done { print "    filter = [ \"a|/dev/drbd*|\", \"r/.*/\" ]"; done = 1; indev = 0 }
        { print }' "$1"
}

lvm_config() {
    local conf
    conf="$(fb_path /etc/lvm/lvm.conf)"
    if fb_install_staged etc/lvm/lvm.conf 0644; then
        :
    else
        [ -f "$conf" ] || die "$conf not found" "is lvm2 installed?"
        lvmconf --enable-cluster
        if [ "${AN_LVM_FILTER:-drbd-only}" = drbd-only ] && ! grep -q '^[[:space:]]*filter = \[ "a|/dev/drbd\*|", "r/\.\*/" \]' "$conf"; then
            fb_rewrite "$conf" 0644 drbd_only_filter "$conf"
            info "lvm.conf: filter accepts DRBD devices only"
        fi
    fi
    rm -f "$(fb_path /etc/lvm/cache/.cache)"
}

vg_exists() { vgs "$AN_VG" >/dev/null 2>&1; }
lv_exists() { lvs "$AN_VG/$1" >/dev/null 2>&1; }

# "name:size_mib" of every LV this cluster needs: the GFS2 one first, then one per VM.
wanted_lvs() {
    echo "${AN_GFS2_LV}:${AN_GFS2_SIZE_MIB}"
    local pair
    for pair in ${AN_VM_LVS:-}; do echo "$pair"; done
}

all_lvs_visible() {
    local pair
    vg_exists || return 1
    for pair in $(wanted_lvs); do
        lv_exists "${pair%%:*}" || return 1
    done
}

create_storage() {
    local pv pair name mib
    pv="$(fb_path "$AN_DRBD_DEVICE")"
    if vg_exists && ! fb_intent_has lvm-vgcreate; then
        die "refusing to use volume group $AN_VG: it exists already and this firstboot did not create it" \
            "nothing was changed. If it holds data from an earlier install you mean to keep, adopt it with 'echo $AN_VG > $FB_INTENT_DIR/lvm-vgcreate' and rerun; otherwise remove it yourself (vgremove $AN_VG)"
    fi
    if ! vg_exists; then
        if fb_guard_destructive lvm-pvcreate "$pv" LVM2_member "pvcreate $AN_DRBD_DEVICE"; then
            info "pvcreate $AN_DRBD_DEVICE"
            pvcreate "$pv"
        fi
        # A PV that already belongs to another VG is not ours to reuse.
        local owner
        owner="$(pvs --noheadings -o vg_name "$pv" 2>/dev/null | tr -d ' ')"
        [ -z "$owner" ] || die "$AN_DRBD_DEVICE belongs to volume group '$owner', not $AN_VG" \
            "nothing was changed; remove or rename that VG yourself, or set storage.clvm.vg to '$owner'"
        fb_intent_set lvm-vgcreate "$AN_VG"
        info "vgcreate $VGCREATE_OPTS $AN_VG $AN_DRBD_DEVICE"
        # shellcheck disable=SC2086 # VGCREATE_OPTS is a list of options
        vgcreate $VGCREATE_OPTS "$AN_VG" "$pv"
    fi
    for pair in $(wanted_lvs); do
        name="${pair%%:*}"
        mib="${pair##*:}"
        lv_exists "$name" && continue
        fb_intent_set "lvm-lvcreate-$name" "$AN_VG/$name"
        info "lvcreate -L ${mib}M -n $name $AN_VG"
        lvcreate -L "${mib}M" -n "$name" "$AN_VG" ||
            die "lvcreate of $AN_VG/$name (${mib} MiB) failed" "check free space with 'vgs $AN_VG'; grow storage or shrink the LV/VM disk sizes"
    done
}

main() {
    lvm_config
    fb_ensure_cman
    fb_ensure_drbd_primary
    fb_service_start clvmd
    if fb_is_lowest; then
        create_storage
    else
        fb_wait "$AN_PEER_NAME (lowest nodeid) to create VG $AN_VG and its LVs on $AN_DRBD_DEVICE" all_lvs_visible
    fi
    vgchange -a y "$AN_VG" >/dev/null
    info "clustered VG $AN_VG active with LVs: $(wanted_lvs | cut -d: -f1 | tr '\n' ' ')"
}

main "$@"
