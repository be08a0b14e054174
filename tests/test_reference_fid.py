"""FID against the reference implementation itself: pytorch-fid 0.3.0's ``calculate_fid_given_paths``.

Random weights in the official ``pt_inception-2015-12-05-6726825d.pth`` layout are placed where
pytorch-fid looks for its download (``$TORCH_HOME/hub/checkpoints``), so its own loader, PNG reading,
InceptionV3 wrapper and Frechet distance run next to ours (``metrics.fid`` + ``metrics.frechet``) on the
same images. The 64-d block (``dims=64``) keeps the CPU time small and gives more images than dimensions,
where pytorch-fid's ``sqrtm`` is well conditioned; the 2048-d block differs only in the layer read.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from metrics.fid import build_fid_model, fid_inception_v3_local, inception_features
from metrics.frechet import frechet_from_features

fid_score = pytest.importorskip("pytorch_fid.fid_score")


def test_fid_matches_pytorch_fid_on_the_same_files(tmp_path, monkeypatch):
    state = fid_inception_v3_local(None, seed=3).state_dict()
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    weights = hub / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    rng = np.random.default_rng(0)
    sets = []
    for name, shift in (("a", 0), ("b", 40)):
        folder = tmp_path / name
        folder.mkdir()
        frames = np.clip(rng.normal(120 + shift, 50, (80, 48, 64, 3)), 0, 255).astype(np.uint8)
        for i, f in enumerate(frames):
            Image.fromarray(f).save(folder / f"{i:03d}.png")
        sets.append(frames)
    torch.manual_seed(0)
    ref = fid_score.calculate_fid_given_paths([str(tmp_path / "a"), str(tmp_path / "b")], batch_size=16,
                                              device="cpu", dims=64, num_workers=0)
    model = build_fid_model(str(weights), dims=64)
    ours = frechet_from_features(inception_features(model, sets[0]), inception_features(model, sets[1]))
    print(f"FID (64-d block): ours {ours:.6f}, pytorch-fid {ref:.6f}")
    assert ours == pytest.approx(ref, rel=1e-5)
