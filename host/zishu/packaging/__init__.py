"""Packaging: a character and what it needs as one file to share (``.zpkg``, SillyTavern cards),
and installing such a file. Formats are registered through the ``register_package_formats`` hook
(``formats.py``); the ``.zpkg`` format (``zpkg.py``) and the card format (``card_format.py``) are
internal plugins like any third party's."""
