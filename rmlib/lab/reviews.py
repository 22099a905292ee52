"""A small preference data set on real text, with a known true reward (lesson 08).

Every pair compares two one-line reviews written for the SAME prompt ("Review the hotel."). The
reviews are built from templates and word lists, and the true reward is a transparent rule a reader
can check by hand: the sum of the lexicon weights of the words of the review,

    r*(y) = Σ_{word in y} LEXICON.get(word, 0)      (e.g. "superb" +2, "decent" +1, "awful" −2).

The label is drawn by Bradley-Terry from that true reward, P(y_a chosen) = σ(β (r*(y_a) − r*(y_b))),
so some labels disagree with r* (label noise) and a trained model can be scored two ways: against
the noisy labels and against the true reward on held-out prompts.

The committed file ``rmlib/lab/data/reviews.jsonl`` is exactly what ``python -m rmlib.lab.reviews``
writes (a test regenerates it and compares); every draw goes through one seeded generator.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import torch

from rmlib.seeding import make_generator
from rmlib.utils import validation

SEED = 2024
BETA = 1.0  # Bradley-Terry inverse temperature of the labeller
PAIRS_PER_PROMPT = 5
N_TRAIN_PROMPTS = 32  # the first 32 items are training prompts, the other 16 are held out
DATA_FILE = "reviews.jsonl"

# The true reward's lexicon: one weight per adjective, five words per weight.
LEXICON: dict[str, int] = {
    **dict.fromkeys(("excellent", "superb", "wonderful", "brilliant", "fantastic"), 2),
    **dict.fromkeys(("good", "nice", "pleasant", "decent", "solid"), 1),
    **dict.fromkeys(("ordinary", "plain", "typical", "standard", "average"), 0),
    **dict.fromkeys(("poor", "dull", "weak", "bland", "slow"), -1),
    **dict.fromkeys(("awful", "terrible", "horrible", "dreadful", "useless"), -2),
}
ADJECTIVES = tuple(LEXICON)

# 48 things to review, each with the aspects a review of it would mention.
ITEMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hotel", ("rooms", "staff", "breakfast", "location")),
    ("cafe", ("coffee", "cakes", "service", "music")),
    ("phone", ("battery", "screen", "camera", "price")),
    ("laptop", ("keyboard", "screen", "battery", "speakers")),
    ("novel", ("plot", "characters", "ending", "writing")),
    ("film", ("acting", "story", "soundtrack", "ending")),
    ("museum", ("exhibits", "guides", "shop", "building")),
    ("bakery", ("bread", "pastries", "prices", "service")),
    ("concert", ("band", "sound", "venue", "crowd")),
    ("jacket", ("fabric", "fit", "zip", "colour")),
    ("board game", ("rules", "artwork", "pieces", "box")),
    ("garden centre", ("plants", "staff", "prices", "cafe")),
    ("podcast", ("host", "guests", "topics", "sound")),
    ("restaurant", ("food", "waiters", "wine", "desserts")),
    ("bicycle", ("gears", "brakes", "saddle", "frame")),
    ("camera", ("lens", "menus", "battery", "grip")),
    ("online course", ("lectures", "exercises", "teacher", "videos")),
    ("album", ("songs", "vocals", "lyrics", "production")),
    ("city park", ("paths", "benches", "lake", "playground")),
    ("train journey", ("seats", "staff", "views", "timing")),
    ("gym", ("machines", "trainers", "showers", "classes")),
    ("headphones", ("sound", "comfort", "battery", "case")),
    ("pizza", ("crust", "sauce", "cheese", "toppings")),
    ("dentist", ("staff", "waiting room", "treatment", "prices")),
    ("theatre play", ("actors", "script", "costumes", "stage")),
    ("library", ("books", "staff", "study rooms", "opening hours")),
    ("coffee machine", ("coffee", "noise", "design", "cleaning")),
    ("campsite", ("pitches", "showers", "shop", "views")),
    ("video game", ("graphics", "controls", "story", "music")),
    ("sofa", ("cushions", "fabric", "frame", "delivery")),
    ("airline", ("seats", "crew", "meals", "luggage service")),
    ("cookbook", ("recipes", "photos", "layout", "index")),
    ("hair salon", ("haircut", "stylist", "prices", "booking")),
    ("zoo", ("animals", "enclosures", "keepers", "cafe")),
    ("tablet", ("screen", "speakers", "battery", "stylus")),
    ("bookshop", ("selection", "staff", "prices", "reading corner")),
    ("hiking boots", ("grip", "comfort", "laces", "waterproofing")),
    ("taxi ride", ("driver", "car", "price", "route")),
    ("language app", ("lessons", "voice", "reminders", "design")),
    ("ice cream shop", ("flavours", "cones", "staff", "prices")),
    ("washing machine", ("programmes", "noise", "drum", "door")),
    ("cinema", ("screen", "seats", "snacks", "sound")),
    ("bus service", ("drivers", "timetable", "buses", "fares")),
    ("swimming pool", ("water", "changing rooms", "lifeguards", "lanes")),
    ("science documentary", ("narration", "footage", "facts", "music")),
    ("desk lamp", ("light", "switch", "base", "design")),
    ("market", ("stalls", "produce", "prices", "atmosphere")),
    ("spa", ("massage", "sauna", "staff", "towels")),
)


def prompt_for(item: str) -> str:
    """The prompt of every pair about ``item``; it ends with a newline, so prompt + response is one text."""
    return f"Review the {item}.\n"


def true_reward(text: str) -> float:
    """r*(text): the sum of LEXICON weights of its words (case-insensitive; other words weigh 0)."""
    validation.string("text", text, nonempty=False)
    return float(sum(LEXICON.get(word, 0) for word in re.findall(r"[a-z]+", text.lower())))


def _pick(options: tuple[str, ...], gen: torch.Generator) -> str:
    return options[int(torch.randint(len(options), (1,), generator=gen))]


def _review(aspects: tuple[str, ...], gen: torch.Generator) -> str:
    first, second = (aspects[int(i)] for i in torch.randperm(len(aspects), generator=gen)[:2])
    a, b = _pick(ADJECTIVES, gen), _pick(ADJECTIVES, gen)
    return f"{a.capitalize()} {first}, {b} {second}."


def generate(seed: int = SEED, beta: float = BETA) -> list[dict]:
    """All pairs, in file order: PAIRS_PER_PROMPT pairs per item; labels drawn by Bradley-Terry.

    The two reviews of a pair are redrawn until their true rewards differ, so every pair has a
    true winner against which held-out agreement is measured.
    """
    beta = validation.real("beta", beta, positive=True)
    gen = make_generator(seed)
    rows = []
    for k, (item, aspects) in enumerate(ITEMS):
        for _ in range(PAIRS_PER_PROMPT):
            a, b = _review(aspects, gen), _review(aspects, gen)
            while true_reward(a) == true_reward(b):
                b = _review(aspects, gen)
            delta = true_reward(a) - true_reward(b)
            a_wins = bool(torch.rand((), generator=gen) < torch.sigmoid(torch.tensor(beta * delta)))
            chosen, rejected = (a, b) if a_wins else (b, a)
            rows.append({
                "id": len(rows),
                "split": "train" if k < N_TRAIN_PROMPTS else "test",
                "prompt": prompt_for(item),
                "chosen": chosen,
                "rejected": rejected,
                "true_chosen": true_reward(chosen),
                "true_rejected": true_reward(rejected),
            })
    return rows


def to_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


def data_path() -> Path:
    """Where the shipped file lives inside the installed package."""
    return Path(str(resources.files("rmlib.lab") / "data" / DATA_FILE))


def load_reviews(split: str | None = None) -> list[dict]:
    """The shipped pairs (all, or ``split="train"`` / ``"test"``), as dicts with the fields of :func:`generate`."""
    validation.one_of("split", split, (None, "train", "test"))
    rows = [json.loads(line) for line in data_path().read_text(encoding="utf-8").splitlines() if line]
    return [row for row in rows if split is None or row["split"] == split]


def main() -> None:
    path = Path(__file__).resolve().parent / "data" / DATA_FILE
    path.parent.mkdir(exist_ok=True)
    rows = generate()
    path.write_text(to_jsonl(rows), encoding="utf-8")
    print(f"wrote {len(rows)} pairs to {path}")


if __name__ == "__main__":
    main()


__all__ = ["BETA", "LEXICON", "SEED", "data_path", "generate", "load_reviews", "prompt_for", "true_reward"]
