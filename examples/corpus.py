"""A seeded synthetic instruction -> response world: the only text the example student ever sees.

Every problem comes with three renderings of its answer in the corpus style: `short`, `explained` (a little
more complete) and `hedged` (the same content wrapped in hedging words). The training corpus mixes all three,
so answers in those styles sit inside the student's frontier; anything else (rare words, symbols, dense
formal prose) is out of distribution and gets a clearly higher perplexity. The hedging words the confidence
signal counts (core.confidence.HEDGING_WORDS) appear only in `hedged` renderings, never as ordinary words (no
"wait five minutes", no "check the box"), so counting them in a response measures hedging and nothing else.

Only `random.Random` is used, so the same seed gives the same text on every Python >= 3.11.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# What the plain template puts between instruction, input and response (the engine's `plain` template).
SEP = "\n\n"


@dataclass(frozen=True, slots=True)
class Problem:
    """One instruction with its answer rendered in every style the student is trained on.

    `paraphrase` is another corpus-style wording of the instruction (for refinements that rewrite it);
    `slots` holds the problem's raw values (numbers, names, the bare answer) for other renderers.
    """

    task: str
    instruction: str
    input: str
    short: str
    explained: str
    hedged: str
    paraphrase: str
    answer: str
    slots: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Creature:
    """A made-up animal of the synthetic world; its facts are fixed, so the student can memorise them."""

    name: str
    color: str
    home: str
    food: str
    legs: int
    size: str


# Fixed, not seeded: facts must be the same in every corpus and every dataset built from any seed.
CREATURES: tuple[Creature, ...] = (
    Creature("zarn", "blue", "hills", "berries", 4, "small"),
    Creature("plim", "green", "lake", "reeds", 2, "tiny"),
    Creature("toval", "red", "forest", "nuts", 6, "large"),
    Creature("kesh", "yellow", "desert", "seeds", 4, "small"),
    Creature("murb", "brown", "cave", "mushrooms", 8, "large"),
    Creature("fennow", "white", "meadow", "clover", 4, "tiny"),
    Creature("dralk", "black", "mountain", "moss", 2, "huge"),
    Creature("quib", "orange", "river", "worms", 6, "tiny"),
    Creature("sorrel", "purple", "marsh", "leaves", 4, "large"),
    Creature("vimp", "gray", "beach", "shells", 8, "small"),
    Creature("brask", "pink", "valley", "apples", 2, "huge"),
    Creature("lunt", "silver", "garden", "roots", 6, "small"),
)

NAMES: tuple[tuple[str, str], ...] = (
    ("Mia", "She"),
    ("Tom", "He"),
    ("Ava", "She"),
    ("Leo", "He"),
    ("Sam", "He"),
    ("Nora", "She"),
    ("Ben", "He"),
    ("Lily", "She"),
    ("Max", "He"),
    ("Ella", "She"),
    ("Omar", "He"),
    ("Zoe", "She"),
    ("Ivan", "He"),
    ("Rosa", "She"),
    ("Kai", "He"),
    ("Maya", "She"),
    ("Finn", "He"),
    ("Anna", "She"),
    ("Hugo", "He"),
    ("Jade", "She"),
)
ITEMS: tuple[str, ...] = (
    "apples",
    "pencils",
    "books",
    "marbles",
    "stickers",
    "cookies",
    "cards",
    "shells",
    "coins",
    "stamps",
    "buttons",
    "flowers",
    "eggs",
    "toys",
    "rocks",
    "candles",
)
CONTAINERS: tuple[str, ...] = ("box", "bag", "basket", "jar", "crate", "tray")
WORDS: tuple[str, ...] = (
    "red",
    "cat",
    "hat",
    "sun",
    "tree",
    "blue",
    "fish",
    "door",
    "moon",
    "cup",
    "bird",
    "lamp",
    "rain",
    "star",
    "milk",
    "road",
    "ship",
    "bell",
    "sand",
    "kite",
    "frog",
    "leaf",
    "coat",
    "drum",
)
NUMBER_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
)

# (big unit, small unit, factor): every conversion is "big -> small" so answers are whole numbers.
UNITS: tuple[tuple[str, str, str, str, int], ...] = (
    ("meter", "meters", "centimeter", "centimeters", 100),
    ("kilogram", "kilograms", "gram", "grams", 1000),
    ("hour", "hours", "minute", "minutes", 60),
    ("minute", "minutes", "second", "seconds", 60),
    ("day", "days", "hour", "hours", 24),
    ("week", "weeks", "day", "days", 7),
    ("foot", "feet", "inch", "inches", 12),
    ("dozen", "dozens", "egg", "eggs", 12),
    ("liter", "liters", "milliliter", "milliliters", 1000),
    ("year", "years", "month", "months", 12),
)

# How-to procedures: (goal, steps). Steps avoid the hedge words ("wait", "check") on purpose.
PROCEDURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "make tea",
        (
            "Boil some water",
            "Put a tea bag in a cup",
            "Pour the hot water into the cup",
            "Let the tea sit for three minutes",
            "Take out the tea bag",
        ),
    ),
    (
        "plant a seed",
        ("Fill a pot with soil", "Make a small hole", "Put the seed in the hole", "Cover it with soil", "Water it"),
    ),
    (
        "wash your hands",
        ("Turn on the water", "Wet your hands", "Rub them with soap", "Rinse off the soap", "Dry your hands"),
    ),
    (
        "make a sandwich",
        ("Take two slices of bread", "Spread butter on one slice", "Add cheese and ham", "Put the slices together"),
    ),
    (
        "pack a bag",
        ("Make a list of what you need", "Fold your clothes", "Put heavy things at the bottom", "Close the bag"),
    ),
    (
        "clean a table",
        ("Clear everything off the table", "Wipe it with a wet cloth", "Dry it with a towel"),
    ),
    (
        "mail a letter",
        ("Write the letter", "Put it in an envelope", "Write the address", "Add a stamp", "Drop it in a mailbox"),
    ),
    (
        "feed a zarn",
        ("Pick some fresh berries", "Put them in a bowl", "Set the bowl on the ground", "Let the zarn eat"),
    ),
    (
        "make a paper boat",
        ("Take a sheet of paper", "Fold it in half", "Fold the corners down", "Open the bottom", "Shape the boat"),
    ),
    (
        "water a plant",
        ("Fill a can with water", "Pour the water on the soil", "Stop when the soil is wet"),
    ),
)


def _pick_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(NAMES)


def _number_list(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def _addition(rng: random.Random) -> Problem:
    name, pron = _pick_name(rng)
    item = rng.choice(ITEMS)
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    c = a + b
    verb, past = rng.choice((("buys", "bought"), ("finds", "found"), ("gets", "got")))
    templates = (
        f"{name} has {a} {item}. {pron} {verb} {b} more. How many {item} does {name} have now?",
        f"If {name} has {a} {item} and {verb} {b} more, how many {item} does {name} have?",
        f"{name} had {a} {item} and then {past} {b} more. How many {item} does {name} have in total?",
    )
    instruction, paraphrase = rng.sample(templates, 2)
    return Problem(
        task="addition",
        instruction=instruction,
        input="",
        short=f"{name} has {c} {item} now.",
        explained=(
            f"{name} starts with {a} {item}. {pron} {verb} {b} more, so we add them: {a} + {b} = {c}. "
            f"{name} has {c} {item} now."
        ),
        hedged=(
            f"I think we need to add {a} and {b}. That gives {c}, maybe. Let me check: {a} + {b} = {c}. "
            f"So {name} likely has {c} {item} now."
        ),
        paraphrase=paraphrase,
        answer=str(c),
        slots={"name": name, "item": item, "a": str(a), "b": str(b), "c": str(c), "verb": verb},
    )


def _subtraction(rng: random.Random) -> Problem:
    name, pron = _pick_name(rng)
    item = rng.choice(ITEMS)
    a = rng.randint(8, 30)
    # At least two left, so "There are {c} {item} left" stays grammatical.
    b = rng.randint(1, a - 2)
    c = a - b
    templates = (
        f"{name} has {a} {item}. {pron} gives {b} to a friend. How many {item} does {name} have left?",
        f"{name} had {a} {item} and gave away {b}. How many {item} are left?",
        f"There are {a} {item}. {name} takes away {b}. How many {item} are still there?",
    )
    instruction, paraphrase = rng.sample(templates, 2)
    return Problem(
        task="subtraction",
        instruction=instruction,
        input="",
        short=f"There are {c} {item} left.",
        explained=(
            f"We start with {a} {item}. {b} of them are gone, so we subtract: {a} - {b} = {c}. "
            f"There are {c} {item} left."
        ),
        hedged=(
            f"Hmm, I think we subtract {b} from {a}. That seems to give {c}. Wait, let me check: "
            f"{a} - {b} = {c}. So maybe there are {c} {item} left."
        ),
        paraphrase=paraphrase,
        answer=str(c),
        slots={"name": name, "item": item, "a": str(a), "b": str(b), "c": str(c)},
    )


def _multiplication(rng: random.Random) -> Problem:
    item = rng.choice(ITEMS)
    box = rng.choice(CONTAINERS)
    a, b = rng.randint(2, 12), rng.randint(2, 9)
    c = a * b
    boxes = box + ("es" if box.endswith("x") else "s")
    templates = (
        f"One {box} holds {a} {item}. How many {item} are in {b} {boxes}?",
        f"Each {box} has {a} {item} in it. There are {b} {boxes}. How many {item} are there in all?",
        f"How many {item} are in {b} {boxes} if each {box} holds {a} {item}?",
    )
    instruction, paraphrase = rng.sample(templates, 2)
    return Problem(
        task="multiplication",
        instruction=instruction,
        input="",
        short=f"There are {c} {item} in {b} {boxes}.",
        explained=(
            f"Each {box} holds {a} {item}, and there are {b} {boxes}. We multiply: {b} x {a} = {c}. "
            f"There are {c} {item} in {b} {boxes}."
        ),
        hedged=(
            f"I think we should multiply here. Perhaps {b} x {a} = {c}? Let me check again: {b} x {a} = {c}. "
            f"So it seems there are {c} {item} in {b} {boxes}."
        ),
        paraphrase=paraphrase,
        answer=str(c),
        slots={"item": item, "box": box, "boxes": boxes, "a": str(a), "b": str(b), "c": str(c)},
    )


def _compare(rng: random.Random) -> Problem:
    a, b = rng.sample(range(1, 100), 2)
    big, small = max(a, b), min(a, b)
    templates = (
        f"Which number is larger, {a} or {b}?",
        f"Which is bigger: {a} or {b}?",
        f"Tell me which number is greater, {a} or {b}.",
    )
    instruction, paraphrase = rng.sample(templates, 2)
    return Problem(
        task="compare",
        instruction=instruction,
        input="",
        short=f"{big} is larger than {small}.",
        explained=(
            f"We compare the two numbers. {big} comes after {small} when we count up, so {big} is larger than {small}."
        ),
        hedged=f"Maybe {big}? I think {big} is larger than {small}, but let me check. Yes, {big} is likely larger.",
        paraphrase=paraphrase,
        answer=str(big),
        slots={"a": str(a), "b": str(b), "big": str(big), "small": str(small)},
    )


def _list_task(
    rng: random.Random,
    values: list[str],
    inline: tuple[str, ...],
    separate: tuple[str, ...],
) -> tuple[str, str, str]:
    """Pick an instruction and paraphrase; half the time the list moves into the `input` field."""
    listed = ", ".join(values)
    if rng.random() < 0.5:
        instruction, paraphrase = rng.sample(separate, 2)
        return instruction, listed, paraphrase
    instruction, paraphrase = rng.sample(inline, 2)
    return instruction.format(listed=listed), "", paraphrase.format(listed=listed)


def _sort(rng: random.Random) -> Problem:
    values = rng.sample(range(1, 100), rng.randint(3, 6))
    ordered = sorted(values)
    instruction, input_text, paraphrase = _list_task(
        rng,
        [str(v) for v in values],
        (
            "Sort these numbers from smallest to largest: {listed}.",
            "Put these numbers in order from smallest to largest: {listed}.",
            "Arrange the numbers {listed} from smallest to largest.",
        ),
        (
            "Sort the numbers below from smallest to largest.",
            "Put the numbers below in order from smallest to largest.",
            "Arrange the following numbers from smallest to largest.",
        ),
    )
    steps = " ".join(f"Next comes {v}." for v in ordered[1:-1])
    return Problem(
        task="sort",
        instruction=instruction,
        input=input_text,
        short=f"The sorted list is {_number_list(ordered)}.",
        explained=(
            f"The smallest number is {ordered[0]}. {steps} The largest number is {ordered[-1]}. "
            f"The sorted list is {_number_list(ordered)}."
        ),
        hedged=(
            f"I think the smallest is {ordered[0]}, maybe. Let me check each number. "
            f"It seems the sorted list is {_number_list(ordered)}."
        ),
        paraphrase=paraphrase,
        answer=_number_list(ordered),
        slots={"values": _number_list(values), "sorted": _number_list(ordered), "n": str(len(values))},
    )


def _largest(rng: random.Random) -> Problem:
    values = rng.sample(range(1, 100), rng.randint(3, 6))
    top = max(values)
    instruction, input_text, paraphrase = _list_task(
        rng,
        [str(v) for v in values],
        (
            "What is the largest number in this list: {listed}?",
            "Find the biggest number in {listed}.",
            "Which number is the largest: {listed}?",
        ),
        (
            "What is the largest number in the list below?",
            "Find the biggest number in the list below.",
            "Which of the following numbers is the largest?",
        ),
    )
    return Problem(
        task="largest",
        instruction=instruction,
        input=input_text,
        short=f"The largest number is {top}.",
        explained=(
            f"We look at each number in turn and keep the biggest one so far. "
            f"No number is bigger than {top}, so the largest number is {top}."
        ),
        hedged=f"Perhaps it is {top}. I think no number is bigger than {top}, so the largest is likely {top}.",
        paraphrase=paraphrase,
        answer=str(top),
        slots={"values": _number_list(values), "top": str(top), "n": str(len(values))},
    )


def _reverse(rng: random.Random) -> Problem:
    words = rng.sample(WORDS, rng.randint(3, 5))
    backwards = list(reversed(words))
    instruction, input_text, paraphrase = _list_task(
        rng,
        words,
        (
            "Reverse the order of these words: {listed}.",
            "Write these words in reverse order: {listed}.",
            "Put the words {listed} in the opposite order.",
        ),
        (
            "Reverse the order of the words below.",
            "Write the following words in reverse order.",
            "Put the words below in the opposite order.",
        ),
    )
    return Problem(
        task="reverse",
        instruction=instruction,
        input=input_text,
        short=f"The reversed list is {', '.join(backwards)}.",
        explained=(
            f"The last word is {words[-1]}, so it comes first. The first word is {words[0]}, so it comes last. "
            f"The reversed list is {', '.join(backwards)}."
        ),
        hedged=(
            f"I think the last word is {words[-1]}, so maybe it goes first. "
            f"Wait, let me check. The reversed list might be {', '.join(backwards)}."
        ),
        paraphrase=paraphrase,
        answer=", ".join(backwards),
        slots={"words": ", ".join(words), "reversed": ", ".join(backwards), "n": str(len(words))},
    )


def _count(rng: random.Random) -> Problem:
    words = rng.sample(WORDS, rng.randint(3, 7))
    n = len(words)
    instruction, input_text, paraphrase = _list_task(
        rng,
        words,
        (
            "How many words are in this list: {listed}?",
            "Count the words in this list: {listed}.",
            "Tell me how many words there are in {listed}.",
        ),
        (
            "How many words are in the list below?",
            "Count the words in the following list.",
            "Tell me how many words the list below has.",
        ),
    )
    counted = " ".join(f"{w.capitalize()} is {NUMBER_WORDS[i + 1]}." for i, w in enumerate(words))
    return Problem(
        task="count",
        instruction=instruction,
        input=input_text,
        short=f"There are {n} words in the list.",
        explained=f"We count them one by one. {counted} There are {n} words in the list.",
        hedged=f"Let me count. I think there are {n} words, maybe. It seems the list has {n} words.",
        paraphrase=paraphrase,
        answer=str(n),
        slots={"words": ", ".join(words), "n": str(n)},
    )


def _fact(rng: random.Random) -> Problem:
    c = rng.choice(CREATURES)
    kind = rng.choice(("color", "home", "food", "legs", "size", "about"))
    legs = NUMBER_WORDS[c.legs]
    describe = (
        f"A {c.name} is a {c.size} {c.color} animal. It lives in the {c.home} and eats {c.food}. It has {legs} legs."
    )
    slots = {
        "name": c.name,
        "color": c.color,
        "home": c.home,
        "food": c.food,
        "legs": str(c.legs),
        "size": c.size,
        "kind": kind,
    }
    if kind == "color":
        templates = (f"What color is a {c.name}?", f"Tell me the color of a {c.name}.")
        short, answer = f"A {c.name} is {c.color}.", c.color
    elif kind == "home":
        templates = (f"Where does a {c.name} live?", f"Where can you find a {c.name}?")
        short, answer = f"A {c.name} lives in the {c.home}.", c.home
    elif kind == "food":
        templates = (f"What does a {c.name} eat?", f"What food does a {c.name} like?")
        short, answer = f"A {c.name} eats {c.food}.", c.food
    elif kind == "legs":
        templates = (f"How many legs does a {c.name} have?", f"Count the legs of a {c.name}.")
        short, answer = f"A {c.name} has {legs} legs.", legs
    elif kind == "size":
        templates = (f"How big is a {c.name}?", f"What size is a {c.name}?")
        short, answer = f"A {c.name} is {c.size}.", c.size
    else:
        templates = (f"Tell me about the {c.name}.", f"Describe a {c.name}.")
        short, answer = describe, describe
    instruction, paraphrase = rng.sample(templates, 2)
    # The fuller answer recalls the whole entry first, the way a careful tutor would.
    if kind == "about":
        explained = f"{describe} Many {c.name}s live together in the {c.home}."
    else:
        explained = f"{describe} So the answer is: {short[0].lower()}{short[1:]}"
    return Problem(
        task="fact",
        instruction=instruction,
        input="",
        short=short,
        explained=explained,
        hedged=f"I think {short[0].lower()}{short[1:-1]}, but I might be wrong. It seems likely.",
        paraphrase=paraphrase,
        answer=answer,
        slots=slots,
    )


def _convert(rng: random.Random) -> Problem:
    big, bigs, small, smalls, factor = rng.choice(UNITS)
    n = rng.randint(2, 9)
    total = n * factor
    templates = (
        f"How many {smalls} are in {n} {bigs}?",
        f"Convert {n} {bigs} to {smalls}.",
        f"What is {n} {bigs} in {smalls}?",
    )
    instruction, paraphrase = rng.sample(templates, 2)
    return Problem(
        task="convert",
        instruction=instruction,
        input="",
        short=f"{n} {bigs} is {total} {smalls}.",
        explained=(
            f"One {big} is {factor} {smalls}. We multiply: {n} x {factor} = {total}. So {n} {bigs} is {total} {smalls}."
        ),
        hedged=(
            f"I think one {big} is {factor} {smalls}, maybe. Then {n} x {factor} = {total}, let me check. "
            f"So {n} {bigs} is likely {total} {smalls}."
        ),
        paraphrase=paraphrase,
        answer=str(total),
        slots={
            "big": big,
            "bigs": bigs,
            "small": small,
            "smalls": smalls,
            "factor": str(factor),
            "n": str(n),
            "total": str(total),
        },
    )


def _howto(rng: random.Random) -> Problem:
    goal, steps = rng.choice(PROCEDURES)
    templates = (f"How do you {goal}?", f"List the steps to {goal}.", f"Tell me how to {goal}.")
    instruction, paraphrase = rng.sample(templates, 2)
    lowered = [s[0].lower() + s[1:] for s in steps]
    numbered = " ".join(f"{i}. {s}." for i, s in enumerate(steps, start=1))
    return Problem(
        task="howto",
        instruction=instruction,
        input="",
        short=f"{steps[0]}, then {', then '.join(lowered[1:])}.",
        explained=f"Here are the steps to {goal}. {numbered} Now you are done.",
        hedged=f"I think you {lowered[0]}, and then maybe {', then '.join(lowered[1:])}. That might be all.",
        paraphrase=paraphrase,
        answer=numbered,
        slots={"goal": goal, "steps": numbered, "n": str(len(steps))},
    )


TASKS: dict[str, Callable[[random.Random], Problem]] = {
    "addition": _addition,
    "subtraction": _subtraction,
    "multiplication": _multiplication,
    "compare": _compare,
    "sort": _sort,
    "largest": _largest,
    "reverse": _reverse,
    "count": _count,
    "fact": _fact,
    "convert": _convert,
    "howto": _howto,
}


def make_problem(rng: random.Random, task: str | None = None) -> Problem:
    """Draw one problem, of `task` or of a uniformly chosen task."""
    name = task if task is not None else rng.choice(sorted(TASKS))
    return TASKS[name](rng)


def format_prompt(instruction: str, input_text: str = "") -> str:
    """The plain-template question Q: the instruction, then the input (if any) after a blank line."""
    return f"{instruction}{SEP}{input_text}" if input_text else instruction


def format_pair(prompt: str, response: str) -> str:
    """The plain template the engine scores: Q, a blank line, then A."""
    return f"{prompt}{SEP}{response}"


def iter_documents(seed: int, *, reversed_share: float = 0.2) -> Iterator[str]:
    """An endless seeded stream of training documents, mostly "Q\\n\\nA" with a share of "A\\n\\nQ"."""
    rng = random.Random(seed)
    while True:
        problem = make_problem(rng)
        # Short answers are the most common style; explained and hedged are common enough to be in-frontier.
        style = rng.random()
        response = problem.short if style < 0.45 else problem.explained if style < 0.8 else problem.hedged
        instruction = problem.instruction if rng.random() < 0.8 else problem.paraphrase
        prompt = format_prompt(instruction, problem.input)
        # Both directions are scored (L(A|Q) and L(Q|A)), so the student sees both orders.
        if rng.random() < reversed_share:
            yield format_pair(response, prompt)
        else:
            yield format_pair(prompt, response)


def corpus(seed: int, n_documents: int) -> list[str]:
    """The first `n_documents` documents of the stream for `seed`."""
    stream = iter_documents(seed)
    return [next(stream) for _ in range(n_documents)]
