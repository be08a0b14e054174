"""FID loader: a random state dict with pytorch-fid's exact key names loads; a renamed key fails."""
from unittest import mock

import numpy as np
import pytest
import torch
from pytorch_fid import inception as pfi
from torchvision.models.inception import Inception3

from metrics.fid import FIDScorer, build_fid_model


@pytest.fixture(scope="module")
def fid_file(tmp_path_factory):
    # The reference architecture comes from pytorch-fid itself: run its fid_inception_v3() with the
    # download replaced and load_state_dict skipped, then write random values under its key names.
    torch.set_num_threads(1)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(Inception3, "load_state_dict", lambda self, sd, *a, **k: None):
        ref = pfi.fid_inception_v3()
    g = torch.Generator().manual_seed(1)
    state = {k: (torch.randn(v.shape, generator=g) * 0.05 if v.is_floating_point() else v)
             for k, v in ref.state_dict().items()}
    for k in state:
        if k.endswith("running_var"):
            state[k] = state[k].abs() + 1.0
    path = tmp_path_factory.mktemp("w") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    return path, state


def test_local_file_loads_with_exact_keys(fid_file):
    path, state = fid_file
    model = build_fid_model(str(path))
    # pytorch-fid block 3 = Sequential(Mixed_7a, Mixed_7b, Mixed_7c, pool): Mixed_7c is blocks.3.2
    probe = "Mixed_7c.branch3x3dbl_3a.conv.weight"
    assert torch.equal(model.state_dict()["blocks.3.2.branch3x3dbl_3a.conv.weight"], state[probe])
    scorer = FIDScorer({"fid_inception": str(path)}, standin=False)
    assert scorer.backbone == str(path)
    feats = scorer.features(np.random.default_rng(0).integers(0, 256, (1, 40, 40, 3), dtype=np.uint8))
    assert feats.shape == (1, 2048) and np.isfinite(feats).all()


def test_key_mismatch_fails(fid_file, tmp_path):
    _, state = fid_file
    bad = dict(state)
    bad["Mixed_5b.renamed.weight"] = bad.pop("Mixed_5b.branch1x1.conv.weight")
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="fid_inception"):
        build_fid_model(str(tmp_path / "bad.pth"))


def test_standin_is_labelled_and_deterministic(monkeypatch):
    monkeypatch.delenv("SUITE_FID_INCEPTION", raising=False)
    frames = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    a, b = FIDScorer(), FIDScorer()
    assert a.backbone.startswith("standin:")
    np.testing.assert_array_equal(a.features(frames), b.features(frames))
    assert FIDScorer(frame_stride=2).features(frames).shape == (2, 2048)
