"""Every sentence the locker's face shows and says, in zh-CN and en, from one catalogue.

A sentence is rendered into :class:`Said`: the text for the screen and the voice clips that speak the
same words, piece by piece (a template's literal parts, then door numbers and counts as clips of their
own). The screen and the speaker both take a moment's :class:`Said`, so they cannot disagree.

The words are in ``face_text.toml`` beside this module. The clips are WAV files in
``prompts/{language}/{clip}.wav``; ``edge/scripts/voice_prompts.py``
regenerates them from this catalogue (and a test holds the two equal).
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

LANGUAGES = ("zh-CN", "en")
NUMBER_CLIPS = 24  # numbers up to this are one clip each; larger ones are spoken digit by digit

Template = str | tuple[str, str]  # one form, or (one, other) chosen by the count of doors or n
_SILENT = " \uff0c,.:\uff1a"  # a literal of only spaces and (full-width) punctuation has no clip


def _load() -> dict[str, dict[str, dict[str, Template]]]:
    raw = tomllib.loads(resources.files("helmet_edge").joinpath("face_text.toml").read_text(encoding="utf-8"))
    tables: dict[str, dict[str, dict[str, Template]]] = {}
    for section, entries in raw.items():
        tables[section] = {}
        for key, forms in entries.items():
            if set(forms) != set(LANGUAGES):
                raise ValueError(f"face_text.toml [{section}.{key!r}] must have exactly {', '.join(LANGUAGES)}")
            tables[section][key] = {lang: v if isinstance(v, str) else (v[0], v[1]) for lang, v in forms.items()}
    return tables


_TABLES = _load()
# Moments: a title (large) and what to do next (smaller). Refusals are "refused.<RejectReason>".
CATALOGUE: Mapping[str, Mapping[str, Template]] = _TABLES["moments"]
LABELS: Mapping[str, Mapping[str, Template]] = _TABLES["labels"]  # words on the page that are not spoken
STATE_WORDS: Mapping[str, Mapping[str, Template]] = _TABLES["states"]
WORD_CLIPS: Mapping[str, Mapping[str, Template]] = _TABLES["words"]  # the pieces door numbers are said with


@dataclass(frozen=True, slots=True)
class Said:
    """A sentence as the screen shows it and the voice clips that say it."""

    text: str
    clips: tuple[str, ...]


def say(key: str, lang: str, *, doors: Sequence[int] = (), n: int | None = None) -> Said:
    """The sentence ``key`` in ``lang``, with door numbers and a count filled in."""
    template = CATALOGUE[key][lang]
    count = n if n is not None else len(doors)
    form, text = _form(template, count)
    texts: list[str] = []
    clips: list[str] = []
    for i, (literal, field, _, _) in enumerate(string.Formatter().parse(text)):
        if literal:
            texts.append(literal)
            if literal.strip(_SILENT):
                clips.append(f"{key}.{form}{i}")
        if field == "doors":
            for piece, clip in _doors(doors, lang):
                texts.append(piece)
                clips.extend(clip)
        elif field == "n":
            texts.append(str(count))
            clips.extend(number_clips(count))
        elif field:
            raise KeyError(f"{key}: unknown placeholder {{{field}}}")
    return Said("".join(texts), tuple(clips))


def _form(template: Template, count: int) -> tuple[str, str]:
    if isinstance(template, str):
        return "", template
    return ("one." if count == 1 else "other."), template[0 if count == 1 else 1]


def number_clips(value: int) -> list[str]:
    if 0 <= value <= NUMBER_CLIPS:
        return [f"num.{value}"]
    return [f"num.{d}" for d in str(value)]


def _doors(doors: Sequence[int], lang: str) -> Iterator[tuple[str, list[str]]]:
    """``3 号、5 号`` / ``doors 3 and 5``."""
    if lang == "zh-CN":
        for i, d in enumerate(doors):
            yield ("、" if i else "") + f"{d} 号", [*number_clips(d), "word.door"]
        return
    yield ("door " if len(doors) == 1 else "doors "), ["word.door" if len(doors) == 1 else "word.doors"]
    for i, d in enumerate(doors):
        if i and i == len(doors) - 1:
            yield " and ", ["word.and"]
        elif i:
            yield ", ", []
        yield str(d), number_clips(d)


def labels(lang: str) -> dict[str, str]:
    return {k: _text(v[lang]) for k, v in LABELS.items()}


def state_word(state: str, lang: str) -> str:
    return _text(STATE_WORDS[state][lang])


def _text(value: Template) -> str:
    return value if isinstance(value, str) else value[0]


def every_clip() -> dict[str, dict[str, str]]:
    """``{language: {clip: the words it says}}`` for every clip any sentence can use."""
    out: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for lang in LANGUAGES:
        for key, forms in CATALOGUE.items():
            template = forms[lang]
            variants = (
                [("", template)] if isinstance(template, str) else list(zip(("one.", "other."), template, strict=True))
            )
            for form, text in variants:
                for i, (literal, _, _, _) in enumerate(string.Formatter().parse(text)):
                    if literal and literal.strip(_SILENT):
                        out[lang][f"{key}.{form}{i}"] = literal.strip()
        for clip, words in WORD_CLIPS.items():
            out[lang][clip] = _text(words[lang])
        for value in range(NUMBER_CLIPS + 1):
            out[lang][f"num.{value}"] = str(value)
    return out
