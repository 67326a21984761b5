"""``python -m openptc``: the ``ptc`` command line, for where the script is not on PATH."""

from openptc.cli import app

app(prog_name="ptc")
