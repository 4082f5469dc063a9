"""yamlsource.Lines: the dotted path -> line map every problem's line comes from."""
from isobuild.yamlsource import Lines, parent_path, read_yaml

DOC = """\
cluster:
  name: an-cluster
nodes:
  - name: an-node01
    ip: {bcn: 10.20.0.1,
         sn: 10.10.0.1}
  - name: an-node02
    fence:
      - method: na
        device: na01
storage:
  drbd:
    port: 7789
"""


def _lines(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return Lines(read_yaml(path))


def test_keys_and_items_have_their_own_line(tmp_path):
    lines = _lines(tmp_path, DOC)
    assert lines.at("cluster") == 1
    assert lines.at("cluster.name") == 2
    assert lines.at("nodes[0]") == 4
    assert lines.at("nodes[0].ip.sn") == 6  # inside a flow mapping
    assert lines.at("nodes[1].fence[0].device") == 10
    assert lines.at("storage.drbd.port") == 13


def test_a_missing_key_is_placed_at_the_mapping_that_should_hold_it(tmp_path):
    lines = _lines(tmp_path, DOC)
    assert lines.at("storage.drbd.protocol") == 13  # drbd's first line
    assert lines.at("nodes[1].ip") == 7
    assert lines.at("cluster.name.deeper") is None  # a scalar holds nothing
    assert lines.at("xen.relocation.port") is None


def test_parent_path():
    assert parent_path("nodes[1].ip.sn") == "nodes[1].ip"
    assert parent_path("nodes[1]") == "nodes"
    assert parent_path("cluster") == ""


def test_an_alias_bomb_is_walked_once_per_mapping(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):  # 10**12 leaves when expanded
        prev = chr(ord("a") + i - 1)
        levels.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + prev] * 10)}]")
    lines = _lines(tmp_path, "\n".join(levels) + "\n")  # expanding it would never finish
    assert lines.at("l") == 12
    assert lines.at("a[9]") == 1


def test_a_path_inside_a_second_use_of_an_alias_has_the_anchors_line(tmp_path):
    text = "vms:\n  - &vm\n    name: vm1\n    disk: 8G\n  - *vm\nnodes: [{mac: &m {eth0: x}}, {mac: *m}]\n"
    lines = _lines(tmp_path, text)
    # ruamel places an aliased node where the anchor is, also as the second item; every path inside it
    # follows (the checker's own key_line of that node says the same)
    assert lines.at("vms[1]") == 2
    assert lines.at("vms[1].name") == 3
    assert lines.at("vms[1].disk") == 4
    assert lines.at("vms[1].memory") == 2  # a missing key: the first line of the mapping
    assert lines.at("nodes[1].mac.eth0") == 6
    assert lines.at("nodes[1].mac.eth1") == 6
