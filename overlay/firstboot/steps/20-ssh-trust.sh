#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 20-ssh-trust: root's own key pair (no passphrase, as the seed does by hand), the node trusting its
# own key (migration over ssh needs it: seed "SSH Setup"), this host's ssh host key, and an ssh client
# config for the peer's names (batch mode: never a password or yes/no prompt). The administrators'
# keys from the definition were placed by the kickstart. The nodes' root keys and host keys are
# exchanged over the shared GFS2 filesystem once it exists (step 80-gfs2): before that there is no
# trusted channel between the nodes, and trusting a host key seen over the network would be a guess.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
fb_step_init 20-ssh-trust

# ssh_config CFG: root's ssh client config CFG (when there is one) with our block for the peer's names
# in place of an earlier one.
ssh_config() {
    [ -f "$1" ] && awk '/^# an-cluster-firstboot begin$/ {skip=1} !skip {print} /^# an-cluster-firstboot end$/ {skip=0}' "$1"
    echo "# an-cluster-firstboot begin"
    echo "Host $AN_PEER_NAME $AN_PEER_FQDN $AN_PEER_BCN_IP $AN_PEER_SN_IP"
    echo "    StrictHostKeyChecking yes"
    echo "    HashKnownHosts no"
    echo "    BatchMode yes"
    echo "    ConnectTimeout 10"
    echo "# an-cluster-firstboot end"
}

main() {
    local ssh_dir key auth
    ssh_dir="$(fb_path /root/.ssh)"
    key="$ssh_dir/id_rsa"
    auth="$ssh_dir/authorized_keys"
    mkdir -p "$ssh_dir"
    chmod 0700 "$ssh_dir"
    if [ ! -s "$key" ] || [ ! -s "$key.pub" ]; then
        rm -f "$key" "$key.pub"
        info "creating root's ssh key pair"
        ssh-keygen -q -t rsa -b 2048 -N "" -C "root@$AN_NODE_FQDN" -f "$key"
    fi
    chmod 0600 "$key"
    touch "$auth"
    chmod 0600 "$auth"
    if ! grep -qxF "$(cat "$key.pub")" "$auth"; then
        cat "$key.pub" >>"$auth"
        info "root trusts its own key (for xm/virsh migration over ssh)"
    fi
    # The host key sshd will use (its init script would make it at first start; we need it now to
    # hand it to the peer).
    local hostkey
    hostkey="$(fb_path /etc/ssh/ssh_host_rsa_key)"
    if [ ! -s "$hostkey.pub" ]; then
        mkdir -p "${hostkey%/*}"
        rm -f "$hostkey" "$hostkey.pub"
        info "creating the ssh host key"
        ssh-keygen -q -t rsa -b 2048 -N "" -C "" -f "$hostkey"
        chmod 0600 "$hostkey"
    fi
    fb_rewrite "$ssh_dir/config" 0600 ssh_config "$ssh_dir/config"
}

main "$@"
