"""Who says what in a pasted chat: turns with speakers, whatever the format, for every model.

`parse` reads the ways people paste conversations: `Name: text`, DialogSum's `#Person1#: text`,
Slack-style `[10:02] Name: text` and `10:02 Name: text`, WhatsApp exports (Android
`12/03/2024, 10:02 - Name: text`, iOS `[12/03/2024, 10:02:11] Name: text`), Discord's
`name — Today at 10:02` header over the message's lines, transcripts (`Speaker 1:`, `A:`), and a
turn that continues on the next line. Lowercase handles (`luke:`, `john_doe:`, `@amy:`, `dev.ops:`)
are speakers too when at least two lines carry them (one `note:` line in prose is not a chat).
Timestamps and system lines (encryption notices, `<Media omitted>`, joins and leaves) are dropped.

`prepare` turns the parse into what a model should read. A model trained on DialogSum
(registry `speakers = "dialogsum"`) has only ever seen `#Person1#`, `#Person2#`: names become
those tags, in order of first turn, also where a name is mentioned inside a turn (whole words,
case-sensitive), and `SpeakerMapping.restore` puts the names back into its summary. Other models
get the cleaned turns with the names kept. Text with no recognisable speakers is left as given,
with a note saying so.

Every pattern is compiled once, anchored, and free of nested quantifiers: a line is matched in
time linear in its length, so a 20,000-character line costs microseconds.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

STYLES = ("dialogsum", "names")
SPEAKER_MODES = ("auto", "keep")  # what summarize / the CLI / the Studio accept

NO_SPEAKERS_NOTE = ("No speakers recognised (no \"Name: text\" lines): the text was summarized as given.")

_INVISIBLE = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\ufeff\u2066\u2067\u2068\u2069"))
_SPACES = re.compile(r"[ \t\u00a0\u202f\u2009]+")

# Timestamps: a date, then a time; or a time alone (Slack, Teams, subtitles).
_DATE = r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}"
_TIME = r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s?[AaPp]\.?\s?[Mm]\.?)?"
_WHATSAPP_ANDROID = re.compile(rf"^{_DATE},?\s{{1,3}}{_TIME}\s{{0,3}}[-–]\s(?P<rest>.*)$")
_WHATSAPP_IOS = re.compile(rf"^\[{_DATE},?\s{{1,3}}{_TIME}\]\s?(?P<rest>.*)$")
_TIMESTAMPED = re.compile(rf"^(?:\[{_TIME}\]|\({_TIME}\)|{_TIME})\s{{1,3}}(?:[-–|]\s)?(?P<rest>.*)$")
_ONLY_TIMESTAMP = re.compile(
    rf"^[\[(]?(?:{_DATE}(?:,?\s{{1,3}}{_TIME})?|{_TIME})[\])]?$"
    r"|^(?:today|yesterday|(?:mon|tues|wednes|thurs|fri|satur|sun)day"
    r"(?:,?\s(?:\d{1,2}\s)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?(?:\s\d{1,4})?,?(?:\s\d{4})?)?)$",
    re.IGNORECASE)
# `Name: text`: at most 40 characters before the first colon, which a space or the line end follows
# (so `https://` and `10:30` are not speakers). The name is checked by `_plausible_name`.
_LABELLED = re.compile(r"^(?P<name>[^:\n]{1,40}):(?:\s+(?P<text>.*))?$")
# Discord's copy: `name — Today at 10:02 AM` (or a date, or the time alone) over the message's lines.
# Only an em or en dash: "Meet today at 10:30" and "Standup - 10:00" are words.
_DISCORD_HEADER = re.compile(
    rf"^(?P<name>[^:\u2014\u2013]{{1,40}}?)\s[\u2014\u2013]\s(?:(?:today|yesterday)\sat\s|{_DATE},?\s)?{_TIME}$",
    re.IGNORECASE)
_TAG = re.compile(r"^#[A-Za-z]+\d*[A-Za-z]?#$")  # #Person1#, and DialogSum's own typos (#PersonN#)
_TRANSCRIPT = re.compile(r"^(?:[A-Z]|(?:speaker|participant|person|voice|spk|s)\s?\d{1,3})$", re.IGNORECASE)
_NAME_FORBIDDEN = re.compile(r"""[,;?!"()\[\]{}<>=+*/\\|]|://""")
_PARTICLES = frozenset("van von de da del della der den di du dos das la le bin bint ibn al el ben ter".split())
# Labels that start a line of prose or an email, never a speaker.
_NOT_SPEAKERS = frozenset("""note nb n.b. ps p.s. pps subject from to cc bcc date sent re fw fwd reply
    tip warning caution important update edit reminder todo agenda summary tl;dr tldr example e.g
    i.e attachment attachments location time address phone tel email e-mail url link website
    where when why what how who answer question step result results total price cost source
    ingredients directions instructions conclusion introduction abstract keywords status
    deadline goal goals objective purpose reason problem solution""".split())
# Labels that start a lowercase line of notes, logs or settings ("error: ...", "version: 2"):
# a lowercase handle is read as a speaker only when it is none of these.
_NOT_HANDLES = _NOT_SPEAKERS | frozenset("""error errors warn warning info debug trace fatal log usage output input
    hint fix fixed bug bugs feature features done pros cons q a re todo fyi btw eta faq ok yes no
    name version description title author type id key value default required optional example
    examples see also http https ftp mailto file path returns return args params param raises
    monday tuesday wednesday thursday friday saturday sunday morning afternoon evening tonight
    today tomorrow yesterday first second third then next finally also and but or so because""".split())
# A handle: one word, a letter first, letters, digits, `_`, `.`, `-` inside, not ending in `.` or `-`
# (so "e.g.:" and "i.e.:" are not handles).
_HANDLE = re.compile(r"^[^\W\d_][\w.\-]{0,30}(?<![.\-])$")

# What a chat export writes in place of a message: no one's words.
_SYSTEM_MESSAGE = re.compile(
    r"messages (?:and calls )?are end-to-end encrypted"
    r"|^<?(?:media|image|video|audio|sticker|gif|document|contact card) omitted>?$"
    r"|^<attached: [^>]{0,200}>$"
    r"|^(?:this message was deleted|you deleted this message|message deleted|null)$"
    r"|^missed (?:voice|video) call$",
    re.IGNORECASE)
# Lines an app writes about the chat (joins, leaves, renames): checked on lines naming no speaker.
_SYSTEM_LINE = re.compile(
    r"^[^:]{1,60} (?:has |have )?(?:joined|left) (?:the |this )?(?:channel|group|chat|conversation|call|meeting)\b"
    r"|^[^:]{1,60} (?:joined using this group's invite link|left|joined)$"
    r"|^[^:]{1,60} (?:added|removed) [^:]{1,80}$"
    r"|^[^:]{1,60} (?:created (?:the )?group|changed (?:the |this )?(?:group|subject|description|"
    r"group description|group icon|icon|their phone number|to)\b)"
    r"|^your security code with .{1,60} changed"
    r"|^(?:the )?disappearing messages",
    re.IGNORECASE)
_TITLES = frozenset("Mr Mrs Ms Miss Dr Prof Sir Madam Aunt Uncle Mum Mom Dad Grandma Grandpa Speaker".split())
_MODAL_NAMES = frozenset(("Will", "May", "Can", "Shall", "Must"))
_PRONOUNS = frozenset("i you he she it we they there this that these those your our his her its their".split())
# Up to six digits: a pasted chat of 1,000 speakers has a #Person1000# (the input limits keep it
# far below a million).
_PERSON_TAG = re.compile(r"#\s?Person\s?(\d{1,6})\s?#")
_WORD_AFTER = re.compile(r"\s+(\w+)")


@dataclass(frozen=True)
class Turn:
    speaker: str | None  # None: text before the first speaker (a heading, an email's opening)
    text: str


@dataclass
class ParsedDialogue:
    turns: list[Turn]
    format: str  # dialogsum | name | timestamped | whatsapp | transcript | none
    speakers: list[str]  # in order of first turn
    dropped: int = 0  # system lines and timestamp-only lines left out
    note: str = ""  # one line for the card ("" when all is well)


@dataclass
class SpeakerMapping:
    """Names and the DialogSum tags that stood in for them while the model read the dialogue."""
    names: dict[str, str] = field(default_factory=dict)  # name -> "#Person1#", in order of first turn
    kept: frozenset[int] = frozenset()  # numbers of the speakers the chat itself wrote as tags

    @property
    def tags(self) -> dict[str, str]:
        return {tag: name for name, tag in self.names.items()}

    def restore(self, summary: str) -> str:
        """The summary with every tag back as the name it stood for ("#Person1#'s" -> "Amanda's").

        A tag for nobody in the chat (the model invented a #Person3# in a two-person chat) becomes
        "someone else": the user never sees a tag the chat did not have. A tag the chat had as a
        speaker's own name (`#Person2#: ...` among named speakers) stays as it is."""
        if not summary:
            return summary
        by_number = {int(_PERSON_TAG.fullmatch(tag).group(1)): name for name, tag in self.names.items()}

        def name(match):
            number = int(match.group(1))
            return match.group(0) if number in self.kept else by_number.get(number, "someone else")
        return _PERSON_TAG.sub(name, summary)

    def describe(self) -> str:
        """One line for the card: "Amanda → #Person1#, Ben → #Person2#"."""
        return ", ".join(f"{name} → {tag}" for name, tag in self.names.items())


# --------------------------------------------------------------------------------------------
# Parsing


def _plausible_name(name: str, strict: bool) -> bool:
    """Could this be who speaks? `strict` (no timestamp in front) also wants it capitalised."""
    if not name or len(name) > 40 or _NAME_FORBIDDEN.search(name):
        return False
    if _TAG.match(name):
        return True
    words = name.split(" ")
    if len(words) > 4 or name.lower() in _NOT_SPEAKERS:
        return False
    first = name[0]
    if first.isdigit() or (first.isascii() and not first.isalnum() and first not in "@~_"):
        return False
    if not any(c.isalnum() or not c.isascii() for c in name):
        return False
    if strict:
        for i, word in enumerate(words):
            if word[0].islower() and not (i and word in _PARTICLES):
                return False
    return True


def _clean_name(name: str) -> str:
    name = _SPACES.sub(" ", name).strip()
    return name.lstrip("~@ ").strip() or name


def _is_handle(name: str) -> bool:
    """A lowercase chat handle (`luke`, `john_doe`, `dev.ops`), not a label of notes or settings."""
    return bool(_HANDLE.match(name)) and name.lower() not in _NOT_HANDLES and _plausible_name(name, strict=False)


def _speaker_kind(name: str, stamped: str | None) -> str | None:
    """The turn's format if `name` can be who speaks: "handle" for a lowercase handle that
    `_settle_handles` still has to accept, None for no speaker."""
    if _plausible_name(name, strict=stamped is None):
        if _TAG.match(name):
            return "dialogsum"
        if _TRANSCRIPT.match(name):
            return "transcript"
        return stamped or "name"
    if stamped is None and _is_handle(name):
        return "handle"
    return None


def _read_line(line: str) -> tuple[str, str | None, str, str | None]:
    """(kind, speaker, text, stamp): kind is turn:FORMAT | system | timestamp | text; stamp is
    the timestamp format in front of the line (whatsapp | timestamped | discord) or None."""
    if _ONLY_TIMESTAMP.match(line):
        return "timestamp", None, "", None
    header = _DISCORD_HEADER.match(line)
    if header and _plausible_name(name := _clean_name(header.group("name")), strict=False):
        return "turn:discord", name, "", "discord"  # the message is on the lines below
    stamped, rest = None, line
    for kind, pattern in (("whatsapp", _WHATSAPP_ANDROID), ("whatsapp", _WHATSAPP_IOS),
                          ("timestamped", _TIMESTAMPED)):
        match = pattern.match(line)
        if match:
            stamped, rest = kind, match.group("rest").strip()
            break
    labelled = _LABELLED.match(rest)
    if labelled:
        name = _clean_name(labelled.group("name"))
        text = (labelled.group("text") or "").strip()
        kind = None if text.startswith("//") else _speaker_kind(name, stamped)
        if kind is not None:
            if kind != "handle" and _SYSTEM_MESSAGE.search(text):
                return "system", name, "", stamped
            return f"turn:{kind}", name, text, stamped
    if _SYSTEM_MESSAGE.search(rest) or ((stamped or not labelled) and _SYSTEM_LINE.match(rest)):
        return "system", None, "", stamped
    if stamped == "whatsapp":  # a dated line that names nobody: WhatsApp's own notices
        return "system", None, "", stamped
    # A bracketed stamp before a nameless line is a message's time; "10:30 works for me" is words.
    return "text", None, rest if stamped and line[0] in "[(" else line, stamped


def parse(text: str) -> ParsedDialogue:
    """The turns of a chat, whatever its format (see the module's docstring); never raises."""
    text = (text or "").translate(_INVISIBLE).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line for line in (_SPACES.sub(" ", raw).strip() for raw in text.split("\n")) if line]
    reads = _settle_handles([_read_line(line) for line in lines], lines)
    stamped = [(s, stamp) for kind, s, _, stamp in reads if stamp and kind.startswith("turn:")]
    stamped_speakers = {s for s, _ in stamped}
    turns: list[list] = []  # [speaker, [pieces]]
    kinds: dict[str, int] = {}
    dropped = labelled = 0
    for line, (kind, speaker, body, stamp) in zip(lines, reads):
        if kind in ("timestamp", "system"):
            dropped += 1
            continue
        # Where messages carry timestamps, an unstamped "Word: ..." line is the next line of a
        # message (say "Plan B: the park"), unless it names someone who speaks.
        if kind == "turn:name" and len(stamped) >= 2 and speaker not in stamped_speakers:
            kind, body = "text", line
        if kind.startswith("turn:"):
            labelled += 1
            kinds[kind[5:]] = kinds.get(kind[5:], 0) + 1
            turns.append([speaker, [body] if body else []])
        elif turns:
            turns[-1][1].append(body)
        else:
            turns.append([None, [body]])
    speakers = list(dict.fromkeys(s for s, _ in turns if s is not None))
    if not _is_a_chat(speakers, labelled, len(lines) - dropped, turns):
        return ParsedDialogue([Turn(None, "\n".join(lines))] if lines else [], "none", [], 0,
                              NO_SPEAKERS_NOTE if lines else "")
    result = [Turn(s, " ".join(pieces)) for s, pieces in turns]
    fmt = max(kinds, key=lambda k: (kinds[k], k != "name"))
    note = f"{dropped} system or timestamp line(s) left out." if dropped else ""
    return ParsedDialogue(result, fmt, speakers, dropped, note)


def _settle_handles(reads: list[tuple], lines: list[str]) -> list[tuple]:
    """Lowercase handles are speakers where two lines or more carry them; where others speak under
    capitalised or stamped names, only a handle that labels two lines itself (one "milk: 2 litres"
    line in a chat is part of a message)."""
    counts = Counter(speaker for kind, speaker, _, _ in reads if kind == "turn:handle")
    if not counts:
        return reads
    others = any(kind.startswith("turn:") and kind != "turn:handle" for kind, *_ in reads)
    settled = []
    for line, read in zip(lines, reads):
        kind, speaker, text, stamp = read
        if kind != "turn:handle":
            settled.append(read)
        elif counts.total() < 2 or (others and counts[speaker] < 2):
            settled.append(("text", None, line, stamp))
        elif _SYSTEM_MESSAGE.search(text):
            settled.append(("system", speaker, "", stamp))
        else:
            settled.append(("turn:name", speaker, text, stamp))
    return settled


def _is_a_chat(speakers: list[str], labelled: int, lines: int, turns: list) -> bool:
    """Two people speaking, or one speaker on (most of) the lines: else prose that happens to
    contain a "Label: text" line or two."""
    if not speakers:
        return False
    if len(speakers) >= 2:
        return labelled >= 2 and (labelled >= 4 or labelled * 5 >= lines)
    # One speaker: a one-line message, or every line theirs (a monologue, a voice note).
    return lines == 1 or (labelled >= 2 and labelled * 2 >= lines and turns[0][0] is not None)


# --------------------------------------------------------------------------------------------
# What a model reads


def prepare(text: str, style: str) -> tuple[str, SpeakerMapping | None, ParsedDialogue]:
    """(what the model reads, the mapping to undo in its summary or None, the parse).

    style "dialogsum": `#Person1#: ...` lines, names inside turns replaced too; "names": cleaned
    `Name: text` lines with the names kept. Text in DialogSum's own format, and text with no
    recognisable speakers, are returned as given (the parse's note says the latter)."""
    if style not in STYLES:
        raise ValueError(f"unknown speaker style {style!r}; choose one of {', '.join(STYLES)}")
    parsed = parse(text)
    if parsed.format in ("none", "dialogsum") and not _has_names(parsed):
        return text, None, parsed
    if style == "names":
        return _lines(parsed.turns, lambda name: name, lambda t: t), None, parsed
    mapping = _mapping(parsed.speakers)
    mention = _mention_pattern(parsed, mapping)
    replace = (lambda t: t) if mention is None else (lambda t: _replace_mentions(t, mention, mapping))
    return _lines(parsed.turns, lambda name: mapping.names.get(name, name), replace), mapping, parsed


def _has_names(parsed: ParsedDialogue) -> bool:
    return any(not _TAG.match(s) for s in parsed.speakers)


def _lines(turns: list[Turn], label, body) -> str:
    return "\n".join(f"{label(t.speaker)}: {body(t.text)}".rstrip() if t.speaker is not None else body(t.text)
                     for t in turns)


def _mapping(speakers: list[str]) -> SpeakerMapping:
    """Tags in order of first turn; a speaker already written as a tag keeps it."""
    taken = {int(m.group(1)) for s in speakers if (m := _PERSON_TAG.fullmatch(s))}
    names, number = {}, 1
    for speaker in speakers:
        if _TAG.match(speaker):
            continue
        while number in taken:
            number += 1
        names[speaker] = f"#Person{number}#"
        number += 1
    return SpeakerMapping(names, frozenset(taken))


def _mention_pattern(parsed: ParsedDialogue, mapping: SpeakerMapping):
    """One pattern for every name a turn may mention: full names, and a first name that only one
    speaker has. Transcript labels (A, Speaker 1) are labels, not names: "A lot" stays."""
    aliases: dict[str, str] = {}
    firsts: dict[str, list[str]] = {}
    for name in mapping.names:
        if _TRANSCRIPT.match(name):
            continue
        aliases[name] = name
        first = name.split(" ")[0]
        if first != name and len(first) > 1 and not first.endswith(".") and first not in _TITLES:
            firsts.setdefault(first, []).append(name)
    for first, owners in firsts.items():
        if len(owners) == 1 and first not in aliases:
            aliases[first] = owners[0]
    for name in mapping.names:  # a handle "luke" is also written "Luke" in the messages
        if name.isalpha() and name.islower() and name.capitalize() not in aliases:
            aliases[name.capitalize()] = name
    if not aliases:
        return None
    alternatives = "|".join(re.escape(a) for a in sorted(aliases, key=len, reverse=True))
    # "@amy" is a mention of amy: the "@" goes with the name.
    return re.compile(rf"(?<![\w#@])@?(?:{alternatives})(?![\w#])"), aliases


def _replace_mentions(text: str, mention, mapping: SpeakerMapping) -> str:
    pattern, aliases = mention

    def swap(match):
        alias = match.group(0).removeprefix("@")
        if alias.capitalize() in _MODAL_NAMES and alias == match.group(0):
            # "Will you ..." / "May I ..." / a handle "will" in "i will come": the verb, not the
            # name ("@will" is the name).
            after = _WORD_AFTER.match(text, match.end())
            if alias.islower() or (after and after.group(1).lower() in _PRONOUNS):
                return alias
        return mapping.names[aliases[alias]]
    return pattern.sub(swap, text)


def speakers_line(mapping: SpeakerMapping | None, parsed: ParsedDialogue | None) -> str:
    """"Speakers: Amanda → #Person1#, Ben → #Person2#" (or the names kept), "" without speakers."""
    if parsed is None or not parsed.speakers:
        return ""
    if mapping is not None and mapping.names:
        return "Speakers: " + mapping.describe()
    return "Speakers: " + ", ".join(parsed.speakers)
