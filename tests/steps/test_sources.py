import pytest

from curation_dag.steps.ingest.sources import DEFAULT_MAX_TEXT_BYTES, load_sources
from curation_dag.steps.recipes.files import RecipeError
from tests.conftest import SOURCES_FILE


def test_shipped_sources_load():
    sources = load_sources(SOURCES_FILE)
    assert set(sources) == {"python_code", "python_docs", "licenses"}
    code = sources["python_code"]
    assert (code.format, code.text_field, code.id_field, code.metadata_fields) == (
        "parquet",
        "content",
        "path",
        ("n_lines",),
    )
    assert sources["licenses"].max_text_bytes == DEFAULT_MAX_TEXT_BYTES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources:\n  - name: web\n    txt_field: body\n", r"line 2: source 'web': txt_field: Extra inputs"),
        ("sources:\n  - name: web\n  - name: ../web\n", r"line 3: source '../web': name: .*invalid source name"),
        (
            "sources:\n  - name: web\n    format: csv\n",
            r"line 2: source 'web': format: Input should be 'auto', 'jsonl' or 'parquet'",
        ),
        ("sources:\n  - name: web\n  - name: web\n", r"line 3: source 'web' is declared twice"),
        (
            "sources:\n  - name: web\n    path_pattern: ../other/*\n",
            r"line 2: source 'web': path_pattern: .*would read outside the drop folder",
        ),
        ("sources:\n  - name: web\n    path_pattern: ''\n", r"line 2: source 'web': path_pattern: .*names no files"),
        ("sources:\n  - name: web\n    path_pattern: ./\n", r"line 2: source 'web': path_pattern: .*names no files"),
        ("sources: [\n", r"not valid YAML"),
        ("web: {}\n", r"expected a top-level 'sources:' list"),
    ],
)
def test_bad_sources_name_the_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "sources.yml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message) as error:
        load_sources(path)
    assert str(path) in str(error.value)


def test_missing_sources_file(tmp_path):
    with pytest.raises(RecipeError, match="sources file not found"):
        load_sources(tmp_path / "nope.yml")
