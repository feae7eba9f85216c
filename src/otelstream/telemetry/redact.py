"""Redaction: credentials never leave the process in telemetry payloads.

Applied while a payload is encoded for telemetry — the application's own stream receives its
objects untouched. Two rules, both on by default:

- a mapping key that names a credential (``password``, ``api_key``, ``Authorization``,
  ``Cookie``, ``access_token``, ``client_secret``, …) has its whole value replaced by
  ``[REDACTED]``. Keys are matched as words: ``github_token`` and ``X-Api-Key`` are
  credentials, ``input_tokens`` and ``token_count`` are not;
- a string that contains something shaped like a credential (``sk-…`` API keys, ``Bearer …``
  headers, AWS access key ids, GitHub/Slack tokens, JWTs, PEM private keys) has that part
  replaced by ``[REDACTED]``.

Both pattern lists can be extended, and a callback can rewrite any string value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DEFAULT_KEY_PATTERN", "DEFAULT_VALUE_PATTERNS", "MARKER", "Redactor"]

MARKER = "[REDACTED]"

DEFAULT_KEY_PATTERN = (
    r"(.*_)?(password|passwd|passphrase|pwd|secret|token|api_key|apikey|private_key|secret_key"
    r"|access_key|signing_key|authorization|auth|cookie|set_cookie|credentials?|session_id|sessionid)"
)
"""Credential key names, matched in full against the normalised key (see :meth:`Redactor.secret_key`)."""

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[-\s.]+")

DEFAULT_VALUE_PATTERNS: tuple[str, ...] = (
    r"\bsk-[A-Za-z0-9_-]{16,}",  # OpenAI-style API keys
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})",  # Authorization: Bearer ...
    r"(?i:\bbasic\s+[A-Za-z0-9+/=]{8,})",  # Authorization: Basic ...
    r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
)
"""Credential shapes searched for in every string value."""


@dataclasses.dataclass(frozen=True, slots=True)
class Redactor:
    """Decides what of a payload may leave the process.

    Attributes:
        key_pattern: Regular expression that must match a whole normalised key name (lower case,
            words joined by ``_``: ``X-Api-Key`` → ``x_api_key``, ``accessToken`` →
            ``access_token``) for its value to be redacted; ``None``: keys are not checked.
        value_patterns: Regular expressions for credential-shaped text in string values.
        callback: Called with every string value (after the patterns); returns the text to export.
    """

    key_pattern: str | None = DEFAULT_KEY_PATTERN
    value_patterns: Sequence[str] = DEFAULT_VALUE_PATTERNS
    callback: Callable[[str], str] | None = None
    _keys: Any = dataclasses.field(init=False, repr=False, compare=False)
    _values: Any = dataclasses.field(init=False, repr=False, compare=False)
    # payloads repeat the same few keys: decide each once (bounded, reset when full)
    _key_cache: dict[str, bool] = dataclasses.field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        keys = re.compile(self.key_pattern) if self.key_pattern else None
        values = re.compile("|".join(f"(?:{p})" for p in self.value_patterns)) if self.value_patterns else None
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_values", values)

    def secret_key(self, key: str) -> bool:
        """Return whether the value under ``key`` is redacted whole."""
        if self._keys is None:
            return False
        cache = self._key_cache
        secret = cache.get(key)
        if secret is None:
            secret = self._keys.fullmatch(_WORD_BOUNDARY.sub("_", key).lower()) is not None
            if len(cache) >= 4096:
                cache.clear()
            cache[key] = secret
        return secret

    def scrub(self, text: str) -> str:
        """Return ``text`` with credential-shaped parts replaced by the marker."""
        if self._values is not None and self._values.search(text) is not None:
            text = self._values.sub(MARKER, text)
        if self.callback is not None:
            text = self.callback(text)
        return text
