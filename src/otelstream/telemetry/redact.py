"""Redaction: credentials never leave the process in telemetry.

Applied while a payload is encoded for telemetry, and to the other text otelstream exports from
the application (exceptions of failed spans, LLM and tool content) — the application's own
stream receives its objects untouched. The rules, all on by default:

- a mapping key that names a credential (``password``, ``api_key``, ``Authorization``,
  ``Cookie``, ``access_token``, ``client_secret``, …) has its whole value replaced by
  ``[REDACTED]``. Keys are matched as words: ``github_token`` and ``X-Api-Key`` are
  credentials, ``input_tokens`` and ``token_count`` are not;
- a string that contains something shaped like a credential (``sk-…`` API keys, ``Bearer …``
  headers, AWS access key ids, GitHub/Slack tokens, JWTs, PEM private keys) has that part
  replaced by ``[REDACTED]``;
- in a string, the password of a URL (``postgresql://user:[REDACTED]@host/db``) and the value
  after a credential-named key (``password=[REDACTED]``, ``db_password: [REDACTED]``,
  ``{'api_key': '[REDACTED]'}``, ``?token=[REDACTED]&page=2``) are replaced, the rest kept
  readable; the key rule uses the same key pattern as mapping keys.

Both pattern lists can be extended, and a callback can rewrite any string value. The same
:meth:`Redactor.scrub` applies to payload strings, LLM and tool content on spans, and the
exception message, stack trace and status description of a failed span.
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

_MAX_DEPTH = 100
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[-\s.]+")

DEFAULT_VALUE_PATTERNS: tuple[str, ...] = (
    r"\bsk-[A-Za-z0-9_-]{16,}",  # OpenAI-style API keys
    r"\b(?i:bearer\s+[A-Za-z0-9._~+/=-]{8,})",  # Authorization: Bearer ...
    r"\b(?i:basic\s+[A-Za-z0-9+/=]{8,})",  # Authorization: Basic ...
    r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
)
"""Credential shapes searched for in every string value."""

# The password of a URL's userinfo: group 1 keeps ``://user:``, the rest up to "@" is the
# secret; it runs to the last "@" before the path (a sloppy DSN leaves "@" in it unescaped).
# Starting at the literal "://" (not at the scheme) lets the search skip to each "://" at once.
_URL_PASSWORD = re.compile(r"(://[^\s/?#@:\"'\\]*:)[^\s/\"'\\]+@")
_URL_REPLACEMENT = "\\g<1>" + MARKER + "@"

# A key and its separator: ``password=``, ``db_password: ``, ``'api_key': ``, ``X-Api-Key: ``,
# ``\"token\": `` (JSON in a string), ``--password=``. A key starts only where no key character
# precedes it, so a string is read in one pass however it is shaped. Only the key and separator
# are consumed: the value of a harmless key (``note: password=...``) is searched for pairs too.
_PAIR = re.compile(r"(?<![\w.-])-*([A-Za-z_][\w.-]*)\\?[\"']?[ \t]*[:=][ \t]*")
# The value after a credential key: quoted (to its closing quote, an escaped quote, or the end
# of the line) or bare (to whitespace, "&", ",", ";", a quote or a backslash), with an
# ``Authorization`` scheme word kept inside the secret.
_PAIR_VALUE = re.compile(
    r"\\?b?\"((?:[^\"\\\n]|\\[^\"\n])*)"
    r"|\\?b?'((?:[^'\\\n]|\\[^'\n])*)"
    r"|((?i:(?:bearer|basic|token|digest)[ \t]+)?[^\s&,;\"'\\]+)"
)

# every key DEFAULT_KEY_PATTERN matches contains one of these (in any case): text without any
# of them skips the pair search, which costs more than all these substring tests
_DEFAULT_KEY_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cookie", "credential", "session")

# defaults that start with \b are searched as \b(?:a|b|...): the word boundary is tested once
# per position, not once per pattern, which makes a search three times faster
_BOUNDED_DEFAULTS = frozenset(p for p in DEFAULT_VALUE_PATTERNS if p.startswith(r"\b"))


def _combine(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    bounded = [p[2:] for p in patterns if p in _BOUNDED_DEFAULTS]
    others = [p for p in patterns if p not in _BOUNDED_DEFAULTS]
    parts = [r"\b(?:" + "|".join(f"(?:{p})" for p in bounded) + ")"] if bounded else []
    parts += [f"(?:{p})" for p in others]
    return re.compile("|".join(parts))


@dataclasses.dataclass(frozen=True, slots=True)
class Redactor:
    """Decides what of a payload may leave the process.

    Attributes:
        key_pattern: Regular expression that must match a whole normalised key name (lower case,
            words joined by ``_``: ``X-Api-Key`` → ``x_api_key``, ``accessToken`` →
            ``access_token``) for its value to be redacted, in a mapping and in ``key=value`` /
            ``key: value`` text; ``None``: keys are not checked.
        value_patterns: Regular expressions for credential-shaped text in string values; a
            match is replaced whole. URL passwords are redacted whatever the patterns.
        callback: Called with every string value (after the patterns); returns the text to export.
    """

    key_pattern: str | None = DEFAULT_KEY_PATTERN
    value_patterns: Sequence[str] = DEFAULT_VALUE_PATTERNS
    callback: Callable[[str], str] | None = None
    _keys: Any = dataclasses.field(init=False, repr=False, compare=False)
    _values: Any = dataclasses.field(init=False, repr=False, compare=False)
    _key_words: tuple[str, ...] | None = dataclasses.field(init=False, repr=False, compare=False)
    # payloads repeat the same few keys: decide each once (bounded, reset when full)
    _key_cache: dict[str, bool] = dataclasses.field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        keys = re.compile(self.key_pattern) if self.key_pattern else None
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_values", _combine(self.value_patterns))
        words = _DEFAULT_KEY_WORDS if self.key_pattern == DEFAULT_KEY_PATTERN else None
        object.__setattr__(self, "_key_words", words)

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
        """Return ``text`` with credential-shaped parts replaced by the marker.

        In order: the value patterns, URL passwords, values after credential keys, the callback.
        """
        if self._values is not None and self._values.search(text) is not None:
            text = self._values.sub(MARKER, text)
        # the substring tests are much cheaper than a regex pass, and most text has neither
        if ":" in text:
            text = _URL_PASSWORD.sub(_URL_REPLACEMENT, text)
            if self._keys is not None:
                text = self._scrub_pairs(text)
        elif "=" in text and self._keys is not None:
            text = self._scrub_pairs(text)
        if self.callback is not None:
            text = self.callback(text)
        return text

    def redact(self, value: Any) -> Any:
        """Return a copy of plain data with its credentials replaced by the marker.

        For JSON content built outside the payload codec (LLM and tool content on spans):
        values under credential keys are replaced whole, strings are scrubbed, dicts, lists
        and tuples are copied (tuples as lists, as JSON has them); other values are returned
        as they are. Nesting deeper than 100 levels (or a cycle) is cut off with the marker.
        """
        return self._redact(value, 0)

    def _redact(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if not isinstance(value, (dict, list, tuple)):
            return value
        if depth >= _MAX_DEPTH:
            return MARKER
        if isinstance(value, dict):
            return {
                k: MARKER if isinstance(k, str) and self.secret_key(k) else self._redact(v, depth + 1)
                for k, v in value.items()
            }
        return [self._redact(v, depth + 1) for v in value]

    def _scrub_pairs(self, text: str) -> str:
        if self._key_words is not None:
            lowered = text.lower()
            if not any(word in lowered for word in self._key_words):
                return text
        parts: list[str] = []
        done = 0  # text[:done] is decided (copied into parts, or redacted)
        for pair in _PAIR.finditer(text):
            if pair.start() < done or not self.secret_key(pair.group(1)):
                continue
            value = _PAIR_VALUE.match(text, pair.end())
            if value is None:
                continue
            group = value.lastindex or 0
            start, end = value.span(group)
            # empty, or already redacted (a URL password under a "token:" user name included)
            if start == end or text.startswith(MARKER, start):
                continue
            parts.append(text[done:start])
            parts.append(MARKER)
            done = end
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)
