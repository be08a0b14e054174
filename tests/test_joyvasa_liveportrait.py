"""LivePortrait motion extractor: official key names/shapes, loading a random-weight file in that
format from a local folder, and the mapping of its outputs to JoyVASA's motion layout."""

import pytest
import torch

from lightning_modules.joyvasa.liveportrait import (
    LivePortraitMotionExtractor,
    load_liveportrait_motion_extractor,
)

torch.set_num_threads(1)
SMALL = dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))


def test_official_key_names_and_shapes():
    with torch.device("meta"):  # full ConvNeXtV2-tiny without allocating it
        shapes = {k: tuple(v.shape) for k, v in LivePortraitMotionExtractor().state_dict().items()}
    expect = {"detector.downsample_layers.0.0.weight": (96, 3, 4, 4), "detector.downsample_layers.0.1.weight": (96,),
              "detector.downsample_layers.3.1.weight": (768, 384, 2, 2), "detector.stages.0.0.dwconv.weight": (96, 1, 7, 7),
              "detector.stages.2.8.grn.gamma": (1, 1, 1, 1536), "detector.stages.3.2.pwconv2.weight": (768, 3072),
              "detector.norm.weight": (768,), "detector.fc_kp.weight": (63, 768), "detector.fc_exp.weight": (63, 768),
              "detector.fc_pitch.weight": (66, 768), "detector.fc_yaw.bias": (66,), "detector.fc_roll.weight": (66, 768),
              "detector.fc_t.weight": (3, 768), "detector.fc_scale.weight": (1, 768)}
    for k, shape in expect.items():
        assert shapes.get(k) == shape, k
    assert all(k.startswith("detector.") for k in shapes)
    assert len([k for k in shapes if k.startswith("detector.stages.")]) == 18 * 10  # 18 blocks, 10 tensors each


def write_random(folder, **kw):
    torch.manual_seed(0)
    model = LivePortraitMotionExtractor(**kw)
    (folder / "base_models").mkdir(parents=True)
    torch.save({k: torch.randn_like(v) * 0.05 for k, v in model.state_dict().items()},
               folder / "base_models" / "motion_extractor.pth")
    return folder / "base_models" / "motion_extractor.pth"


def test_loader_reads_the_official_file_layout(tmp_path):
    file = write_random(tmp_path, **SMALL)
    model = load_liveportrait_motion_extractor(str(tmp_path), 21, image_size=64, **SMALL)
    state = torch.load(file, weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert not any(p.requires_grad for p in model.parameters())
    x_c, motion = model(torch.rand(2, 3, 48, 48) * 2 - 1)  # resized to the network's input size
    assert x_c.shape == (2, 21, 3) and motion.shape == (2, 70)
    with pytest.raises(ValueError, match="model.liveportrait.path"):
        load_liveportrait_motion_extractor(str(file), 20, image_size=64, **SMALL)  # 20 keypoints: wrong shapes
    with pytest.raises(FileNotFoundError, match="model.liveportrait.path"):
        load_liveportrait_motion_extractor(str(tmp_path / "nowhere"))


def test_outputs_map_to_motion_layout():
    model = LivePortraitMotionExtractor(image_size=32, **SMALL)
    det = model.detector
    with torch.no_grad():
        for name in ("kp", "exp", "scale", "t", "pitch", "yaw", "roll"):
            getattr(det, f"fc_{name}").weight.zero_()
        det.fc_pitch.bias.fill_(-1e4)
        det.fc_pitch.bias[40] = 0.0   # bin 40 -> 40 * 3 - 97.5 = 22.5 degrees
        det.fc_yaw.bias.zero_()       # uniform bins -> mean of centres = 0 degrees
        det.fc_roll.bias.fill_(-1e4)
        det.fc_roll.bias[0] = 0.0     # -97.5 degrees
        det.fc_t.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
        det.fc_scale.bias.fill_(1.5)
        det.fc_kp.bias.copy_(torch.arange(63.0))
        det.fc_exp.bias.fill_(0.01)
    x_c, motion = model(torch.zeros(1, 3, 32, 32))
    lay = model.layout
    assert torch.allclose(motion[0, lay.angles], torch.tensor([22.5, 0.0, -97.5]), atol=1e-4)
    assert torch.allclose(motion[0, lay.translation], torch.tensor([0.1, 0.2, 0.0]))  # LivePortrait drops t_z
    assert motion[0, lay.scale].item() == pytest.approx(1.5)
    assert torch.allclose(motion[0, lay.exp], torch.full((63,), 0.01))
    assert torch.equal(x_c[0, 1], torch.tensor([3.0, 4.0, 5.0]))


def test_module_with_liveportrait_keeps_it_frozen(tmp_path):
    from tests.test_joyvasa_module import make_module

    write_random(tmp_path, **SMALL)
    mod = make_module(motion={"num_kp": 21}, liveportrait={"path": str(tmp_path), "image_size": 32, **SMALL})
    assert isinstance(mod.renderer.motion, LivePortraitMotionExtractor)
    mod.set_stage("render")
    mod.configure_optimizers()
    names = {n for n, p in mod.named_parameters() if p.requires_grad}
    assert names and not any(n.startswith("renderer.motion.") for n in names)
    assert any(n.startswith("renderer.warp.") for n in names)
