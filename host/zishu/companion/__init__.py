"""The companion: talking with a character. Its parts: the reply stream cut into speakable
sentences with their emotion tags (``stream_text``) and the character's memory (``memory``);
the turn pipeline, the characters and the UI build on them.
"""
