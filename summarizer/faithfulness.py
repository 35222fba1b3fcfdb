"""Does the dialogue support what the summary says? A risk and a support score per sentence, and
the spans to underline.

`check(dialogue, summary)` reads the summary sentence by sentence and gathers lexical evidence
against each sentence (`Sentence.features`, each 0 when absent):

- unsupported spans: a `#PersonN#` tag the dialogue does not have or a clause whose subject is a
  speaker who did not say what the clause is about (`speaker`), a capitalised word it never
  writes (`name`), a value it does not give (`number`, `time`, `date`, `amount`: "five" and "5",
  "$20" and "20 dollars" are one value), a negated clause its closest sentence does not negate
  (`negation`), a content word whose Porter stem it lacks (`word`; the verbs summaries are
  written in, "tells", "discussing", never count);
- who did what: how much better another speaker's turns explain a clause's words than its
  subject's; one speaker on both sides of "tells" ("Mark tells #Person1#" when the dialogue calls
  #Person1# Mark); a bystander telling;
- garble: words repeated close together, chained possessives of speakers.

A logistic regression with non-negative weights (summarizer/faithfulness_model.json, fitted by
summarizer/faithfulness_fit.py on real errors read by hand, assets/faithfulness, and on
corrupted train references) turns them into the sentence's risk of being wrong. Support is
1 - risk rescaled so that a sentence with no evidence has support 1; a summary's support is the
mean over its sentences pulled towards its worst one. Spans are shown only in sentences whose
risk is over the model's threshold (the lowest at which at most 1 correct sentence in 20 is
underlined); a risky sentence with no single span to blame is underlined whole (`sentence`).

Everything is lexical: CPU, no model run, about a millisecond per summary. It cannot see a
paraphrase that changes meaning with the dialogue's own words, so it is a reading aid, not a
verdict. docs/faithfulness.md has its measured precision and recall.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

PARTICULARS = ("name", "number", "time", "date", "amount")  # what `evaluate` counts per model
KINDS = ("name", "number", "time", "date", "amount", "word", "speaker", "negation", "sentence")

_TOKEN = re.compile(
    r"#\s?[A-Za-z]+\s?\d*\s?#(?:'s)?"                       # #Person1#, #Person1#'s
    r"|[$£€]\s?\d+(?:[.,]\d+)*"                               # $20, € 5.50
    r"|\d{1,2}:\d{2}(?:\s?[ap]\.?m\.?)?"                      # 3:30, 10:15pm
    r"|\d+(?:[.,]\d+)*(?:st|nd|rd|th|s|%|am|pm|k)?"           # 20, 1,000, 3rd, 1990s, 5pm
    r"|[^\W\d_](?:[^\W\d_]|['’][^\W\d_]|-[^\W\d_])*",         # words, don't, well-known, Zoë
    re.IGNORECASE)
# A sentence ends at . ! ? or a line break, but not after a title or an initial ("Ms. Dawson",
# "L. A.", "Bus No. 713") or inside a decimal ("$3.50").
_SENTENCE = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Prof|Jr|Sr|Mt|No|vs|etc|e\.g|i\.e|a\.m|p\.m|[A-Z])\.(?=\s|[A-Z]\.)"
                       r"|\d\.\d|[^.!?\n])+(?:[.!?]+|$)")
_PERSON_TAG = re.compile(r"^#\s?[A-Za-z]+\s?\d*\s?#")

_STOPWORDS = frozenset("""a an the and or but if then so as of at by for with about against between into
    through during before after above below to from up down in out on off over under again further once
    here there when where why how all any both each few more most other some such only own same than
    too very s t can will just don should now i me my myself we our ours ourselves you your yours
    yourself yourselves he him his himself she her hers herself it its itself they them their theirs
    themselves what which who whom this that these those am is are was were be been being have has had
    having do does did doing would could may might must shall also because while until whether
    'll 're 've 'd 's n't let lets get gets got getting go goes going went gone make makes made come
    comes came one ones thing things something anything nothing everything someone anyone everyone
    way lot lots really well yes yeah oh ok okay please hi hello bye thanks thank much many still even
    back new good great sure right like""".split())
# The vocabulary summaries are written in: reporting verbs and framing words, never evidence of
# invention on their own.
_SUMMARY_WORDS = frozenset("""tell tells told telling ask asks asked asking talk talks talked talking
    say says said saying agree agrees agreed agreeing want wants wanted wanting think thinks thought
    suggest suggests suggested suggestion explain explains explained introduce introduces introduced
    invite invites invited help helps helped decide decides decided plan plans planned offer offers
    offered advise advises advised recommend recommends recommended remind reminds reminded complain
    complains complained describe describes described discuss discusses discussed share shares shared
    persuade persuades persuaded refuse refuses refused accept accepts accepted apologize apologizes
    apologise apologises apologized thank thanks thanked inform informs informed mention mentions
    mentioned express expresses expressed hope hopes hoped need needs needed feel feels felt find finds
    found know knows knew learn learns learned show shows showed give gives gave take takes took try
    tries tried wonder wonders wondered answer answers answered reply replies replied confirm confirms
    confirmed conversation dialogue talk chat discussion call meeting person people other each else
    opinion idea ideas reason reasons advice information detail details situation problem problems
    happy glad sorry worried upset excited interested surprised disappointed satisfied unhappy angry
    later soon finally eventually first also then together instead both either neither
    interview interviews comfort comforts blame blames teach teaches greet greets congratulate
    congratulates praise praises criticize criticizes encourage encourages convince convinces console
    consoles arrange arranges report reports assist assists assistance decision decide
    introduce discuss""".split())
_REPORTING_VERBS = frozenset("""tells told asks asked says said suggests suggested advises advised
    invites invited reminds reminded recommends recommended persuades persuaded explains explained
    informs informed warns warned promises promised offers offered urges urged encourages
    encouraged""".split())
_NEGATIONS = frozenset("""not no never nobody nothing none nor neither cannot n't don't doesn't didn't
    won't wouldn't can't couldn't isn't aren't wasn't weren't haven't hasn't hadn't shouldn't mustn't
    dont doesnt didnt wont cant isnt arent wasnt werent unable refuse refuses refused""".split())
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                      "ninety": 90, "hundred": 100, "thousand": 1000, "million": 1000000, "dozen": 12,
                      "half": 0.5, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
                      "twice": 2, "once": 1, "double": 2, "noon": 12, "midnight": 12})
_ORDINALS = {"first", "second", "third", "fourth", "fifth"}  # also plain words: checked as numbers only with a digit form
_DATE_WORDS = frozenset("""monday tuesday wednesday thursday friday saturday sunday weekend january february
    march april june july august september october november december jan feb mar apr jun jul aug
    sep sept oct nov dec tomorrow yesterday tonight today""".split())
_DATE_ALIASES = {"jan": "january", "feb": "february", "mar": "march", "apr": "april", "jun": "june",
                 "jul": "july", "aug": "august", "sep": "september", "sept": "september",
                 "oct": "october", "nov": "november", "dec": "december"}
# Subject pronouns only: in "can you book me a table" the booker is "you", not "me".
_FIRST_PERSON = frozenset("i we".split())
_SECOND_PERSON = frozenset("you".split())
_PRONOUN_REACH = 6  # words between a pronoun and the word it makes someone's
_CURRENCY_WORDS = frozenset("dollar dollars bucks buck pound pounds euro euros yuan cents cent rmb usd".split())
_TITLES = frozenset("mr mrs ms miss dr prof professor sir madam".split())
# Who a name in a turn is: "this is Monica" / "I'm Dave" name the speaker; "Steven, I need your
# help" / "thanks, Maggie." address the other one (in a two-person dialogue).
_TITLE = r"(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof|Professor)\.?\s+)?"
_SELF_NAMED = re.compile(r"\b(?:this is|I'm|I am|my name is|my name's|it's)\s+" + _TITLE + r"([A-Z][a-z]+)")
_ADDRESSED = re.compile(r"(?:^|[,.!?]\s+|\b(?i:hi|hello|hey|thanks|thank you|dear|morning|evening|sorry|right|well|oh)[,!]?\s+)"
                        + _TITLE + r"([A-Z][a-z]+)(?=\s*(?:[,.!?]|$))")
_NOT_NAMES = frozenset("""i yes no ok okay oh well sir madam mom mum dad honey dear darling sweetie man
    hi hello hey thanks sorry please good great sure right really what why how who look wow""".split())


@dataclass(frozen=True)
class Span:
    text: str
    start: int  # offsets into the whole summary
    end: int
    kind: str

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "kind": self.kind}


@dataclass
class Sentence:
    text: str
    start: int
    end: int
    support: float
    unsupported: list[Span] = field(default_factory=list)  # the spans shown: only in a risky sentence
    risk: float = 0.0  # the calibrated chance that the sentence is wrong
    candidates: list[Span] = field(default_factory=list, repr=False)  # every span found, shown or not
    features: dict[str, float] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end,
                "support": round(self.support, 4), "unsupported": [s.to_dict() for s in self.unsupported]}


@dataclass
class Report:
    support: float
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def unsupported(self) -> list[Span]:
        return [span for sentence in self.sentences for span in sentence.unsupported]

    def has_unsupported(self, *kinds: str) -> bool:
        return any(span.kind in kinds for span in self.unsupported)

    def to_dict(self) -> dict:
        return {"support": round(self.support, 4), "unsupported": [s.to_dict() for s in self.unsupported],
                "sentences": [s.to_dict() for s in self.sentences]}


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem import PorterStemmer
    return PorterStemmer()


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    return _stemmer().stem(word)


def _canonical_tag(token: str) -> str:
    """`#Person1#'s`, `# Person 1 #` -> `#Person1#`."""
    match = _PERSON_TAG.match(token)
    return re.sub(r"\s", "", match.group(0)) if match else token


def _turns(dialogue: str, parsed=None) -> list[tuple[str | None, str]]:
    """The dialogue's turns as (speaker, text), read by the one chat parser every path uses."""
    if parsed is None:
        from .speakers import parse
        parsed = parse(dialogue)
    return [(_canonical_tag(t.speaker) if t.speaker else None, t.text) for t in parsed.turns]


def _number_value(token: str) -> float | None:
    text = token.lower().strip("$£€ ").replace(",", "")
    text = re.sub(r"(st|nd|rd|th|s|%|k)$", "", text)
    try:
        return float(text)
    except ValueError:
        return _NUMBER_WORDS.get(token.lower())


def _is_numeric(token: str) -> bool:
    return bool(re.match(r"^[$£€]?\s?\d", token))


def _clock(token: str) -> tuple[int, int]:
    """3:30, 15:30 -> (3, 30): the time on a 12-hour clock."""
    hours, minutes = re.match(r"(\d{1,2}):(\d{2})", token).groups()
    return int(hours) % 12, int(minutes)


def _time_values(token: str) -> set[float]:
    """3:30 -> {3, 30, 15, 15.5}: hours on both clocks, minutes, and the clock time itself."""
    hours, minutes = re.match(r"(\d{1,2}):(\d{2})", token).groups()
    h, m = int(hours), int(minutes)
    values = {float(h), float(h % 12 or 12), float(h + 12 if h < 12 else h)}
    if m:
        values.add(float(m))
    return values


class _Dialogue:
    """What the dialogue says, indexed once for every summary sentence checked against it."""

    def __init__(self, dialogue: str, parsed=None):
        self.turns = _turns(dialogue, parsed)
        self.speakers: list[str] = []
        for speaker, _ in self.turns:
            if speaker and speaker not in self.speakers:
                self.speakers.append(speaker)
        self.speaker_words = {_stem(s) for s in self.speakers if not s.startswith("#")}
        self.stems: Counter = Counter()
        self.by_speaker: dict[str, Counter] = {s: Counter() for s in self.speakers}
        # Who a word is about: "I'll pay" in #Person1#'s turn makes #Person1# the payer, "you pay"
        # the other speaker. The nearest pronoun a few words before decides.
        self.by_actor: dict[str, Counter] = {s: Counter() for s in self.speakers}
        self.lower_words: set[str] = set()
        self.numbers: set[float] = set()
        self.dates: set[str] = set()
        self.clock_times: set[tuple[int, int]] = set()  # (hour on a 12-hour clock, minutes)
        self.turn_stems: list[tuple[str | None, set[str], bool]] = []
        self.questions: set[int] = set()  # positions in turn_stems of sentences that ask
        for speaker, text in self.turns:
            # One entry per sentence of a turn: a negation belongs to the sentence it is in.
            for piece in _SENTENCE.findall(text):
                stems = set()
                negated = False
                tokens = [m.group(0) for m in _TOKEN.finditer(piece)]
                person, person_at = None, -100
                for index, token in enumerate(tokens):
                    lower = token.lower().replace("’", "'")
                    if lower.split("'")[0] in _FIRST_PERSON:
                        person, person_at = 1, index
                    elif lower.split("'")[0] in _SECOND_PERSON:
                        person, person_at = 2, index
                    self.lower_words.add(lower)
                    if lower in _NEGATIONS or lower.endswith("n't"):
                        negated = True
                    if re.match(r"^\d{1,2}:\d{2}", token):
                        self.numbers |= _time_values(token)
                        self.clock_times.add(_clock(token))
                        continue
                    value = _number_value(token)
                    if value is not None:
                        self.numbers.add(value)
                        if value >= 1000 and value % 1000 == 0:
                            self.numbers.add(value / 1000)  # "5,000" and "five thousand"
                        if lower in ("thousand", "hundred", "million") and index:
                            previous = _number_value(tokens[index - 1])
                            if previous is not None:
                                self.numbers.add(previous * value)
                    if lower in _DATE_WORDS:
                        self.dates.add(_DATE_ALIASES.get(lower, lower))
                    if token.startswith("#"):
                        continue
                    stem = _stem(token)
                    stems.add(stem)
                    self.stems[stem] += 1
                    if speaker in self.by_speaker:
                        self.by_speaker[speaker][stem] += 1
                        if index - person_at <= _PRONOUN_REACH and lower not in _STOPWORDS:
                            others = [o for o in self.speakers if o != speaker]
                            if person == 1:
                                self.by_actor[speaker][stem] += 1
                            elif others:
                                for other in others:
                                    self.by_actor[other][stem] += 1 / len(others)
                if piece.rstrip().endswith("?"):
                    self.questions.add(len(self.turn_stems))
                self.turn_stems.append((speaker, stems, negated))
        self.text_lower = dialogue.lower()
        totals = {s: sum(c.values()) for s, c in self.by_speaker.items()}
        everyone = sum(totals.values()) or 1
        self.share = {s: totals[s] / everyone for s in self.speakers}
        self.plain_words = {w.lower() for w in re.findall(r"#\w+#|\w+(?:'\w+)?", dialogue)}
        self.aliases = _aliases(self.turns, self.speakers)

    def supports_word(self, token: str) -> bool:
        lower = token.lower().replace("’", "'")
        return lower in self.lower_words or _stem(token) in self.stems

    def supports_number(self, token: str, following: str) -> tuple[bool, str]:
        """(supported, kind) of a numeric token; `following` is the next word (for "20 dollars")."""
        if re.match(r"^\d{1,2}:\d{2}", token):
            # The same clock time ("15:30" is "3:30"), or a whole hour the dialogue names ("at five").
            hour, minutes = _clock(token)
            return ((hour, minutes) in self.clock_times
                    or (minutes == 0 and bool({float(hour), float(hour + 12)} & self.numbers))), "time"
        kind = "amount" if token[0] in "$£€" or following.lower() in _CURRENCY_WORDS else "number"
        if re.search(r"\d(am|pm)$", token.lower()):
            kind = "time"
        value = _number_value(token)
        if value is None:
            return True, kind
        if 1900 <= value <= 2100:  # a year is a date
            kind = "date"
        return value in self.numbers or token.lower() in self.text_lower, kind


def _aliases(turns: list[tuple[str | None, str]], speakers: list[str]) -> dict[str, str]:
    """Names the dialogue gives its speakers: name -> speaker, by majority over the turns."""
    votes: dict[str, Counter] = {}
    for speaker, text in turns:
        if speaker not in speakers:
            continue
        others = [s for s in speakers if s != speaker]
        for name in _SELF_NAMED.findall(text):
            votes.setdefault(name, Counter())[speaker] += 1
        if len(others) == 1:
            for name in _ADDRESSED.findall(text):
                votes.setdefault(name, Counter())[others[0]] += 1
    return {name: count.most_common(1)[0][0] for name, count in votes.items()
            if name.lower() not in _NOT_NAMES and name not in speakers}


def _subject_speaker(tokens: list[tuple[str, int, int]], speakers: dict[str, str]) -> int | None:
    """Index of the clause's subject when it is a speaker: the clause's first word, or the first after
    an opening conjunction ("and #Person2# pays")."""
    for index, (text, _, _) in enumerate(tokens[:3]):
        key = _speaker_key(text, speakers)
        if key is not None:
            return index
        if text.lower() not in ("and", "but", "so", "then", "while", "when", "after", "because", "finally",
                                *_TITLES):
            return None
    return None


def _speaker_key(token: str, speakers: dict[str, str]) -> str | None:
    if token.startswith("#"):
        return _canonical_tag(token)
    word = re.sub(r"['’]s$", "", token)
    return speakers.get(word)


def _clauses(tokens: list[tuple[str, int, int]]) -> list[list[tuple[str, int, int]]]:
    """A sentence's tokens cut where a new speaker subject starts a clause ("X pays and Y leaves")."""
    clauses, current = [], []
    for token in tokens:
        if current and token[0].lower() in ("and", "but", "so", "while", "then", "because", "when"):
            clauses.append(current)
            current = []
        current.append(token)
    if current:
        clauses.append(current)
    return clauses


def _attribution(dialogue: _Dialogue, subject: str, stems: list[str],
                 reporting: bool) -> tuple[float, float, str | None]:
    """(subject's support, best other speaker's support, that speaker) of a clause's content stems.

    A speaker's support is the mean over the stems of the share of the stem's occurrences that
    are theirs, smoothed towards the speaker's share of all words (a stem everyone uses says little
    about who). After a reporting verb ("X asks Y to pay") the subject is who said the words;
    otherwise ("X will pay") it is also who the words are about (`by_actor`)."""
    if subject not in dialogue.by_speaker or len(dialogue.speakers) < 2:
        return 1.0, 0.0, None
    informative = [s for s in stems if dialogue.stems[s]]
    if not informative:
        return 1.0, 0.0, None

    def support(speaker: str) -> float:
        prior = dialogue.share[speaker]
        total = 0.0
        for stem in informative:
            said = (dialogue.by_speaker[speaker][stem] + prior) / (dialogue.stems[stem] + 1)
            if reporting:
                total += said
                continue
            actors = sum(c[stem] for c in dialogue.by_actor.values())
            about = (dialogue.by_actor[speaker][stem] + prior) / (actors + 1)
            total += (said + about) / 2
        return total / len(informative)

    own = support(subject)
    other, best = max((support(s), s) for s in dialogue.speakers if s != subject)
    return own, other, best


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, without the spaces around it: the units the check
    scores and the labelled set (assets/faithfulness) labels."""
    spans = []
    for match in _SENTENCE.finditer(text):
        body = match.group(0)
        if body.strip():
            spans.append((match.start() + len(body) - len(body.lstrip()),
                          match.end() - (len(body) - len(body.rstrip()))))
    return spans


def check(dialogue: str, summary: str, parsed=None) -> Report:
    """The summary's unsupported spans and its support in [0, 1] against the dialogue.

    `parsed`: the dialogue as `speakers.parse` already read it, so that a caller holding it does
    not parse the chat twice."""
    if not summary or not summary.strip():
        return Report(support=1.0)
    index = _Dialogue(dialogue or "", parsed)
    speaker_names = {s: s for s in index.speakers if not s.startswith("#")}
    for name in list(speaker_names):  # "Priya Raman" is also "Priya"
        for part in name.split():
            speaker_names.setdefault(part, name)
    sentences = [_check_sentence(index, speaker_names, summary, begin, finish)
                 for begin, finish in sentence_spans(summary)]
    if not sentences:
        return Report(support=1.0)
    if not index.turns:  # an empty dialogue supports nothing
        return Report(support=0.0, sentences=[replace(s, support=0.0) for s in sentences])
    mean = sum(s.support for s in sentences) / len(sentences)
    worst = min(s.support for s in sentences)
    return Report(support=(mean + worst) / 2, sentences=sentences)


def _check_sentence(index: _Dialogue, speaker_names: dict[str, str], summary: str,
                    start: int, end: int) -> Sentence:
    text = summary[start:end]
    tokens = [(m.group(0), start + m.start(), start + m.end()) for m in _TOKEN.finditer(text)]
    candidates, checked, content_stems = _word_spans(index, speaker_names, tokens)
    # A well-formed tag the dialogue does not have ("#Person3#"); a malformed one ("#1#",
    # "#Person#2#") is a slip of the pen that still names the right speaker as often as not.
    tags = sum(span.kind == "speaker" and bool(re.fullmatch(r"#Person\d+#(?:'s)?", span.text)) for span in candidates)
    evidence: Counter = Counter()
    previous: list = []
    for clause in _clauses(tokens):
        # "#Person1# and #Person2# ...": the clause before is a bare speaker, so the subject is both.
        joint = len(previous) == 1 and _speaker_key(previous[0][0], speaker_names) is not None
        evidence.update(_check_clause(index, speaker_names, clause, tokens, content_stems, candidates, joint))
        previous = clause
    candidates.sort(key=lambda s: s.start)
    values = _features(index, text, tokens, candidates, checked)
    values.update(evidence, tag=float(tags))
    # A clear swap is far stronger evidence than a slight one: the square lets the model say so.
    values["swap_squared"] = values.get("swap", 0.0) ** 2 + values.get("swap_object", 0.0) ** 2
    model = _model()
    risk = model.risk(values)
    shown = []
    if risk >= model.threshold:
        # A risky sentence shows its spans; one whose evidence is no single word (a speaker on both
        # sides of "tells", a garbled run) is underlined whole.
        shown = [s for s in candidates if s.kind in model.kinds] or [Span(text, start, end, "sentence")]
    return Sentence(text=text, start=start, end=end, support=model.support(risk), unsupported=shown,
                    risk=risk, candidates=candidates, features=values)


def _word_spans(index: _Dialogue, speaker_names: dict[str, str], tokens):
    """The sentence's unsupported tokens (names, particulars, words, tags), how many tokens were
    checked, and the (position, stem) of its supported content words."""
    unsupported: list[Span] = []
    checked = 0
    content_stems: list[tuple[int, str]] = []
    opener = 0
    while opener < len(tokens) and tokens[opener][0].lower() in _STOPWORDS:
        opener += 1
    for position, (token, begin, finish) in enumerate(tokens):
        lower = token.lower().replace("’", "'")
        following = tokens[position + 1][0] if position + 1 < len(tokens) else ""
        if token.startswith("#"):
            checked += 3  # as the old support: a tag, particular or name weighs three words
            if _canonical_tag(token) not in index.speakers and _canonical_tag(token).lower() not in index.text_lower.replace(" ", ""):
                unsupported.append(Span(token, begin, finish, "speaker"))
            continue
        if _is_numeric(token) or (lower in _NUMBER_WORDS and lower not in _ORDINALS
                                  and lower not in ("once", "half", "double", "noon", "midnight")):
            ok, kind = index.supports_number(token, following)
            checked += 3
            if not ok:
                unsupported.append(Span(token, begin, finish, kind))
            continue
        if lower in _DATE_WORDS and lower not in ("today", "tomorrow", "tonight", "yesterday"):
            checked += 3
            if _DATE_ALIASES.get(lower, lower) not in index.dates:
                unsupported.append(Span(token, begin, finish, "date"))
            continue
        bare = re.sub(r"['’]s$", "", token)
        if bare in speaker_names:
            checked += 3
            continue
        if lower in _STOPWORDS or lower in _NEGATIONS or _is_summary_word(lower) or len(lower) < 2:
            continue
        capitalised = token[0].isupper() and position != opener
        checked += 3 if capitalised else 1
        if index.supports_word(bare):
            content_stems.append((position, _stem(bare)))
        elif not (capitalised and lower in index.lower_words):
            # An unsupported capitalised opener is a name too: summaries open with who
            # ("Mon calls Francis" for Monica).
            named = capitalised or (position == opener and token[0].isupper())
            unsupported.append(Span(token, begin, finish, "name" if named else "word"))
    return unsupported, checked, content_stems


@lru_cache(maxsize=1)
def _summary_stems() -> frozenset[str]:
    return frozenset(_stem(w) for w in _SUMMARY_WORDS)


def _is_summary_word(lower: str) -> bool:
    """A word of the summary genre in any form ("discussing", "introduced")."""
    return lower in _SUMMARY_WORDS or _stem(lower) in _summary_stems()


_PLAIN_WORD = re.compile(r"#\w+#|\w+(?:'\w+)?")  # the new-word baseline's words
_FIRST_SECOND = frozenset("i me my mine we us our you your yours".split())
_CHAIN = re.compile(r"(#\w+#|\b[A-Z]\w*)'s\s+#\w+#'s")
_DANGLING = frozenset("tells asks likes thinks is are says wants".split())


def _features(index: _Dialogue, text: str, tokens, candidates: list[Span], checked: int) -> dict[str, float]:
    """The lexical evidence of one sentence, each 0 when the sentence shows none of it."""
    words = [w.lower() for w in _PLAIN_WORD.findall(text)]
    kinds = Counter(span.kind for span in candidates)
    # The new-word share of the words that carry content: the summary's own framing ("tells",
    # "about") is new in every summary and says nothing.
    content = [re.sub(r"'s$", "", w) for w in words if not w.startswith("#") and not w[0].isdigit()
               and w not in _STOPWORDS and not _is_summary_word(w)]
    new = [w for w in content if w not in index.plain_words and not index.supports_word(w)]
    return {
        "new_words": len(new) / len(content) if content else 0.0,
        "word": kinds["word"] / checked if checked else 0.0,
        "name": float(kinds["name"]),
        "particular": float(sum(kinds[k] for k in ("number", "time", "date", "amount"))),
        "negation": float(kinds["negation"]),
        # A model that lost the thread repeats itself ("the company's company"), chains
        # possessives, copies a turn's "I" and "you", or stops short ("Brian tells.").
        "repeat": float(_near_repeats(tokens)),
        "chain": float(bool(_CHAIN.search(text))),
        "first_person": float(sum(w.split("'")[0] in _FIRST_SECOND for w in words)),
        "short": float(len(words) < 3 or (bool(words) and words[-1] in _DANGLING)),
    }


def _near_repeats(tokens, reach: int = 4) -> int:
    """Content words repeated within `reach` tokens ("the advantages of the advantages")."""
    seen: dict[str, int] = {}
    repeats = 0
    for position, (token, _, _) in enumerate(tokens):
        lower = token.lower()
        if token.startswith("#") or token[0].isupper() or lower in _STOPWORDS or len(lower) < 3:
            continue
        stem = _stem(lower)
        if stem in seen and position - seen[stem] <= reach:
            repeats += 1
        seen[stem] = position
    return repeats


_TOLD_SOMEONE = frozenset("""tells told asks asked calls called invites invited thanks thanked helps helped
    shows showed reminds reminded gives gave offers offered""".split())
_TELLING = frozenset("""tells told asks asked calls called says said explains explained invites invited
    thanks thanked helps helped shows showed reminds reminded gives gave offers offered""".split())


def _check_clause(index: _Dialogue, speaker_names: dict[str, str], clause, tokens, content_stems,
                  unsupported: list[Span], joint: bool = False) -> dict[str, float]:
    """Who-did-what and polarity of one clause: adds speaker and negation spans, and returns the
    evidence. `joint`: the clause's subject shares it with the clause before ("#Person1# and
    #Person2# talk"), so no one speaker is its subject."""
    first, last = clause[0][1], clause[-1][2]
    stems = [stem for position, stem in content_stems if first <= tokens[position][1] < last]
    found = {"swap": 0.0, "swap_object": 0.0, "swap_named": 0.0, "self_reference": 0.0, "bystander": 0.0}
    names, named = speaker_names, False
    subject_at = _subject_speaker(clause, speaker_names)
    if subject_at is None and not joint:
        # A name the dialogue gives a speaker ("Kate tells #Person1#"): weighed apart, as the
        # name-to-speaker reading can be wrong.
        names = index.aliases
        subject_at = _subject_speaker(clause, names)
        named = subject_at is not None
    if subject_at is not None and not joint:
        token, begin, finish = clause[subject_at]
        subject = _speaker_key(token, names)
        verb = clause[subject_at + 1][0].lower() if subject_at + 1 < len(clause) else ""
        objects = [_who(t, index, speaker_names) for t, _, _ in clause[subject_at + 2:subject_at + 4]]
        own, other, _ = _attribution(index, subject, stems, verb in _REPORTING_VERBS)
        if other - own > 0:
            # Scaled by how many words say so: one shared word is weak evidence of a swap.
            strength = (other - own) * min(1.0, len(stems) / 2) * 1.5
            # "X tells Y how to ..." may well use Y's words: weaker evidence, weighed apart.
            if any(o is not None and o != subject for o in objects):
                found["swap_object"] = strength
            elif named:
                found["swap_named"] = strength
            else:
                found["swap"] = strength
                if strength > 0.15:
                    unsupported.append(Span(token, begin, finish, "speaker"))
    elif subject_at is None:
        found["bystander"] = _bystander(index, clause, speaker_names)
    found["self_reference"] = _self_reference(index, clause, speaker_names)
    _check_negation(index, clause, stems, unsupported)
    return found


def _who(token: str, index: _Dialogue, speaker_names: dict[str, str]) -> str | None:
    """The speaker a summary token names: a tag, a chat name, or a name the dialogue gives a
    speaker ("Steven" when #Person1# says "Steven, I need your help")."""
    key = _speaker_key(token, speaker_names)
    return key if key is not None else index.aliases.get(re.sub(r"['’]s$", "", token))


def _self_reference(index: _Dialogue, clause, speaker_names: dict[str, str]) -> float:
    """1 when one speaker is on both sides of a telling verb: "Frank tells Frank", "Mark tells
    #Person1#" when Mark is #Person1#."""
    words = [t for t, _, _ in clause if t.lower().rstrip(".") not in _TITLES]
    for at in range(min(3, len(words) - 2)):
        subject = _who(words[at], index, speaker_names)
        if subject is not None:
            if words[at + 1].lower() in _TOLD_SOMEONE and _who(words[at + 2], index, speaker_names) == subject:
                return 1.0
            return 0.0
    return 0.0


def _bystander(index: _Dialogue, clause, speaker_names: dict[str, str]) -> float:
    """1 when the clause opens with someone the dialogue names who is not one of its speakers,
    telling or asking ("Mr. Jackson tells #Person1#" when Mr. Jackson is only talked about)."""
    words = [t for t, _, _ in clause[:4] if t.lower().rstrip(".") not in _TITLES]
    if len(words) < 2 or not words[0][:1].isupper() or words[0].startswith("#"):
        return 0.0
    name = re.sub(r"['’]s$", "", words[0])
    if (name in speaker_names or name in index.aliases or name.lower() not in index.lower_words
            or len(index.speakers) < 2):
        return 0.0
    return float(words[1].lower() in _TELLING)


def _check_negation(index: _Dialogue, clause, stems: list[str], unsupported: list[Span]) -> None:
    """A negated clause whose closest sentence in the dialogue is not negated gets a span."""
    negations = [t for t in clause if t[0].lower().replace("’", "'") in _NEGATIONS
                 or t[0].lower().endswith("n't")]
    if not stems or not negations:
        return
    clause_stems = set(stems)
    best_overlap, best_negated = 0, False
    sentences = index.turn_stems
    for at, (_, turn_stems, negated) in enumerate(sentences):
        overlap = len(clause_stems & turn_stems)
        # A question is answered in the next sentence: "Are you coming?" "I can't."
        answered_no = (overlap >= 2 and at in index.questions and at + 1 < len(sentences)
                       and sentences[at + 1][2])
        if overlap > best_overlap:
            best_overlap, best_negated = overlap, negated or answered_no
        elif overlap == best_overlap and negated:  # of equally close turns, any negated one will do
            best_negated = True
    if best_overlap and not best_negated:
        token, begin, finish = negations[0]
        unsupported.append(Span(token, begin, finish, "negation"))


MODEL_PATH = Path(__file__).with_name("faithfulness_model.json")


@dataclass(frozen=True)
class Model:
    """Logistic regression over a sentence's features (summarizer/faithfulness_fit.py fits it on
    the labelled real errors): the chance the sentence is wrong, and the risk from which the card
    underlines it. Coefficients are kept non-negative, so a sentence with no evidence (every
    feature 0) has the lowest risk and support 1."""
    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    kinds: frozenset[str]  # the span kinds worth showing in an underlined sentence

    def risk(self, values: dict[str, float]) -> float:
        z = self.intercept + sum(c * values.get(f, 0.0) for f, c in zip(self.features, self.coef))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def support(self, risk: float) -> float:
        floor = 1.0 / (1.0 + math.exp(-self.intercept))
        return max(0.0, min(1.0, (1.0 - risk) / (1.0 - floor)))

    @classmethod
    def from_dict(cls, data: dict) -> "Model":
        return cls(tuple(data["features"]), tuple(float(c) for c in data["coef"]), float(data["intercept"]),
                   float(data["threshold"]), frozenset(data["kinds"]))


@lru_cache(maxsize=1)
def _model() -> Model:
    return Model.from_dict(json.loads(MODEL_PATH.read_text(encoding="utf-8")))


def read_rows(path: str) -> list[dict]:
    """JSONL rows with `dialogue` and `summary` (strings) and an optional `id`, all checked first:
    a bad row stops the run with one line naming it, before anything is written."""
    import json

    from .errors import UserError, read_text_file
    text = read_text_file(path)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: expected a JSON object with dialogue and summary")
        for key in ("dialogue", "summary"):
            if not isinstance(row.get(key), str):
                what = "missing" if key not in row else f"not a string ({type(row[key]).__name__})"
                raise UserError(f"{path}:{number}: '{key}' is {what}")
        rows.append({"id": row.get("id", len(rows)), "dialogue": row["dialogue"], "summary": row["summary"]})
    if not rows:
        raise UserError(f"{path}: no rows (expected JSONL with dialogue and summary)")
    return rows


def check_rows(rows: list[dict]) -> list[dict]:
    """One output row per input row, in order: id, support, unsupported spans, sentences."""
    return [{"id": row["id"], **check(row["dialogue"], row["summary"]).to_dict()} for row in rows]
