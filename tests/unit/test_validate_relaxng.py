"""validate.relaxng: each cman schema is parsed once per content in a process (the node cman's schema
is extracted to a new temp file by each of iso, usb and pxe), and a changed file is parsed again."""
from __future__ import annotations

import shutil

from isobuild.cmanschema import SCHEMAS
from isobuild.validate import relaxng


def test_a_schema_is_parsed_once_per_content(tmp_path):
    src = SCHEMAS["cluster 2010-09-10"]
    a, b = tmp_path / "a" / "cluster.rng", tmp_path / "b" / "cluster.rng"
    for p in (a, b):
        p.parent.mkdir()
        shutil.copyfile(src, p)
    first = relaxng(a)
    assert relaxng(a) is first and relaxng(b) is first  # the same bytes at another path: not parsed again
    a.write_bytes(a.read_bytes() + b"<!-- changed -->\n")
    assert relaxng(a) is not first and relaxng(b) is first
    assert relaxng(SCHEMAS["cluster 3.0.12"]) is not first
