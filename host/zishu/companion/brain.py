"""What the LLM is told for one turn: the character (persona, scenario, example dialogue), the
emotion protocol, the lorebook entries the conversation triggers, the long-term memories recalled
for it, the short-term history, and the user's message.

``Character`` is the part of a character template the brain needs, read from an installed catalog
character (``Character.installed``) or built directly. ``triggered_lore`` follows SillyTavern's
world-info rules: an enabled entry is injected when it is ``constant`` (keyless constant entries
kept aside by a card import included), or when one of its ``keys`` appears in the scanned text
(``/pattern/flags`` keys as regexes, see ``zishu.companion.lore_keys``) and, if it has
``secondary_keys``, one of those too; the highest ``priority`` first, within a character budget.

With a ``PromptBudget`` (the model's token counter and the tokens the prompt may take: its context
less the reply's room), ``build_turn`` never hands the model more than that: lorebook entries take
at most a quarter of it and memories an eighth (highest priority, most relevant first), the system
prompt at most half; the user's message is cut to what is left when it alone would not fit (the turn
says how many characters were left out, so the user is told), and the history fills the rest,
newest first, the oldest messages dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zishu.catalog.cards import keyless_constant_entries
from zishu.catalog.manifest import CharacterSpec, LoreEntry
from zishu.companion.lore_keys import key_appears
from zishu.companion.stream_text import Emotion, shown_greeting

LORE_SCAN_MESSAGES = 4  # the user's message and the three messages before it are scanned for keys
LORE_BUDGET_CHARS = 2000  # the most lorebook text injected in one turn
# what a chat template wraps around one message (role header, end marker), counted with the model's
# own tokenizer as plain text: it overestimates templates whose markers are single special tokens
MESSAGE_FRAME = "<|im_start|>assistant\n<|im_end|>\n"


@dataclass
class Character:
    id: str
    name: str
    spec: CharacterSpec
    folder: Path | None = None  # the installed version folder, when it came from the catalog

    @classmethod
    def installed(cls, registry, rid: str, version: str | None = None) -> Character:
        """The installed character ``rid`` (ResourceNotAvailable when it is not installed)."""
        from zishu.errors import UsageError
        from zishu.resources.install import manifest_of

        folder = registry.path(rid, version)
        manifest = manifest_of(folder)
        if manifest.kind != "character":
            raise UsageError(f"{rid} is a {manifest.kind}, not a character")
        return cls(id=rid, name=manifest.name, spec=manifest.spec, folder=folder)

    @property
    def emotion_names(self) -> list[str]:
        return list(self.spec.emotions)


@dataclass(frozen=True)
class PromptBudget:
    """``count(text)``: tokens with the model's tokenizer; ``tokens``: the most the prompt may take."""

    count: Callable[[str], int]
    tokens: int


@dataclass
class Turn:
    """Everything the brain put in front of the LLM this turn, kept so the UI can show it;
    ``message_cut``: characters of the user's message left out to fit the context,
    ``history_dropped``: the oldest history messages left out."""

    messages: list[dict]
    lore: list[LoreEntry] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)
    message_cut: int = 0
    history_dropped: int = 0


def triggered_lore(entries: list[LoreEntry], scanned: list[str], budget: int = LORE_BUDGET_CHARS) -> list[LoreEntry]:
    """The entries ``scanned`` (recent message texts) triggers, highest priority first, within ``budget``."""
    text = "\n".join(scanned)
    folded = text.casefold()

    def appears(key: str, case_sensitive: bool) -> bool:
        return key_appears(key, text, folded, case_sensitive)

    def fires(entry: LoreEntry) -> bool:
        if not entry.enabled:
            return False
        if entry.constant:
            return True
        if not any(appears(k, entry.case_sensitive) for k in entry.keys):
            return False
        return not entry.secondary_keys or any(appears(k, entry.case_sensitive) for k in entry.secondary_keys)

    chosen, used = [], 0
    for entry in sorted((e for e in entries if fires(e)), key=lambda e: -e.priority):
        if used + len(entry.content) > budget:
            continue
        chosen.append(entry)
        used += len(entry.content)
    return chosen


def emotion_protocol(character: Character) -> str:
    """The instruction that makes the LLM tag its feelings, with the character's own tags."""
    tags = character.emotion_names or ["开心", "生气", "悲伤", "惊讶", "撒娇", "平静"]
    listed = " ".join(f"[{t}]" for t in tags)
    return (f"Begin each reply, and each change of feeling, with one emotion tag from: {listed}. "
            "Write the tag in square brackets exactly as listed; never explain it.")


def build_turn(character: Character, user_text: str, history: list[dict], memories: Sequence[str] = (),
               user_name: str = "User", budget: PromptBudget | None = None) -> Turn:
    """The messages for this turn. ``history`` is [{"role", "content"}] oldest first, without the
    user's new message; ``memories`` are the long-term memories recalled for it; ``budget`` keeps
    the prompt within the model's context (see the module docstring)."""
    spec = character.spec
    fill = _placeholders(character.name, user_name)
    scanned = [m["content"] for m in history[-(LORE_SCAN_MESSAGES - 1):]] + [user_text]
    lore = triggered_lore([*spec.lorebook, *keyless_constant_entries(spec)], scanned)
    memories = list(memories)
    if budget is not None:
        lore = _fitting(lore, lambda e: budget.count(fill(e.content)), budget.tokens // 4)
        memories = _fitting(memories, lambda m: budget.count(f"- {m}"), budget.tokens // 8)
    system = [fill(spec.persona)]
    if spec.scenario:
        system.append("Scenario: " + fill(spec.scenario))
    if lore:
        system.append("What you know:\n" + "\n".join(fill(e.content) for e in lore))
    if memories:
        system.append(f"What you remember about {user_name}:\n" + "\n".join(f"- {m}" for m in memories))
    if spec.example_dialogue:
        system.append("Examples of how you talk:\n" + fill(spec.example_dialogue))
    system.append(emotion_protocol(character))
    system_text = "\n\n".join(system)
    after = "\n\n" + fill(spec.post_history_instructions) if spec.post_history_instructions else ""
    said, cut, kept_history = user_text, 0, history
    if budget is not None:
        frame = budget.count(MESSAGE_FRAME)
        system_text = cut_to_tokens(system_text, budget.tokens // 2 - frame, budget.count)
        left = budget.tokens - budget.count(system_text) - 2 * frame  # and the reply's own header
        room = max(left - frame - (budget.count(after) if after else 0), 0)
        if budget.count(user_text) > room:
            said = cut_to_tokens(user_text, room, budget.count)
            cut = len(user_text) - len(said)
        left -= frame + budget.count(said + after)
        kept_history = []
        for message in reversed(history):
            left -= frame + budget.count(message["content"])
            if left < 0:
                break
            kept_history.insert(0, message)
    # after the history, where it weighs most; inside the user's turn, as strict chat templates allow
    # no second system message
    messages = [{"role": "system", "content": system_text}, *kept_history, {"role": "user", "content": said + after}]
    return Turn(messages=messages, lore=lore, memories=memories, message_cut=cut,
                history_dropped=len(history) - len(kept_history))


def _fitting(items: list, cost: Callable, tokens: int) -> list:
    """The items, in order, that fit ``tokens`` together (one that does not fit is skipped)."""
    chosen, used = [], 0
    for item in items:
        spent = cost(item)
        if used + spent <= tokens:
            chosen.append(item)
            used += spent
    return chosen


def cut_to_tokens(text: str, tokens: int, count: Callable[[str], int]) -> str:
    """The longest beginning of ``text`` that takes at most ``tokens`` tokens (a binary search over
    its length, so a few counts of at most ``text``'s length)."""
    if tokens <= 0:
        return ""
    if count(text) <= tokens:
        return text
    low, high = 0, len(text)  # text[:low] fits, text[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        if count(text[:middle]) <= tokens:
            low = middle
        else:
            high = middle
    return text[:low]


def opening_greeting(character: Character, user_name: str = "you") -> tuple[str, Emotion | None]:
    """The character's first greeting as people see it: {{char}} and {{user}} filled in, emotion tags
    taken out, and the first emotion it carries (the window's chip, ``zishu chat``'s "(开心)")."""
    first = character.spec.greetings[0] if character.spec.greetings else ""
    return shown_greeting(_placeholders(character.name, user_name)(first), character.spec.emotions)


def _placeholders(char: str, user: str):
    """SillyTavern's {{char}} and {{user}} placeholders (any case) filled in."""
    import re

    pattern = re.compile(r"\{\{\s*(char|user)\s*\}\}", re.I)
    return lambda text: pattern.sub(lambda m: char if m.group(1).lower() == "char" else user, text)
