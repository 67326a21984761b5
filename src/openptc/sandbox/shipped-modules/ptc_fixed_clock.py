"""The wall clock frozen at one instant for a replay pass, so that every pass sees the same "now".

Shipped, like ``ptc_program``, under its own top-level name: in front of the replay harness's
source (``managed/harness.py``), which alone uses it. Why this directory's name has a hyphen:
see ``ptc_program``. Standard library only, CPython >= 3.10, no ``from __future__`` import.
"""

import datetime
import time
from typing import Any


class _RealTypeCheck(type):
    """``isinstance(x, datetime.date)`` stays true for real dates while the class is frozen."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.__bases__[0])

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return issubclass(subclass, cls.__bases__[0])


def frozen_date_classes(now: float) -> tuple[type, type]:
    """``datetime.date`` and ``datetime.datetime`` whose today()/now() return ``now``."""

    class date(datetime.date, metaclass=_RealTypeCheck):
        @classmethod
        def today(cls) -> Any:
            return cls.fromtimestamp(now)

        def __repr__(self) -> str:
            return "datetime." + super().__repr__()

    class datetime_(datetime.datetime, metaclass=_RealTypeCheck):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return cls.fromtimestamp(now, tz)

        @classmethod
        def utcnow(cls) -> Any:
            utc = datetime.timezone.utc  # noqa: UP017 (datetime.UTC is new in 3.11)
            return cls.fromtimestamp(now, utc).replace(tzinfo=None)

        @classmethod
        def today(cls) -> Any:
            return cls.fromtimestamp(now)

        def __repr__(self) -> str:
            return "datetime." + super().__repr__()

    datetime_.__name__ = datetime_.__qualname__ = "datetime"
    for cls in (date, datetime_):
        cls.__module__ = "datetime"
    return date, datetime_


class FixedClock:
    """The wall clock frozen at one instant for a pass, so that every pass sees the same "now".

    ``time.monotonic`` and ``time.perf_counter`` stay real: the event loop runs on them, and a
    program that branches on them is what divergence detection is for.
    """

    def __init__(self, now: float) -> None:
        self.now = now
        self.saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        now = self.now
        real_localtime, real_gmtime, real_strftime = time.localtime, time.gmtime, time.strftime
        date, datetime_ = frozen_date_classes(now)
        self.patch(time, "time", lambda: now)
        self.patch(time, "time_ns", lambda: round(now * 1e6) * 1000)
        self.patch(
            time, "localtime", lambda secs=None: real_localtime(now if secs is None else secs)
        )
        self.patch(time, "gmtime", lambda secs=None: real_gmtime(now if secs is None else secs))
        self.patch(time, "ctime", lambda secs=None: time.asctime(time.localtime(secs)))
        self.patch(
            time,
            "strftime",
            lambda fmt, t=None: real_strftime(fmt, real_localtime(now) if t is None else t),
        )
        self.patch(datetime, "date", date)
        self.patch(datetime, "datetime", datetime_)

    def patch(self, owner: Any, name: str, value: Any) -> None:
        self.saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def remove(self) -> None:
        while self.saved:
            owner, name, value = self.saved.pop()
            setattr(owner, name, value)
