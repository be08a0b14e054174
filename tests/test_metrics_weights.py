"""The weights table: lookup order, one clear error naming key / variable / file, checked before decoding."""
import pytest

from core import weights
from metrics.evaluate import evaluate_folders


def test_rows_of_the_table():
    for key in ("fid_inception", "i3d", "resnet3d50", "deep3d_recon", "qalign", "syncnet_v2", "s3fd", "amt_s",
                "dwpose_det", "dwpose_pose"):
        spec = weights.WEIGHTS[key]
        assert spec.key == key and spec.env_var.startswith("SUITE_") and spec.filename and spec.fmt
    assert weights.WEIGHTS["i3d"].filename == "i3d_torchscript.pt"
    assert "weights.i3d" in weights.table_markdown()


def test_config_wins_over_environment(tmp_path, monkeypatch):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    monkeypatch.setenv("SUITE_I3D", str(b))
    assert weights.resolve("i3d") == str(b)
    assert weights.resolve("i3d", {"i3d": str(a)}) == str(a)


def test_missing_file_names_key_variable_and_file(monkeypatch):
    monkeypatch.delenv("SUITE_I3D", raising=False)
    assert weights.resolve("i3d", standin=True) is None
    with pytest.raises(weights.MissingWeightsError) as e:
        weights.resolve("i3d", {"i3d": "/nope/i3d.pt"})
    msg = str(e.value)
    assert "weights.i3d" in msg and "SUITE_I3D" in msg and "i3d_torchscript.pt" in msg and "/nope/i3d.pt" in msg


def test_check_lists_every_missing_file(monkeypatch):
    for s in weights.WEIGHTS.values():
        monkeypatch.delenv(s.env_var, raising=False)
    with pytest.raises(weights.MissingWeightsError) as e:
        weights.check(["fid_inception", "resnet3d50", "qalign"])
    msg = str(e.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg and "resnet-50-kinetics.pth" in msg
    assert "one-align" not in msg  # optional rows are not required


def test_evaluate_fails_before_decoding(tmp_path, monkeypatch):
    monkeypatch.delenv("SUITE_FID_INCEPTION", raising=False)
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "broken.mp4").write_bytes(b"not a video")  # would be a read error if decoded
    with pytest.raises(weights.MissingWeightsError, match="SUITE_FID_INCEPTION"):
        evaluate_folders(tmp_path / "pred", tmp_path / "pred", metrics=["FID"], standin=False, progress=False)


def test_unknown_weights_key_is_named(tmp_path):
    with pytest.raises(ValueError, match="fid_incpetion"):
        evaluate_folders(tmp_path, None, metrics=["IQA"], weights={"fid_incpetion": "x.pth"}, progress=False)
