"""A varied corpus for checking the rule filters against datatrove.

Real prose: the long descriptions (READMEs) of the Python packages installed
in this environment. Generated pages: articles, link lists, bullet lists,
navigation-heavy pages, repeated lines, spam, code, and texts placed close
to each rule's thresholds.
"""

from __future__ import annotations

import random
from email.parser import Parser
from importlib import metadata

WORDS = ("the of and to in is that for it with as was on be by this are from at have "
         "river market history people water season light winter harvest school music "
         "road bridge garden story family letter museum station paper science energy "
         "forest mountain coast island village festival recipe bread data model system").split()


def package_readmes(limit: int = 700) -> list[str]:
    texts = []
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"] or ""):
        raw = dist.read_text("METADATA") or ""
        body = Parser().parsestr(raw).get_payload()
        if isinstance(body, str) and len(body.split()) >= 5:
            texts.append(body)
        if len(texts) >= limit:
            break
    return texts


def _sentence(rng: random.Random, n: int | None = None) -> str:
    words = rng.choices(WORDS, k=n or rng.randint(4, 20))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "!", "?", "", "...", ":"])


def generated(rng: random.Random) -> str:
    kind = rng.randrange(12)
    if kind == 0:  # article
        return "\n\n".join(" ".join(_sentence(rng) for _ in range(rng.randint(1, 6)))
                           for _ in range(rng.randint(1, 8)))
    if kind == 1:  # link list / navigation
        items = ["Home", "About us", "Contact", "Blog"]
        return "\n".join(rng.choice([*items, "- " + _sentence(rng, 3)])
                         for _ in range(rng.randint(3, 40)))
    if kind == 2:  # bullets
        bullet = rng.choice(["• ", "- ", "* "])
        return "\n".join(bullet + _sentence(rng) for _ in range(rng.randint(2, 30)))
    if kind == 3:  # repeated lines
        line = _sentence(rng)
        return "\n".join(line if rng.random() < rng.random() else _sentence(rng)
                         for _ in range(rng.randint(2, 30)))
    if kind == 4:  # hashtags and ellipses
        return " ".join(rng.choice(["#tag", "...", "…", _sentence(rng)])
                        for _ in range(rng.randint(5, 80)))
    if kind == 5:  # C4 line rules
        parts = [_sentence(rng) for _ in range(rng.randint(2, 12))]
        extras = ["Please enable JavaScript to continue.", "We use cookies on this site.",
                  "Read our Privacy Policy.", "Lorem ipsum dolor sit amet.",
                  "function f() { return 1; }", "See the note [1] and [edit] here.",
                  "Short.", "no punctuation here at all"]
        for _ in range(rng.randint(0, 3)):
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(extras))
        return "\n".join(parts)
    if kind == 6:  # short or tiny
        return " ".join(_sentence(rng) for _ in range(rng.randint(0, 4)))
    if kind == 7:  # spam / repeated n-grams
        phrase = " ".join(rng.choices(WORDS, k=rng.randint(2, 6)))
        return " ".join([phrase] * rng.randint(2, 30) + [_sentence(rng) for _ in range(5)])
    if kind == 8:  # numbers and symbols
        return " ".join(rng.choice([str(rng.randint(0, 9999)), "$", "|", "%", _sentence(rng, 3)])
                        for _ in range(rng.randint(10, 120)))
    if kind == 9:  # long words
        return " ".join("".join(rng.choices("abcdefghij", k=rng.randint(1, 18)))
                        for _ in range(rng.randint(40, 200))) + "."
    if kind == 10:  # mixed prose with newlines everywhere
        return "\n".join(_sentence(rng, rng.randint(1, 8)) for _ in range(rng.randint(5, 60)))
    # paragraphs, some duplicated
    paras = [" ".join(_sentence(rng) for _ in range(3)) for _ in range(rng.randint(2, 8))]
    return "\n\n".join(rng.choice(paras) if rng.random() < 0.3 else p for p in paras)


def corpus(n_generated: int = 1000, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return package_readmes() + [generated(rng) for _ in range(n_generated)]
