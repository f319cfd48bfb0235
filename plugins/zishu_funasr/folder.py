"""A FunASR model folder: checking it before funasr sees it, and loading it with ``AutoModel``.

FunASR's layout: config.yaml (whose ``model:`` names the model class), model.pt (the weights),
the tokenizer's files, am.mvn, and a configuration.json whose ``file_path_metas`` maps config keys
to the files in the folder. funasr quietly builds a model with random weights when the weights file
a configuration.json names is absent, so every file the folder must have is checked here first.

Loading is offline: a folder that exists is never looked up on a model hub, ``disable_update``
skips funasr's version check, and the version line funasr prints and the logging it sets up at
import are kept out of the host's output.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from zishu.engines import ModelRef
from zishu.errors import EngineError

_TOKENIZER_FILES = ("bpemodel", "token_list")


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    label: str
    model_class: str  # config.yaml's `model:`, e.g. "SenseVoiceSmall"
    config_file: Path

    @classmethod
    def of(cls, model: ModelRef) -> ModelFolder:
        return cls.check(model.path, model.label)

    @classmethod
    def check(cls, path: Path, label: str) -> ModelFolder:
        """The folder at ``path``, once every file it needs is there; EngineError naming what is not."""
        if not path.is_dir():
            raise EngineError(f"{label}: a FunASR model is a folder (config.yaml, model.pt, ...), not the file {path}")
        needed = _needed_files(path)
        for role, name in needed.items():
            if not (path / name).is_file():
                raise EngineError(f"{label}: {name} is missing from the model folder {path} (it holds the {role})")
        config_file = path / needed["model config"]
        try:
            config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise EngineError(f"{config_file}: not valid YAML: {e}") from e
        model_class = config.get("model") if isinstance(config, dict) else None
        if not isinstance(model_class, str) or not model_class:
            raise EngineError(f"{config_file}: `model:` (the model class, e.g. SenseVoiceSmall) is missing")
        return cls(path, label, model_class, config_file)

    def vad_folder(self) -> ModelFolder | None:
        """The FSMN VAD model in this folder's ``vad/`` subfolder, when there is one."""
        sub = self.path / "vad"
        return ModelFolder.check(sub, f"{self.label} (its vad/ model)") if sub.is_dir() else None

    def load(self, device: str = "cpu"):
        """The folder loaded by ``funasr.AutoModel`` on ``device``."""
        with _quiet():
            import torch
            from funasr import AutoModel

            return AutoModel(model=str(self.path), device=device, disable_update=True, disable_pbar=True,
                             log_level="ERROR", ncpu=torch.get_num_threads())


def _needed_files(path: Path) -> dict[str, str]:
    """What each needed file holds -> its name: the config and the weights (as configuration.json
    names them, else config.yaml and model.pt) and the tokenizer's file when configuration.json names one."""
    needed = {"model config": "config.yaml", "weights": "model.pt"}
    described = path / "configuration.json"
    if not described.is_file():
        return needed
    try:
        metas = json.loads(described.read_text(encoding="utf-8")).get("file_path_metas") or {}
    except (ValueError, AttributeError) as e:
        raise EngineError(f"{described}: not a FunASR configuration.json (a JSON object): {e}") from e
    if not isinstance(metas, dict):
        raise EngineError(f"{described}: file_path_metas must map config keys to file names")
    needed["model config"] = metas.get("config", needed["model config"])
    needed["weights"] = metas.get("init_param", needed["weights"])
    tokenizer = metas.get("tokenizer_conf")
    if not isinstance(tokenizer, dict):
        tokenizer = {}
    needed.update({f"tokenizer's {key}": tokenizer[key] for key in _TOKENIZER_FILES
                   if isinstance(tokenizer.get(key), str)})
    return needed


@contextlib.contextmanager
def _quiet():
    """funasr sets up the root logger when imported, logs its progress while loading and prints its
    version: keep logging below ERROR off meanwhile, put the root logger back as it was after, and
    swallow the print, so the host's logging and output stay its own."""
    root = logging.getLogger()
    level, handlers, disabled = root.level, root.handlers[:], logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(disabled)
        root.setLevel(level)
        root.handlers[:] = handlers
