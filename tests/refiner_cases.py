"""Fixed documents and the programs a tiny model is trained to write for them.

Prompts are built here with the plain chat format, independently of the
library's builders, so an end-to-end test proves the builders produce exactly
what the model was trained on.
"""

from __future__ import annotations

HEAD = "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"

SPAM = (
    "BUY NOW cheap watches best prices!!! Click here click here, limited offer, "
    "free shipping, casino bonus, win big today only, visit our shop now"
)
GOOD = (
    "The river runs through the old town and past the market square.\n"
    "In winter the water freezes and people skate from one bridge to the next.\n"
    "Local historians say the first bridge was built of wood three centuries ago."
)
NOISY = (
    "Home | About | Contact\n"
    "Skip to content\n"
    "Bread needs only flour, water, salt and time to rise properly. Click here\n"
    "Knead the dough for ten minutes, then let it rest in a warm place overnight."
)

DOC_PROGRAMS = {SPAM: "drop_doc()", GOOD: "keep_doc()", NOISY: "keep_doc()"}
CHUNK_PROGRAMS = {
    GOOD: "keep_chunk()",
    NOISY: (
        "remove_lines(line_start=0, line_end=1)\n"
        'normalize(source_str=" Click here", target_str="")'
    ),
}
NOISY_REFINED = (
    "Bread needs only flour, water, salt and time to rise properly.\n"
    "Knead the dough for ten minutes, then let it rest in a warm place overnight."
)


def doc_prompt_plain(text: str) -> str:
    return HEAD + text.rstrip() + " [/INST]"


def chunk_prompt_plain(text: str) -> str:
    numbered = "\n".join(f"[{i:03d}]{line}" for i, line in enumerate(text.split("\n")))
    return HEAD + "[doc]\n" + numbered + "\n[/doc] [/INST]"


def training_pairs() -> list[tuple[str, str]]:
    pairs = [(doc_prompt_plain(t), p) for t, p in DOC_PROGRAMS.items()]
    pairs += [(chunk_prompt_plain(t), p) for t, p in CHUNK_PROGRAMS.items()]
    return pairs
