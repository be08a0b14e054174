"""Audio embeddings c_audio (Loopy §3.3): wav2vec 2.0 hidden states of every layer concatenated
(as in EMO), resampled to the video frame rate, and a 5-frame window per video frame (the two
preceding and two succeeding frames).

The wav2vec2 weights load from a local Hugging Face folder (``config.json`` +
``model.safetensors``/``pytorch_model.bin``, the official ``facebook/wav2vec2-base-960h`` layout);
without one a small randomly initialised wav2vec2 of the same architecture is built and the run says
so loudly.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

from core.weights import fixed_seed_init

log = logging.getLogger(__name__)


def frame_windows(features: torch.Tensor, before: int = 2, after: int = 2) -> torch.Tensor:
    """(B, N, D) per-frame features -> (B, N, before+1+after, D); edges repeat the first/last frame."""
    n = features.shape[1]
    offsets = torch.arange(-before, after + 1, device=features.device)
    idx = torch.arange(n, device=features.device)[:, None] + offsets
    return features[:, idx.clamp(0, n - 1)]


class Wav2VecAudioEncoder(nn.Module):
    """Frozen wav2vec2 returning all hidden states concatenated per video frame.

    Args:
        path: local folder of a transformers ``Wav2Vec2Model`` checkpoint, or None for random init.
        random_config: ``Wav2Vec2Config`` keyword arguments used without ``path`` (tiny sizes).
        sample_rate: audio rate (16 kHz).
    """

    def __init__(self, path: str | None = None, random_config: dict | None = None, sample_rate: int = 16000):
        super().__init__()
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        if path:
            if not os.path.isfile(os.path.join(path, "config.json")):
                raise FileNotFoundError(f"no wav2vec2 checkpoint at {path!r} (expected config.json + weights "
                                        f"of facebook/wav2vec2-base-960h); fix model.audio.wav2vec_path or "
                                        f"set it null")
            self.model = Wav2Vec2Model.from_pretrained(path)
        else:
            log.warning("No wav2vec2 weights given (model.audio.wav2vec_path is null): the audio encoder is "
                        "RANDOMLY INITIALISED; audio features carry the waveform but no pretrained speech "
                        "knowledge.")
            with fixed_seed_init(0):  # the same random encoder in every run; the run's RNG untouched
                self.model = Wav2Vec2Model(Wav2Vec2Config(**(random_config or {})))
        self.model.requires_grad_(False).eval()
        self.sample_rate = sample_rate
        cfg = self.model.config
        self.feature_dim = cfg.hidden_size * (cfg.num_hidden_layers + 1)

    def train(self, mode: bool = True):  # frozen: stays in eval mode
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        """:param audio: (B, S) waveform. :param num_frames: video frames the waveform spans.
        :returns: (B, num_frames, feature_dim) hidden states of every layer, linearly resampled to frames."""
        min_len = 400  # the conv feature encoder needs at least one 25 ms window
        if audio.shape[1] < min_len:
            audio = F.pad(audio, (0, min_len - audio.shape[1]))
        # wav2vec2 input normalisation (zero mean, unit variance per utterance)
        audio = (audio - audio.mean(1, keepdim=True)) / (audio.std(1, keepdim=True) + 1e-7)
        hidden = self.model(audio.float(), output_hidden_states=True).hidden_states
        feats = torch.cat(hidden, dim=-1)                                  # (B, N50, L*H)
        feats = F.interpolate(feats.transpose(1, 2), size=num_frames, mode="linear", align_corners=True)
        return feats.transpose(1, 2)
