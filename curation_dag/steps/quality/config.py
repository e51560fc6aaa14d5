"""Quality rule thresholds from `dbt_like_recipes/quality.yml`, one section per rule set.

A document passes a rule when its signal lies within the bounds, inclusive (steps/quality/rules.py
pairs each bound with its signal). The defaults are the published ones:
- Gopher: Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training
  Gopher", Appendix A, Table A1.
- C4: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
  Transformer", section 2.2.
- FineWeb: Penedo et al. 2024, "The FineWeb Datasets", section 3.3 and its released filters.
- Code: Chen et al. 2021 (Codex), section 3.1; the alphanumeric cut is StarCoder's (Li et al. 2023,
  section 3.2).
A bound that is an integer in the paper stays an integer, so a rule reads as it is published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from curation_dag.steps.recipes.files import build, read_yaml

WHAT = "quality settings"
Number = int | float  # an integer stays one: "50 <= gopher_words", not "50.0 <= gopher_words"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _fraction(default: float, description: str) -> Any:
    return Field(default, ge=0, le=1, description=description)


class GopherQuality(_Section):
    """Gopher's quality filter (Table A1)."""

    min_words: int = Field(50, ge=0, description="Words, punctuation and symbols not counted: 50 to 100,000.")
    max_words: int = Field(100_000, ge=0)
    min_mean_word_length: Number = Field(3, ge=0, description="Mean word length: 3 to 10 characters.")
    max_mean_word_length: Number = Field(10, ge=0)
    max_hash_ratio: Number = Field(0.1, ge=0, description="Hash symbols per word, at most 0.1.")
    max_ellipsis_ratio: Number = Field(0.1, ge=0, description="Ellipses per word, at most 0.1.")
    max_bullet_line_frac: float = _fraction(0.9, "Lines starting with a bullet, at most 90%.")
    max_ellipsis_line_frac: float = _fraction(0.3, "Lines ending in an ellipsis, at most 30%.")
    min_alpha_word_frac: float = _fraction(0.8, "Words with an alphabetic character, at least 80%.")
    min_stop_words: int = Field(2, ge=0, description="Of Gopher's 8 stop words, at least 2 present.")

    @field_validator("max_words", "max_mean_word_length")
    @classmethod
    def _not_below_min(cls, high: Number, info: ValidationInfo) -> Number:
        name = info.field_name.replace("max_", "min_")
        low = info.data.get(name)
        if low is not None and high < low:
            raise ValueError(f"{info.field_name} ({high}) is below {name} ({low})")
        return high


class GopherRepetition(_Section):
    """Gopher's repetition filter (Table A1): duplicated paragraphs, lines and n-grams."""

    max_dup_para_frac: float = _fraction(0.3, "Duplicated paragraphs, at most 30%.")
    max_dup_para_char_frac: float = _fraction(0.2, "Characters in duplicated paragraphs, at most 20%.")
    max_dup_line_frac: float = _fraction(0.3, "Duplicated lines, at most 30%.")
    max_dup_line_char_frac: float = _fraction(0.2, "Characters in duplicated lines, at most 20%.")
    # The most frequent n-gram's share of characters; counted over overlapping n-grams, it may pass 1.
    max_top_2gram_char_frac: float = Field(0.20, ge=0, description="The top 2-gram's characters, at most 20%.")
    max_top_3gram_char_frac: float = Field(0.18, ge=0, description="The top 3-gram's characters, at most 18%.")
    max_top_4gram_char_frac: float = Field(0.16, ge=0, description="The top 4-gram's characters, at most 16%.")
    max_dup_5gram_char_frac: float = _fraction(0.15, "Characters in duplicated 5-grams, at most 15%.")
    max_dup_6gram_char_frac: float = _fraction(0.14, "Characters in duplicated 6-grams, at most 14%.")
    max_dup_7gram_char_frac: float = _fraction(0.13, "Characters in duplicated 7-grams, at most 13%.")
    max_dup_8gram_char_frac: float = _fraction(0.12, "Characters in duplicated 8-grams, at most 12%.")
    max_dup_9gram_char_frac: float = _fraction(0.11, "Characters in duplicated 9-grams, at most 11%.")
    max_dup_10gram_char_frac: float = _fraction(0.10, "Characters in duplicated 10-grams, at most 10%.")


class C4(_Section):
    """C4's document-level rule with a threshold (section 2.2); its lorem ipsum and curly bracket rules have none."""

    min_sentences: int = Field(5, ge=0, description="Sentences in the lines C4 keeps, at least 5.")


class FineWeb(_Section):
    """FineWeb's own filters (section 3.3)."""

    min_line_punct_frac: float = _fraction(0.12, "Lines ending in terminal punctuation, at least 12%.")
    max_short_line_frac: float = _fraction(0.67, "Lines of at most 30 characters, at most 67%.")
    max_dup_line_char_frac: float = _fraction(0.01, "Characters in duplicated lines, at most 1%.")
    max_newline_word_ratio: Number = Field(0.3, ge=0, description="Newlines per word, at most 0.3.")


class Code(_Section):
    """Codex's filters (section 3.1) and StarCoder's alphanumeric cut (section 3.2)."""

    max_line_length: int = Field(1000, ge=0, description="The longest line, at most 1,000 characters.")
    max_mean_line_length: Number = Field(100, ge=0, description="The mean line length, at most 100 characters.")
    min_alnum_frac: float = _fraction(0.25, "Alphanumeric characters, at least 25% (StarCoder).")


class QualityConfig(_Section):
    """Every rule set's thresholds; a missing section or field keeps its published default."""

    gopher_quality: GopherQuality = GopherQuality()
    gopher_repetition: GopherRepetition = GopherRepetition()
    c4: C4 = C4()
    fineweb: FineWeb = FineWeb()
    code: Code = Code()


def load_quality_config(path: Path) -> QualityConfig:
    """Read `quality.yml`; a missing file means every default. Errors name the file, the section's line
    and the field."""
    if not Path(path).exists():
        return QualityConfig()
    mapping = read_yaml(path, WHAT)
    sections = QualityConfig.model_fields
    built = {
        name: build(sections[name].annotation, value, path, f"{WHAT}: {name}")
        for name, value in mapping.items()
        if name in sections
    }
    return build(QualityConfig, {**mapping, **built}, path, WHAT)
