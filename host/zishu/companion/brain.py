"""What the LLM is told for one turn: the character (persona, scenario, example dialogue), the
emotion protocol, the lorebook entries the conversation triggers, the long-term memories recalled
for it, the short-term history, and the user's message.

``Character`` is the part of a character template the brain needs, read from an installed catalog
character (``Character.installed``) or built directly. ``triggered_lore`` follows SillyTavern's
world-info rules: an enabled entry is injected when it is ``constant``, or when one of its ``keys``
appears in the scanned text and, if it has ``secondary_keys``, one of those too; the highest
``priority`` first, within a character budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zishu.catalog.manifest import CharacterSpec, LoreEntry

LORE_SCAN_MESSAGES = 4  # the user's message and the three messages before it are scanned for keys
LORE_BUDGET_CHARS = 2000  # the most lorebook text injected in one turn


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


@dataclass
class Turn:
    """Everything the brain put in front of the LLM this turn, kept so the UI can show it."""

    messages: list[dict]
    lore: list[LoreEntry] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)


def triggered_lore(entries: list[LoreEntry], scanned: list[str], budget: int = LORE_BUDGET_CHARS) -> list[LoreEntry]:
    """The entries ``scanned`` (recent message texts) triggers, highest priority first, within ``budget``."""
    text = "\n".join(scanned)
    folded = text.casefold()

    def appears(key: str, case_sensitive: bool) -> bool:
        return key in text if case_sensitive else key.casefold() in folded

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
               user_name: str = "User") -> Turn:
    """The messages for this turn. ``history`` is [{"role", "content"}] oldest first, without the
    user's new message; ``memories`` are the long-term memories recalled for it."""
    spec = character.spec
    fill = _placeholders(character.name, user_name)
    scanned = [m["content"] for m in history[-(LORE_SCAN_MESSAGES - 1):]] + [user_text]
    lore = triggered_lore(spec.lorebook, scanned)
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
    said = user_text
    if spec.post_history_instructions:  # after the history, where it weighs most; inside the user's
        said += "\n\n" + fill(spec.post_history_instructions)  # turn, as strict chat templates allow no 2nd system
    messages = [{"role": "system", "content": "\n\n".join(system)}, *history, {"role": "user", "content": said}]
    return Turn(messages=messages, lore=lore, memories=list(memories))


def _placeholders(char: str, user: str):
    """SillyTavern's {{char}} and {{user}} placeholders (any case) filled in."""
    import re

    pattern = re.compile(r"\{\{\s*(char|user)\s*\}\}", re.I)
    return lambda text: pattern.sub(lambda m: char if m.group(1).lower() == "char" else user, text)
