"""Why ingest quarantines a row or a whole shard: each reason's value is what the quarantine file's
`reason` column holds, and its meaning is what README's table of reasons says."""

from enum import StrEnum


class Reason(StrEnum):
    """A quarantine reason; `meaning` says what it covers."""

    meaning: str

    def __new__(cls, value: str, meaning: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    BLANK_LINE = "blank_line", "an empty line in a JSONL shard"
    INVALID_UTF8 = (
        "invalid_utf8",
        "bytes that are not UTF-8 (a JSONL line or a Parquet string column), or a lone surrogate escape",
    )
    MALFORMED_JSON = "malformed_json", "the line is not a JSON object"
    MISSING_TEXT = "missing_text", "the text field is absent or null"
    NON_STRING_TEXT = "non_string_text", "the text field is not a string"
    EMPTY_TEXT = "empty_text", "the text is empty or whitespace only"
    TEXT_TOO_LARGE = "text_too_large", "the text is larger than the source's max_text_bytes"
    INVALID_ID = "invalid_id", "the id field is absent, null, or not a string or integer"
    DUPLICATE_ID = "duplicate_id", "the id was already used earlier in the drop"
    TRUNCATED_FILE = "truncated_file", "a compressed shard ends early; lines before the cut are kept"
    UNREADABLE_FILE = (
        "unreadable_file",
        "the shard cannot be opened or decompressed, or a Parquet row group cannot be decoded",
    )
    MISSING_TEXT_COLUMN = "missing_text_column", "a Parquet shard without the text column"
    DUPLICATE_COLUMN = (
        "duplicate_column",
        "a Parquet shard with two columns of the name of the text, id or a metadata field",
    )
    UNKNOWN_FILE_TYPE = "unknown_file_type", "a file that is not a shard of the source's format"
    DECOMPRESSED_TOO_LARGE = (
        "decompressed_too_large",
        "a compressed shard that decodes to over 100 times its size (a decompression bomb)",
    )
    LINE_TOO_LONG = "line_too_long", "a JSONL line over 8x max_text_bytes plus one block; skipped without being held"
    TOO_DEEPLY_NESTED = "too_deeply_nested", "a JSONL line nested over 128 levels, found by a byte scan before parsing"
    INVALID_FILE_NAME = "invalid_file_name", "a shard whose file name is not UTF-8; it is never opened"
    OUTSIDE_DROP = "outside_drop", "a shard that links outside the drop folder; it is never opened"
