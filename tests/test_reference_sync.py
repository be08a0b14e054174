"""Sync-C/D against the reference implementation itself: the PyPI ``syncnet-python`` package.

Its ``SyncNetInstance.evaluate`` is joonson/syncnet_python@6efbb1c's evaluation with the ffmpeg
conversion moved out (it reads ``*.jpg`` frames and ``audio.wav`` from ``opt.tmp_dir``) and the
network handed in; the window count, the 5-frame / 20-column pairing, the batches of 20,
``calc_pdist`` and the offset / confidence / distance are line for line the same. Both sides get the
same random SyncNet in the ``syncnet_v2.model`` layout and the same decoded frames and samples.
"""
import argparse

import cv2
import numpy as np
import pytest
import torch
from scipy.io import wavfile

from metrics.sync import embed, load_syncnet, mfcc_features, sync_from_features

ref_model = pytest.importorskip("syncnet_python.SyncNetModel", reason="dev extra syncnet-python")
ref_instance = pytest.importorskip("syncnet_python.SyncNetInstance", reason="dev extra syncnet-python")


def _official_random_state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    state = ref_model.S(num_layers_in_fc_layers=1024).state_dict()
    g = torch.Generator().manual_seed(seed)
    for k, v in state.items():  # non-trivial BatchNorm statistics, as a trained file has
        if k.endswith("running_mean"):
            state[k] = torch.randn(v.shape, generator=g) * 0.1
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=g) + 0.5
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # old-PyTorch file


@pytest.mark.parametrize("T, samples", [(32, 31 * 640)])  # 123 MFCC columns: floor(123 / 4) = 30 < 31
def test_sync_matches_syncnet_python_evaluate(tmp_path, T, samples):
    state = _official_random_state()
    path = tmp_path / "syncnet_v2.model"
    torch.save(state, path)
    rng = np.random.default_rng(0)
    # BGR 224x224 crops: a moving blob over noise; written as the reference reads them (cv2 jpg)
    for t in range(T):
        img = (rng.integers(0, 60, (224, 224, 3)) + 100).astype(np.uint8)
        cv2.circle(img, (112, 150 + (t % 5) * 4), 30 + 3 * (t % 7), (40, 40, 200), -1)
        cv2.imwrite(str(tmp_path / f"{t + 1:06d}.jpg"), img)
    crops = np.stack([cv2.imread(str(tmp_path / f"{t + 1:06d}.jpg")) for t in range(T)])
    audio_i16 = (rng.standard_normal(samples) * 3000 * np.repeat(rng.uniform(0.1, 1, samples // 640 + 1), 640)[
        :samples]).astype(np.int16)
    wavfile.write(tmp_path / "audio.wav", 16000, audio_i16)

    net = ref_model.S(num_layers_in_fc_layers=1024)
    net.load_state_dict(state, strict=False)
    inst = ref_instance.SyncNetInstance(net, device="cpu")
    opt = argparse.Namespace(tmp_dir=str(tmp_path), batch_size=20, vshift=15)
    with torch.no_grad():
        offset, conf, dist = inst.evaluate(opt)

    audio = audio_i16.astype(np.float32) / 32768.0  # our reader's float scale; mfcc_features undoes it
    im, cc = embed(load_syncnet(str(path)), crops, mfcc_features(audio), len(audio))
    assert len(im) == min(T, samples // 640) - 5 == 26
    ours = sync_from_features(im, cc, 15)
    print(f"syncnet-python: offset {offset} conf {conf:.6f} dist {dist:.6f}; ours: offset "
          f"{ours['sync_offset']:.0f} conf {ours['Sync-C']:.6f} dist {ours['Sync-D']:.6f}")
    assert ours["sync_offset"] == offset
    assert ours["Sync-C"] == pytest.approx(conf, rel=1e-4, abs=1e-4)
    assert ours["Sync-D"] == pytest.approx(dist, rel=1e-5)


def test_s3fd_matches_syncnet_python_detector(tmp_path):
    # the package's S3FD is syncnet_python's detectors/s3fd with the network handed in (and a torch-2 fix in
    # its NMS); same random weights in the sfd_face.pth layout, same RGB frame, same scale and threshold
    ref_s3fd = pytest.importorskip("syncnet_python.detectors.s3fd", reason="dev extra syncnet-python")
    from metrics.landmarks.s3fd import S3FD, load_s3fd

    torch.manual_seed(0)
    ref_net = ref_s3fd.S3FDNet(device="cpu")
    state = ref_net.state_dict()
    torch.save(state, tmp_path / "sfd_face.pth")
    ours = S3FD(load_s3fd(str(tmp_path / "sfd_face.pth")), scale=0.5, conf_th=0.5)
    ref = ref_s3fd.S3FD(ref_net, device="cpu")
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (256, 320, 3), dtype=np.uint8)
    cv2.circle(frame, (160, 128), 60, (200, 160, 140), -1)
    mine = ours.detect(frame)
    theirs = ref.detect_faces(frame, conf_th=0.5, scales=[0.5])
    print(f"S3FD: {len(mine)} boxes ours, {len(theirs)} syncnet-python")
    assert len(theirs) > 0 and mine.shape == theirs.shape
    order = lambda b: b[np.lexsort(b[:, :4].T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(mine), order(theirs), rtol=1e-4, atol=1e-3)
