"""How people write themselves down: nicknames, typos, formats and the garbage of forms.

Each function takes the random generator it draws from, so a caller's seed decides everything.
"""

from __future__ import annotations

import string

import numpy as np

# Formal given name -> (sex, the names its bearers also go by).
NICKNAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "William": ("M", ("Bill", "Will", "Billy")),
    "Robert": ("M", ("Bob", "Rob", "Bobby")),
    "Richard": ("M", ("Rick", "Dick", "Rich")),
    "James": ("M", ("Jim", "Jimmy")),
    "Michael": ("M", ("Mike", "Mikey")),
    "Thomas": ("M", ("Tom", "Tommy")),
    "Joseph": ("M", ("Joe", "Joey")),
    "Charles": ("M", ("Charlie", "Chuck")),
    "Christopher": ("M", ("Chris",)),
    "Daniel": ("M", ("Dan", "Danny")),
    "Matthew": ("M", ("Matt",)),
    "Anthony": ("M", ("Tony",)),
    "Steven": ("M", ("Steve",)),
    "Andrew": ("M", ("Andy", "Drew")),
    "Joshua": ("M", ("Josh",)),
    "Kenneth": ("M", ("Ken", "Kenny")),
    "Edward": ("M", ("Ed", "Eddie", "Ted")),
    "Ronald": ("M", ("Ron", "Ronnie")),
    "Timothy": ("M", ("Tim",)),
    "Jonathan": ("M", ("Jon",)),
    "Benjamin": ("M", ("Ben",)),
    "Samuel": ("M", ("Sam",)),
    "Gregory": ("M", ("Greg",)),
    "Patrick": ("M", ("Pat",)),
    "Nicholas": ("M", ("Nick",)),
    "Alexander": ("M", ("Alex",)),
    "David": ("M", ("Dave",)),
    "Donald": ("M", ("Don",)),
    "Lawrence": ("M", ("Larry",)),
    "Raymond": ("M", ("Ray",)),
    "Frederick": ("M", ("Fred",)),
    "Gerald": ("M", ("Jerry",)),
    "Theodore": ("M", ("Ted", "Teddy")),
    "Elizabeth": ("F", ("Liz", "Beth", "Betty")),
    "Katherine": ("F", ("Kate", "Kathy", "Katie")),
    "Catherine": ("F", ("Cathy", "Cat")),
    "Margaret": ("F", ("Maggie", "Peggy", "Meg")),
    "Jennifer": ("F", ("Jen", "Jenny")),
    "Patricia": ("F", ("Patty", "Trish")),
    "Susan": ("F", ("Sue", "Suzy")),
    "Deborah": ("F", ("Debbie", "Deb")),
    "Rebecca": ("F", ("Becky",)),
    "Jessica": ("F", ("Jess",)),
    "Victoria": ("F", ("Vicky", "Tori")),
    "Kimberly": ("F", ("Kim",)),
    "Christine": ("F", ("Chris", "Chrissy")),
    "Barbara": ("F", ("Barb",)),
    "Cynthia": ("F", ("Cindy",)),
    "Pamela": ("F", ("Pam",)),
    "Samantha": ("F", ("Sam",)),
    "Abigail": ("F", ("Abby",)),
    "Jacqueline": ("F", ("Jackie",)),
    "Stephanie": ("F", ("Steph",)),
    "Amanda": ("F", ("Mandy",)),
    "Dorothy": ("F", ("Dot",)),
    "Judith": ("F", ("Judy",)),
    "Theresa": ("F", ("Terry",)),
    "Melissa": ("F", ("Missy",)),
}

# Street suffix -> the USPS abbreviation that forms use just as often.
STREET_SUFFIXES: dict[str, str] = {
    "Street": "St",
    "Avenue": "Ave",
    "Road": "Rd",
    "Drive": "Dr",
    "Lane": "Ln",
    "Court": "Ct",
    "Boulevard": "Blvd",
    "Place": "Pl",
    "Circle": "Cir",
    "Terrace": "Ter",
    "Parkway": "Pkwy",
    "Highway": "Hwy",
    "Trail": "Trl",
    "Square": "Sq",
}
_ABBREVIATIONS = {v: k for k, v in STREET_SUFFIXES.items()}

# Phone layouts of a 10-digit national number (area, exchange, line).
PHONE_FORMATS: dict[str, str] = {
    "e164": "+1{a}{e}{l}",
    "national": "({a}) {e}-{l}",
    "dashed": "{a}-{e}-{l}",
    "dotted": "{a}.{e}.{l}",
    "digits": "{a}{e}{l}",
    "trunk": "1-{a}-{e}-{l}",
}

COUNTRY_VARIANTS = ("USA", "United States", "us", "U.S.", "United States of America")
_KEYBOARD = string.ascii_lowercase


def format_phone(e164: str, layout: str) -> str:
    """A +1 E.164 number written in one of :data:`PHONE_FORMATS`."""
    digits = e164[-10:]
    return PHONE_FORMATS[layout].format(a=digits[:3], e=digits[3:6], l=digits[6:])


def typo(value: str, rng: np.random.Generator) -> str:
    """One keying error: swap two neighbours, drop, insert or substitute a character.

    The result always differs from ``value`` (a swap of equal letters becomes a substitution).
    """
    if len(value) < 2:
        return value + _KEYBOARD[int(rng.integers(len(_KEYBOARD)))]
    kind = int(rng.integers(4))
    i = int(rng.integers(len(value) - 1))
    if kind == 0 and value[i] != value[i + 1]:
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    if kind == 1:
        return value[:i] + value[i + 1 :]
    letter = _KEYBOARD[int(rng.integers(len(_KEYBOARD)))]
    if kind == 2:
        return value[:i] + letter + value[i:]
    if letter == value[i].lower():
        letter = _KEYBOARD[(_KEYBOARD.index(letter) + 1) % len(_KEYBOARD)]
    if value[i].isupper():
        letter = letter.upper()
    return value[:i] + letter + value[i + 1 :]


def case_variant(value: str, rng: np.random.Generator) -> str:
    """The value in upper case, lower case or title case, whichever differs from it."""
    candidates = [v for v in (value.upper(), value.lower(), value.title()) if v != value]
    if not candidates:
        return value
    return candidates[int(rng.integers(len(candidates)))]


def whitespace_variant(value: str, rng: np.random.Generator) -> str:
    """Leading, trailing or doubled inner whitespace, as copy-paste leaves it."""
    kind = int(rng.integers(3))
    if kind == 0:
        return " " + value
    if kind == 1 or " " not in value:
        return value + "  "
    return value.replace(" ", "  ", 1)


def email_variant(email: str, rng: np.random.Generator) -> str:
    """The same mailbox written differently: gmail dots, or a ``+tag`` before the domain."""
    local, _, domain = email.partition("@")
    if domain == "gmail.com" and rng.random() < 0.5:
        if "." in local:
            return local.replace(".", "") + "@" + domain
        i = int(rng.integers(1, max(len(local), 2)))
        return local[:i] + "." + local[i:] + "@" + domain
    tag = ("shop", "news", "deals", "spam", "retail")[int(rng.integers(5))]
    return f"{local}+{tag}@{domain}"


def abbreviate_street(address: str) -> str:
    """Swap a street suffix for its abbreviation or back (``Oak Street`` <-> ``Oak St``)."""
    words = address.split(" ")
    for i in range(len(words) - 1, 0, -1):
        bare = words[i].rstrip(".")
        if bare in STREET_SUFFIXES:
            words[i] = STREET_SUFFIXES[bare]
            return " ".join(words)
        if bare in _ABBREVIATIONS:
            words[i] = _ABBREVIATIONS[bare]
            return " ".join(words)
    return address + "."


def transpose_day_month(date: np.datetime64) -> np.datetime64:
    """The US/European mix-up: 2001-03-07 read as 2001-07-03 (for days up to 12)."""
    year, month, day = str(date)[:10].split("-")
    return np.datetime64(f"{year}-{day}-{month}", "ns")
