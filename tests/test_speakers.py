"""Speakers: the chat parser on every format it reads and on bad input, the name <-> #PersonN#
mapping and its restore, and the path through summarize, the CLI, the registry and the Studio."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import markupsafe
import pytest

from summarizer import studio as core
from summarizer.cli import main
from summarizer.data import Example, load_split
from summarizer.errors import RegistryError, UserError
from summarizer.generation import DecodingSettings, summarize
from summarizer.registry import ModelSpec, Registry, load_specs
from summarizer.speakers import NO_SPEAKERS_NOTE, SpeakerMapping, Turn, parse, prepare

ROOT = Path(__file__).resolve().parent.parent
CHATS = ROOT / "assets" / "chats" / "chats.jsonl"
TAG = re.compile(r"#\s?Person\s?\d+\s?#")
COOKIES = ("Amanda: I baked cookies. Do you want some?\n"
           "Jerry: Sure! Will you bring them to work?\n"
           "Amanda: I will bring Jerry's box tomorrow.")


# ---------------------------------------------------------------------------------------------
# parse: every format


@pytest.mark.parametrize("text, fmt", [
    ("Amanda: I baked cookies.\nJerry: Great!", "name"),
    ("#Person1#: Hi, Ben.\n#Person2#: Hello.", "dialogsum"),
    ("[10:02] Amanda: I baked cookies.\n[10:03] Jerry: Great!", "timestamped"),
    ("10:02 Amanda: I baked cookies.\n10:03 Jerry: Great!", "timestamped"),
    ("[9:02 AM] Amanda: I baked cookies.\n[9:03 AM] Jerry: Great!", "timestamped"),
    ("12/03/2024, 10:02 - Amanda: I baked cookies.\n12/03/2024, 10:03 - Jerry: Great!", "whatsapp"),
    ("[12/03/2024, 10:02:11] Amanda: I baked cookies.\n[12/03/2024, 10:03:40] Jerry: Great!", "whatsapp"),
    ("\u200e[12/03/2024, 10:02:11] Amanda: I baked cookies.\n[12/03/2024, 10:03:40] Jerry: Great!", "whatsapp"),
])
def test_each_format_gives_the_same_turns(text, fmt):
    parsed = parse(text)
    speakers = ["#Person1#", "#Person2#"] if fmt == "dialogsum" else ["Amanda", "Jerry"]
    assert parsed.format == fmt and parsed.speakers == speakers
    assert [t.speaker for t in parsed.turns] == speakers
    if fmt != "dialogsum":
        assert parsed.turns == [Turn("Amanda", "I baked cookies."), Turn("Jerry", "Great!")]


@pytest.mark.parametrize("text, speakers", [
    ("Speaker 1: Thanks for coming.\nSpeaker 2: Happy to be here.\nSpeaker 1: Let's start.",
     ["Speaker 1", "Speaker 2"]),
    ("A: Does this bus go to the airport?\nB: No, take the 40.\nA: Thanks.", ["A", "B"]),
])
def test_transcripts(text, speakers):
    parsed = parse(text)
    assert parsed.format == "transcript" and parsed.speakers == speakers and len(parsed.turns) == 3


def test_a_turn_continues_on_the_next_line():
    parsed = parse("Kate: I failed my driving test\nI was so nervous\nMum: You can book another one.")
    assert parsed.turns == [Turn("Kate", "I failed my driving test I was so nervous"),
                            Turn("Mum", "You can book another one.")]
    whatsapp = parse("12/03/2024, 10:02 - Ben: first line\nsecond line\nPlan B: the park\n"
                     "12/03/2024, 10:03 - Ana: ok")
    assert whatsapp.speakers == ["Ben", "Ana"]  # "Plan B:" inside a message is not a speaker
    assert whatsapp.turns[0].text == "first line second line Plan B: the park"
    own_line = parse("Amanda:\nI baked cookies.\nJerry:\nGreat!")
    assert own_line.turns == [Turn("Amanda", "I baked cookies."), Turn("Jerry", "Great!")]


def test_timestamps_and_system_lines_are_dropped():
    text = ("12/03/2024, 18:40 - Messages and calls are end-to-end encrypted. No one outside of this "
            "chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n"
            "12/03/2024, 18:41 - Will: Are we on for Saturday?\n"
            "12/03/2024, 18:42 - May: <Media omitted>\n"
            "12/03/2024, 18:43 - May added Ben\n"
            "12/03/2024, 18:44 - Ben left\n"
            "12/03/2024, 18:45 - May: Yes!\n"
            "[12/03/2024, 18:46:00] Will: \u200eimage omitted\n"
            "Today\n"
            "[10:30]\n"
            "[10:31] Priya Raman has joined the channel\n"
            "12/03/2024, 18:47 - Will: This message was deleted")
    parsed = parse(text)
    assert parsed.turns == [Turn("Will", "Are we on for Saturday?"), Turn("May", "Yes!")]
    assert parsed.dropped == 9 and "9 system or timestamp line(s)" in parsed.note
    # Words that sound like a system line inside a message stay: only the app's lines go.
    assert parse("Ben: I left the meeting early\nAna: I joined the group late")\
        .turns[0].text == "I left the meeting early"


# ---------------------------------------------------------------------------------------------
# parse: bad input


@pytest.mark.parametrize("text", ["", "   \n\t\n", None])
def test_empty_text(text):
    parsed = parse(text)
    assert parsed.turns == [] and parsed.format == "none" and parsed.speakers == []


def test_one_line():
    assert parse("Amanda: I baked cookies.").speakers == ["Amanda"]
    plain = parse("I baked cookies.")
    assert plain.format == "none" and plain.note == NO_SPEAKERS_NOTE
    text, mapping, _ = prepare("I baked cookies.", "dialogsum")
    assert text == "I baked cookies." and mapping is None


@pytest.mark.parametrize("line", ["x" * 20_000, "Amanda: " + "word " * 4_000, ":" * 20_000,
                                  "a" * 39 + ":" + " b" * 9_980, "[10:02] " + "Ann: " * 4_000,
                                  "12/03/2024, 10:02 - " + "1" * 20_000, "#" * 20_000 + ": x"])
def test_twenty_thousand_characters_on_one_line_is_quick(line):
    started = time.perf_counter()
    parsed = parse(line)
    prepare(line, "dialogsum")
    assert time.perf_counter() - started < 0.5  # microseconds per line in fact; a loaded CI box is slow
    assert sum(len(t.text) for t in parsed.turns) > 0


@pytest.mark.parametrize("text", [
    "We met on Monday to plan the launch.\nNote: the meeting is at 5.\nBring the slides.",
    "The docs are at https://example.com/setup and the API at http://example.com:8080/v1.",
    "The train leaves at 10:30 and arrives at 14:05.\n10:30 works for me.",
    "Hi John,\n\nPlease find the report attached.\n\nBest,\nMary",
    "From: Mary Smith\nTo: John Doe\nSubject: the report\n\nHi John, the report is attached.",
    "Ingredients: flour, eggs, milk.\nDirections: mix and bake for 20 minutes.",
    "One more thing: bring snacks.\nand this: too",
])
def test_prose_that_only_looks_like_a_speaker_is_summarized_as_given(text):
    parsed = parse(text)
    assert parsed.format == "none" and parsed.speakers == [] and parsed.note == NO_SPEAKERS_NOTE
    for style in ("dialogsum", "names"):
        assert prepare(text, style)[:2] == (text, None)


def test_names_with_emoji_and_non_latin_letters():
    text = "Zoë 🌸: ¿vienes hoy?\n李雷: 你好，我会来。\nАнна: Привет, Zoë 🌸!\nO'Brien-Smith: fine"
    parsed = parse(text)
    assert parsed.speakers == ["Zoë 🌸", "李雷", "Анна", "O'Brien-Smith"]
    prepared, mapping, _ = prepare(text, "dialogsum")
    assert prepared.splitlines()[2] == "#Person3#: Привет, #Person1#!"
    assert mapping.restore("#Person2# greets #Person1#.") == "李雷 greets Zoë 🌸."


def test_thirty_speakers():
    names = [f"Person{chr(65 + i // 26)}{chr(97 + i % 26)}" for i in range(30)]
    text = "\n".join(f"{n}: hello from {n}, and hi {names[(i + 1) % 30]}" for i, n in enumerate(names))
    parsed = parse(text)
    assert parsed.speakers == names and len(parsed.turns) == 30
    prepared, mapping, _ = prepare(text, "dialogsum")
    assert list(mapping.names.values()) == [f"#Person{i}#" for i in range(1, 31)]
    assert prepared.splitlines()[29] == "#Person30#: hello from #Person30#, and hi #Person1#"
    assert not any(n in prepared for n in names)
    assert mapping.restore(prepared) == "\n".join(f"{n}: hello from {n}, and hi {names[(i + 1) % 30]}"
                                                  for i, n in enumerate(names))


@pytest.mark.parametrize("count", [300, 1000])
def test_hundreds_and_a_thousand_speakers_map_and_come_back(count):
    names = [f"Guest{i}" for i in range(count)]
    text = "\n".join(f"{n}: hi {names[(i + 1) % count]}" for i, n in enumerate(names))
    prepared, mapping, parsed = prepare(text, "dialogsum")
    assert parsed.speakers == names and list(mapping.names.values()) == [f"#Person{i}#" for i in range(1, count + 1)]
    assert prepared.splitlines()[-1] == f"#Person{count}#: hi #Person1#"
    assert mapping.restore(prepared) == text
    assert mapping.restore(f"#Person{count}# thanks #Person{count - 1}#.") == f"Guest{count - 1} thanks Guest{count - 2}."
    assert mapping.restore(f"#Person{count + 1}# left.") == "someone else left."


def test_five_thousand_one_word_turns_are_quick():
    two = "\n".join(f"{'Ann' if i % 2 else 'Bo'}: w{i}" for i in range(5000))
    many = "\n".join(f"P{i}: w{i}" for i in range(5000))  # 5,000 speakers, one word each
    started = time.perf_counter()
    for text, speakers in ((two, 2), (many, 5000)):
        prepared, mapping, parsed = prepare(text, "dialogsum")
        assert len(parsed.turns) == 5000 and len(mapping.names) == speakers
        assert mapping.restore(prepared) == text
    assert time.perf_counter() - started < 5  # about 0.3 s in fact


def test_a_speaker_whose_name_is_a_tag_keeps_it_in_the_summary():
    text = "Alice: hi #Person2#\n#Person2#: hello Alice\nBob: hey both"
    prepared, mapping, _ = prepare(text, "dialogsum")
    assert mapping.names == {"Alice": "#Person1#", "Bob": "#Person3#"} and mapping.kept == {2}
    assert prepared == "#Person1#: hi #Person2#\n#Person2#: hello #Person1#\n#Person3#: hey both"
    assert mapping.restore("#Person2# greets #Person1# and #Person3#; #Person4# is away.") == \
        "#Person2# greets Alice and Bob; someone else is away."
    big = prepare("#Person1000#: hi Ann\nAnn: hello", "dialogsum")[1]
    assert big.names == {"Ann": "#Person1#"} and big.restore("#Person1000# and #Person1#") == "#Person1000# and Ann"


def test_a_thousand_speakers_through_the_studio_give_summaries_not_errors(studio):
    names = [f"Guest{i}" for i in range(1000)]
    lines = [f"{n}: hi" for n in names]
    lines[-1] = "Guest999: thanks everyone for coming, and see you all at the next meeting"
    view = studio.comparisons.compare_all("\n".join(lines), "", ["tagged", "longest-3-tagged"],
                              decoding=core.decoding_settings(max_new_tokens=4))
    data = view.to_dict()["models"]
    assert [m.get("error") for m in data] == [None, None]
    assert data[1]["raw_summary"].splitlines()[-1].startswith("#Person1000#: thanks")
    assert data[1]["summary"].splitlines()[-1].startswith("Guest999: thanks") and "generation failed" not in core.render_cards(view)


# ---------------------------------------------------------------------------------------------
# lowercase handles (Slack, Discord, exports)

HANDLE_CHATS = [
    ("luke: we should tell Jose\nmartial: yes, tomorrow", "name"),
    ("[10:02] luke: we should tell Jose\n[10:03] martial: yes, tomorrow", "timestamped"),
    ("10:02 luke: we should tell Jose\n10:03 martial: yes, tomorrow", "timestamped"),
    ("12/03/2024, 10:02 - luke: we should tell Jose\n12/03/2024, 10:03 - martial: yes, tomorrow", "whatsapp"),
    ("[12/03/2024, 10:02:11] luke: we should tell Jose\n[12/03/2024, 10:03:40] martial: yes, tomorrow",
     "whatsapp"),
    ("luke — Today at 10:02 AM\nwe should tell Jose\nmartial — Today at 10:03 AM\nyes, tomorrow", "discord"),
    ("luke — 12/03/2024 10:02 AM\nwe should tell\nJose\n[10:02 AM]\nmartial — Yesterday at 9:15 PM\n"
     "yes, tomorrow", "discord"),
    ("@luke: we should tell Jose\n@martial: yes, tomorrow", "name"),
]


@pytest.mark.parametrize("text, fmt", HANDLE_CHATS)
def test_lowercase_handles_are_speakers_and_come_back_in_the_summary(text, fmt):
    parsed = parse(text)
    assert parsed.format == fmt and parsed.speakers == ["luke", "martial"]
    assert [t.speaker for t in parsed.turns] == ["luke", "martial"]
    assert parsed.turns[0].text.replace("\n", " ") in ("we should tell Jose",)
    prepared, mapping, _ = prepare(text, "dialogsum")
    assert prepared == "#Person1#: we should tell Jose\n#Person2#: yes, tomorrow"
    assert mapping.restore("#Person1# will tell Jose; #Person2# agrees.") == "luke will tell Jose; martial agrees."


def test_handles_with_underscores_dots_and_at_signs_and_their_mentions():
    text = ("john_doe: hi @amy, ask dev.ops\n@amy: hey john_doe\ndev.ops: deploy done, Amy\n"
            "will: i will come\namy: thanks @will")
    prepared, mapping, parsed = prepare(text, "dialogsum")
    assert parsed.speakers == ["john_doe", "amy", "dev.ops", "will"]
    assert prepared.splitlines() == ["#Person1#: hi #Person2#, ask #Person3#", "#Person2#: hey #Person1#",
                                     "#Person3#: deploy done, #Person2#", "#Person4#: i will come",
                                     "#Person2#: thanks #Person4#"]
    assert mapping.restore("#Person3# deployed for #Person1#.") == "dev.ops deployed for john_doe."


def test_a_handle_among_capitalised_names_speaks_when_it_labels_two_lines():
    parsed = parse("Luke: hi\nmartial: yes\nLuke: tomorrow?\nmartial: sure")
    assert parsed.speakers == ["Luke", "martial"] and len(parsed.turns) == 4
    listed = parse("Ben: the list\nmilk: 2 litres\nAna: ok\nBen: fine")  # one lowercase line: words
    assert listed.speakers == ["Ben", "Ana"] and listed.turns[0].text == "the list milk: 2 litres"


@pytest.mark.parametrize("text", [
    "We met on Monday to plan the launch.\nnote: the meeting is at 5.\nBring the slides.",
    "See the guide, e.g.: the setup page\ni.e.: the first one",
    "error: file not found\nwarning: unused variable",
    "name: studio\nversion: 2\ndescription: a demo",
    "luke: one lowercase line is not a chat",
    "Meet today at 10:30\nStandup - 10:00",
    "see https://example.com: the docs\nand http://example.org",
])
def test_lowercase_labels_in_prose_are_not_speakers(text):
    parsed = parse(text)
    assert parsed.format == "none" and parsed.speakers == [] and parsed.note == NO_SPEAKERS_NOTE
    assert prepare(text, "dialogsum")[:2] == (text, None)


def test_summarize_restores_handles(speaker_registry):
    registry = Registry.from_file(speaker_registry)
    chat = "[10:02] luke: we should tell Jose about the launch\n[10:03] martial: yes, tomorrow"
    result = summarize(registry, ["longest-3-tagged"], [Example("slack", chat)])[0]
    assert result.speaker_mapping == {"luke": "#Person1#", "martial": "#Person2#"}
    assert result.raw_summary.splitlines()[0] == "#Person1#: we should tell Jose about the launch"
    assert result.summary.splitlines()[0] == "luke: we should tell Jose about the launch"
    assert not TAG.search(result.summary)


# ---------------------------------------------------------------------------------------------
# prepare and restore


def test_dialogsum_style_replaces_names_inside_turns_whole_words_case_sensitive():
    text = ("Will: Amanda, will you come? Amanda's car is free.\n"
            "Amanda: Yes Will. Will you drive? Willow wants to come, and Will is driving anyway.")
    prepared, mapping, parsed = prepare(text, "dialogsum")
    assert mapping.names == {"Will": "#Person1#", "Amanda": "#Person2#"}
    assert prepared == ("#Person1#: #Person2#, will you come? #Person2#'s car is free.\n"
                        "#Person2#: Yes #Person1#. Will you drive? Willow wants to come, and "
                        "#Person1# is driving anyway.")
    assert parsed.format == "name"


def test_first_names_of_full_names_and_labels_that_are_not_names():
    text = ("[10:02] Priya Raman: Tom, can you look?\n[10:03] Tom Becker: yes Priya\n"
            "[10:04] Priya Raman: thanks Tom Becker")
    prepared, mapping, _ = prepare(text, "dialogsum")
    assert prepared == "#Person1#: #Person2#, can you look?\n#Person2#: yes #Person1#\n#Person1#: thanks #Person2#"
    transcript, mapping, _ = prepare("A: A lot of people came.\nB: B-movies too.", "dialogsum")
    assert transcript == "#Person1#: A lot of people came.\n#Person2#: B-movies too."


def test_names_style_keeps_names_and_drops_the_clutter():
    text = "[12/03/2024, 10:02:11] Amanda: I baked cookies.\n[12/03/2024, 10:03:00] Jerry: <Media omitted>\n" \
           "[12/03/2024, 10:03:40] Jerry: Great!\nsee you"
    prepared, mapping, parsed = prepare(text, "names")
    assert prepared == "Amanda: I baked cookies.\nJerry: Great! see you" and mapping is None
    assert parsed.dropped == 1


def test_dialogsum_text_is_left_exactly_as_given():
    text = "#Person1#: Hi, Mr. Smith. Amanda said you called.\n#Person2#: Yes.\n#PErson2#: Indeed."
    for style in ("dialogsum", "names"):
        assert prepare(text, style)[:2] == (text, None)


def test_tags_already_there_keep_their_number():
    prepared, mapping, _ = prepare("#Person1#: Hi Ben.\nBen: Hello.\nCara: Hi both.", "dialogsum")
    assert mapping.names == {"Ben": "#Person2#", "Cara": "#Person3#"}
    assert prepared == "#Person1#: Hi #Person2#.\n#Person2#: Hello.\n#Person3#: Hi both."


def test_map_then_restore_gives_the_names_back():
    prepared, mapping, _ = prepare(COOKIES, "dialogsum")
    assert "Amanda" not in prepared and "Jerry" not in prepared
    assert "Will you bring" in prepared  # the verb, not a name
    assert mapping.restore(prepared) == COOKIES
    assert mapping.restore("#Person1# baked cookies and will bring #Person2#'s box tomorrow.") == \
        "Amanda baked cookies and will bring Jerry's box tomorrow."
    assert mapping.restore("#Person2#'s and # Person1 #'s") == "Jerry's and Amanda's"
    assert mapping.restore("#Person3# calls.") == "someone else calls."  # never a tag the chat lacked
    assert mapping.restore("") == "" and SpeakerMapping().restore("#Person1# hi") == "someone else hi"
    with pytest.raises(ValueError, match="unknown speaker style"):
        prepare(COOKIES, "tags")


# ---------------------------------------------------------------------------------------------
# registry


def test_registry_speakers_field(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[models.a]\nkind = "extractive"\n\n[models.b]\nkind = "extractive"\nspeakers = "dialogsum"\n')
    a, b = load_specs(path)
    assert (a.speakers, b.speakers) == ("names", "dialogsum")
    assert 'speakers = "dialogsum"' in b.to_toml() and "speakers" not in a.to_toml()
    path.write_text(b.to_toml())
    assert load_specs(path)[0] == b
    path.write_text('[models.a]\nkind = "extractive"\nspeakers = "tags"\n')
    with pytest.raises(RegistryError, match="speakers must be one of dialogsum, names, got 'tags'"):
        load_specs(path)
    shipped = {s.name: s.speakers for s in load_specs(ROOT / "models.toml")}
    assert {n for n, s in shipped.items() if s == "dialogsum"} == {
        "instruct", "peft-lora", "peft-prompt", "mini-original", "mini-instruct", "mini-lora", "mini-prompt"}
    mini = {s.name: s.speakers for s in load_specs(ROOT / "assets" / "mini" / "models.toml")}
    assert mini == {"mini-original": "dialogsum", "mini-instruct": "dialogsum", "mini-lora": "dialogsum",
                    "mini-prompt": "dialogsum", "longest-3": "names"}


def test_what_training_registers_reads_dialogsum_tags(tmp_path):
    from training.evaluation import folder_spec
    from training.mini_report import mini_specs
    from training.run import registry_toml

    (tmp_path / "config.json").write_text("{}")
    spec = folder_spec(tmp_path)
    assert spec.speakers == "dialogsum"
    assert 'speakers = "dialogsum"' in registry_toml(spec, tmp_path / "models.toml")
    assert {s.name: s.speakers for s in mini_specs()}["mini-instruct"] == "dialogsum"


# ---------------------------------------------------------------------------------------------
# summarize, the CLI


@pytest.fixture
def speaker_registry(tmp_path, tiny_models) -> Path:
    """The tiny models, one of them marked as trained on DialogSum's tags, and the extractive
    baseline in both styles (its output is the dialogue's own lines: what the model read)."""
    path = tmp_path / "models.toml"
    path.write_text(f"""
[models.tagged]
kind = "seq2seq"
path = "{tiny_models['instruct']}"
speakers = "dialogsum"

[models.named]
kind = "seq2seq"
path = "{tiny_models['instruct']}"

[models.longest-3]
kind = "extractive"

[models.longest-3-tagged]
kind = "extractive"
speakers = "dialogsum"
""", encoding="utf-8")
    return path


def test_summarize_gives_each_model_its_speaker_style_and_restores_names(speaker_registry):
    registry = Registry.from_file(speaker_registry)
    whatsapp = ("12/03/2024, 10:02 - Amanda: I baked cookies for Jerry. Do you want some?\n"
                "12/03/2024, 10:03 - Jerry: Sure! Will you bring them to work tomorrow?\n"
                "12/03/2024, 10:04 - Amanda: <Media omitted>\n"
                "12/03/2024, 10:05 - Amanda: Yes, Jerry, I will bring the whole box tomorrow.")
    decoding = DecodingSettings(max_new_tokens=6)
    results = {r.model: r for r in summarize(registry, ["tagged", "named", "longest-3", "longest-3-tagged"],
                                             [Example("chat", whatsapp, ("Amanda will bring Jerry cookies.",))],
                                             decoding=decoding)}
    tagged, named = results["tagged"], results["named"]
    assert tagged.prompt.text.count("#Person1#:") == 2 and "Amanda" not in tagged.prompt.text
    assert "Yes, #Person2#, I will" in tagged.prompt.text and "Media" not in tagged.prompt.text
    assert tagged.speaker_mapping == {"Amanda": "#Person1#", "Jerry": "#Person2#"}
    assert tagged.summary == SpeakerMapping(tagged.speaker_mapping).restore(tagged.raw_summary)
    assert (tagged.speakers, tagged.speaker_format) == (["Amanda", "Jerry"], "whatsapp")
    assert "Amanda: I baked cookies for Jerry." in named.prompt.text and "12/03/2024" not in named.prompt.text
    assert named.speaker_mapping == {} and named.summary == named.raw_summary
    # The extractive baseline writes out what it read: in the tagged style the tags, back as names.
    baseline = results["longest-3-tagged"]
    assert TAG.search(baseline.raw_summary) and not TAG.search(baseline.summary)
    assert baseline.summary == results["longest-3"].summary
    assert baseline.summary.splitlines()[-1] == "Amanda: Yes, Jerry, I will bring the whole box tomorrow."

    kept = {r.model: r for r in summarize(registry, ["tagged", "longest-3-tagged"],
                                          [Example("chat", whatsapp)], decoding=decoding, speakers="keep")}
    assert "12/03/2024, 10:02 - Amanda:" in kept["tagged"].prompt.text
    assert kept["tagged"].speaker_mapping == {} and kept["tagged"].speaker_format == ""
    assert "12/03/2024, 10:05 - Amanda: Yes, Jerry," in kept["longest-3-tagged"].summary
    with pytest.raises(UserError, match="speakers must be one of auto, keep"):
        summarize(registry, ["tagged"], [Example("chat", whatsapp)], speakers="tags")


def test_text_without_speakers_gets_the_note(speaker_registry):
    registry = Registry.from_file(speaker_registry)
    email = "Hi John,\nthe report is attached. Note: it is due at 5.\nBest, Mary"
    result = summarize(registry, ["tagged"], [Example("mail", email)], decoding=DecodingSettings(max_new_tokens=4))[0]
    assert result.speaker_format == "none" and result.speaker_note == NO_SPEAKERS_NOTE
    assert "Summarize the following conversation.\n\n" + email in result.prompt.text


def test_evaluate_scores_the_summary_with_names_against_the_reference(speaker_registry):
    from summarizer.evaluation import evaluate

    chat = "Amanda: I baked cookies for you.\nJerry: Thanks Amanda, I love cookies!"
    examples = [Example("c1", chat, ("Amanda: I baked cookies for you.",))]
    registry = Registry.from_file(speaker_registry)
    auto = evaluate(registry, ["longest-3-tagged"], examples, progress=False)
    keep = evaluate(registry, ["longest-3-tagged"], examples, progress=False, speakers="keep")
    assert auto.rows[0]["summary"] == chat and "#Person1#" in auto.rows[0]["raw_summary"]
    assert auto.score("longest-3-tagged")["rouge1"] == keep.score("longest-3-tagged")["rouge1"] > 0.5
    assert auto.settings["speakers"] == "auto" and keep.settings["speakers"] == "keep"


def test_cli_speakers_flag(capsys, speaker_registry, tmp_path):
    code = main(["summarize", "--registry", str(speaker_registry), "--model", "longest-3-tagged", COOKIES])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() == COOKIES
    assert "speakers Amanda -> #Person1#, Jerry -> #Person2#" in err
    code = main(["summarize", "--registry", str(speaker_registry), "--model", "tagged", "--show-prompt",
                 "--max-new-tokens", "3", "--speakers", "keep", COOKIES])
    out, err = capsys.readouterr()
    assert code == 0 and "Amanda: I baked cookies." in err and "#Person1#" not in err

    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps({"id": "c1", "dialogue": "[10:02] Ann: I will pay.\n[10:03] Bo: ok Ann",
                                "summary": "Ann: I will pay."}) + "\n")
    for mode, expected in (("auto", "Ann: I will pay."), ("keep", "[10:02] Ann: I will pay.")):
        output = tmp_path / f"{mode}.json"
        code = main(["evaluate", "--registry", str(speaker_registry), "--models", "longest-3-tagged",
                     "--data", str(data), "--speakers", mode, "--output", str(output)])
        capsys.readouterr()
        report = json.loads(output.read_text())
        assert code == 0 and report["settings"]["speakers"] == mode
        assert report["rows"][0]["summary"].splitlines()[0] == expected
    with pytest.raises(SystemExit):
        main(["evaluate", "--models", "x", "--speakers", "names"])
    assert "invalid choice: 'names'" in capsys.readouterr().err


@pytest.mark.skipif(not (ROOT / "assets" / "mini" / "mini-instruct" / "config.json").is_file(),
                    reason="the shipped mini models are not in this checkout")
def test_mini_instruct_on_chats_leaves_no_tag():
    registry = Registry.from_file(ROOT / "models.toml")
    examples = load_split(str(CHATS), "test")[:6]
    results = summarize(registry, ["mini-instruct"], examples, decoding=DecodingSettings(max_new_tokens=40))
    assert all(r.error is None for r in results)
    assert sum(bool(TAG.search(r.raw_summary)) for r in results) >= 3  # the model writes tags...
    assert not any(TAG.search(r.summary) for r in results)  # ...and the user sees names


def test_the_chats_set_is_ours_and_loads():
    examples = load_split(str(CHATS), "test")
    assert len(examples) >= 36 and all(len(e.references) == 1 for e in examples)
    formats = {parse(e.dialogue).format for e in examples}
    assert formats == {"name", "timestamped", "whatsapp", "transcript"}
    assert max(len(parse(e.dialogue).speakers) for e in examples) == 5
    assert not any(TAG.search(e.dialogue) or TAG.search(e.summary) for e in examples)


# ---------------------------------------------------------------------------------------------
# the Studio: cards, the toggle, batch


@pytest.fixture
def studio(speaker_registry, tmp_path):
    return core.Studio(Registry.from_file(speaker_registry), data_source=str(tmp_path / "none"),
                       results_path=tmp_path / "none.json", output_dir=tmp_path / "out")


def test_card_shows_the_speakers_and_the_mapping_and_the_toggle_turns_it_off(studio):
    decoding = core.decoding_settings(max_new_tokens=8)
    view = studio.comparisons.compare_all(COOKIES, "", ["longest-3-tagged", "longest-3"], decoding=decoding)
    html = core.render_cards(view)
    assert "Speakers: Amanda → #Person1#, Jerry → #Person2#" in html
    assert "Speakers: Amanda, Jerry" in html
    data = view.to_dict()["models"]
    assert data[0]["speaker_mapping"] == {"Amanda": "#Person1#", "Jerry": "#Person2#"}
    assert data[0]["summary"] == COOKIES and data[0]["raw_summary"].startswith("#Person1#:")
    kept = studio.comparisons.compare_all(COOKIES, "", ["longest-3-tagged"], decoding=decoding, speakers="keep")
    assert "Speakers:" not in core.render_cards(kept) and kept.to_dict()["models"][0]["speaker_mapping"] == {}
    blind = studio.comparisons.compare_all(COOKIES, "", ["longest-3-tagged", "longest-3"], decoding=decoding, blind=True)
    assert "Speakers:" not in core.render_cards(blind)  # a mapping would tell which kind of model
    with pytest.raises(UserError, match="speakers must be one of"):
        studio.comparisons.compare_all(COOKIES, "", ["longest-3"], speakers="nope")


def test_card_shows_the_no_speakers_note_in_one_line(studio):
    view = studio.comparisons.compare_all("Please find the report attached. It is due at 5.", "", ["longest-3", "tagged"],
                              decoding=core.decoding_settings(max_new_tokens=4))
    html = core.render_cards(view)
    assert html.count(f'<div class="ds-note ds-speaker-note">{markupsafe.escape(NO_SPEAKERS_NOTE)}</div>') == 2
    assert "Speakers:" not in html


def test_batch_maps_speakers_and_keeps_when_asked(studio, tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"id": "c1", "dialogue": COOKIES, "summary": "Amanda bakes."}) + "\n")
    auto = studio.batches.run(path, ["longest-3-tagged"])
    assert auto.rows[0]["summary"] == COOKIES and auto.rows[0]["speakers"] == "Amanda → #Person1#, Jerry → #Person2#"
    keep = studio.batches.run(path, ["longest-3-tagged"], speakers="keep")
    assert keep.rows[0]["speakers"] == "" and keep.rows[0]["summary"] == COOKIES
    written = auto.csv_path.read_text(encoding="utf-8")
    assert "Amanda → #Person1#, Jerry → #Person2#" in written
