"""docs/definition.md is generated from the settings on the model's fields and must not drift."""
from isobuild import definition_doc
from isobuild.model import SPECS
from tests.conftest import REPO


def test_every_key_has_help():
    helps = definition_doc.help_texts()
    assert sorted(helps) == sorted(definition_doc.documented_keys())
    assert [k for k, text in helps.items() if not text.strip()] == [], "keys without help in isobuild/model.py"


def test_every_spec_has_a_section():
    assert sorted(s for s, _, _ in definition_doc.SECTIONS) == sorted(SPECS)


def test_committed_reference_is_what_the_generator_writes():
    committed = (REPO / "docs" / "definition.md").read_text()
    assert committed == definition_doc.render(), "run `invoke definition-doc` and commit docs/definition.md"
