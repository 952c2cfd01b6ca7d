"""Write the small sample corpus the main job refines (deterministic).

    python scripts/make_sample_corpus.py [--docs 300] [--out data/sample/web_docs.jsonl]
    python scripts/make_sample_corpus.py --reference 60 --out data/sample/reference.jsonl

Web-like documents as crawls deliver them: articles wrapped in navigation
bars, breadcrumbs, cookie notices, share buttons, link lists and footers;
some spam and some near-empty pages. Written from templates, no real site.
With `--reference N`: N clean articles of the same topics (no boilerplate,
another seed, none of the fixed topic sentences the sample repeats verbatim),
the held-out text `prox-spark ablate` measures bits per byte on.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

TOPICS = {
    "bread": [
        "A good loaf needs only flour, water, salt and time.",
        "Long fermentation develops flavour that a quick rise cannot match.",
        "Knead the dough until it passes the windowpane test, then let it rest.",
        "Bake on a preheated stone so the crust sets before the crumb dries out.",
        "Rye flour holds less gluten, so rye breads are denser and keep longer.",
        "Steam in the first ten minutes of baking lets the loaf expand fully.",
    ],
    "rivers": [
        "The river rises in the hills and reaches the sea after two hundred kilometres.",
        "Spring floods once shaped the valley; today weirs and locks keep the water level.",
        "Old mills along the banks used the current to grind grain and saw timber.",
        "Otters returned to the lower reaches after the water quality improved.",
        "Boatmen carried salt and wine downstream until the railway took the trade.",
        "The delta is a protected wetland where migrating birds rest every autumn.",
    ],
    "astronomy": [
        "Jupiter is bright enough to see from a city, even with a full moon.",
        "A small telescope shows the four largest moons of Jupiter as points of light.",
        "Meteor showers occur when Earth crosses the debris left by a comet.",
        "Dark adaptation takes about twenty minutes, so avoid looking at a phone.",
        "The Andromeda galaxy is the most distant object visible to the naked eye.",
        "Light pollution hides faint stars; a rural site shows thousands more.",
    ],
    "python": [
        "List comprehensions are concise, but a plain loop is clearer when it grows.",
        "Use a virtual environment per project so dependencies never collide.",
        "Type hints document intent and let a checker catch mistakes before running.",
        "Generators produce values lazily, which keeps memory flat on large inputs.",
        "The standard library's pathlib makes file paths readable and portable.",
        "Profile before optimising: the slow part is rarely where you expect.",
    ],
    "history": [
        "The town received its charter in the thirteenth century and built a wall.",
        "Merchants met in the market square, where the guild hall still stands.",
        "A fire in the seventeenth century destroyed most of the timber houses.",
        "The railway arrived in 1862 and the population doubled within a generation.",
        "Parish records list births, marriages and deaths back to the Reformation.",
        "The museum keeps the original seal of the town and its first map.",
    ],
}
NAV = ["Home | News | Sport | Weather | Contact", "Skip to main content", "Menu ☰",
       "Home > Blog > {topic}", "Sign in | Register | Subscribe", "Search…"]
COOKIE = ["We use cookies to improve your experience. By continuing you accept our use "
          "of cookies. Accept | Settings", "This site uses cookies. OK"]
SHARE = ["Share: Facebook Twitter LinkedIn Email", "Like 12 | Tweet | Pin it",
         "Posted by admin on {date} | {n} comments"]
LINKS = ["Related posts:", "- 10 tips for better {topic}", "- Why {topic} matters",
         "- {topic} for beginners", "- The history of {topic}"]
FOOTER = ["© 2024 Example Media Ltd. All rights reserved.",
          "Privacy Policy | Terms of Service | Cookie Policy | Sitemap",
          "Follow us: Facebook · Instagram · YouTube", "Back to top ↑"]
SPAM = ["BEST CHEAP {w} ONLINE!!! Buy {w} now, {w} discount, free {w}, {w} {w} {w}. "
        "Click here >>> www.cheap-{w}.example <<< LIMITED OFFER",
        "casino bonus slots jackpot win win win free spins casino online best casino "
        "bonus code {w} casino casino"]
EMPTY = ["404 Not Found", "Please enable JavaScript to view this page.", "Loading...",
         "Access denied"]


OPENERS = ["In recent years", "According to local records", "As many readers know",
           "Surprisingly", "For beginners", "In practice", "Over the last decade",
           "Every spring", "Among experts", "Not long ago"]
LINKS_WORDS = ["which explains why", "and that is how", "so it is no wonder that",
               "while at the same time", "because"]
CLOSERS = ["the results speak for themselves", "the details matter more than the tools",
           "patience pays off in the end", "small changes add up over time",
           "the old methods still work well", "visitors keep coming back each year"]


SUBJECTS = ["the old baker", "our neighbour", "a visiting teacher", "the town council",
            "my grandmother", "a young engineer", "the local club", "an amateur observer",
            "the museum guide", "a retired sailor", "the school choir", "two students"]
VERBS = ["noticed", "wrote about", "measured", "argued about", "photographed", "explained",
         "described", "compared", "recorded", "questioned", "celebrated", "repaired"]
OBJECTS = ["the changing seasons", "a forgotten map", "the price of grain", "an unusual storm",
           "the northern bridge", "a box of letters", "the evening light", "the first harvest",
           "a broken clock", "the village archive", "an early railway ticket", "the river mist"]
TIMES = ["last winter", "in 1887", "after the flood", "during the fair", "every Sunday",
         "before dawn", "at the end of the war", "in early autumn", "for three years"]


def sentence(rng: random.Random, topic: str, topical: bool = True) -> str:
    if rng.random() < 0.3 and topical:
        base = rng.choice(TOPICS[topic]).rstrip(".")
    else:
        base = " ".join([rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS),
                         rng.choice(TIMES)])
        base = base[0].upper() + base[1:]
    form = rng.randrange(4)
    if form == 0:
        return f"{rng.choice(OPENERS)}, {base[0].lower()}{base[1:]}."
    if form == 1:
        return f"{base}, {rng.choice(LINKS_WORDS)} {rng.choice(CLOSERS)}."
    if form == 2:
        return f"{base} ({rng.randint(2, 40)} examples were noted in {rng.randint(1990, 2024)})."
    return f"{base}."


def article(rng: random.Random, topic: str, topical: bool = True) -> list[str]:
    return [
        " ".join(sentence(rng, topic, topical) for _ in range(rng.randint(2, 3)))
        for _ in range(rng.randint(2, 5))
    ]


def document(rng: random.Random) -> str:
    kind = rng.random()
    topic = rng.choice(list(TOPICS))
    fill = {"topic": topic, "date": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "n": rng.randint(0, 40), "w": rng.choice(["pills", "watches", "loans"])}
    if kind < 0.08:
        return rng.choice(SPAM).format(**fill)
    if kind < 0.13:
        return rng.choice(EMPTY)
    body = [f"{topic.title()}: notes and stories", *article(rng, topic)]
    if kind < 0.35:
        return "\n".join(body)
    head = [line.format(**fill) for line in rng.sample(NAV, rng.randint(1, 3))]
    if rng.random() < 0.5:
        head.insert(0, rng.choice(COOKIE))
    tail = [line.format(**fill) for line in rng.sample(SHARE, rng.randint(0, 2))]
    if rng.random() < 0.5:
        tail += [line.format(**fill) for line in LINKS]
    tail += rng.sample(FOOTER, rng.randint(1, 3))
    if rng.random() < 0.3:
        body[rng.randrange(1, len(body))] += " Click here to read more."
    return "\n".join(head + body + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--out", default="data/sample/web_docs.jsonl")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--reference", type=int, default=0,
                        help="write this many clean held-out articles instead")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.reference:
        rng = random.Random(args.seed + 1)
        with out.open("w", encoding="utf-8") as fh:
            for i in range(args.reference):
                topic = rng.choice(list(TOPICS))
                # No fixed topic sentence: those recur verbatim in the sample.
                text = "\n".join([f"{topic.title()}: notes and stories",
                                  *article(rng, topic, topical=False)])
                fh.write(json.dumps({"id": f"ref-{i:04d}", "text": text}) + "\n")
        print(f"wrote {args.reference} reference articles to {out}")
        return
    with out.open("w", encoding="utf-8") as fh:
        for i in range(args.docs):
            url = f"https://www.example.org/{i:04d}"
            fh.write(json.dumps({"id": f"doc-{i:04d}", "url": url, "text": document(rng)},
                                ensure_ascii=False) + "\n")
    print(f"wrote {args.docs} documents to {out}")


if __name__ == "__main__":
    main()
