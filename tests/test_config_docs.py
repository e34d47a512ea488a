"""config/README.md documents every config field, generated from the config schema.

The schema (workflow/schemas/config.schema.yaml) is the one source: this test regenerates the
field reference from it and fails when config/README.md differs, so the two cannot drift.
Regenerate after changing the schema with ``python tests/test_config_docs.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DOC = REPO / "config" / "README.md"

INTRODUCTION = """\
# The workflow's configuration

`config/config.yaml` holds the settings of every stage; the inputs themselves are listed in two
tab-separated sheets that it names (`config/genomes.tsv` and `config/tasks.tsv`; their columns
are described in `workflow/schemas/genomes.schema.yaml` and `workflow/schemas/tasks.schema.yaml`).
Snakemake validates the config against `workflow/schemas/config.schema.yaml` before any job runs
and stops with the name of a wrong field. Use another config with
`snakemake --configfile my_config.yaml`; change one value with e.g.
`snakemake --config seed=1`.

Every field, generated from the schema (do not edit by hand: run
`python tests/test_config_docs.py` after changing the schema):

| field | type | meaning |
|---|---|---|
"""


def _type(node: dict[str, Any]) -> str:
    kind = node.get("type", "")
    return " or ".join(kind) if isinstance(kind, list) else kind


def _rows(node: dict[str, Any], definitions: dict[str, Any], path: list[str]) -> list[str]:
    if "$ref" in node:
        node = definitions[node["$ref"].rsplit("/", 1)[-1]]
    rows = []
    if path:
        notes = [" ".join(node.get("description", "").split())]
        if "enum" in node:
            notes.append("One of " + ", ".join(f"`{v}`" for v in node["enum"]) + ".")
        if "enum" in node.get("items", {}):
            notes.append("Items: " + ", ".join(f"`{v}`" for v in node["items"]["enum"]) + ".")
        if "default" in node:
            notes.append(f"Default: `{node['default']}`.")
        text = " ".join(note for note in notes if note).replace("|", "\\|")
        rows.append(f"| `{'.'.join(path)}` | {_type(node)} | {text} |")
    for key, child in node.get("properties", {}).items():
        rows += _rows(child, definitions, [*path, key])
    return rows


def field_reference() -> str:
    """config/README.md as the schema says it should read."""
    schema = yaml.safe_load(SCHEMA.read_text())
    return INTRODUCTION + "\n".join(_rows(schema, schema.get("$defs", {}), [])) + "\n"


def test_config_readme_documents_every_field_of_the_schema():
    assert DOC.read_text() == field_reference(), (
        "config/README.md is out of date with the schema: run `python tests/test_config_docs.py`"
    )


def test_every_field_of_the_example_config_is_documented():
    documented = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            documented.add(line.split("`")[1])

    def paths(mapping: dict[str, Any], prefix: str = "") -> list[str]:
        found = []
        for key, value in mapping.items():
            found.append(prefix + key)
            if isinstance(value, dict) and prefix + key not in {
                "pretrain.model",
                "finetune.overrides",
                "finetune.by_task_type",  # keyed by task type, described as a whole
            }:
                found += paths(value, f"{prefix}{key}.")
        return found

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert set(paths(config)) <= documented


if __name__ == "__main__":
    DOC.write_text(field_reference())
    print(f"wrote {DOC}")
