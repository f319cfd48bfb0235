"""``zishu chat CHARACTER``: talk with an installed character in the terminal, by text.

The same pipeline as the window (persona, lorebook, memories, emotion tags), without speech: the
reply prints sentence by sentence as it is generated, its emotions in dim brackets, and the
latency of each turn goes to stderr. The chat talked in last goes on (the same chats as the window's);
``--chat ID`` continues another, and ``/chats`` lists them. Lines starting with ``/`` are commands
(``/help``). A message
is at most 4,000 characters (longer ones are refused, exit status 2 with ``-m``); one the model's
context cannot hold is cut to fit, and a note on stderr says so.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape

from zishu.companion import chats
from zishu.companion.brain import opening_greeting
from zishu.companion.text_chat import TextReply, forget_numbered
from zishu.errors import UsageError, ZishuError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

HELP = """/chats             this character's chats, newest first (zishu chat CHARACTER --chat ID continues one)
/memories          what the character remembers about you (numbered)
/forget N          forget memory N (see /memories)
/remember TEXT     keep TEXT as a memory
/quit              leave (Ctrl-D does too)"""


@click.command("chat")
@click.argument("character")
@click.option("--message", "-m", "messages", multiple=True,
              help="Say this and print the reply, without the interactive prompt (repeatable: one turn each).")
@click.option("--model", help="The LLM to use instead of the character's own (catalog id or GGUF path).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Where the language model and memory run (default: Settings, else auto: a GPU when the "
                   "engine's library can use one).")
@click.option("--chat", "chat_id", type=int, default=None,
              help="Continue this chat (an id from /chats or the window's chat list; default: the one talked in last).")
@click.option("--no-memory", is_flag=True, help="Neither recall nor store anything for this chat.")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(1))
@click.option("--seed", type=int, default=None, help="Fix the sampling seed for reproducible replies.")
@click.option("--name", "user_name", default="User", show_default=True, help="What the character calls you.")
def chat_command(character, messages, model, device, chat_id, no_memory, max_tokens, seed, user_name):
    """Talk with CHARACTER (an installed character id, e.g. local/mei) in the terminal."""
    from zishu.companion.sessions import companion_character, open_text_companion
    from zishu.engines.kinds import ChatOptions
    from zishu.runtime import Runtime

    runtime = Runtime()
    who = companion_character(runtime.registry, character)
    if chat_id is not None:
        if no_memory:
            raise UsageError("--chat needs memory: a chat is kept with it (leave out --no-memory)")
        chats.find_chat(chat_id, who.id)  # NotFound names the chat and the character
    with err.status(f"loading {who.name} …"):
        devices = {"llm": device, "embedding": device} if device else None
        companion = open_text_companion(runtime, who, models={"llm": model}, memory=not no_memory,
                                        user_name=user_name, devices=devices)
    for note in companion.notes:
        err.print(f"[dim]{escape(note)}[/]")
    talk = companion.conversation
    talk.options = ChatOptions(max_tokens=max_tokens, seed=seed)
    if chat_id is not None:
        talk.chat = chat_id
    if messages:
        for text in messages:
            _turn(talk, text)
        return
    if chat_id is not None:  # continuing a chat: what was said, on its chosen branch
        for turn in chats.messages(chat_id):
            speaker = escape(who.name) if turn.role == "assistant" else "[bold cyan]You[/]"
            out.print(f"[bold]{speaker}[/]: {escape(turn.text) or '[dim](no words)[/]'}")
    elif who.spec.greetings:
        greeting, emotion = opening_greeting(who, user_name)
        mood = f" [dim]({escape(emotion.tag)})[/]" if emotion else ""
        out.print(f"[bold]{escape(who.name)}[/]{mood}: {escape(greeting)}")
    err.print("[dim]/help for commands; Ctrl-D to leave[/]")
    while True:
        try:
            text = out.input("[bold cyan]You[/]: ").strip()
        except (EOFError, KeyboardInterrupt):
            out.print()
            return
        if not text:
            continue
        try:
            if text.startswith("/"):
                if not _command(talk, text):
                    return
                continue
            _turn(talk, text)
        except ZishuError as e:  # a bad command or a failed turn: say so, keep chatting
            err.print(f"[red]error:[/] {escape(str(e))}")


def _turn(talk, text: str) -> None:
    """One reply, printed as its sentences come; Ctrl-C stops it and keeps what was printed."""
    out.print(f"[bold]{escape(talk.character.name)}[/]: ", end="")
    reply = TextReply(talk, text)
    try:
        for event in reply:
            if event["type"] == "emotion":
                mood = f"[dim]({escape(event['name'])})[/]"
                out.print(f" {mood}" if reply.said else f"{mood} ", end="")
            elif event["type"] == "text":
                out.print(escape(event["text"]), end="")
            elif event["type"] == "note":
                err.print(f"[yellow]note:[/] {escape(event['message'])}")
            elif event["type"] == "done":
                out.print("" if event["text"] else "[dim](no words)[/]")
                stages = ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in event["latency"].items())
                err.print(f"[dim]{stages}[/]")
    except KeyboardInterrupt:
        reply.interrupt()
        out.print("[dim]— interrupted[/]")


def _command(talk, line: str) -> bool:
    """Run a /command; False when the chat should end."""
    name, _, arg = line.partition(" ")
    memory, rid = talk.memory, talk.character.id
    if name in ("/quit", "/exit"):
        return False
    if name == "/help":
        out.print(HELP)
    elif name == "/chats":
        _list_chats(talk)
    elif memory is None and name in ("/memories", "/forget", "/remember"):
        err.print("[yellow]memory is off for this chat[/]")
    elif name == "/memories":
        rows = memory.memories(rid)
        for i, m in enumerate(rows, 1):
            out.print(f"{i:>3}. {escape(m.text)}{' [dim](pinned)[/]' if m.pinned else ''}")
        if not rows:
            out.print("[dim]nothing remembered yet[/]")
    elif name == "/forget":
        forgotten = forget_numbered(memory, rid, arg)
        out.print(f"forgot: {escape(forgotten.text)}")
    elif name == "/remember":
        kept = memory.remember(rid, arg)
        out.print(f"remembered: {escape(kept.text)}")
    else:
        err.print(f"[yellow]unknown command {escape(name)}: /help lists them[/]")
    return True


def _list_chats(talk) -> None:
    """The character's chats, newest first; the one this conversation writes to marked with *."""
    found = chats.list_chats(talk.character.id)
    current = talk.chat if talk.chat is not None else (found[0]["id"] if found else None)
    for c in found:
        last = f" · {escape(c['last'][:60])}" if c["last"] else ""
        mark = "*" if c["id"] == current else " "
        out.print(f"{mark}{c['id']:>4}  {escape(c['title'])} · {c['messages']} messages{last}")
    if not found:
        out.print("[dim]no chats yet: what you say now starts one[/]")
