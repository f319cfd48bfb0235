"""The engine API: resolving models, choosing engines, and the memory-bounded cache of loaded models."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from zishu.engines import Engine, EngineInfo, Engines, MemoryNeed, ModelCache, ModelRef, resolve_model, use
from zishu.engines.use import pick_device
from zishu.errors import EngineError, NotEnoughMemory, ResourceNotAvailable
from zishu.resources.versions import VersionStore

MB = 2**20


class FileEngine(Engine):
    """A real engine in miniature: loading reads the model's bytes into memory; unloading drops them."""

    def __init__(self, name="file-llm", kind="llm", formats=("gguf",), fail=False):
        self.info = EngineInfo(kind=kind, name=name, formats=formats)
        self.fail = fail
        self.unloaded: list[str] = []

    def load(self, model, device="cpu"):
        if self.fail:
            raise RuntimeError("weights are corrupt")
        return {"bytes": model.path.read_bytes(), "label": model.label}

    def unload(self, loaded):
        self.unloaded.append(loaded["label"])


def model(tmp_path: Path, name: str, size: int, **kwargs) -> ModelRef:
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(b"GGUF" + bytes(size - 4))
    return ModelRef(key=str(path), path=path, format="gguf", **kwargs)


def install_fake(home: Path, rid: str, spec: dict) -> None:
    """Put a version folder in place the way the installer leaves it (files + manifest.json)."""
    from conftest import make_manifest
    from zishu.catalog import RESOURCE

    data = make_manifest(rid, kind="model", spec=spec)
    folder = home / "resources" / rid / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"x")
    (folder / "manifest.json").write_bytes(RESOURCE.dump_json(RESOURCE.validate_python(data)))


def test_an_id_that_is_not_installed_fails_at_once_with_the_id(tmp_path):
    with pytest.raises(ResourceNotAvailable, match="qwen/tiny"):
        resolve_model("qwen/tiny", VersionStore(tmp_path))
    with pytest.raises(ResourceNotAvailable, match="no such file"):
        resolve_model("./missing.gguf", VersionStore(tmp_path))


def test_installed_ids_and_local_paths_resolve(tmp_path):
    install_fake(tmp_path, "qwen/tiny", {"format": "gguf", "role": "llm", "ram_mb": 700})
    ref = resolve_model("qwen/tiny", VersionStore(tmp_path))
    assert (ref.id, ref.version, ref.format, ref.role, ref.ram_mb) == ("qwen/tiny", "1.0.0", "gguf", "llm", 700)
    assert FileEngine().estimate(ref) == MemoryNeed(ram=700 * MB)
    local = model(tmp_path, "local", 1000)
    assert resolve_model(str(local.path), VersionStore(tmp_path)).format == "gguf"
    folder = tmp_path / "pipe"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({}))
    assert resolve_model(str(folder), VersionStore(tmp_path)).format == "diffusers"


def test_models_load_once_and_the_least_recently_used_make_room(tmp_path):
    engine = FileEngine()
    cache = ModelCache(ram_budget=3 * MB, vram_budget=0, free_ram=lambda: 64 * MB)
    a, b, c = (model(tmp_path, n, MB) for n in "abc")  # each needs 1.2 MB loaded
    first = cache.get(engine, a)
    assert cache.get(engine, a) is first  # cached
    cache.get(engine, b)
    cache.get(engine, a)  # a is now the most recently used
    cache.get(engine, c)  # 3.6 MB > 3 MB: b goes
    assert engine.unloaded == [str(b.path)]
    assert [m["model"] for m in cache.loaded()] == [str(a.path), str(c.path)]
    assert cache.unload("file-llm", a.key) == [str(a.path)]
    assert cache.used == MemoryNeed(ram=int(MB * 1.2))


def test_a_model_bigger_than_the_budget_is_refused_with_the_numbers(tmp_path):
    cache = ModelCache(ram_budget=2 * MB, vram_budget=0, free_ram=lambda: 64 * MB)
    big = model(tmp_path, "big", 4 * MB)
    with pytest.raises(NotEnoughMemory, match=r"needs 4.8 MiB of RAM with file-llm; the budget is 2.0 MiB"):
        cache.get(FileEngine(), big)
    assert cache.loaded() == []
    gpu = ModelCache(ram_budget=2**30, vram_budget=2**30, free_ram=lambda: 2**31)
    with pytest.raises(NotEnoughMemory, match=r"needs 3.0 GiB of VRAM on cuda with file-llm; the budget is 1.0 GiB"):
        gpu.get(FileEngine(), ModelRef(key="k", path=big.path, vram_mb=3072), device="cuda")


def test_a_model_that_does_not_fit_the_free_memory_is_refused_before_loading(tmp_path):
    engine = FileEngine()
    cache = ModelCache(ram_budget=64 * MB, vram_budget=0, free_ram=lambda: MB)
    with pytest.raises(NotEnoughMemory, match=r"1.0 MiB is free on this machine"):
        cache.get(engine, model(tmp_path, "m", 2 * MB))
    assert cache.loaded() == []


def test_an_engine_that_raises_on_load_is_reported_by_name(tmp_path):
    cache = ModelCache(ram_budget=64 * MB, vram_budget=0, free_ram=lambda: 64 * MB)
    with pytest.raises(EngineError, match=r"the broken engine failed to load .*RuntimeError: weights are corrupt"):
        cache.get(FileEngine(name="broken", fail=True), model(tmp_path, "m", MB))
    assert cache.loaded() == []
    assert cache.get(FileEngine(), model(tmp_path, "m", MB))["bytes"].startswith(b"GGUF")  # the host carries on


def test_choosing_an_engine_by_name_kind_and_format(tmp_path):
    engines = Engines()
    engines.register(FileEngine())
    engines.register(FileEngine(name="onnx-tts", kind="tts", formats=("onnx",)))
    engines.register(FileEngine(name="file-llm", formats=("other",)))  # the first of a name wins
    gguf = model(tmp_path, "m", 100)
    assert engines.choose("llm", gguf).info.name == "file-llm"
    assert engines.choose("tts", name="onnx-tts").info.name == "onnx-tts"
    with pytest.raises(EngineError, match=r"no tts engine loads .* \(format gguf\); installed tts engines load: onnx"):
        engines.choose("tts", gguf)
    with pytest.raises(EngineError, match="onnx-tts is a tts engine, not llm"):
        engines.choose("llm", name="onnx-tts")
    with pytest.raises(EngineError, match="no engine named 'nope'"):
        engines.choose("llm", name="nope")
    with pytest.raises(EngineError, match="needs a model"):
        engines.choose("llm")
    with pytest.raises(TypeError, match="not an engine"):
        engines.register(object())


def test_engine_info_is_checked():
    with pytest.raises(ValueError, match="kind 'hologram'"):
        EngineInfo(kind="hologram", name="x", formats=())
    with pytest.raises(ValueError, match="unknown capabilities"):
        EngineInfo(kind="llm", name="x", formats=(), capabilities=frozenset({"telepathy"}))


class Host:
    """What ``use`` needs of a Runtime: the registry, the engines and the model cache."""

    def __init__(self, home: Path, *engines):
        self.registry = VersionStore(home)
        self.engines = Engines()
        for engine in engines:
            self.engines.register(engine)
        self.models = ModelCache(ram_budget=64 * MB, vram_budget=0, free_ram=lambda: 64 * MB)


class LoraEngine(FileEngine):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.info = EngineInfo(kind="llm", name=self.info.name, formats=("gguf",), capabilities=frozenset({"lora"}))

    def load(self, model, device="cpu"):
        return {"label": model.label, "adapters": [(a.path.name, w) for a, w in model.adapters]}


class MissingLibraryEngine(FileEngine):
    def unavailable(self):
        return "needs llama-cpp-python: pip install 'zishu[llm]'"


def test_use_resolves_chooses_and_loads_through_the_cache(tmp_path):
    gguf = model(tmp_path, "base", 100).path
    host = Host(tmp_path, LoraEngine())
    ready = use(host, "llm", str(gguf))
    assert (ready.engine.info.name, ready.device, ready.model.path) == ("file-llm", "cpu", gguf)
    assert use(host, "llm", str(gguf)).handle is ready.handle  # loaded once


def test_loras_make_their_own_cache_entry_with_their_weights(tmp_path):
    gguf, lora = model(tmp_path, "base", 100).path, model(tmp_path, "style", 50).path
    host = Host(tmp_path, LoraEngine())
    plain = use(host, "llm", str(gguf))
    styled = use(host, "llm", str(gguf), adapters=[(str(lora), 0.5)])
    assert styled.handle["adapters"] == [("style.gguf", 0.5)] and plain.handle["adapters"] == []
    assert styled.model.label.endswith("style.gguf×0.5") and styled.model.size_bytes == 150
    assert len(host.models.loaded()) == 2
    with pytest.raises(EngineError, match="a LoRA needs a base model"):
        use(host, "llm", None, adapters=[(str(lora), 1.0)])
    with pytest.raises(EngineError, match="the file-llm engine does not apply LoRAs"):
        use(Host(tmp_path, FileEngine()), "llm", str(gguf), adapters=[(str(lora), 1.0)])


def test_use_refuses_the_wrong_kind_and_engines_that_cannot_run(tmp_path):
    install_fake(tmp_path, "acme/voice-model", {"format": "gguf", "role": "tts"})
    host = Host(tmp_path, FileEngine())
    with pytest.raises(EngineError, match=re.escape("acme/voice-model@1.0.0 is a tts model, not llm")):
        use(host, "llm", "acme/voice-model")
    with pytest.raises(ResourceNotAvailable, match="acme/missing"):
        use(host, "llm", "acme/missing")
    gguf = model(tmp_path, "base", 100).path
    with pytest.raises(EngineError, match=r"the file-llm engine cannot run here: needs llama-cpp-python"):
        use(Host(tmp_path, MissingLibraryEngine()), "llm", str(gguf))


def test_a_model_file_is_found_in_its_version_folder(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "model.Q4.gguf").write_bytes(b"GGUF")
    ref = ModelRef(key="k", path=folder)
    assert ref.file(".gguf") == folder / "model.Q4.gguf"
    (folder / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(EngineError, match=r"expected one \.gguf file in .*, found 2: model.Q4.gguf, other.gguf"):
        ref.file(".gguf")
    with pytest.raises(EngineError, match=r"expected one \.onnx file .* found no"):
        ref.file(".onnx")


# -- devices: what the engine's library can do, not only what the machine has ---------------------

FAKE_SMI = "#!/bin/sh\necho 'NVIDIA GeForce RTX 4060, 8188, 7900'\n"


@pytest.fixture
def gpu_machine(tmp_path, monkeypatch):
    """A machine whose nvidia-smi reports one GPU (a script on PATH, as nvidia-smi prints it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


class DeviceEngine(FileEngine):
    def __init__(self, name: str, devices: tuple[str, ...]):
        super().__init__(name=name)
        self.info = EngineInfo(kind="llm", name=name, formats=("gguf",), capabilities=frozenset({"gpu"}))
        self.can = devices

    def devices(self):
        return self.can


def test_a_gpu_is_used_only_when_the_engines_library_can_use_it(gpu_machine, caplog):
    from zishu.system import gpus

    assert gpus()[0]["name"] == "NVIDIA GeForce RTX 4060"
    assert pick_device(DeviceEngine("gpu-build", ("cpu", "cuda"))) == "cuda"
    cpu_build = DeviceEngine("cpu-build", ("cpu",))
    with caplog.at_level("WARNING", logger="zishu.engines.use"):
        assert pick_device(cpu_build) == "cpu"
        assert pick_device(cpu_build) == "cpu"
    said = [r.getMessage() for r in caplog.records if "cpu-build" in r.getMessage()]
    assert len(said) == 1 and "runs on the CPU" in said[0] and "RTX 4060" in said[0]  # said once
    assert pick_device(FileEngine()) == "cpu"  # no "gpu" capability
    assert pick_device(cpu_build, "cuda") == "cuda" and pick_device(cpu_build, "auto") == "cpu"  # asked for


def test_a_cpu_build_of_llama_cpp_on_a_gpu_machine_runs_on_the_cpu(gpu_machine, tmp_path, runtime):
    pytest.importorskip("llama_cpp")
    import llama_cpp

    from tiny_gguf import write_tiny_gguf

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python is a GPU build")
    file = write_tiny_gguf(tmp_path / "tiny.gguf")
    ready = use(runtime, "llm", str(file))
    assert ready.device == "cpu" and "".join(ready.handle.chat([{"role": "user", "content": "hi"}]))
