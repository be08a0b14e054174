"""FVD-I against reference code: the PyPI ``cd-fvd`` package.

cd-fvd wraps the same two pieces FVD-I reproduces: pytorch-i3d's ``InceptionI3d(400)`` with the
``i3d_pretrained_400.pt`` layout (DisCo's FVD-3DInception network) and stylegan-v's ``FeatureStats``
(covariance divided by N) with stylegan-v's ``compute_fvd`` distance. Its own preprocessing (bilinear
resize) is not DisCo's (PIL bicubic on floats), so the network is compared on identical network
inputs and the resize is tested against PIL in tests/test_metrics_fvd.py. There is no pip package of
stylegan-v's TorchScript detector; its call (``rescale=True, resize=True, return_features=True``) and
16-frame clips are tested in tests/test_metrics_fvd.py.
"""
import numpy as np
import pytest
import torch

from core.video_io import write_video
from metrics.evaluate import evaluate_folders
from metrics.fvd import FVDIScorer, load_inception_i3d

cd_i3d = pytest.importorskip("cdfvd.third_party.i3d.pytorch_i3d", reason="dev extra cd-fvd")
cd_stats = pytest.importorskip("cdfvd.utils.metric_utils", reason="dev extra cd-fvd")
cd_fvd = pytest.importorskip("cdfvd.fvd", reason="dev extra cd-fvd")


def test_inception_i3d_matches_pytorch_i3d_on_the_same_random_weights(tmp_path):
    torch.manual_seed(0)
    ref = cd_i3d.InceptionI3d(400, in_channels=3)
    g = torch.Generator().manual_seed(1)
    state = ref.state_dict()
    for k, v in state.items():  # trained-looking BatchNorm statistics
        if k.endswith("running_mean"):
            state[k] = torch.randn(v.shape, generator=g) * 0.1
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=g) + 0.5
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(state, path)
    ref.load_state_dict(torch.load(path))
    ours = load_inception_i3d(str(path))
    assert set(ours.state_dict()) == set(state)
    x = torch.rand(1, 3, 8, 224, 224, generator=g) * 2 - 1
    ref.eval()
    with torch.no_grad():
        a, b = ours.pre_pool(x), ref.extract_pre_pool_features(x)
    print(f"InceptionI3d Mixed_5c: max |ours - cd-fvd| = {float((a - b).abs().max()):.3g} "
          f"(scale {float(b.abs().max()):.3g})")
    assert a.shape == b.shape == (1, 1024, 1, 7, 7)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # the head: DisCo pools 1x7x7, cd-fvd (TATS / piergiaj) 2x7x7; over two time steps (a 16-frame clip)
    # both average the same two logit vectors
    feat = torch.rand(1, 1024, 2, 7, 7, generator=g)
    with torch.no_grad():
        ha = ours.head(feat)
        hb = ref.logits(ref.avg_pool(feat)).squeeze(3).squeeze(3).mean(2)
    torch.testing.assert_close(ha, hb, rtol=1e-5, atol=1e-6)


def test_styleganv_fvd_uses_the_reference_covariance(tmp_path):
    # 8 paired videos through the styleganv protocol (stand-in detector), then the same features through
    # cd-fvd's FeatureStats (stylegan-v's get_mean_cov, covariance / N) and compute_fvd_from_stats
    rng = np.random.default_rng(0)
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for i in range(8):
        base = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        write_video(gt / f"v{i}.mp4", np.stack([np.roll(base, t, 1) for t in range(18)]), 25)
        write_video(pred / f"v{i}.mp4", np.stack([np.roll(base, 2 * t, 0) for t in range(18)]), 25)
    opts = {"FVD-I": {"reference": "styleganv"}}
    r = evaluate_folders(pred, gt, metrics=["FVD-I"], n_boot=10, progress=False, options=opts)
    from core.video_io import read_video

    scorer = FVDIScorer(reference="styleganv")
    fake, real = cd_stats.FeatureStats(capture_mean_cov=True), cd_stats.FeatureStats(capture_mean_cov=True)
    for i in range(8):
        fake.append(scorer.features(read_video(pred / f"v{i}.mp4")))
        real.append(scorer.features(read_video(gt / f"v{i}.mp4")))
    ref = cd_fvd.cdfvd.compute_fvd_from_stats(object.__new__(cd_fvd.cdfvd), fake, real)
    print(f"FVD-I styleganv: ours {r.summary['FVD-I']['mean']:.6f}, cd-fvd (stylegan-v stats) {float(ref):.6f}")
    # FeatureStats accumulates float32 features; the estimator, not the rounding, is what must agree
    assert r.summary["FVD-I"]["mean"] == pytest.approx(float(ref), rel=1e-4)
