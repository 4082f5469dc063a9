#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 95-vms: the VMs themselves (seed: "Provisioning domU VMs", "Syncing domU Configuration", "Making VMs
# Highly Available"). Runs after 90-rgmanager, so rgmanager can take each VM over.
#   - the lowest nodeid provisions every VM with a vms[].install that has no config in
#     <gfs2 mount>/domU_config yet: pv = the staged virt-install arguments (the install runs to the
#     end: --wait -1 --noreboot), then `virsh dumpxml` to domU_config/<vm>.xml; hvm = the staged xm
#     config to domU_config/<vm> (the install starts when rgmanager first starts the VM);
#   - never over an LV that carries data (the destructive-step guard), never a second virt-install
#     after an interrupted one (the LV then holds a partial install: reprovision by hand, see the runbook);
#   - an install source that cannot be reached, a refused LV or a failed virt-install is a status
#     in <gfs2 mount>/.an-cluster/vms/<vm>, not a failed step: the cluster runs on without that VM;
#   - each VM with a config is handed to rgmanager (`clusvcadm -e vm:<vm>`);
#   - the peer waits (bounded) until the lowest nodeid has given every VM a status.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
fb_step_init 95-vms

VM_STAGE="${FB_STAGE}/etc/an-cluster/vms"
CONF_DIR="$(fb_path "$AN_GFS2_MOUNT")/domU_config"
STATUS_DIR="$(fb_path "$AN_GFS2_MOUNT")/.an-cluster/vms"
# what a finished guest install leaves on its LV (anaconda's msdos label), as fb_signatures reports it
INSTALLED_SIG="${AN_VM_INSTALLED_SIG:-dos}"

set_status() {
    mkdir -p "$STATUS_DIR"
    printf '%s\n' "$2" | fb_write_file "$STATUS_DIR/$1" 0644
}
has_config() { [ -f "$CONF_DIR/$1.xml" ] || [ -f "$CONF_DIR/$1" ]; }

# source_reachable URL: the PV kernel virt-install fetches first (virtinst/OSDistro.py _xen_paths:
# images/xen/vmlinuz); nfs: is left to virt-install itself.
source_reachable() {
    case "$1" in
        http://* | ftp://*) curl -sf -r 0-0 --max-time 30 -o /dev/null "${1%/}/images/xen/vmlinuz" ;;
        *) return 0 ;;
    esac
}

read_args() {  # file -> ARGS (one argument per line, as rendered)
    ARGS=()
    local line
    while IFS= read -r line || [ -n "$line" ]; do ARGS+=("$line"); done <"$1"
}
arg_after() {  # option -> its value in ARGS
    local i
    for ((i = 0; i < ${#ARGS[@]} - 1; i++)); do
        if [ "${ARGS[$i]}" = "$1" ]; then echo "${ARGS[$((i + 1))]}"; return 0; fi
    done
    return 1
}

# guard VM LV: the destructive-step guard, whose refusal (logged) does not stop the step: status 0
# run, 1 done, 2 refused
guard() { fb_destructive_verdict "vm-$1" "$(fb_path "$2")" "$INSTALLED_SIG" "the install of VM $1"; }

save_pv_config() {
    local vm="$1"
    mkdir -p "$CONF_DIR"
    fb_rewrite "$CONF_DIR/$vm.xml" 0644 virsh -c xen:/// dumpxml "$vm" || { set_status "$vm" "failed: 'virsh dumpxml $vm' failed"; return 1; }
    info "VM $vm: config saved to $AN_GFS2_MOUNT/domU_config/$vm.xml"
}

provision_pv() {
    local vm="$1" lv location out rc=0 verdict=0
    read_args "$VM_STAGE/$vm.virt-install"
    lv="/dev/$AN_VG/$vm"
    out="$FB_STATE_DIR/virt-install.$vm.out"
    # virt-install 0.500.3 prints this once the guest has shut down after its install (with --noreboot):
    # a power cut between that and the intent record below must not look like an interrupted install
    if fb_intent_has "vm-$vm.installed" || grep -qs "^Guest installation complete" "$out"; then
        fb_intent_set "vm-$vm.installed" "$lv"
        save_pv_config "$vm"
        return
    fi
    location="$(arg_after --location)"
    if ! source_reachable "$location"; then
        set_status "$vm" "unreachable: install source $location (images/xen/vmlinuz) cannot be fetched"
        warn "VM $vm not provisioned: $location cannot be reached; the cluster runs on without it" \
            "(make the tree reachable, then 'an-cluster-firstboot reset 95-vms; an-cluster-firstboot run')"
        return 0
    fi
    guard "$vm" "$lv" || verdict=$?
    case "$verdict" in
        0) ;;
        1)
            set_status "$vm" "interrupted: an earlier virt-install of $vm did not finish; $lv holds a partial install"
            warn "VM $vm: its install was interrupted: not running virt-install over it again" \
                "(Reprovision it: the runbook's procedure 'VM $vm', backup first)"
            return 0
            ;;
        *) set_status "$vm" "refused: $lv already carries data: not installing over it"; return 0 ;;
    esac
    if [ -f "$VM_STAGE/$vm.ks" ]; then
        mkdir -p "$CONF_DIR"
        fb_write_file "$CONF_DIR/$vm.ks" 0600 <"$VM_STAGE/$vm.ks"
    fi
    set_status "$vm" "installing: virt-install from $location"
    info "VM $vm: virt-install ${ARGS[*]}"
    mkdir -p "$FB_STATE_DIR"
    virt-install "${ARGS[@]}" </dev/null >"$out" 2>&1 || rc=$?
    sync 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        set_status "$vm" "failed: virt-install exited $rc (see ${out#"$AN_ROOT"} and /root/.virtinst/virt-install.log)"
        warn "VM $vm: virt-install failed (exit $rc); the cluster runs on without it"
        return 0
    fi
    fb_intent_set "vm-$vm.installed" "$lv"
    save_pv_config "$vm"
}

provision_hvm() {
    local vm="$1" lv iso verdict=0
    lv="/dev/$AN_VG/$vm"
    iso="$(sed -n "s/^disk = .*'file:\([^,']*\),hdc:cdrom,r'.*/\1/p" "$VM_STAGE/$vm.cfg")"
    if [ ! -r "$(fb_path "$iso")" ]; then
        set_status "$vm" "unreachable: ISO $iso is not on the shared filesystem"
        warn "VM $vm not provisioned: $iso is missing; copy it there, then 'an-cluster-firstboot reset 95-vms; an-cluster-firstboot run'"
        return 0
    fi
    guard "$vm" "$lv" || verdict=$?
    case "$verdict" in
        0 | 1) ;;
        *) set_status "$vm" "refused: $lv already carries data: not booting an installer over it"; return 0 ;;
    esac
    mkdir -p "$CONF_DIR"
    fb_write_file "$CONF_DIR/$vm" 0644 <"$VM_STAGE/$vm.cfg"
    info "VM $vm: xm config saved to $AN_GFS2_MOUNT/domU_config/$vm; it boots $iso when rgmanager starts it"
}

hand_over() {
    local vm="$1"
    info "VM $vm: clusvcadm -e vm:$vm"
    if clusvcadm -e "vm:$vm"; then
        set_status "$vm" "provisioned: config in $AN_GFS2_MOUNT/domU_config; rgmanager runs vm:$vm"
    else
        set_status "$vm" "provisioned: config in $AN_GFS2_MOUNT/domU_config; 'clusvcadm -e vm:$vm' failed"
        warn "VM $vm: 'clusvcadm -e vm:$vm' failed; see 'clustat' and /var/log/messages"
    fi
}

provision_all() {
    local vm
    for vm in $AN_VMS; do
        if ! has_config "$vm"; then
            if [ -f "$VM_STAGE/$vm.virt-install" ]; then
                provision_pv "$vm"
            elif [ -f "$VM_STAGE/$vm.cfg" ]; then
                provision_hvm "$vm"
            else
                set_status "$vm" "manual: no vms[].install in the definition: provision it by hand (see the runbook)"
                continue
            fi
        fi
        if has_config "$vm"; then hand_over "$vm"; fi
    done
}

all_have_status() {
    local vm
    for vm in $AN_VMS; do [ -s "$STATUS_DIR/$vm" ] || return 1; done
}

main() {
    local vm
    fb_ensure_cman
    fb_ensure_drbd_primary
    fb_ensure_vg_active
    fb_ensure_mounted
    [ -n "${AN_VMS:-}" ] || { info "no VMs in the definition"; return 0; }
    fb_service_start xend
    fb_service_start libvirtd   # virsh (and rgmanager's vm.sh in virsh mode) talk to xend through it
    fb_service_start rgmanager  # after a reboot in the middle of this step (90-rgmanager started it once)
    if fb_is_lowest; then
        provision_all
    else
        fb_wait "$AN_PEER_NAME (lowest nodeid) to take up every VM" all_have_status
    fi
    for vm in $AN_VMS; do info "VM $vm: $(cat "$STATUS_DIR/$vm" 2>/dev/null || echo 'no status')"; done
}

main "$@"
