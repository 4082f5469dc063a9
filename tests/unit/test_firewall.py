"""The node's firewall: what lokkit writes from the kickstart, plus the rules it cannot express.

The lokkit model below mirrors system-config-firewall-base 1.2.27 (the F13 lokkit) for the options
our files use, and refuses any other: fw_sysconfig.read_sysconfig_args (one option a line, '#'
comments), fw_parser._check_port (tcp/udp only), fw_iptables.iptablesClass.write (the *filter table
it writes: ESTABLISHED, icmp, lo, ports, custom filter files pasted verbatim, the two REJECTs;
missing custom files skipped). anaconda 13 (firewall.py Firewall.getArgList) passes the kickstart's
--port items and adds --service=ssh when 22:tcp is not among them.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from pykickstart.parser import KickstartParser
from pykickstart.version import F13, makeVersion

from isobuild.errors import IsobuildError
from isobuild.loader import load_definition
from isobuild.render import Media, firewall_rules, node_files, render_kickstart, split_firewall

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [REPO / "cluster.yaml", REPO / "examples" / "ipmi-cluster.yaml"]


def lokkit_iptables(sysconfig: str, files: dict[str, str]) -> str:
    """/etc/sysconfig/iptables as lokkit 1.2.27 regenerates it from system-config-firewall."""
    ports, custom, enabled = [], [], True
    for line in sysconfig.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in ("--enabled", "--disabled"):
            enabled = line == "--enabled"
        elif line.startswith("--port="):
            port, proto = line[len("--port="):].split(":")
            assert proto in ("tcp", "udp"), f"lokkit refuses {line}"
            ports.append((port, proto))
        elif line.startswith("--custom-rules="):
            kind, table, name = line[len("--custom-rules="):].split(":", 2)
            assert (kind, table) == ("ipv4", "filter"), line
            custom.append(name)
        else:
            raise AssertionError(f"option outside this model of lokkit: {line}")
    assert enabled
    out = ["# Firewall configuration written by system-config-firewall",
           "# Manual customization of this file is not recommended.",
           "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           "-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT",
           "-A INPUT -p icmp -j ACCEPT", "-A INPUT -i lo -j ACCEPT"]
    out += [f"-A INPUT -m state --state NEW -m {proto} -p {proto} --dport {port} -j ACCEPT" for port, proto in ports]
    text = "\n".join(out) + "\n"
    for name in custom:
        text += files.get(name.lstrip("/"), "")  # lokkit skips a missing file silently
    return text + ("-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
                   "-A FORWARD -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n")


def _ks(text: str):
    handler = makeVersion(F13)
    KickstartParser(handler).readKickstartFromString(text)
    return handler


def _variant(copy_example, rrp: str):
    path = copy_example("cluster.yaml")
    path.write_text(re.sub(r"rrp_mode: \w+", f"rrp_mode: {rrp}", path.read_text()))
    return load_definition(path)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_rendered_iptables_is_what_lokkit_writes_again(example):
    """A later lokkit / system-config-firewall run must not change the rules in force."""
    c = load_definition(example)
    files = node_files(c, c.nodes[0])
    assert files["etc/sysconfig/iptables"] == lokkit_iptables(files["etc/sysconfig/system-config-firewall"], files)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_kickstart_firewall_line_matches_lokkit_config(example):
    c = load_definition(example)
    handler = _ks(render_kickstart(c, c.nodes[0]))
    files = node_files(c, c.nodes[0])
    conf_ports = [ln[len("--port="):] for ln in files["etc/sysconfig/system-config-firewall"].splitlines()
                  if ln.startswith("--port=")]
    assert handler.firewall.enabled and handler.firewall.ports == conf_ports
    assert "22:tcp" in conf_ports  # so anaconda adds no --service=ssh of its own


@pytest.mark.parametrize("rrp", ["passive", "none"])
def test_every_rule_is_in_force_none_dropped(copy_example, rrp):
    c = _variant(copy_example, rrp)
    rules = node_files(c, c.nodes[0])["etc/sysconfig/iptables"].splitlines()
    for proto, port, what in firewall_rules(c):
        assert any(r.startswith("-A INPUT ") and f"-p {proto} " in r and r.endswith(" -j ACCEPT")
                   and (port is None or f"--dport {port} " in r) for r in rules), f"{proto} {port} ({what}) not in force"
    assert ("-A INPUT -p sctp -m sctp --dport 21064 -j ACCEPT" in rules) == (rrp != "none")
    assert "-A INPUT -p igmp -j ACCEPT" in rules
    # bridged VM frames pass FORWARD before the stock REJECT (bridge-nf-call-iptables=1)
    assert rules.index("-A FORWARD -m physdev --physdev-is-bridged -j ACCEPT") < \
        rules.index("-A FORWARD -j REJECT --reject-with icmp-host-prohibited")


def test_a_rule_no_form_can_carry_is_an_error():
    with pytest.raises(IsobuildError, match="dccp 9 .*expressed neither"):
        split_firewall([("tcp", 22, "ssh"), ("dccp", 9, "something")])
    assert split_firewall([("udp", 5404, "c"), ("sctp", 21064, "d")]) == (
        ["5404:udp"], [("d", "-A INPUT -p sctp -m sctp --dport 21064 -j ACCEPT")])


@pytest.mark.parametrize("media", [Media.cdrom(), Media.url("http://10.0.0.1")], ids=["cdrom", "url"])
def test_post_installs_the_rendered_firewall(media):
    c = load_definition(REPO / "cluster.yaml")
    handler = _ks(render_kickstart(c, c.nodes[0], media))
    body = next(s for s in handler.scripts if "post_install() {" in s.script)
    assert body.errorOnFail
    for rel in ("etc/sysconfig/iptables", "etc/sysconfig/iptables.an-cluster", "etc/sysconfig/system-config-firewall"):
        assert f"\npost_install {rel}\n" in body.script
    assert ('"/mnt/sysimage/$1"' in body.script) == (media.kind == "cdrom")
    # after lokkit: %post runs after anaconda's writeconfig step; every rendered firewall file is installed
    assert {"etc/sysconfig/iptables", "etc/sysconfig/iptables.an-cluster",
            "etc/sysconfig/system-config-firewall"} <= set(node_files(c, c.nodes[0]))
