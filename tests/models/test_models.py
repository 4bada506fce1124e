"""Models: shapes, size multiples, safetensors round trip, contextual attention, PatchGAN."""

from __future__ import annotations

import json

import pytest
import torch

from tessera.models import MODELS, PRESETS, RESTORATION_MODELS, TRAINABLE_MODELS, ModelLoadError, build_model, load_model, model_kwargs, save_model
from tessera.models.deepfill import WGANCritic, contextual_attention
from tessera.models.patchgan import PatchGAN, receptive_field


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(name: str):
    torch.manual_seed(0)
    return build_model(name, **model_kwargs(name, "tiny"))


def test_models_dict_is_literal_and_complete():
    assert set(RESTORATION_MODELS) == {"unet", "pix2pix", "deepfill"} <= set(MODELS)
    assert set(PRESETS) == set(TRAINABLE_MODELS) == {*RESTORATION_MODELS, "dcgan", "segnet"}


@pytest.mark.parametrize("name", RESTORATION_MODELS)
@pytest.mark.parametrize("hw", [(32, 32), (64, 40)])
def test_output_shape_and_range(name, hw):
    model = tiny(name).eval()
    assert model.in_channels == 4
    H, W = hw
    assert H % model.size_multiple == 0 and W % model.size_multiple == 0
    x = torch.rand(2, 4, H, W) * 2 - 1
    x[:, 3] = (x[:, 3] > 0).float()
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, H, W)
    assert y.dtype == torch.float32
    assert float(y.abs().max()) <= 1.0


@pytest.mark.parametrize("name", RESTORATION_MODELS)
def test_rejects_sizes_that_are_not_multiples(name):
    model = tiny(name)
    with pytest.raises(ValueError, match="multiple"):
        model(torch.zeros(1, 4, model.size_multiple + 4, model.size_multiple * 2))


def test_deepfill_returns_coarse_on_request():
    model = tiny("deepfill").eval()
    x = torch.zeros(1, 4, 32, 32)
    x[:, 3, 8:24, 8:24] = 1
    with torch.no_grad():
        y, coarse = model(x, return_coarse=True)
        y2 = model(x)
    assert coarse.shape == y.shape == (1, 3, 32, 32)
    assert torch.equal(y, y2)


def test_paper_sizes():
    # pix2pix U-Net 256: 8 levels of 4x4 convolutions, 54.4 M parameters; PatchGAN sees 70x70
    g = build_model("pix2pix", **model_kwargs("pix2pix", "paper"))
    assert g.size_multiple == 256
    assert sum(p.numel() for p in g.parameters()) == 54_414_019 + 1536  # + the biases we keep before tanh/outermost
    assert receptive_field(3) == 70
    d = PatchGAN(in_channels=7)
    assert d(torch.zeros(1, 7, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("name", RESTORATION_MODELS)
def test_small_presets_fit_the_cpu_budget(name):
    model = build_model(name, **model_kwargs(name, "small"))
    assert sum(p.numel() for p in model.parameters()) * 4 <= 30e6


def test_save_load_round_trip(tmp_path):
    model = tiny("deepfill").eval()
    path = save_model(model, tmp_path / "w.safetensors", "deepfill", model.kwargs, {"steps": 3, "data": "scenes"})
    loaded = load_model(path)
    assert loaded.name == "deepfill" and not loaded.training
    assert loaded.kwargs == {"base": 4, "dilations": (2, 4)}
    assert loaded.metadata == {"steps": "3", "data": "scenes"}
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # the file holds weights only: the header is JSON, not a pickle
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert header["__metadata__"]["tessera_model"] == "deepfill"


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no weight file"):
        load_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelLoadError):
        load_model(bad)
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ModelLoadError, match="no Tessera model name"):
        load_model(tmp_path / "foreign.safetensors")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg")


@pytest.mark.parametrize("rate", [1, 2])
def test_contextual_attention_copies_a_repeated_background_patch(rate):
    # Background features are noise; the foreground inside the hole repeats the 8x8 patch at
    # rows 2:10, cols 4:12. Attention must paste exactly that patch into the hole.
    g = torch.Generator().manual_seed(0)
    b = torch.randn(1, 8, 32, 32, generator=g)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 16:24, 16:24] = 1
    f = b.clone()
    f[..., 16:24, 16:24] = b[..., 2:10, 4:12]
    b_holed = b.clone()
    b_holed[..., 16:24, 16:24] = 0  # the hole's own content must not be used
    out, attn = contextual_attention(f, b_holed, mask, rate=rate, softmax_scale=10.0, return_scores=True)
    inner = slice(18, 22)
    src_y, src_x = slice(4, 8), slice(6, 10)
    assert torch.allclose(out[..., inner, inner], b[..., src_y, src_x], atol=1e-3)
    # the attention of the hole centre peaks at the matching background position
    h = 32 // rate
    centre = attn[0, :, 20 // rate, 20 // rate]
    best = int(centre.argmax())
    assert divmod(best, h) == ((20 - 14) // rate, (20 - 12) // rate)
    assert float(centre.max()) > 0.99


def test_contextual_attention_ignores_hole_patches():
    b = torch.randn(1, 4, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    _, attn = contextual_attention(b, b, mask, rate=1, return_scores=True)
    weights = attn[0].sum(dim=(1, 2)).reshape(16, 16)  # attention mass per background position
    assert float(weights[3:13, 3:13].abs().max()) == 0.0  # patches touching the hole never used
    assert torch.allclose(attn[0].sum(0), torch.ones(16, 16))


def test_critic_features_and_any_size():
    c = WGANCritic(in_channels=3, base=4, n_layers=3)
    s, feats = c(torch.zeros(2, 3, 24, 40), features=True)
    assert s.shape == (2, 1) and len(feats) == 3 and feats[-1].shape == (2, 16, 3, 5)


def test_unet_blocks_round_trip_and_validation(tmp_path):
    model = build_model("unet", base=4, depth=3, blocks=(0, 1, 1)).eval()
    assert len(model.blocks[1]) == 1 and len(model.blocks[2]) == 1
    path = save_model(model, tmp_path / "b.safetensors", "unet", model.kwargs)
    loaded = load_model(path)
    x = torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    for bad in ((1, 0, 0), (0, -1), (0, 0, 0, 1)):
        with pytest.raises(ValueError, match="blocks"):
            build_model("unet", base=4, depth=3, blocks=bad)
