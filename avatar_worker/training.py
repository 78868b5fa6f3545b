"""Train the lip-sync MLP on espeak-ng speech: `python -m avatar_worker.training [--out PATH]`.

Reproduces models/lipsync/mouth_mlp.npz: ko and en training sentences (the first 30 of each
corpus) in six voices and three rates, resampled to 16-48 kHz, with random gain, clipping,
DC offset and noise. Targets per 10 ms hop: the reference openness and viseme class of the
phoneme espeak-ng was producing at that moment. Needs torch (a project dependency) only here;
inference is numpy.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from .audio_features import StreamingFeatures
from .espeak_data import EVAL_START, TRAIN_RATES, TRAIN_VOICES, Utterance, corpus, synthesize_many
from .lipsync import CONTEXT, CONTEXT_FUTURE, CONTEXT_PAST, MODEL_PATH, _silence_features
from .phonemes import VISEMES, language_of, lookup

logger = logging.getLogger("avatar_worker.training")
_RATES = (16000, 22050, 24000, 44100, 48000)


def hop_labels(
    utt: Utterance, n_hops: int, time_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Openness, viseme index and weight of each 10 ms hop (weight 0 where unknown); phoneme
    times are multiplied by time_scale (audio that was sped up or slowed down)."""
    language = language_of(utt.voice)
    openness = np.zeros(n_hops, dtype=np.float32)
    classes = np.zeros(n_hops, dtype=np.int64)  # "sil"
    weight = np.ones(n_hops, dtype=np.float32)
    centres = (np.arange(n_hops) + 0.5) * 0.01
    for name, start, end in utt.phonemes:
        sel = (centres >= start * time_scale) & (centres < end * time_scale)
        entry = lookup(name, language)
        if entry is None:
            weight[sel] = 0.0
            continue
        classes[sel] = VISEMES.index(entry[0])
        openness[sel] = entry[1]
    return openness, classes, weight


def contexts_of(features: np.ndarray, silence: np.ndarray) -> np.ndarray:
    padded = np.concatenate(
        [np.repeat(silence[None], CONTEXT_PAST, 0), features, np.repeat(silence[None], 4, 0)]
    )
    view = np.lib.stride_tricks.sliding_window_view(padded, CONTEXT, axis=0)
    return view[: features.shape[0]].transpose(0, 2, 1)


def augment(utt: Utterance, rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
    """Audio at a random rate, with its pitch and formants scaled by a random factor (a shorter
    or longer vocal tract: other voices), gain, DC offset and noise; returns the time scale."""
    rate = int(rng.choice(_RATES))
    x = utt.audio.astype(np.float32) / 32768.0
    warp = float(rng.uniform(0.86, 1.16)) if rng.random() < 0.7 else 1.0
    source_rate = round(utt.sample_rate * warp / 10) * 10  # played faster = higher voice
    if rate != source_rate:
        g = np.gcd(rate, source_rate)
        x = resample_poly(x, rate // g, source_rate // g).astype(np.float32)
    x *= 10 ** (rng.uniform(-18, 8) / 20)
    if rng.random() < 0.3:
        x += rng.uniform(-0.05, 0.05)
    x += rng.normal(0, 10 ** (rng.uniform(-75, -45) / 20), x.size).astype(np.float32)
    return np.clip(x, -1.0, 32767 / 32768), rate, utt.sample_rate / source_rate


def build_dataset(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, opens, classes, weights = [], [], [], []
    jobs = [
        (text, voice, rate)
        for language, voices in TRAIN_VOICES.items()
        for text in corpus(language)[:EVAL_START]
        for voice in voices
        for rate in TRAIN_RATES
    ]
    for utt in synthesize_many(jobs):
        audio, sr, time_scale = augment(utt, rng)
        feats = StreamingFeatures(sr).push(audio)
        o, c, w = hop_labels(utt, feats.shape[0], time_scale)
        xs.append(contexts_of(feats, _silence_features(sr)).astype(np.float16))
        opens.append(o)
        classes.append(c)
        weights.append(w)
    return (
        np.concatenate(xs),
        np.concatenate(opens),
        np.concatenate(classes),
        np.concatenate(weights),
    )


def train(out: Path, epochs: int, seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x, o, c, w = build_dataset(seed)
    logger.info("dataset built", extra={"hops": int(x.shape[0])})
    flat = x.reshape(x.shape[0], -1).astype(np.float32)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0) + 1e-3
    xt = torch.from_numpy((flat - mean) / std)
    ot, ct, wt = torch.from_numpy(o), torch.from_numpy(c), torch.from_numpy(w)
    model = torch.nn.Sequential(
        torch.nn.Linear(flat.shape[1], 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1 + len(VISEMES)),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    n = xt.shape[0]
    for epoch in range(epochs):
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, 512):
            idx = perm[i : i + 512]
            xb = xt[idx] + 0.05 * torch.randn(len(idx), xt.shape[1])
            pred = model(xb)
            pred_open = torch.sigmoid(pred[:, 0])
            loss_open = (wt[idx] * (pred_open - ot[idx]) ** 2).mean() * 8.0
            ce = torch.nn.functional.cross_entropy(pred[:, 1:], ct[idx], reduction="none")
            loss = loss_open + (wt[idx] * ce).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        print(f"epoch {epoch + 1}/{epochs} loss {total / n:.4f}", file=sys.stderr)
    linear = [m for m in model if isinstance(m, torch.nn.Linear)]
    arrays = {
        "mean": mean.astype(np.float32),
        "std": std.astype(np.float32),
        "context": np.array(CONTEXT),
        "context_future": np.array(CONTEXT_FUTURE),
        "n_features": np.array(x.shape[2]),
        "visemes": np.array(VISEMES),
    }
    for i, layer in enumerate(linear):
        arrays[f"w{i}"] = layer.weight.detach().numpy().T.astype(np.float32)
        arrays[f"b{i}"] = layer.bias.detach().numpy().astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the lip-sync MLP on espeak-ng speech.")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    train(args.out, args.epochs, args.seed)


if __name__ == "__main__":
    main()
