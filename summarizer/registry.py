"""The model registry: named models from one TOML file, loaded lazily, safely and once.

Each entry is a seq2seq checkpoint, a PEFT adapter (LoRA or prompt tuning) on a base checkpoint,
or the extractive baseline. Adapters on the same base share one copy of the base weights: LoRA
adapters are loaded side by side into one PeftModel (so one batch can mix them, and mix in the
plain base); a soft prompt needs no change to the base at all, only its prompt embeddings.

Loading is thread-safe and cached. A local model is re-checked on each use (a cheap stat of its
files): deleted or broken files give that model an error status without touching the others, and
changed files are reloaded, so the model recovers once its folder is back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import settings
from .errors import ModelLoadError, RegistryError, UserError, one_line
from .templates import DEFAULT_TEMPLATE, Template, resolve_template

REGISTRY_ENV = "SUMMARIZER_REGISTRY"
# opt-in, CPU only, off by default: "int8" = dynamic int8 Linear layers; "bf16" = bfloat16 weights
QUANTIZE_ENV = "SUMMARIZER_QUANTIZE"
DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "models.toml"
KINDS = ("seq2seq", "lora", "prompt-tuning", "extractive")
PEFT_KINDS = {"LORA": "lora", "PROMPT_TUNING": "prompt-tuning"}  # adapter_config.json peft_type -> kind
# How a model wants speakers written (summarizer.speakers): "dialogsum" for models trained on
# DialogSum's #Person1# tags, "names" (the default) for models that read names as they are.
SPEAKER_STYLES = ("dialogsum", "names")
_KEYS = ("kind", "path", "base", "revision", "base_revision", "description", "speakers", "template")
_PICKLE_WEIGHTS = ("pytorch_model.bin", "adapter_model.bin", "pytorch_model.bin.index.json")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry (see models.toml for the keys)."""
    name: str
    kind: str
    path: str | None = None  # hub id or local folder
    base: str | None = None  # adapters: hub id or folder of the seq2seq model they sit on
    revision: str | None = None
    base_revision: str | None = None
    description: str = ""
    speakers: str = "names"  # one of SPEAKER_STYLES
    # The prompt template it reads by default: a built-in name or a template's text
    # (summarizer.templates); None is the experiment's, the one every trained model here learned.
    template: str | None = None

    @property
    def default_template(self) -> Template:
        return resolve_template(self.template or DEFAULT_TEMPLATE)

    def to_toml(self) -> str:
        lines = [f'[models.{_toml_key(self.name)}]', f'kind = "{self.kind}"']
        for key in ("path", "base", "revision", "base_revision", "description"):
            value = getattr(self, key)
            if value:
                lines.append(f"{key} = {json.dumps(value)}")
        if self.speakers != "names":  # the default goes unwritten, as in models.toml
            lines.append(f"speakers = {json.dumps(self.speakers)}")
        if self.template is not None:  # raw UTF-8: TOML has no surrogate-pair escapes
            lines.append(f"template = {json.dumps(self.template, ensure_ascii=False)}")
        return "\n".join(lines) + "\n"


def _toml_key(name: str) -> str:
    return name if all(c.isalnum() or c in "-_" for c in name) else json.dumps(name)


@dataclass
class ModelStatus:
    name: str
    kind: str
    state: str  # ready (can load) | loaded | error
    reason: str = ""
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ("ready", "loaded")


def resolve_registry_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or (os.environ.get(REGISTRY_ENV) or '').strip() or DEFAULT_REGISTRY).expanduser()


def load_specs(path: str | os.PathLike | None = None) -> list[ModelSpec]:
    """Parse and validate a registry file; relative local paths resolve against its folder."""
    path = resolve_registry_path(path)
    if not path.is_file():
        raise RegistryError(f"registry file not found: {path}")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise RegistryError(f"{path}: not valid TOML ({err})") from None
    models = document.get("models")
    if not isinstance(models, dict) or not models:
        raise RegistryError(f"{path}: no [models.NAME] tables")
    specs = []
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise RegistryError(f"{path}: models.{name} must be a table")
        unknown = set(entry) - set(_KEYS)
        if unknown:
            raise RegistryError(f"{path}: models.{name} has unknown key(s): {', '.join(sorted(unknown))}")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise RegistryError(f"{path}: models.{name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if kind != "extractive" and not entry.get("path"):
            raise RegistryError(f"{path}: models.{name}: a {kind} model needs a path (hub id or folder)")
        if kind in ("lora", "prompt-tuning") and not entry.get("base"):
            raise RegistryError(f"{path}: models.{name}: an adapter needs a base (hub id or folder)")
        for key in _KEYS[1:]:
            if key in entry and not isinstance(entry[key], str):
                raise RegistryError(f"{path}: models.{name}.{key} must be a string")
        speakers = entry.get("speakers", "names")
        if speakers not in SPEAKER_STYLES:
            raise RegistryError(f"{path}: models.{name}: speakers must be one of "
                                f"{', '.join(SPEAKER_STYLES)}, got {speakers!r}")
        if "template" in entry:
            try:
                resolve_template(entry["template"])
            except UserError as err:
                raise RegistryError(f"{path}: models.{name}.template: {err}") from None
        specs.append(ModelSpec(
            name=name, kind=kind,
            path=_resolve_location(entry.get("path"), path.parent),
            base=_resolve_location(entry.get("base"), path.parent),
            revision=entry.get("revision"), base_revision=entry.get("base_revision"),
            description=entry.get("description", ""), speakers=speakers,
            template=entry.get("template"),
        ))
    return specs


def _resolve_location(location: str | None, folder: Path) -> str | None:
    """Local-looking locations become absolute paths; `owner/name` stays a hub id unless it exists."""
    if not location:
        return None
    candidate = Path(location).expanduser()
    if not candidate.is_absolute():
        candidate = folder / candidate
    if _is_local(location) or candidate.exists():
        return str(candidate)
    return location


def _is_local(location: str) -> bool:
    return location.startswith((".", "/", "~")) or location.count("/") != 1


def is_hub_id(location: str) -> bool:
    """`owner/name` that is not a file or folder here."""
    return not _is_local(location) and not Path(location).exists()


# --------------------------------------------------------------------------------------------
# Loading


def _fingerprint(location: str) -> tuple | None:
    """What identifies a local model's files on disk (None for hub models: the cache is immutable)."""
    folder = Path(location)
    if not _is_local(location) and not folder.exists():
        return None
    from huggingface_hub.constants import HF_HUB_CACHE
    if Path(HF_HUB_CACHE).resolve() in folder.resolve().parents:
        return None  # a snapshot in the hub cache never changes
    if not folder.is_dir():
        raise ModelLoadError(f"model folder not found: {location}")
    stats = []
    for entry in sorted(folder.iterdir()):
        if entry.suffix in (".json", ".safetensors", ".bin"):
            stat = entry.stat()
            stats.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


def _check_safetensors(location: str, weights: str) -> None:
    """Refuse pickle checkpoints with a clear message (they can run code when unpickled)."""
    folder = Path(location)
    if not folder.is_dir():
        return  # hub: from_pretrained(use_safetensors=True) refuses pickles itself
    if (folder / weights).is_file() or (folder / f"{Path(weights).stem}.safetensors.index.json").is_file():
        return
    pickles = [p for p in _PICKLE_WEIGHTS if (folder / p).is_file()]
    if pickles:
        raise ModelLoadError(f"{location}: only a pickle checkpoint ({pickles[0]}); refusing to load it, "
                             "weights load from safetensors only (convert it with save_pretrained)")
    raise ModelLoadError(f"{location}: no {weights} in the folder")


def _device() -> str:
    """$SUMMARIZER_DEVICE, else `cuda` on ZeroGPU or with a GPU, else the CPU (summarizer.hosting)."""
    from .hosting import model_device
    return model_device()


class Backbone:
    """One seq2seq checkpoint in memory, with the LoRA adapters that sit on it.

    `lock` serialises everything that uses the weights: PEFT switches adapters by mutating the
    model, and on two cores parallel generate calls on one model only compete for the same cores.
    """

    def __init__(self, location: str, revision: str | None):
        from transformers import AutoTokenizer

        from .checkpoints import load_seq2seq

        _check_safetensors(location, "model.safetensors")
        self.location, self.revision = location, revision
        self.fingerprint = _fingerprint(location)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location, revision=revision)
            # float32 whatever the weights are stored in (the mini models are stored in float16)
            self.model = load_seq2seq(location, revision=revision, use_safetensors=True, dtype="float32",
                                      trust_remote_code=False)
        except Exception as err:
            raise ModelLoadError(f"cannot load {location}: {one_line(err)}") from None
        self.device = _device()
        self.model.to(self.device).eval()
        self.quantized = _quantize(self.model, quantize_setting()) if self.device == "cpu" else None
        self.peft = None  # a PeftModel once a LoRA adapter is loaded
        self.adapters: dict[str, tuple | None] = {}  # adapter name -> fingerprint
        self.lock = threading.RLock()

    def add_lora(self, name: str, location: str, revision: str | None) -> None:
        from peft import PeftConfig, PeftModel

        _check_safetensors(location, "adapter_model.safetensors")
        if self.quantized == "int8":
            raise ModelLoadError(f"LoRA adapter {name!r} needs its base in fp32, and {QUANTIZE_ENV}="
                                 f"{self.quantized} quantized it (PEFT cannot wrap quantized layers); "
                                 f"unset {QUANTIZE_ENV} to use LoRA models")
        fingerprint = _fingerprint(location)
        with self.lock:
            if name in self.adapters:
                if self.adapters[name] == fingerprint:
                    return
                self.peft.delete_adapter(name)
                del self.adapters[name]
            try:
                config = PeftConfig.from_pretrained(location, revision=revision)
                if config.peft_type != "LORA":
                    raise ModelLoadError(f"{location} is a {config.peft_type} adapter, not LoRA")
                if self.peft is None:
                    self.peft = PeftModel.from_pretrained(
                        self.model, location, adapter_name=name, revision=revision, use_safetensors=True)
                    self.peft.eval()
                else:
                    self.peft.load_adapter(location, adapter_name=name, revision=revision,
                                           use_safetensors=True)
            except ModelLoadError:
                raise
            except Exception as err:
                raise ModelLoadError(f"cannot load adapter {location}: {one_line(err)}") from None
            self.adapters[name] = fingerprint

    def module(self):
        """The model to call: the PeftModel when adapters are in, else the plain model."""
        return self.peft if self.peft is not None else self.model


def quantize_setting() -> str | None:
    """$SUMMARIZER_QUANTIZE: unset/empty/"none" for fp32 (the default), "int8" or "bf16"."""
    aliases = {"bfloat16": "bf16", **dict.fromkeys(("0", "fp32", "off", "no", "false"), "none")}
    try:
        value = settings.choice(QUANTIZE_ENV, aliases=aliases)
    except UserError as err:
        raise ModelLoadError(str(err)) from None
    return None if value == "none" else value


def _quantize(model, setting: str | None) -> str | None:
    """Lower precision in place, CPU only. int8: dynamic quantization of every nn.Linear (torch.ao).

    Weights become int8 (per tensor), activations are quantized on the fly: ~3x less memory for
    the Linear weights and faster decoding on CPUs with VNNI/AMX, at the cost of exact agreement
    with fp32 outputs (see benchmarks/bench_int8.py). Embeddings stay fp32, so soft prompts work.

    bf16: every weight in bfloat16, half the bytes a decode step streams; the decode loop widens
    them to fp32 as it reads them (summarizer/kernels), so only the weights are rounded
    (benchmarks/bench_int8_trained.py --precision bf16 measures the agreement).
    """
    if setting is None:
        return None
    import warnings

    import torch
    if setting == "bf16":
        model.to(torch.bfloat16)
        return setting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 points at torchao; the API still works
        from torch.ao.quantization import quantize_dynamic
        quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return setting


@dataclass
class LoadedModel:
    """What generation needs to run one registry model."""
    spec: ModelSpec
    backbone: Backbone | None = None  # None for the extractive baseline
    adapter: str | None = None  # LoRA adapter name in backbone.peft
    soft_prompt: object | None = None  # prompt-tuning: tensor (virtual tokens, d_model)

    @property
    def tokenizer(self):
        return self.backbone.tokenizer if self.backbone else None


def _load_soft_prompt(location: str, revision: str | None):
    """Prompt-tuning embeddings from a PEFT adapter folder (safetensors only)."""
    from peft import PeftConfig
    from safetensors.torch import load_file

    _check_safetensors(location, "adapter_model.safetensors")
    try:
        config = PeftConfig.from_pretrained(location, revision=revision)
    except Exception as err:
        raise ModelLoadError(f"cannot read adapter config in {location}: {one_line(err)}") from None
    if config.peft_type != "PROMPT_TUNING":
        raise ModelLoadError(f"{location} is a {config.peft_type} adapter, not prompt tuning")
    if Path(location).is_dir():
        weights = Path(location) / "adapter_model.safetensors"
    else:
        from huggingface_hub import hf_hub_download
        try:
            weights = hf_hub_download(location, "adapter_model.safetensors", revision=revision)
        except Exception as err:
            raise ModelLoadError(f"cannot fetch {location}: {one_line(err)}") from None
    try:
        tensors = load_file(str(weights))
    except Exception as err:
        raise ModelLoadError(f"{weights}: unreadable safetensors ({one_line(err)})") from None
    if "prompt_embeddings" not in tensors:
        raise ModelLoadError(f"{weights}: no prompt_embeddings tensor")
    embeddings = tensors["prompt_embeddings"]
    expected = config.num_virtual_tokens * config.num_transformer_submodules
    if embeddings.shape[0] != expected:
        raise ModelLoadError(f"{weights}: {embeddings.shape[0]} prompt vectors, config says {expected}")
    # An encoder-decoder prompt-tunes the encoder only: the first num_virtual_tokens rows.
    return embeddings[: config.num_virtual_tokens]


class Registry:
    """Named models; `get` loads on first use and caches, `status` reports without raising."""

    def __init__(self, specs: list[ModelSpec], source: Path | None = None):
        names = [s.name for s in specs]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise RegistryError(f"model name(s) listed twice: {', '.join(sorted(duplicates))}")
        self.source = source
        self.specs = {s.name: s for s in specs}
        self._backbones: dict[tuple, Backbone] = {}
        self._loaded: dict[str, LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.RLock()

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> "Registry":
        return cls(load_specs(path), source=resolve_registry_path(path))

    def names(self) -> list[str]:
        return list(self.specs)

    def add(self, spec: ModelSpec) -> None:
        """A model registered while the app runs (a finished training job); its name must be new.
        The dict is replaced, not changed, so a request iterating the old one is undisturbed."""
        with self._lock:
            if spec.name in self.specs:
                raise RegistryError(f"the registry already lists a model named {spec.name!r}")
            self.specs = {**self.specs, spec.name: spec}

    def spec(self, name: str) -> ModelSpec:
        if name not in self.specs:
            raise RegistryError(f"unknown model {name!r}; the registry lists: {', '.join(self.specs)}")
        return self.specs[name]

    def get(self, name: str) -> LoadedModel:
        """The loaded model, (re)loading when needed; raises ModelLoadError with a one-line reason."""
        spec = self.spec(name)
        with self._lock:
            try:
                loaded = self._load(spec)
            except ModelLoadError as err:
                self._loaded.pop(name, None)
                self._errors[name] = str(err)
                raise
            except Exception as err:  # a library error we did not foresee is still one model's problem
                self._loaded.pop(name, None)
                self._errors[name] = f"cannot load {name}: {one_line(err)}"
                raise ModelLoadError(self._errors[name]) from None
            self._errors.pop(name, None)
            self._loaded[name] = loaded
            return loaded

    def _load(self, spec: ModelSpec) -> LoadedModel:
        if spec.kind == "extractive":
            return LoadedModel(spec)
        if spec.kind == "seq2seq":
            return LoadedModel(spec, backbone=self._backbone(spec.path, spec.revision))
        backbone = self._backbone(spec.base, spec.base_revision)
        if spec.kind == "lora":
            loaded_before = spec.name in backbone.adapters  # resolve a hub id only when loading
            backbone.add_lora(spec.name, spec.path if loaded_before else
                              _local_source(spec.path, spec.revision, "adapter_model.safetensors"), spec.revision)
            return LoadedModel(spec, backbone=backbone, adapter=spec.name)
        cached = self._loaded.get(spec.name)
        fingerprint = _fingerprint(spec.path)
        if cached and cached.backbone is backbone and getattr(cached, "_fingerprint", None) == fingerprint:
            return cached
        loaded = LoadedModel(spec, backbone=backbone, soft_prompt=_load_soft_prompt(
            _local_source(spec.path, spec.revision, "adapter_model.safetensors"), spec.revision))
        loaded._fingerprint = fingerprint
        return loaded

    def _backbone(self, location: str, revision: str | None) -> Backbone:
        key = (location, revision)
        backbone = self._backbones.get(key)
        if backbone is not None and backbone.fingerprint == _fingerprint(location):
            return backbone
        if backbone is not None:  # files changed on disk: drop it and everything on it
            del self._backbones[key]
            self._loaded = {n: m for n, m in self._loaded.items() if m.backbone is not backbone}
            log.info("reloading %s: its files changed", location)
        self._backbones[key] = backbone = Backbone(_local_source(location, revision, "model.safetensors"), revision)
        return backbone

    def status(self, name: str, check: bool = True) -> ModelStatus:
        """`loaded`, `ready` (its files are there) or `error` with a one-line reason. Never raises."""
        spec = self.spec(name)
        make = lambda state, reason="": ModelStatus(name, spec.kind, state, reason, spec.description)
        if spec.kind == "extractive":
            return make("ready")
        try:
            if name in self._loaded and self._still_current(self._loaded[name]):
                return make("loaded")
            if check:
                self._probe(spec)
            elif name in self._errors:
                return make("error", self._errors[name])
        except ModelLoadError as err:
            return make("error", str(err))
        return make("ready")

    def statuses(self, check: bool = True) -> list[ModelStatus]:
        return [self.status(n, check=check) for n in self.specs]

    def _still_current(self, loaded: LoadedModel) -> bool:
        try:
            backbone = loaded.backbone
            if backbone and backbone.fingerprint != _fingerprint(backbone.location):
                return False
            if loaded.adapter and backbone.adapters.get(loaded.adapter) != _fingerprint(loaded.spec.path):
                return False
            if loaded.soft_prompt is not None and getattr(loaded, "_fingerprint", None) != _fingerprint(loaded.spec.path):
                return False
        except ModelLoadError:
            return False
        return True

    def _probe(self, spec: ModelSpec) -> None:
        """Check that a model's files are where they should be, without loading weights."""
        pairs = [(spec.path, spec.revision, "model.safetensors" if spec.kind == "seq2seq" else "adapter_model.safetensors")]
        if spec.base:
            pairs.append((spec.base, spec.base_revision, "model.safetensors"))
        for location, revision, weights in pairs:
            if Path(location).is_dir() or _is_local(location):
                _fingerprint(location)
                _check_safetensors(location, weights)
                config = "config.json" if weights == "model.safetensors" else "adapter_config.json"
                if not (Path(location) / config).is_file():
                    raise ModelLoadError(f"{location}: no {config} in the folder")
            else:
                _hub_source(location, revision, weights)  # cached, or the hub answers


def _hub_source(repo_id: str, revision: str | None, weights: str) -> str:
    """Where to load a hub model from: the hub id when the hub answers, else its cached snapshot.

    Asking the hub first (one quick request, no retries) matters offline: `from_pretrained`
    would otherwise retry each file with back-off for half a minute before using the cache or
    failing, holding the one worker a 2-core Space has.
    """
    from huggingface_hub import snapshot_download, try_to_load_from_cache
    config = "config.json" if weights == "model.safetensors" else "adapter_config.json"
    cached = isinstance(try_to_load_from_cache(repo_id, config, revision=revision), str)
    offline = settings.flag("HF_HUB_OFFLINE")
    reason = "HF_HUB_OFFLINE is set"
    if not offline:
        try:
            from huggingface_hub import HfApi
            HfApi().model_info(repo_id, revision=revision, timeout=5)
            return repo_id
        except Exception as err:
            reason = f"the hub is unreachable ({one_line(err)})"
    if not cached:
        raise ModelLoadError(f"{repo_id}: not in the local cache and {reason}")
    try:
        return snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception as err:
        raise ModelLoadError(f"{repo_id}: incomplete in the local cache and {reason} "
                             f"({one_line(err)})") from None


def _local_source(location: str, revision: str | None, weights: str) -> str:
    """A local folder as it is; a hub id resolved by `_hub_source`."""
    if Path(location).is_dir() or _is_local(location):
        return location
    return _hub_source(location, revision, weights)
