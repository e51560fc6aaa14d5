import numpy as np
import pytest

from curation_dag.steps.recipes.files import RecipeError
from curation_dag.steps.semantic.config import KMeansConfig, SemanticConfig, SemDeDupConfig, load_semantic_config
from curation_dag.steps.semantic.semdedup import assign, find_semantic_duplicates, fit_centroids


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def blobs(rng, centers: int = 4, per_center: int = 50, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    middles = unit(rng.standard_normal((centers, 32)))
    labels = np.repeat(np.arange(centers), per_center)
    return unit(middles[labels] + spread * rng.standard_normal((len(labels), 32))), labels


def test_kmeans_fits_unit_centroids_and_assigns_each_vector_to_its_nearest():
    rng = np.random.default_rng(0)
    vectors, _ = blobs(rng)
    centroids, device = fit_centroids(vectors, KMeansConfig(clusters=8))
    clusters, distances = assign(vectors, centroids)
    assert device == "cpu" and centroids.shape == (8, 32)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1, atol=1e-5)
    assert (clusters == (vectors @ centroids.T).argmax(axis=1)).all()
    assert np.allclose(distances, 1 - np.einsum("ij,ij->i", vectors, centroids[clusters]), atol=1e-5)
    random_centroids = unit(rng.standard_normal((8, 32)))
    assert distances.mean() < assign(vectors, random_centroids)[1].mean() / 2  # the fit found the groups


def test_default_k_is_about_the_square_root_of_the_sample():
    assert KMeansConfig().k_for(10_000) == 100 and KMeansConfig(clusters=7).k_for(10_000) == 7
    assert KMeansConfig().k_for(3) == 2


def test_semdedup_keeps_one_of_each_near_identical_group_by_policy():
    rng = np.random.default_rng(1)
    base = unit(rng.standard_normal((3, 16)))
    vectors = unit(np.concatenate([base, base + 0.01 * rng.standard_normal((3, 16))]))  # rows i and i+3 pair up
    clusters = np.array([0, 1, 2, 0, 1, 2])
    distances = np.array([0.1, 0.5, 0.3, 0.4, 0.2, 0.6], dtype=np.float32)
    none = np.zeros((0, 16), np.float32), np.zeros(0, np.int64)

    match, cosine = find_semantic_duplicates(vectors, clusters, distances, *none, eps=0.05, keep="farthest")
    assert match.tolist() == [3, -1, 5, -1, 1, -1]  # the farther of each pair is kept
    assert (cosine[[0, 2, 4]] > 0.95).all() and np.isnan(cosine[[1, 3, 5]]).all()
    match, _ = find_semantic_duplicates(vectors, clusters, distances, *none, eps=0.05, keep="earliest")
    assert match.tolist() == [-1, -1, -1, 0, 1, 2]
    match, _ = find_semantic_duplicates(vectors, clusters, distances, *none, eps=1e-9, keep="earliest")
    assert match.tolist() == [-1] * 6  # nothing is that close


def test_semdedup_defers_to_earlier_documents_in_the_same_cluster_only():
    rng = np.random.default_rng(2)
    earlier = unit(rng.standard_normal((2, 16)))
    new = unit(np.concatenate([earlier + 0.01 * rng.standard_normal((2, 16))]))
    match, _ = find_semantic_duplicates(
        new, np.array([5, 6]), np.zeros(2, np.float32), earlier, np.array([5, 9]), eps=0.05, keep="farthest"
    )
    assert match.tolist() == [-2, -1]  # the first matches earlier vector 0; the second's twin is in another cluster


def test_bad_semantic_settings_name_the_field(tmp_path):
    path = tmp_path / "semantic.yml"
    path.write_text("keep: newest\n")
    with pytest.raises(RecipeError, match="line 1: semantic settings: keep"):
        load_semantic_config(path)


def test_semantic_settings_split_into_the_fit_semdedup_and_the_drift_warning(tmp_path):
    path = tmp_path / "semantic.yml"
    path.write_text("clusters: 7\neps: 0.1\nkeep: closest\ndrift_share: 0.3\n")  # one flat file
    settings = load_semantic_config(path)
    assert settings.kmeans == KMeansConfig(clusters=7) and settings.semdedup == SemDeDupConfig(eps=0.1, keep="closest")
    assert settings.drift_share == 0.3
    assert SemanticConfig(eps=0.2, drift_share=0.5).kmeans == SemanticConfig().kmeans  # no refit for these
    assert str(SemanticConfig(eps=0.2).kmeans) == "clusters=None fit_sample=100000 iterations=20 seed=1"
