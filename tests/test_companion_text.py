"""The reply stream as speakable pieces: sentence cutting (first chunk short, sentence ends,
decimals, abbreviations, quotes, long runs), emotion tags (split across pieces, unknown brackets
kept, emotion-map lookups) and ``speakable`` combining both on realistic streamed replies."""

from __future__ import annotations

import random
import re

import pytest

from zishu.catalog.manifest import EmotionTarget
from zishu.companion.stream_text import (
    BUILTIN_EMOTIONS,
    Emotion,
    EmotionTags,
    Sentence,
    SentenceSplitter,
    Text,
    canonical_emotion,
    join_spoken,
    speakable,
)
from zishu.errors import UsageError


def split_all(text: str, **options) -> list[str]:
    s = SentenceSplitter(**options)
    return s.feed(text) + s.flush()


def split_pieces(pieces, **options) -> list[str]:
    s = SentenceSplitter(**options)
    out: list[str] = []
    for piece in pieces:
        out += s.feed(piece)
    return out + s.flush()


def piecings(text: str, seed: int = 0):
    """Ways to stream a text: whole, every two-way split, one character at a time, random cuts."""
    yield [text]
    for k in range(1, len(text)):
        yield [text[:k], text[k:]]
    yield list(text)
    rng = random.Random(seed)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 8))))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


# ---- sentences ------------------------------------------------------------------------------


def test_first_chunk_is_cut_at_the_first_comma_later_ones_at_sentence_ends():
    assert split_all("好的，我们今天去公园，然后去吃饭。明天呢，再说吧。") == [
        "好的，",
        "我们今天去公园，然后去吃饭。",
        "明天呢，再说吧。",
    ]
    assert split_all("Well, I think so, yes. Later, maybe!") == ["Well,", "I think so, yes.", "Later, maybe!"]
    assert split_all("はい、わかりました。また明日、会いましょう！") == [
        "はい、",
        "わかりました。",
        "また明日、会いましょう！",
    ]


def test_every_comma_like_mark_can_end_the_first_chunk():
    for mark in "，、；：":
        assert split_all(f"我知道了{mark}谢谢你。")[0] == f"我知道了{mark}"
    for mark in ",;:":
        assert split_all(f"Honestly{mark} thanks.")[0] == f"Honestly{mark}"


def test_first_chunk_waits_for_enough_to_say():
    # "嗯" (one CJK character) and "Oh" are too short to be spoken alone; the next comma decides
    assert split_all("嗯，好的，没问题。") == ["嗯，好的，", "没问题。"]
    assert split_all("Oh, hello there, friend. Bye.") == ["Oh, hello there,", "friend.", "Bye."]
    assert split_all("Oh, hi.", first_min_chars=1) == ["Oh,", "hi."]


def test_ascii_commas_inside_numbers_times_and_urls_are_no_pause():
    assert split_all("It costs 1,000 dollars: at 10:30 sharp. See https://example.com now.") == [
        "It costs 1,000 dollars:",
        "at 10:30 sharp.",
        "See https://example.com now.",
    ]


def test_sentence_end_marks():
    assert split_all("真的吗？太好了！我知道了。嗯……好吧") == ["真的吗？", "太好了！", "我知道了。", "嗯……", "好吧"]
    assert split_all("Really?! Wow!!! Hmm... fine\nNext line\n\nLast") == [
        "Really?!",
        "Wow!!!",
        "Hmm...",
        "fine",
        "Next line",
        "Last",
    ]


def test_decimals_abbreviations_initials_and_list_numbers_do_not_end_a_sentence():
    text = (
        "Pi is 3.14 today. Mr. Smith and Dr. Who met, e.g. at noon, i.e. lunch. "
        "J. K. Rowling wrote it. Visit example.com now. The answer is 42. Yes."
    )
    assert split_all(text, first_min_chars=100) == [
        "Pi is 3.14 today.",
        "Mr. Smith and Dr. Who met, e.g. at noon, i.e. lunch.",
        "J. K. Rowling wrote it.",
        "Visit example.com now.",
        "The answer is 42.",
        "Yes.",
    ]
    assert split_all("Steps:\n1. Wash.\n2. Dry.", first_min_chars=100) == ["Steps:", "1. Wash.", "2. Dry."]
    assert split_all("I did. You? Me. I.", first_min_chars=100) == ["I did.", "You?", "Me.", "I."]


def test_an_english_full_stop_before_chinese_text_ends_the_sentence():
    assert split_all("OK.我们走吧。版本3.5很好。") == ["OK.", "我们走吧。", "版本3.5很好。"]


def test_closing_quotes_and_brackets_stay_with_their_sentence():
    assert split_all("他说：“好的。”然后走了。", first_min_chars=100) == ["他说：“好的。”", "然后走了。"]
    assert split_all("「はい。」と言った。") == ["「はい。」", "と言った。"]
    assert split_all('She said "Hi." Then left. (Really?) Yes.') == [
        'She said "Hi."',
        "Then left.",
        "(Really?)",
        "Yes.",
    ]
    assert split_all("『本当？』彼は笑った。【完】") == ["『本当？』", "彼は笑った。", "【完】"]


def test_a_long_run_is_cut_at_its_last_comma_then_space_then_hard():
    commas = "我们" * 10 + "，" + "然后" * 19 + "，" + "最后" * 30 + "。"
    pieces = split_all(commas, max_chars=60, first_min_chars=100)
    assert pieces[0] == "我们" * 10 + "，" + "然后" * 19 + "，"  # the last comma within 60
    assert "".join(pieces) == commas
    assert pieces[-1] == "最后" * 30 + "。"  # an end mark just past the limit stays with its sentence
    assert all(len(p) <= 61 for p in pieces)

    words = " ".join(["word"] * 40) + "."
    pieces = split_all(words, max_chars=30, first_min_chars=100)
    assert all(len(p) <= 30 for p in pieces) and len(pieces) > 1
    assert join_spoken(pieces) == words
    assert all(p.startswith("word") and p.endswith(("word", "word.")) for p in pieces)  # no word is split

    hard = "啊" * 100
    assert split_all(hard, max_chars=40) == ["啊" * 40, "啊" * 40, "啊" * 20]


def test_a_long_run_is_spoken_before_the_reply_ends():
    s = SentenceSplitter(max_chars=20, first_min_chars=100)
    out = s.feed("这是一个非常非常长的句子，没有任何句号，一直说下去，")
    assert out and len(out[0]) <= 20


def test_whitespace_and_punctuation_only_pieces_are_never_emitted():
    assert split_all("") == []
    assert split_all("   \n\n  ") == []
    assert split_all("\n\n你好。\n\n\n再见。  \n") == ["你好。", "再见。"]
    assert split_all("……嗯，我想想。") == ["……嗯，我想想。"]  # an opening ellipsis goes with what follows
    assert split_all("好的。……") == ["好的。……"]
    assert split_all("……") == []
    assert split_all("好。\n——") == ["好。"]  # nothing speakable left at the end


def test_pieces_come_out_as_soon_as_they_are_complete():
    s = SentenceSplitter()
    assert s.feed("好的") == []
    assert s.feed("，") == ["好的，"]  # a wide comma needs nothing more
    assert s.feed("我们走吧。") == []  # a closing quote could still follow the full stop
    assert s.feed("明") == ["我们走吧。"]
    assert s.feed("天见") == []
    assert s.flush() == ["明天见"]
    # after flush the splitter starts a new reply: the first chunk is short again
    assert s.feed("你好呀，朋友") == ["你好呀，"]


def test_cuts_do_not_depend_on_how_the_reply_was_streamed():
    samples = [
        "好的，我们今天去公园。“真的吗？”她问。嗯……那就这样吧！",
        "Well, Mr. Smith paid 3.14 dollars, e.g. for tea. Then... he left?! OK.\n\nBye",
        "「こんにちは、元気？」と彼女は言った。はい！",
        "我" * 30 + "，" + "你" * 70 + "。" + " ".join(["word"] * 30),
        "It costs 1,000 dollars: at 10:30. 1. First\n2. Second.",
    ]
    for text in samples:
        whole = split_all(text, max_chars=40)
        for pieces in piecings(text):
            assert split_pieces(pieces, max_chars=40) == whole, pieces


def test_join_spoken_puts_spaces_only_between_non_cjk_pieces():
    assert join_spoken(["Hello.", "How are you?", "好的。", "再见。", "Bye."]) == "Hello. How are you?好的。再见。Bye."
    assert join_spoken([]) == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_chars": 4}, "max_chars must be at least 8"),
        ({"first_min_chars": 0}, "first_min_chars must be at least 1"),
        ({"max_chars": "80"}, "max_chars must be a whole number"),
        ({"first_min_chars": True}, "first_min_chars must be a whole number"),
    ],
)
def test_bad_splitter_settings_are_refused(options, message):
    with pytest.raises(UsageError, match=message):
        SentenceSplitter(**options)


def test_feeding_something_other_than_text_is_refused():
    with pytest.raises(UsageError, match=re.escape("SentenceSplitter.feed takes text (str), got bytes")):
        SentenceSplitter().feed(b"hi")
    with pytest.raises(UsageError, match=re.escape("EmotionTags.feed takes text (str), got NoneType")):
        EmotionTags().feed(None)


# ---- emotion tags ---------------------------------------------------------------------------


def parse(pieces, emotion_map=None, **options) -> list[Text | Emotion]:
    """All events, adjacent texts merged (text boundaries depend on the pieces, nothing else does)."""
    tags = EmotionTags(emotion_map, **options)
    events: list[Text | Emotion] = []
    for piece in [*pieces, None]:
        for event in tags.feed(piece) if piece is not None else tags.flush():
            if isinstance(event, Text) and events and isinstance(events[-1], Text):
                events[-1] = Text(events[-1].text + event.text)
            else:
                events.append(event)
    return events


def test_tags_in_every_bracket_style_are_taken_out():
    assert parse(["[开心]你好！[happy] Hi 【生气】哼（难过）唉(Surprised)哦［ shy ］"]) == [
        Emotion("happy", "开心"),
        Text("你好！"),
        Emotion("happy", "happy"),
        Text(" Hi "),
        Emotion("angry", "生气"),
        Text("哼"),
        Emotion("sad", "难过"),
        Text("唉"),
        Emotion("surprised", "Surprised"),
        Text("哦"),
        Emotion("shy", "shy"),
    ]


def test_square_brackets_of_any_width_pair_with_each_other():
    assert parse(["[开心】【sad]［calm］"]) == [
        Emotion("happy", "开心"),
        Emotion("sad", "sad"),
        Emotion("neutral", "calm"),
    ]


def test_parentheses_can_be_left_as_text():
    assert parse(["(happy) hi （开心）"], parentheses=False) == [Text("(happy) hi （开心）")]


def test_bracketed_text_that_is_no_emotion_stays_text():
    text = "见[1]和[注]，还有【重要】的(see above)和（笑话）以及[]、[ ]、[开心果]、(happy]、[sad）。"
    assert parse([text]) == [Text(text)]


def test_a_lone_bracket_is_not_held_for_ever():
    tags = EmotionTags()
    assert tags.feed("a [") == [Text("a ")]  # could still become [happy]
    assert tags.feed("x") == [Text("[x")]  # cannot: released at once
    assert tags.feed("[hap") == []
    assert tags.feed("pyish") == [Text("[happyish")]
    assert tags.feed("[" + " " * 30) == []  # spaces: held up to max_tag_chars inside the brackets
    assert tags.feed("   ") == [Text("[" + " " * 33)]
    assert tags.feed("[开心") == []
    assert tags.flush() == [Text("[开心")]  # the reply ended inside a possible tag: it is text
    assert EmotionTags().feed("[[开心]") == [Text("["), Emotion("happy", "开心")]


def test_tags_split_across_pieces_give_the_same_events_as_the_whole_text():
    emap = {"得意": EmotionTarget(expression="smug"), "Wink": EmotionTarget(motion="wink")}
    samples = [
        "[开心] 你好！今天[ 生气 ]哼。[1]见注【注】。",
        "[happy]Hi there! (sad) Oh no... [wink][得意]哈哈[hap",
        "（害羞）你、你在说什么呀！[开心果]不是表情。[",
    ]
    for text in samples:
        whole = parse([text], emap)
        assert any(isinstance(e, Emotion) for e in whole)
        for pieces in piecings(text):
            assert parse(pieces, emap) == whole, pieces


def test_emotion_map_lookup_by_raw_tag_then_canonical_name_then_synonym():
    smile, sad, wink, joy = (EmotionTarget(expression=x) for x in ("smile", "sad", "wink", "joy"))
    tags = EmotionTags({"开心": smile, "Sad": sad, "[Wink]": wink})
    assert tags.lookup("开心") == Emotion("happy", "开心", smile)  # the raw tag
    assert tags.lookup(" HAPPY ") == Emotion("happy", "HAPPY", smile)  # through a synonym in the map
    assert tags.lookup("难过") == Emotion("sad", "难过", sad)  # through the canonical name, any case
    assert tags.lookup("wink") == Emotion("wink", "wink", wink)  # a tag only the map knows
    assert tags.lookup("生气") == Emotion("angry", "生气", None)  # built in, not in the map
    assert tags.lookup("注") is None
    # the raw tag wins over the canonical name
    both = EmotionTags({"happy": joy, "高兴": smile})
    assert both.lookup("高兴").target == smile
    assert both.lookup("开心").target == joy
    assert parse(["[WINK]"], {"wink": wink}) == [Emotion("wink", "WINK", wink)]


def test_canonical_names():
    assert canonical_emotion("开心") == canonical_emotion("高兴") == canonical_emotion("Happy") == "happy"
    assert canonical_emotion("撒娇") == "coy"
    assert canonical_emotion("平静") == canonical_emotion("calm") == "neutral"
    assert canonical_emotion("害怕") == "afraid"
    assert canonical_emotion("ｈａｐｐｙ") == "happy"  # full-width letters
    assert canonical_emotion("注") is None
    common = {"happy", "angry", "sad", "surprised", "coy", "neutral", "shy", "afraid"}
    assert set(BUILTIN_EMOTIONS.values()) >= common


@pytest.mark.parametrize(
    ("emotion_map", "options", "message"),
    [
        (["开心"], {}, "emotion_map must be a mapping of tag → target, got list"),
        ({1: "x"}, {}, "emotion map: tag 1 is not text"),
        ({"  ": "x"}, {}, "emotion map: tag '  ' is empty"),
        ({"[]": "x"}, {}, "emotion map: tag '\\[\\]' is empty"),
        ({"a]b": "x"}, {}, "emotion map: tag 'a\\]b' contains a bracket or a line break"),
        ({"Happy": 1, "happy ": 2}, {}, "emotion map: tags 'Happy' and 'happy ' are the same tag"),
        ({"x" * 40: 1}, {}, "emotion map: tag 'x+' is longer than 32 characters"),
        (None, {"max_tag_chars": 0}, "max_tag_chars must be a whole number of at least 1"),
    ],
)
def test_bad_emotion_maps_are_refused(emotion_map, options, message):
    with pytest.raises(UsageError, match=message):
        EmotionTags(emotion_map, **options)


# ---- both together --------------------------------------------------------------------------


def stream_tokens(text: str, size: int = 3) -> list[str]:
    """The reply as an LLM streams it: a few characters at a time."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_speakable_on_a_streamed_chinese_reply():
    happy, sad = EmotionTarget(expression="smile"), EmotionTarget(expression="tears")
    reply = "[开心]你好呀，今天过得怎么样？我一直在等你呢！[难过]不过你昨天没来……我有点想你。[happy]"
    items = list(speakable(stream_tokens(reply), {"开心": happy, "sad": sad}))
    e_happy, e_sad = Emotion("happy", "开心", happy), Emotion("sad", "难过", sad)
    e_end = Emotion("happy", "happy", happy)
    assert items == [
        e_happy,
        Sentence("你好呀，", e_happy),
        Sentence("今天过得怎么样？", e_happy),
        Sentence("我一直在等你呢！", e_happy),
        e_sad,
        Sentence("不过你昨天没来……", e_sad),
        Sentence("我有点想你。", e_sad),
        e_end,  # a tag at the very end still comes out
    ]


def test_speakable_on_a_streamed_english_reply_with_a_tag_inside_a_sentence():
    reply = "[happy] Oh, hi there! I missed you. It was (sad) lonely here... [surprised]Wait, is that cake?"
    items = list(speakable(stream_tokens(reply, 4)))
    happy, sad = Emotion("happy", "happy"), Emotion("sad", "sad")
    surprised = Emotion("surprised", "surprised")
    assert items == [
        happy,
        Sentence("Oh, hi there!", happy),  # "Oh," alone is too short to be the first chunk
        Sentence("I missed you.", happy),
        Sentence("It was  lonely here...", happy),  # the tag came inside: it governs what follows
        sad,
        surprised,
        Sentence("Wait, is that cake?", surprised),
    ]


def test_each_sentence_carries_the_last_emotion_yielded_before_it():
    reply = "平静地说。[开心]好！[生气][难过]唉，真是的。最后一句[惊讶]？还有吗"
    for pieces in piecings(reply):
        items = list(speakable(pieces))
        assert items == list(speakable([reply]))
        last = None
        for item in items:
            if isinstance(item, Emotion):
                last = item
            else:
                assert item.emotion == last
    assert [i.name if isinstance(i, Emotion) else i.text for i in items] == [
        "平静地说。",
        "happy",
        "好！",
        "angry",
        "sad",
        "唉，真是的。",
        "最后一句？",
        "surprised",
        "还有吗",
    ]


def test_items_come_out_as_soon_as_they_are_known():
    given: list[str] = []

    def llm():
        for piece in ["[开心", "]好的。", "[sad", "]太", "好了", "！再见"]:
            given.append(piece)
            yield piece

    out = speakable(llm())
    assert next(out) == Emotion("happy", "开心") and given == ["[开心", "]好的。"]
    assert next(out) == Sentence("好的。", Emotion("happy", "开心")) and given[-1] == "]太"
    assert next(out) == Emotion("sad", "sad") and given[-1] == "]太"  # before "太好了！" has ended
    assert next(out) == Sentence("太好了！", Emotion("sad", "sad")) and given[-1] == "！再见"
    assert list(out) == [Sentence("再见", Emotion("sad", "sad"))]


def test_speakable_on_empty_and_tag_only_replies():
    assert list(speakable([])) == []
    assert list(speakable(["", "  ", "\n"])) == []
    assert list(speakable(["[开", "心]"])) == [Emotion("happy", "开心")]
    assert list(speakable(["  [sad]\n"])) == [Emotion("sad", "sad")]
    assert list(speakable(["[注]"])) == [Sentence("[注]")]


def test_speakable_passes_its_settings_on():
    assert list(speakable(["(happy) hi"], parentheses=False)) == [Sentence("(happy) hi")]
    assert list(speakable(["Oh, hi there."], first_min_chars=1)) == [Sentence("Oh,"), Sentence("hi there.")]
    with pytest.raises(UsageError, match="max_chars must be at least 8"):
        list(speakable(["hi"], max_chars=2))


def test_random_replies_stream_the_same_however_they_are_split_and_lose_nothing_speakable():
    rng = random.Random(6)
    alphabet = [*"ab 你好，。！？.,:;…\n\"”」)]【】[(（）1 3", "Mr.", "e.g.", "[开心]", "(sad)", "3.14", "……", "[开"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        options = {"max_chars": rng.choice([8, 20, 80]), "first_min_chars": rng.choice([1, 4])}
        whole = list(speakable([text], **options))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 8))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert list(speakable(pieces, **options)) == whole, pieces
        untagged = "".join(e.text for e in parse([text]) if isinstance(e, Text))
        spoken = "".join(i.text for i in whole if isinstance(i, Sentence))
        squeeze = "".join(untagged.split())
        assert squeeze.startswith("".join(spoken.split())), text
        assert not any(ch.isalnum() for ch in squeeze[len("".join(spoken.split())) :]), text
        assert all(i.text and i.text == i.text.strip() for i in whole if isinstance(i, Sentence))
