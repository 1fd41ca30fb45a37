"""The word lists normalisation looks values up in, written as data.

Street and city words, country names, mail providers' rules, the garbage values forms collect
and given-name variants, all written from general knowledge, not copied from any simulator:
the simulator's tables are among the things these lists are tested against.

Given names: two rules keep the canonical forms safe to compare for equality:

- every canonical form is a formal name, and a formal name is its own canonical form: two
  formal names never share one, so Christopher and Christine stay apart;
- a nickname that two formal names commonly share (:data:`SHARED`: Chris, Sam, Pat, Alex, ...
  which men and women go by, and Ted, Edward's as often as Theodore's) canonicalises to a
  *group key*, its formal names sorted and joined by ``|`` (``"samantha|samuel"``), equal to
  neither. Mapping it to one of them would make a mother Samantha ("Sam") and her son Samuel
  look like one given name at one address. A comparison that wants the weaker evidence
  splits the key on ``|`` and tests membership.

A nickname another formal name of the same sex only sometimes stands for (Jerry: Gerald, now
and then Jerome; Kathy: Katherine, or Kathleen) goes to the one most of its bearers have: a
wrong guess stays within one sex, and the birth date and mailbox still tell persons apart.
"""

from __future__ import annotations

from functools import cache

# USPS abbreviation -> the ways forms write it; unit designators all become "apt" (systems
# disagree on the word, not on the unit), directionals their letter.
STREET_WORDS: dict[str, tuple[str, ...]] = {
    "aly": ("alley",), "anx": ("annex",), "arc": ("arcade",),
    "ave": ("avenue", "av", "aven", "avenu", "avn", "avnue"), "bch": ("beach",), "bnd": ("bend",),
    "blf": ("bluff",), "blvd": ("boulevard", "boul", "boulv"), "br": ("branch",),
    "brg": ("bridge",), "brk": ("brook",), "byp": ("bypass",), "cswy": ("causeway",),
    "ctr": ("center", "centre"), "cir": ("circle", "circ", "circl", "crcl"), "clf": ("cliff",),
    "cmn": ("common",), "cor": ("corner",), "ct": ("court", "crt"), "cv": ("cove",),
    "crk": ("creek",), "cres": ("crescent",), "xing": ("crossing",), "dl": ("dale",),
    "dr": ("drive", "driv", "drv"), "est": ("estate",), "expy": ("expressway",),
    "ext": ("extension",), "fls": ("falls",), "fry": ("ferry",), "fld": ("field",),
    "frst": ("forest",), "ft": ("fort",), "fwy": ("freeway",), "gdn": ("garden",),
    "gdns": ("gardens",), "gtwy": ("gateway",), "gln": ("glen",), "grn": ("green",),
    "grv": ("grove",), "hbr": ("harbor", "harbour"), "hvn": ("haven",), "hts": ("heights",),
    "hwy": ("highway", "hiway"), "hl": ("hill",), "hls": ("hills",), "holw": ("hollow",),
    "is": ("island",), "jct": ("junction",), "lk": ("lake",), "lks": ("lakes",),
    "lndg": ("landing",), "ln": ("lane",), "mnr": ("manor",), "mdw": ("meadow",),
    "mdws": ("meadows",), "ml": ("mill",), "mt": ("mount",), "mtn": ("mountain",),
    "orch": ("orchard",), "pkwy": ("parkway", "parkwy", "pkway", "pky"), "pl": ("place",),
    "pln": ("plain",), "plz": ("plaza",), "pt": ("point",), "prt": ("port",), "rnch": ("ranch",),
    "rdg": ("ridge",), "riv": ("river",), "rd": ("road",), "rte": ("route",), "shr": ("shore",),
    "spg": ("spring",), "sq": ("square", "sqr"), "sta": ("station",),
    "st": ("street", "str", "strt", "saint"), "smt": ("summit",), "ter": ("terrace", "terr"),
    "trce": ("trace",), "trl": ("trail", "trls"), "tpke": ("turnpike",), "vly": ("valley",),
    "vw": ("view",), "vlg": ("village",), "vis": ("vista",), "way": ("wy",), "n": ("north",),
    "s": ("south",), "e": ("east",), "w": ("west",), "ne": ("northeast",), "nw": ("northwest",),
    "se": ("southeast",), "sw": ("southwest",), "apt": ("apartment", "unit", "suite", "ste", "#"),
    "fl": ("floor",), "rm": ("room",), "bldg": ("building",),
}  # fmt: skip
CITY_WORDS: dict[str, tuple[str, ...]] = {
    "st": ("saint",), "ste": ("sainte",), "ft": ("fort",), "mt": ("mount",), "n": ("north",),
    "s": ("south",), "e": ("east",), "w": ("west",),
}  # fmt: skip
# ISO 3166 alpha-2 -> how forms write the country, as letters only (case, dots, spaces gone).
COUNTRIES: dict[str, tuple[str, ...]] = {
    "US": ("usa", "unitedstates", "unitedstatesofamerica", "america", "theunitedstates"),
    "GB": (
        "uk", "gbr", "unitedkingdom", "greatbritain", "britain", "england", "scotland", "wales",
        "northernireland",
    ),
    "AU": ("aus", "australia"), "CA": ("can", "canada"), "NZ": ("nzl", "newzealand", "aotearoa"),
    "IE": ("irl", "ireland", "eire", "republicofireland"), "DE": ("deu", "germany", "deutschland"),
    "FR": ("fra", "france"), "ES": ("esp", "spain", "espana"), "IT": ("ita", "italy", "italia"),
    "NL": ("nld", "netherlands", "thenetherlands", "holland", "nederland"),
    "BE": ("bel", "belgium"), "CH": ("che", "switzerland", "schweiz", "suisse"),
    "AT": ("aut", "austria", "osterreich"), "SE": ("swe", "sweden", "sverige"),
    "NO": ("nor", "norway", "norge"), "DK": ("dnk", "denmark", "danmark"),
    "FI": ("fin", "finland", "suomi"), "PL": ("pol", "poland", "polska"),
    "PT": ("prt", "portugal"), "MX": ("mex", "mexico"), "BR": ("bra", "brazil", "brasil"),
    "AR": ("arg", "argentina"), "IN": ("ind", "india"), "CN": ("chn", "china"),
    "JP": ("jpn", "japan"), "KR": ("kor", "southkorea", "korea", "republicofkorea"),
    "SG": ("sgp", "singapore"), "ZA": ("zaf", "southafrica"), "PH": ("phl", "philippines"),
    "HK": ("hkg", "hongkong"), "IL": ("isr", "israel"), "AE": ("are", "uae", "unitedarabemirates"),
    "GR": ("grc", "greece"), "PR": ("pri", "puertorico"),
    "CZ": ("cze", "czechia", "czechrepublic"),
}  # fmt: skip
# Titles and generational suffixes: no part of the name itself.
NAME_AFFIXES = ("mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "jr", "sr", "ii", "iii", "iv")
# (domain, canonical domain, dots ignored, +tags dropped). Yahoo has no +tags (its disposable
# "base-keyword" addresses are aliases whose base is not the account name, so the '-' part is
# kept), but '+' cannot occur in a Yahoo name: what follows it is no part of the mailbox, and
# dropping it loses nothing. me.com and mac.com are older names of the same iCloud accounts;
# Proton and Yandex alias theirs likewise. Outlook, iCloud, Proton, Fastmail deliver +tags.
EMAIL_PROVIDERS: tuple[tuple[str, str, bool, bool], ...] = (
    ("gmail.com", "gmail.com", True, True), ("googlemail.com", "gmail.com", True, True),
    ("outlook.com", "outlook.com", False, True), ("hotmail.com", "hotmail.com", False, True),
    ("live.com", "live.com", False, True), ("msn.com", "msn.com", False, True),
    ("icloud.com", "icloud.com", False, True), ("me.com", "icloud.com", False, True),
    ("mac.com", "icloud.com", False, True), ("yahoo.com", "yahoo.com", False, True),
    ("proton.me", "proton.me", False, True), ("protonmail.com", "proton.me", False, True),
    ("protonmail.ch", "proton.me", False, True), ("pm.me", "proton.me", False, True),
    ("fastmail.com", "fastmail.com", False, True), ("fastmail.fm", "fastmail.fm", False, True),
    ("yandex.ru", "yandex.ru", False, True), ("yandex.com", "yandex.ru", False, True),
    ("ya.ru", "yandex.ru", False, True),
)  # fmt: skip
PLACEHOLDER_EMAILS = (
    "test@test.com", "noemail@example.com", "none@none.com", "na@na.com", "no@email.com",
    "noemail@noemail.com", "no@no.com", "none@example.com", "test@example.com",
    "email@email.com", "noreply@noreply.com", "donotreply@donotreply.com",
    "nobody@nowhere.com", "unknown@unknown.com", "declined@declined.com",
    "refused@refused.com", "noname@noname.com", "abc@abc.com", "asdf@asdf.com",
    "customer@customer.com", "noemail@gmail.com", "none@gmail.com", "test@gmail.com",
)  # fmt: skip
PLACEHOLDER_LOCAL_PARTS = (
    "test", "testing", "tester", "none", "noemail", "nomail", "noaddress", "no", "na", "nil",
    "null", "nobody", "noone", "noreply", "donotreply", "asdf", "asdfgh", "qwerty", "xxx",
    "unknown", "email", "mail", "fake", "dummy", "sample", "example", "abc", "abc123", "123",
    "1234", "12345", "refused", "declined", "decline", "noname", "notprovided", "notgiven",
)  # fmt: skip
# example.*: reserved by RFC 2606, no mailbox exists; test/none/noemail/nomail.com: typed to get
# past a form; the rest are public disposable inboxes anyone can read, so they identify nobody.
# email.com is left out on purpose: it is a real provider (mail.com) with real customers.
PLACEHOLDER_DOMAINS = (
    "example.com", "example.org", "example.net", "test.com", "none.com", "noemail.com",
    "nomail.com", "mailinator.com", "guerrillamail.com", "sharklasers.com", "10minutemail.com",
    "yopmail.com", "trashmail.com", "temp-mail.org", "dispostable.com", "fakeinbox.com",
)  # fmt: skip
# Never a person's own address: unspecified, loopback, broadcast; public DNS resolvers that
# misconfigured proxies log in place of the client.
BLOCKED_IPS = ("0.0.0.0", "127.0.0.1", "255.255.255.255", "::", "::1", "8.8.8.8")
# Private, shared (CGNAT), loopback, link-local, documentation, benchmarking, multicast, reserved.
RESERVED_IPV4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)  # fmt: skip
# Link-local fe80::/10, unique-local fc00::/7, multicast ff00::/8, documentation 2001:db8::/32.
RESERVED_IPV6 = r"(?:fe[89ab]|f[cd]|ff)[0-9a-f]*:.*|2001:0*db8:.*"
# Dates forms default to (epochs of Unix, Excel, SQL Server, "no date" fillers), not births.
PLACEHOLDER_DATES = (
    "0001-01-01", "1753-01-01", "1800-01-01", "1899-12-30", "1899-12-31", "1900-01-01",
    "1901-01-01", "1970-01-01", "1111-11-11", "9999-12-31",
)  # fmt: skip
# A shared id: unknown, the all-zero advertising id, Android 2.2's id shared by many phones.
PLACEHOLDER_DEVICES = (
    "unknown", "none", "null", "nil", "undefined", "n/a", "na", "(null)", "default",
    "9774d56d682e549c", "ffffffff-ffff-ffff-ffff-ffffffffffff",
)  # fmt: skip
PLACEHOLDER_PHONE_DIGITS = ("1234567890", "0123456789", "9876543210", "5551234567", "1234567")
RESERVED_EMAIL_TLDS = ("test", "example", "invalid", "localhost")


# Formal name -> the variants its bearers also write (each variant under one formal name only).
FORMAL_VARIANTS: dict[str, tuple[str, ...]] = {
    # Men
    "abraham": ("abe",),
    "albert": ("al", "bert", "bertie", "albie"),
    "alexander": ("alec", "alek", "xander"),
    "alfred": ("alf", "alfie"),
    "alan": ("allan", "allen"),
    "andrew": ("andy", "drew"),
    "anthony": ("tony", "antony", "anthoney"),
    "archibald": ("archie",),
    "arthur": ("art", "artie", "arty"),
    "bartholomew": ("bart",),
    "benjamin": ("ben", "benny", "benji", "benjie", "benj"),
    "bernard": ("bernie", "barney"),
    "bradley": ("brad",),
    "brian": ("bryan", "brien"),
    "calvin": ("cal",),
    "cameron": ("cam",),
    "charles": ("chuck", "chas", "chaz", "chuckie"),
    "chester": ("chet",),
    "christopher": ("topher", "kristopher", "cristopher", "christoper"),
    "clifford": ("cliff",),
    "curtis": ("curt",),
    "cyrus": ("cy",),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davey", "davy", "davie"),
    "dennis": ("denny", "denis"),
    "desmond": ("des",),
    "dominic": ("dom", "dominick"),
    "donald": ("don", "donnie", "donny"),
    "douglas": ("doug", "dougie", "douglass"),
    "edward": ("ed", "eddie", "eddy", "ned"),
    "emmanuel": ("manny", "emanuel"),
    "ernest": ("ernie",),
    "eugene": ("gene",),
    "ezekiel": ("zeke",),
    "frederick": ("fred", "freddie", "freddy", "frederic", "fredrick", "fredric"),
    "gabriel": ("gabe",),
    "george": ("geo",),
    "gerald": ("jerry",),
    "gilbert": ("gil",),
    "gordon": ("gordy",),
    "gregory": ("greg", "gregg"),
    "henry": ("hank",),
    "herbert": ("herb", "herbie"),
    "howard": ("howie",),
    "irving": ("irv",),
    "jacob": ("jake", "jakob"),
    "james": ("jim", "jimmy", "jimmie", "jimbo", "jas"),
    "jeffrey": ("jeff", "jeffery", "jeffry", "geoffrey", "geoff"),
    "john": ("johnny", "johnnie", "jno"),
    "jonathan": ("jon", "johnathan", "jonathon", "johnathon"),
    "joseph": ("joe", "joey"),
    "joshua": ("josh",),
    "kenneth": ("ken", "kenny", "kennie"),
    "lawrence": ("larry", "laurence", "lawrance"),
    "leonard": ("len", "lenny", "lennie"),
    "louis": ("louie",),
    "mark": ("marc",),
    "martin": ("marty",),
    "marvin": ("marv",),
    "matthew": ("matt", "matty", "mathew"),
    "michael": ("mike", "mikey", "mick", "mickey", "micky", "micheal"),
    "mitchell": ("mitch",),
    "montgomery": ("monty",),
    "mortimer": ("mort", "morty"),
    "nathan": ("nate",),
    "nicholas": ("nick", "nicolas", "nickolas", "nikolas"),
    "norman": ("norm",),
    "patrick": ("paddy",),
    "peter": ("pete", "petey"),
    "philip": ("phil", "phillip", "philipp"),
    "randall": ("randy", "randal"),
    "raymond": ("ray",),
    "reginald": ("reg", "reggie"),
    "richard": ("rick", "ricky", "rich", "richie", "dick", "dickie"),
    "robert": ("rob", "robbie", "robby", "bob", "bobby", "robt"),
    "rodney": ("rod",),
    "roderick": ("roddy",),
    "ronald": ("ron", "ronnie", "ronny"),
    "rudolph": ("rudy", "rudi", "rudolf"),
    "russell": ("russ", "rusty"),
    "salvatore": ("sal",),
    "sean": ("shawn", "shaun"),
    "sebastian": ("seb",),
    "sidney": ("sid", "syd"),
    "solomon": ("sol",),
    "stanley": ("stan",),
    "steven": ("steve", "stephen", "stevan"),
    "sylvester": ("sly",),
    "terence": ("terrence", "terrance"),
    "thaddeus": ("thad",),
    "theodore": ("theo",),
    "thomas": ("tom", "tommy", "tommie", "thom", "thos"),
    "timothy": ("tim", "timmy"),
    "tobias": ("toby",),
    "vernon": ("vern",),
    "vincent": ("vince", "vinny", "vinnie"),
    "walter": ("walt", "wally"),
    "wesley": ("wes",),
    "wilfred": ("wilf",),
    "william": ("bill", "billy", "will", "willy", "willie", "wm"),
    "zachary": ("zach", "zack", "zak", "zac", "zachery", "zackary"),
    # Women
    "abigail": ("abby", "abbie", "abbey"),
    "alexandra": ("lexi", "lexie"),
    "allison": ("alison", "allyson"),
    "amanda": ("mandy", "mandi", "manda"),
    "andrea": ("andi",),
    "angela": ("angie",),
    "ann": ("anne", "annie"),
    "antonia": ("toni",),
    "barbara": ("barb", "barbie", "babs", "barbra"),
    "beatrice": ("bea", "trixie"),
    "cassandra": ("cassie", "cass"),
    "catherine": ("cathy", "cathie", "cath", "cat", "catharine"),
    "cecilia": ("cece",),
    "charlotte": ("lottie",),
    "christina": ("tina", "christy", "christie"),
    "christine": ("chrissy", "chrissie"),
    "constance": ("connie",),
    "cynthia": ("cindy", "cyndi", "cindi"),
    "danielle": ("dani", "danni"),
    "deborah": ("debbie", "debby", "deb", "debra", "debi"),
    "dorothy": ("dot", "dottie", "dotty", "dolly"),
    "eleanor": ("ellie", "nell", "nellie", "elinor"),
    "elizabeth": (
        "liz",
        "lizzie",
        "lizzy",
        "liza",
        "eliza",
        "beth",
        "betty",
        "bette",
        "betsy",
        "betsey",
        "bess",
        "bessie",
        "libby",
        "elisabeth",
    ),
    "emily": ("em",),
    "evelyn": ("evie",),
    "florence": ("flo", "flossie"),
    "frances": ("frannie",),
    "gabrielle": ("gabby", "gabbie", "gabi"),
    "geraldine": ("geri",),
    "gertrude": ("gertie", "trudy", "trudie"),
    "gwendolyn": ("gwen",),
    "harriet": ("hattie", "hatty"),
    "jacqueline": ("jackie", "jacquie", "jacqui"),
    "jennifer": ("jen", "jenn", "jenny", "jenni", "jennie"),
    "jessica": ("jessi",),
    "josephine": ("josie",),
    "judith": ("judy", "judi", "judie"),
    "katherine": (
        "kate",
        "kathy",
        "katie",
        "katy",
        "kat",
        "kathryn",
        "katharine",
        "kathrine",
        "kitty",
    ),
    "kimberly": ("kim", "kimmy", "kimberley", "kimberlee"),
    "kristen": ("kristin",),
    "madison": ("maddie", "maddy"),
    "margaret": ("maggie", "peggy", "peg", "meg", "madge", "marge", "margie"),
    "martha": ("mattie",),
    "matilda": ("tilly", "tillie"),
    "melissa": ("missy", "lissa"),
    "mildred": ("millie", "milly"),
    "nicole": ("nikki", "nicki", "niki"),
    "olivia": ("liv", "livvy"),
    "pamela": ("pam", "pammy", "pammie"),
    "patricia": ("patty", "pattie", "patti", "patsy", "trish", "trisha", "tricia"),
    "penelope": ("penny",),
    "philippa": ("pippa",),
    "priscilla": ("cilla",),
    "rebecca": ("becky", "becca", "becki"),
    "roberta": ("bobbie",),
    "samantha": ("sammie", "sammi"),
    "sandra": ("sandy", "sandi"),
    "sarah": ("sara", "sally"),
    "stephanie": ("steph", "steffi"),
    "susan": ("sue", "suzy", "susie", "suzie"),
    "theresa": ("teresa", "tess", "tessie", "terri", "teri"),
    "valerie": ("val",),
    "victoria": ("vicky", "vicki", "vickie", "vikki", "tori", "tory"),
    "virginia": ("ginny",),
    "vivian": ("viv",),
    "winifred": ("winnie",),
}

# Nicknames two formal names commonly share (mostly a man's and a woman's) -> those names.
SHARED: dict[str, tuple[str, ...]] = {
    "alex": ("alexander", "alexandra"),
    "charlie": ("charles", "charlotte"),
    "charley": ("charles", "charlotte"),
    "chris": ("christian", "christina", "christine", "christopher"),
    "kris": ("christopher", "kristen"),
    "fran": ("frances", "francis"),
    "frankie": ("frances", "francis"),
    "gerry": ("gerald", "geraldine"),
    "jess": ("jesse", "jessica"),
    "jessie": ("jesse", "jessica"),
    "lou": ("louis", "louise"),
    "mel": ("melanie", "melissa", "melvin"),
    "nat": ("natalie", "nathaniel"),
    "nicky": ("nicholas", "nicole"),
    "ollie": ("oliver", "olivia"),
    "pat": ("patricia", "patrick"),
    "sam": ("samantha", "samuel"),
    "sammy": ("samantha", "samuel"),
    "stevie": ("stephanie", "steven"),
    "ted": ("edward", "theodore"),
    "teddy": ("edward", "theodore"),
    "terry": ("terence", "theresa"),
    "vic": ("victor", "victoria"),
}


@cache
def nickname_pairs() -> tuple[tuple[str, str], ...]:
    """(variant, canonical form) for every listed variant, checked against the two rules."""
    pairs: dict[str, str] = {}
    formal = set(FORMAL_VARIANTS)
    for name, variants in FORMAL_VARIANTS.items():
        for variant in variants:
            if variant in pairs or variant in formal:
                raise ValueError(f"given-name variant {variant!r} is listed twice or is formal")
            pairs[variant] = name
    for nickname, names in SHARED.items():
        if nickname in pairs or nickname in formal:
            raise ValueError(f"shared nickname {nickname!r} is also a single name's variant")
        pairs[nickname] = "|".join(sorted(names))
    return tuple(sorted(pairs.items()))
