"""Saving and loading the trained weights (safetensors: nothing is ever unpickled)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from prodcat_django.ml.manifest import (
    PROBE_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    CheckpointInfo,
    verify_checkpoint,
    write_manifest,
)
from prodcat_django.ml.model import FusionEnsemble, FusionModel, ProbeEnsemble, build_model

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def save_checkpoint(
    out_dir: str | Path,
    model: FusionModel | FusionEnsemble | ProbeEnsemble,
    config: dict[str, Any],
    labels: list[str] | tuple[str, ...],
    manifest_fields: dict[str, Any],
) -> Path:
    """Write weights, config, labels and a manifest hashing them into ``out_dir``.

    A ``ProbeEnsemble``'s probe head goes to its own file, ``probe.safetensors`` (hashed in the
    manifest like the rest): ``weights.safetensors`` keeps the trained model's tensors only."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(labels) != config["model"]["num_labels"]:
        raise ValueError(
            f"{len(labels)} labels for a model with {config['model']['num_labels']} outputs"
        )
    if isinstance(model, ProbeEnsemble) != ("probe" in config["model"]):
        raise ValueError("config.json's model.probe must describe the model's probe head")
    dtype = _DTYPES[config.get("weights_dtype", "float32")]

    def tensors(module: torch.nn.Module, as_dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {
            k: (v.detach().to(as_dtype) if v.is_floating_point() else v.detach())
            .cpu()
            .contiguous()
            .clone()
            for k, v in module.state_dict().items()
        }

    if isinstance(model, ProbeEnsemble):
        # float32: regression weights at large C do not survive half precision unchanged.
        save_file(tensors(model.probe, torch.float32), str(out / PROBE_FILE), {"format": "pt"})
        model = model.base
    save_file(tensors(model, dtype), str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "labels.json").write_text(json.dumps(list(labels), indent=2) + "\n", encoding="utf-8")
    fields = {
        "name": config.get("name", out.parent.name),
        "version": config.get("version", out.name),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "num_labels": len(labels),
        **manifest_fields,
    }
    write_manifest(out, fields)
    return out


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[FusionModel | FusionEnsemble | ProbeEnsemble, CheckpointInfo]:
    """Verify the checkpoint at ``path`` and build its model in eval mode on ``device``."""
    info = verify_checkpoint(path)
    try:
        model = build_model(info.config, pretrained_tail=False)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{Path(path) / 'config.json'}: cannot build the model ({exc})"
        ) from exc
    if isinstance(model, ProbeEnsemble):
        _load_into(model.base, Path(path) / WEIGHTS_FILE)
        _load_into(model.probe, Path(path) / PROBE_FILE)
    else:
        _load_into(model, Path(path) / WEIGHTS_FILE)
    return model.to(device).eval(), info


def _load_into(model: torch.nn.Module, file: Path) -> None:
    """Load ``file``'s tensors into ``model``, refusing any mismatch with the architecture."""
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{file}: tensors do not match config.json's architecture "
            f"(missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"{file}: tensor {key} has shape {tuple(tensor.shape)}, the architecture in "
                f"config.json needs {tuple(expected[key].shape)} (label count or width mismatch?)"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
