"""Sensor model: depth noise, dropouts, quantisation; colour noise."""
import numpy as np

from damage_perception.sim.sensor import (
    ColorModel,
    DepthModel,
    apply_color_model,
    apply_depth_model,
    depth_sigma,
    edge_dropout_probability,
    grazing_dropout_probability,
)

SHAPE = (240, 320)


def flat(depth: float) -> np.ndarray:
    return np.full(SHAPE, depth, np.float32)


def test_noise_grows_with_distance():
    rng = np.random.default_rng(0)
    ones = np.ones(SHAPE, np.float32)
    stds = []
    for z in (0.4, 1.0, 2.0):
        depth = apply_depth_model(flat(z), ones, rng)
        valid = depth > 0
        stds.append(np.std(depth[valid] - z))
        assert abs(np.mean(depth[valid]) - z) < 0.001
        assert abs(stds[-1] - depth_sigma(np.float32(z))) < 0.25 * depth_sigma(np.float32(z)) + 0.0003
    assert stds[0] < stds[1] < stds[2]


def test_quantised_to_millimetres_and_range_limits():
    rng = np.random.default_rng(1)
    depth = apply_depth_model(flat(0.6123), np.ones(SHAPE, np.float32), rng)
    valid = depth > 0
    assert np.allclose(depth[valid] * 1000, np.round(depth[valid] * 1000), atol=1e-3)
    assert not apply_depth_model(flat(3.5), np.ones(SHAPE, np.float32), rng).any()
    assert not apply_depth_model(flat(0.0), np.ones(SHAPE, np.float32), rng).any()


def test_grazing_angles_drop_out():
    assert grazing_dropout_probability(np.array([1.0, 0.5, 0.25]), DepthModel()).max() == 0.0
    assert grazing_dropout_probability(np.array([0.0]))[0] == 1.0
    rng = np.random.default_rng(2)
    facing = apply_depth_model(flat(0.6), np.full(SHAPE, 0.9, np.float32), rng)
    grazing = apply_depth_model(flat(0.6), np.full(SHAPE, 0.05, np.float32), rng)
    assert (facing > 0).mean() > 0.99
    assert (grazing > 0).mean() < 0.3


def test_depth_edges_drop_out():
    depth = flat(0.6)
    depth[:, SHAPE[1] // 2:] = 1.3
    p = edge_dropout_probability(depth)
    edge_col = SHAPE[1] // 2
    assert p[:, edge_col].min() >= 0.8 and p[:, edge_col - 1].min() > 0
    assert p[:, :edge_col - 1].max() == 0 and p[:, edge_col + 1:].max() == 0
    noisy = apply_depth_model(depth, np.ones(SHAPE, np.float32), np.random.default_rng(3))
    assert (noisy[:, edge_col] == 0).mean() > 0.7
    assert (noisy[:, edge_col + 5] == 0).mean() < 0.05


def test_random_speckle_holes():
    noisy = apply_depth_model(flat(0.6), np.ones(SHAPE, np.float32), np.random.default_rng(4))
    assert 0 < (noisy == 0).sum() < 0.01 * noisy.size


def test_depth_and_colour_deterministic_given_rng():
    cos = np.ones(SHAPE, np.float32)
    radiance = np.full(SHAPE + (3,), 0.5, np.float32)
    for _ in range(2):
        depth = apply_depth_model(flat(0.7), cos, np.random.default_rng(7))
        colour = apply_color_model(radiance, np.random.default_rng(7))
        assert depth.tobytes() == apply_depth_model(flat(0.7), cos, np.random.default_rng(7)).tobytes()
        assert colour.tobytes() == apply_color_model(radiance, np.random.default_rng(7)).tobytes()


def test_colour_noise_and_jitter():
    radiance = np.full(SHAPE + (3,), 0.5, np.float32)
    colour = apply_color_model(radiance, np.random.default_rng(8))
    assert colour.dtype == np.uint8 and colour.shape == SHAPE + (3,)
    assert 2.0 < colour[..., 0].std() < 8.0
    assert abs(colour.mean() - 127.5) < 15
    means = [apply_color_model(radiance, np.random.default_rng(s)).mean(axis=(0, 1)) for s in range(6)]
    assert np.ptp(np.array(means), axis=0).max() > 1.0, "exposure / white balance vary per frame"
    quiet = apply_color_model(radiance, np.random.default_rng(8), ColorModel(0, 0, 0, 0))
    assert np.all(quiet == 128)
