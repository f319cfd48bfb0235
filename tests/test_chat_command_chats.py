"""``zishu chat`` and the window's chats: ``--chat ID`` continues a chosen chat (its history shown, the
new turns written there, not in the chat talked in last), ``/chats`` lists them newest first, and a
chat that is not the character's is refused. The real CLI in a subprocess, with Mei's tiny models."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import zishu


def chat(env: dict, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zishu.cli", "chat", "acme/mei", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_chat_picks_an_existing_chat_and_lists_them(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    zishu(env, "chat", "acme/mei", "-m", "My name is Lin.")  # the first chat

    from zishu.companion import chats
    from zishu.runtime import Runtime

    runtime = Runtime(companion_home)
    try:
        first = chats.list_chats("acme/mei")[0]["id"]
        second = chats.new_chat("acme/mei", title="Second").id  # now the one talked in last
    finally:
        runtime.close()

    zishu(env, "chat", "acme/mei", "--chat", str(first), "-m", "Again.")
    runtime = Runtime(companion_home)
    try:
        assert [t.text for t in chats.messages(first)] == ["My name is Lin.", "Hugs, cat.", "Again.", "Hugs, cat."]
        assert chats.messages(second) == []
    finally:
        runtime.close()

    shown = chat(env, "--chat", str(first), stdin="/chats\n/quit\n")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:4] == ["You: My name is Lin.", "Mei: Hugs, cat.", "You: Again.", "Mei: Hugs, cat."]  # its history
    listed = [line.removeprefix("You: ") for line in lines if "messages" in line]  # after the prompt
    assert listed[0].split()[:2] == ["*", str(first)] and "4 messages · Hugs, cat." in listed[0]  # newest first
    assert listed[1].split()[0] == str(second) and "Second · 0 messages" in listed[1]

    missing = chat(env, "--chat", "999", "-m", "hello")
    assert missing.returncode == 12 and "no chat 999 of acme/mei" in missing.stderr
    no_memory = chat(env, "--chat", str(first), "--no-memory", "-m", "hello")
    assert no_memory.returncode == 2 and "--chat needs memory" in no_memory.stderr
