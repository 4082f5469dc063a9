"""docs/definition.md is generated from model.SPECS + definition_doc.HELP and must not drift."""
from isobuild import definition_doc
from isobuild.model import SPECS
from tests.conftest import REPO


def test_every_key_has_help_and_every_help_names_a_key():
    keys = definition_doc.documented_keys()
    assert sorted(set(keys) - set(definition_doc.HELP)) == [], "keys without help in isobuild/definition_doc.py"
    assert sorted(set(definition_doc.HELP) - set(keys)) == [], "help for keys model.SPECS does not define"


def test_every_spec_has_a_section():
    assert sorted(s for s, _, _ in definition_doc.SECTIONS) == sorted(SPECS)


def test_committed_reference_is_what_the_generator_writes():
    committed = (REPO / "docs" / "definition.md").read_text()
    assert committed == definition_doc.render(), "run `invoke definition-doc` and commit docs/definition.md"
