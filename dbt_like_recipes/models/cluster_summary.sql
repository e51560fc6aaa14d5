-- Per semantic cluster: its documents, their mean prototypicality and the share passing each rule set.
SELECT
    cluster,
    count(*) AS documents,
    avg(prototypicality) AS mean_prototypicality,
    avg(gopher_quality::INTEGER) AS gopher_quality_share,
    avg(gopher_repetition::INTEGER) AS gopher_repetition_share,
    avg(c4::INTEGER) AS c4_share,
    avg(fineweb::INTEGER) AS fineweb_share,
    avg(code::INTEGER) AS code_share
FROM {{ ref('candidates') }}
WHERE cluster IS NOT NULL
GROUP BY cluster
ORDER BY cluster
