"""The one console every command prints to, and how commands print what they did not write.

Rich reads ``[word]`` as markup, so text from elsewhere (an exception, a path, a model's answer)
printed as markup loses its brackets: ``pip install 'openptc[docker]'`` would show as
``pip install 'openptc'``. ``say`` and ``fail`` print such text literally.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console()


def say(label: str, message: object, *, style: str = "red", to: Console = console) -> None:
    """``label`` in ``style``, then ``message`` exactly as it is (no markup, no highlighting,
    and not wrapped: one line stays one line for whoever greps the output)."""
    to.print(Text.assemble((f"{label} ", style), str(message)), highlight=False, soft_wrap=True)


def fail(command: str, message: object, *, to: Console = console) -> None:
    """One error line for ``command``: ``ptc serve: <message>``."""
    say(f"{command}:", message, to=to)
