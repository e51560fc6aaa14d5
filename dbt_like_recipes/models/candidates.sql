-- One row per ingested document, with everything a mixture decides on: quality verdicts,
-- semantic cluster and prototypicality, and the dedup evidence. The text stays in raw_documents.
-- Only drops that quality_scores has absorbed, the last pipeline step, are candidates: a drop still
-- being deduplicated or clustered joins the mixtures once it is through.
SELECT
    documents.doc_id,
    documents.source,
    documents.source || '/' || documents.drop_id AS drop,
    documents.content_hash,
    documents.n_chars AS chars,
    scores.language,
    scores.language_score,
    scores.gopher_quality,
    scores.gopher_quality_failure,
    scores.gopher_repetition,
    scores.gopher_repetition_failure,
    scores.c4,
    scores.c4_failure,
    scores.fineweb,
    scores.fineweb_failure,
    scores.code,
    scores.code_failure,
    scores.cluster,
    scores.prototypicality,
    exact.duplicate_of AS exact_duplicate_of,
    near.duplicate_of AS near_duplicate_of,
    near.jaccard AS near_jaccard,
    semantic.semantic_duplicate_of,
    semantic.cosine AS semantic_cosine
FROM {{ source('raw_documents') }} AS documents
JOIN {{ source('quality_scores') }} AS scores USING (doc_id)
LEFT JOIN {{ source('exact_duplicates') }} AS exact USING (doc_id)
LEFT JOIN {{ source('near_duplicates') }} AS near USING (doc_id)
LEFT JOIN {{ source('semantic_duplicates') }} AS semantic USING (doc_id)
ORDER BY documents.doc_id
