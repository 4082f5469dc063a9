"""render publishes like every stage (stamps.Stamps.publishing): its stamp build/.render-stamp records
the inputs and the outputs by content, and a build dir from an older version just renders again."""
from __future__ import annotations

import json
from pathlib import Path

from isobuild.loader import load_definition
from isobuild.render import render
from isobuild.stamps import sha256_tree

REPO = Path(__file__).resolve().parents[2]


def test_an_old_format_stamp_renders_again_cleanly(tmp_path):
    c = load_definition(REPO / "cluster.yaml")
    build = tmp_path / "build"
    render(c, build)
    before = sha256_tree(build)
    stamp = build / ".render-stamp"
    stamp.write_text("0" * 64 + "\n" + "1" * 64 + "\n")  # the two-digest stamp of older versions
    again = render(c, build)
    assert not again.up_to_date
    assert sha256_tree(build) == before  # the same files, the stamp in its current format again
    assert set(json.loads(stamp.read_text())) == {"inputs", "outputs"}
    assert render(c, build).up_to_date


def test_a_file_added_to_the_render_is_not_up_to_date(tmp_path):
    c = load_definition(REPO / "cluster.yaml")
    build = tmp_path / "build"
    render(c, build)
    extra = build / "nodes" / "an-node01" / "etc" / "extra.conf"
    extra.write_text("not rendered\n")
    assert not render(c, build).up_to_date and not extra.exists()
