import numpy as np
import pytest
import torch

from damage_perception.core.backbone import (
    CONTEXT_PX,
    FEATURE_CHANNELS,
    Backbone,
    cell_masks,
    depth_channels,
    prepare_images,
)


@pytest.fixture(scope="module")
def backbone():
    return Backbone()   # the torch network itself (shared_backbone() may be its ONNX Runtime export)


@pytest.mark.parametrize("batch, size", [(2, 64), (1, 160)])
def test_output_is_152_channels_on_the_stride_8_grid(backbone, batch, size):
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    masks = np.ones((batch, size, size), bool)
    features = backbone(prepare_images(colors, masks))
    assert FEATURE_CHANNELS == 152
    assert features.shape == (batch, 152, size // 8, size // 8)
    assert torch.isfinite(features).all() and features.std() > 0


def test_parameters_are_frozen_and_train_mode_keeps_batch_norm_statistics(backbone):
    assert not any(p.requires_grad for p in backbone.parameters())
    before = {name: value.clone() for name, value in backbone.state_dict().items()}
    images = prepare_images(np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8),
                            np.ones((2, 64, 64), bool))
    reference = backbone(images)
    try:
        assert backbone.train() is backbone
        assert not backbone.training and not any(m.training for m in backbone.modules())
        again = backbone(images * 0.5 + 0.3)  # a forward in "train" mode: batch norm would update its stats
    finally:
        backbone.eval()
    after = backbone.state_dict()
    for name, value in before.items():
        assert torch.equal(value, after[name]), name
    assert torch.equal(backbone(images), reference)
    assert not torch.equal(again, reference)


def test_prepare_images_paints_grey_outside_the_grown_mask():
    colors = np.random.default_rng(2).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    masks = np.zeros((1, 64, 64), bool)
    masks[0, 24:40, 24:40] = True
    images = prepare_images(colors, masks)
    assert images.shape == (1, 3, 64, 64) and images.dtype == torch.float32
    inside = 24 - CONTEXT_PX  # the square structuring element reaches the grown corner exactly
    expected = torch.from_numpy(colors[0, inside, inside].astype(np.float32) / 127.5 - 1.0)
    torch.testing.assert_close(images[0, :, inside, inside], expected)
    torch.testing.assert_close(images[0, :, 32, 32], torch.from_numpy(colors[0, 32, 32] / 127.5 - 1.0).float())
    assert torch.all(images[0, :, inside - 1, :] == 0) and torch.all(images[0, :, :, 40 + CONTEXT_PX] == 0)
    assert torch.all(images[0, :, :inside] == 0) and images.min() >= -1 and images.max() <= 1


def test_cell_masks_mark_cells_with_a_quarter_of_their_pixels_in_the_grown_mask():
    masks = np.zeros((1, 64, 64), bool)
    masks[0, 24:40, 24:40] = True             # grown by 12 px: rows and columns 12..51
    cells = cell_masks(masks)
    expected = np.zeros((8, 8), bool)
    expected[1:7, 1:7] = True                 # edge cells hold half, corner cells a quarter of their pixels
    np.testing.assert_array_equal(cells[0], expected)
    stricter = cell_masks(masks, min_fraction=0.3)[0]
    assert not stricter[1, 1] and stricter[1, 3] and stricter[3, 3] and stricter.sum() == 36 - 4


def test_depth_channels_on_a_tilted_plane():
    size, slope = 64, 0.001                    # depth grows 1 mm per pixel to the right
    depth = np.broadcast_to(0.5 + slope * np.arange(size, dtype=np.float32), (size, size)).copy()
    masks = np.zeros((2, size, size), bool)
    masks[:, 8:56, 8:56] = True                # cells 1..6
    depths = np.stack([depth, depth.T[::-1]])  # second view: tilted along rows, depth falling downwards
    channels = depth_channels(depths, masks).numpy()
    assert channels.shape == (2, 4, 8, 8)
    inner = (slice(2, 6), slice(2, 6))         # away from the mask's border
    per_cell = slope / 0.03 * 8                # gradient in units of 3 cm, times the stride
    np.testing.assert_allclose(channels[0, 1][inner], per_cell, rtol=1e-3)
    np.testing.assert_allclose(channels[0, 2][inner], 0.0, atol=1e-6)
    np.testing.assert_allclose(channels[1, 2][inner], -per_cell, rtol=1e-3)
    np.testing.assert_allclose(channels[1, 1][inner], 0.0, atol=1e-6)
    # relative depth: cell centre's offset from the item's median (column 31.5), in units of 3 cm
    columns = np.arange(8) * 8 + 3.5
    np.testing.assert_allclose(channels[0, 0, 3, 1:7], slope * (columns[1:7] - 31.5) / 0.03, rtol=1e-3, atol=1e-6)
    assert np.all(np.diff(channels[0, 0, 3, 1:7]) > 0)
    valid = channels[0, 3]
    assert np.all(valid[1:7, 1:7] == 1) and valid[0].sum() == 0 and valid[:, 7].sum() == 0
    assert np.all(channels[0, :, 0, 0] == 0)   # outside the item: nothing


def test_depth_channels_count_missing_readings_and_clip():
    depth = np.full((1, 16, 16), 0.5, np.float32)
    depth[0, :, 8:] = 0.9                       # a 40 cm step: relative depth clips at +-1
    depth[0, :4, :8] = 0.0                      # no reading in half of cell (0, 0)
    masks = np.ones((1, 16, 16), bool)
    channels = depth_channels(depth, masks).numpy()[0]
    assert channels[3, 0, 0] == pytest.approx(0.5) and channels[3, 1, 1] == 1.0
    assert channels[:3].min() >= -1 and channels[:3].max() <= 1
    # the median reading is the far side's 0.9 m: the near side sits 40 cm (13 units) in front, clipped
    assert channels[0, 1, 0] == -1.0 and channels[0, 1, 1] == 0.0
    assert channels[1, 1, 0] > 0  # the step's gradient, clipped per pixel, shows in the cell beside it


def test_onnx_runtime_backbone_gives_the_torch_networks_maps():
    import torch

    from damage_perception.core.onnx_backbone import OnnxBackbone, fast_backbone

    network = Backbone()
    runner, how = fast_backbone(network)
    assert how == "onnxruntime" and isinstance(runner, OnnxBackbone)  # onnxruntime is a requirement
    images = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, 3, 160, 160)).astype(np.float32))
    for batch in (images, images[:1, :, :96, :96]):   # any batch and crop size
        expected = network(batch)
        assert runner(batch).shape == expected.shape
        assert float((runner(batch) - expected).abs().max()) < 1e-3 * float(expected.abs().max())
    # idle threads sleep instead of spin-waiting: on 2 cores a spinning pool slowed what follows each call 3x
    options = runner.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2


def test_inference_threads_leave_torch_one_thread_beside_onnx_runtime():
    import torch

    from damage_perception.core.damage_model import use_inference_threads
    before = torch.get_num_threads()
    try:
        use_inference_threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
