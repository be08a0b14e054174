"""JoyVASA LightningModule: stages, losses on batches of the batch contract, sampling, configs."""

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from lightning_modules.joyvasa import JoyVASAModule

torch.set_num_threads(1)
W_CUR, W_PRE, SIZE = 6, 2, 32
WAV2VEC = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
           "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}


def joyvasa_kwargs(**kw) -> dict:
    """Every constructor key of a tiny JoyVASA (the module has no defaults); ``kw`` merges into the groups."""
    args = dict(fps=25.0, windows={"w_cur": W_CUR, "w_pre": W_PRE},
                dit={"width": 32, "layers": 1, "heads": 2, "ff_mult": 4, "dropout": 0.0, "align_band": 1},
                motion={"num_kp": 4},
                audio={"wav2vec_path": None, "random_config": WAV2VEC, "sample_rate": 16000},
                loss={"velocity": 5.0, "smooth": 0.5, "expression": 0.1},
                guidance={"scale": 1.0, "audio_drop": 0.1},
                truncate_prob=0.0, noise_schedule={},
                renderer={"channels": 4, "depth": 2, "width": 16, "sigma": 0.2, "max_angle": 45.0},
                optim={"lr": 1e-4, "betas": [0.9, 0.999], "render_lr": 1e-4},
                liveportrait={"path": None, "image_size": 256, "depths": [3, 3, 9, 3],
                              "dims": [96, 192, 384, 768]},
                sampling={"num_steps": 4, "seed": 0, "progress": False, "render_chunk": 32},
                stages=[{"name": "render", "max_steps": 2}, {"name": "motion", "max_steps": 2}])
    for key, value in kw.items():
        args[key] = {**args[key], **value} if isinstance(value, dict) else value
    return args


def make_module(**kw) -> JoyVASAModule:
    torch.manual_seed(0)
    return JoyVASAModule(**joyvasa_kwargs(**kw))


def blobs(b: int, n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """(b, n, 3, size, size) in [-1, 1]: a coloured face-like blob drifting from frame to frame."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centre = (torch.rand(b, 1, 2, generator=g) - 0.5) * 0.6 + 0.08 * torch.arange(n)[None, :, None].sin()
    d2 = (xx - centre[..., 0, None, None]) ** 2 + (yy - centre[..., 1, None, None]) ** 2
    colour = torch.rand(b, 1, 3, 1, 1, generator=g)
    return (2 * colour * torch.exp(-d2 / 0.15)[:, :, None] - 1).clamp(-1, 1)


def make_batch(b=2, t=W_CUR, m=W_PRE, ctx=W_PRE, size=SIZE, seed=0) -> dict:
    """A training batch of the batch contract (datamodules/clips.py); the first row starts its video."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, m)
    mask[0] = 0.0
    video = blobs(b, m + t, size, g)  # motion frames (newest first), then the clip
    return {"frames": video[:, m:], "reference": video[:, 0],
            "motion_frames": video[:, :m].flip(1), "motion_mask": mask,
            "audio": torch.randn(b, (t + 2 * ctx) * 640, generator=g) * 0.1,
            "landmarks": torch.rand(b, t, 68, 2, generator=g),
            "meta": [{"video_id": f"v{i}", "fps": 25.0} for i in range(b)]}


def trainable(module):
    return {n.split(".")[0] for n, p in module.named_parameters() if p.requires_grad}


def test_stages_train_their_own_parts():
    mod = make_module()
    mod.set_stage("render")
    mod.configure_optimizers()
    assert trainable(mod) == {"renderer"}
    mod.set_stage("motion")
    mod.configure_optimizers()
    assert trainable(mod) == {"dit"}  # the motion model sees no image and leaves the renderer alone
    with pytest.raises(ValueError, match="model.stages"):
        mod.set_stage("stage1")


def test_motion_step_uses_frozen_encoder_and_start_rows():
    mod = make_module()
    mod.set_stage("motion")
    loss, parts = mod.motion_step(make_batch())
    assert set(parts) == {"simple", "velocity", "smooth", "expression"} and torch.isfinite(loss)
    assert bool(mod.stats_ready) and (mod.motion_std > 0).all()
    loss.backward()
    assert mod.dit.x_start.grad is not None and mod.dit.x_start.grad.abs().sum() > 0  # row 0 used start features
    assert all(p.grad is None for p in mod.renderer.parameters())


def test_both_stages_learn_on_one_batch():
    mod = make_module(optim={"lr": 3e-3, "render_lr": 3e-3})
    batch = make_batch()
    for stage, step in (("render", mod.render_step), ("motion", lambda b: mod.motion_step(b)[0])):
        mod.set_stage(stage)
        opt = mod.configure_optimizers()
        losses = []
        for _ in range(25):
            torch.manual_seed(len(losses) % 5)  # the same 5 noise draws again and again
            loss = step(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) < 0.8 * sum(losses[:5]), (stage, losses)


def test_bad_inputs_name_the_config_key():
    mod = make_module()
    with pytest.raises(ValueError, match="data.clip.num_frames"):
        mod.motion_step(make_batch(t=W_CUR + 1))
    with pytest.raises(ValueError, match="data.audio_context_frames"):
        mod.motion_step(make_batch(ctx=0))
    with pytest.raises(ValueError, match="data.clip.num_motion_frames"):
        mod.motion_step(make_batch(m=1))
    with pytest.raises(ValueError, match="model.loss"):
        make_module(loss={"smooth": -1.0})
    with pytest.raises(ValueError, match="model.stages"):
        make_module(stages=[{"name": "stage2", "max_steps": 1}])
    with pytest.raises(ValueError, match="prediction_type"):
        make_module(noise_schedule={"prediction_type": "epsilon"})


def test_predict_long_video_is_deterministic():
    mod = make_module().eval()
    item = {"reference": torch.rand(1, 3, SIZE, SIZE) * 2 - 1, "audio": torch.randn(1, 15 * 640) * 0.1,
            "num_frames": torch.tensor([15]), "fps": 25.0, "meta": [{"video_id": "x"}]}
    a = mod.predict_step(item, 0)["video"]
    b = mod.predict_step(item, 0)["video"]
    assert a.shape == (1, 15, 3, SIZE, SIZE) and a.abs().max() <= 1.0
    assert torch.equal(a, b)
    assert not torch.allclose(a[0, 0], a[0, -1])  # the generated motion moves the face


def test_test_items_sampled_side_by_side_are_each_rendered_from_their_own_reference():
    """data.test_batch_size > 1: a batch of B test items gives B videos, item b drawn from reference b with
    motion b, as when rendered alone."""
    mod = make_module().eval()
    g = torch.Generator().manual_seed(1)
    refs = blobs(3, 1, SIZE, g)[:, 0]
    batch = {"reference": refs, "audio": torch.randn(3, 15 * 640, generator=g) * 0.1,
             "num_frames": torch.tensor([15, 15, 15]), "fps": 25.0, "meta": [{"video_id": f"x{i}"} for i in range(3)]}
    video = mod.predict_step(batch, 0)["video"]
    assert video.shape == (3, 15, 3, SIZE, SIZE)
    motion = torch.randn(3, 15, mod.layout.dim, generator=g) * 0.1
    together = mod.render_motion(refs, motion)
    for b in range(3):
        alone = mod.render_motion(refs[b:b + 1], motion[b:b + 1])[0]
        assert torch.allclose(together[b], alone, atol=1e-5)
    assert not torch.allclose(together[0], together[1], atol=1e-3)  # different references, different videos


def test_lightning_fit_runs_both_stages():
    mod = make_module()
    loader = torch.utils.data.DataLoader([0, 1], batch_size=1, collate_fn=lambda _: make_batch(b=2))
    for stage in ("render", "motion"):
        mod.set_stage(stage)
        before = {k: v.clone() for k, v in mod.state_dict().items()}
        L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, accelerator="cpu").fit(mod, loader)
        changed = {k.split(".")[0] for k, v in mod.state_dict().items() if not torch.equal(v, before[k])}
        assert changed - {"motion_mean", "motion_std", "stats_ready"} == {"renderer" if stage == "render" else "dit"}


def test_configs_compose_and_instantiate(compose):
    from lightning_modules.build import build_model

    cfg = compose(["model=joyvasa"], with_test_configs=False)
    assert cfg.model.windows.w_cur == cfg.data.clip.num_frames == 25
    assert cfg.model.windows.w_pre == cfg.data.clip.num_motion_frames == 5
    assert [s.name for s in cfg.model.stages] == ["render", "motion"]
    mod = build_model(cfg.model)
    assert isinstance(mod, JoyVASAModule) and mod.layout.dim == 70 and len(mod.dit.decoder.layers) == 2
    paper = compose(["model=joyvasa", "scale=paper"], with_test_configs=False)
    assert (paper.model.dit.layers, paper.model.dit.heads, paper.model.dit.width) == (6, 8, 512)
    assert (paper.model.windows.w_cur, paper.model.windows.w_pre) == (100, 25)
    assert dict(paper.model.loss) == {"velocity": 5.0, "smooth": 0.5, "expression": 0.1}
    for name in ("ablation=joyvasa_losses", "ablation=joyvasa_cfg", "table=joyvasa_celebvhq", "table=joyvasa_openset"):
        run = compose([name], with_test_configs=False)
        assert run.model._target_.endswith("JoyVASAModule")
        for label, overrides in run.experiment.variants.items():
            for key in overrides:  # every variant key is a real config key of the module
                assert OmegaConf.select(run, key, default="MISSING") != "MISSING", (name, label, key)
    assert "chelsea" in compose(["table=joyvasa_openset"], with_test_configs=False).data.test_identities
