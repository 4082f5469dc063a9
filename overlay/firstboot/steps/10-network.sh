#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 10-network: NetworkManager off and gone, `network` on, the rendered ifcfg files, /etc/hosts and
# /etc/sysconfig/network in place, the hostname set; then wait (bounded) until the peer answers on
# the back-channel (BCN) and storage (SN) networks. Seed: "Setup Networking", "Update the Hosts File".
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
fb_step_init 10-network

remove_networkmanager() {
    if rpm -q --quiet NetworkManager 2>/dev/null; then
        info "removing NetworkManager (cluster software does not start with it installed)"
        service NetworkManager stop >/dev/null 2>&1 || true
        yum -y -q remove NetworkManager ||
            die "could not remove NetworkManager" "remove it by hand ('yum remove NetworkManager'), then rerun 'an-cluster-firstboot run'"
    elif [ -e "$(fb_path /etc/rc.d/init.d/NetworkManager)" ]; then
        chkconfig NetworkManager off
    fi
}

# hwaddr_of FILE: the HWADDR= of an ifcfg file (empty if none)
hwaddr_of() {
    sed -n 's/^HWADDR=["'"'"']\{0,1\}\([0-9A-Fa-f:]*\).*/\1/p' "$1" 2>/dev/null | head -n 1
}

# install_ifcfg REL: the staged ifcfg file; when the definition gives no MAC for the NIC, it keeps
# the HWADDR anaconda wrote into the installed file (anaconda 13 network.py: available() sets
# HWADDR for every NIC it saw, write() writes it), so the ethN names anaconda configured stay on
# the same NICs. Without any HWADDR the name follows udev's guess at this boot: say so.
install_ifcfg() {
    local rel="$1" src dst hw
    src="$FB_STAGE/$rel"
    dst="$(fb_path "/$rel")"
    hw="$(hwaddr_of "$src")"
    if [ -z "$hw" ] && ! grep -q '^VLAN=yes' "$src"; then
        hw="$(hwaddr_of "$dst")"
        if [ -n "$hw" ]; then
            if fb_update "$dst" 0644 awk -v hw="HWADDR=$hw" '{ print } /^DEVICE=/ && !done { print hw; done = 1 }' "$src"; then
                info "installed /$rel (keeping HWADDR=$hw that anaconda saw)"
            fi
            return 0
        fi
        warn "/$rel: no MAC in the definition and none from anaconda: the name ${rel##*ifcfg-} is not pinned to a NIC"
    fi
    fb_install_staged "$rel" 0644
}

install_network_files() {
    local f rel n=0
    for f in "$FB_STAGE"/etc/sysconfig/network-scripts/ifcfg-*; do
        [ -f "$f" ] || continue
        rel="${f#"$FB_STAGE"/}"
        install_ifcfg "$rel"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || die "no ifcfg files staged in $FB_STAGE/etc/sysconfig/network-scripts" \
        "the install media carries them under an-cluster/nodes/$AN_NODE_NAME/; copy them into the stage and rerun"
    fb_install_staged etc/hosts 0644 || die "no /etc/hosts staged" "re-render the node files and restage them"
    fb_install_staged etc/sysconfig/network 0644 || warn "no /etc/sysconfig/network staged; keeping the installed one"
}

set_hostname() {
    if [ "$(hostname 2>/dev/null || true)" != "$AN_NODE_FQDN" ]; then
        info "setting the hostname to $AN_NODE_FQDN (DRBD and cman match it against their configs)"
        hostname "$AN_NODE_FQDN"
    fi
}

peer_answers() { ping -c 1 -W 1 "$1" >/dev/null 2>&1; }

network_files_sum() {
    { cat "$(fb_path /etc/sysconfig/network-scripts)"/ifcfg-* "$(fb_path /etc/hosts)" "$(fb_path /etc/sysconfig/network)" 2>/dev/null || true; } | cksum
}

# Before the network restart: never under cman (totem would lose the peer); and not under xend's
# bridges (Xen 4.0.1 network-bridge renamed ethN to pethN and gave ethN's address to the bridge; a
# restart breaks that, and network-bridge start does nothing while pethN exists). The kickstart
# turns xend off for the first boot; should it run anyway (no cman yet), stop it and its bridges.
quiet_xend() {
    local script
    fb_service_running cman && die "cman is running: not restarting the network under it (the peer would fence this node)" \
        "the new network files are in place; reboot to use them, then 'an-cluster-firstboot run'"
    fb_service_running xend || return 0
    script="$(sed -n "s/^(network-script[[:space:]]*'\{0,1\}\([^)' ]*\).*/\1/p" "$(fb_path /etc/xen/xend-config.sxp)" | head -n 1)"
    info "xend is running: stopping it and its network script ($script) before the network restart"
    service xend stop || die "'service xend stop' failed" "stop xend by hand, then rerun 'an-cluster-firstboot run'"
    if [ -n "$script" ] && [ -x "$(fb_path "/etc/xen/scripts/$script")" ]; then
        "$(fb_path "/etc/xen/scripts/$script")" stop || warn "'$script stop' failed: check 'brctl show' and 'ip link'"
    fi
}

main() {
    local before
    before="$(network_files_sum)"
    remove_networkmanager
    install_network_files
    set_hostname
    chkconfig network on
    if [ "$(network_files_sum)" = "$before" ] && fb_service_running network; then
        info "network files unchanged: no network restart"
    else
        quiet_xend
        info "restarting the network with the rendered configuration"
        service network restart || die "'service network restart' failed" "check the ifcfg files in /etc/sysconfig/network-scripts"
    fi
    fb_wait "peer $AN_PEER_NAME to answer on the BCN ($AN_PEER_BCN_IP)" peer_answers "$AN_PEER_BCN_IP"
    fb_wait "peer $AN_PEER_NAME to answer on the SN ($AN_PEER_SN_IP)" peer_answers "$AN_PEER_SN_IP"
}

main "$@"
