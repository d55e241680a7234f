"""``-p NAME VALUE`` checked against the profile before any run starts.

A notebook would meet ``-p epochs abc`` only deep in its training (``'<' not supported``), hours
into a batch; the profile already says what each setting is (``epochs=40`` is an integer), so the
batch refuses a value of another type at once, in one line::

    error: -p epochs abc: expected an integer (the thesis profile's case1.epochs is 40)

The type is that of the parameter's value in the chosen profile's sections (``case1``,
``pretrain``, ...): an int is accepted where a float is expected, a JSON list where a tuple is,
and ``none`` anywhere (it means "the profile's value"). A setting that is None in one of the
sections takes anything, and a parameter in no section (paths such as ``cache_dir``) is not
checked here.
"""
from __future__ import annotations

from typing import Any, Callable

from .plan import PlanError

__all__ = ["check_parameters"]

#: what a value of each profile type must be, in words
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a text",
             list: "a JSON list, e.g. [1, 2]", dict: 'a JSON object, e.g. {"1/3": 12}'}


def _kind(value: Any) -> type:
    """The type a profile value stands for: a tuple is a list, an int subclass is only bool."""
    if isinstance(value, bool):
        return bool
    return list if isinstance(value, tuple) else type(value)


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or kind is bool:   # bool is an int to Python, not to a user
        return isinstance(value, bool) and kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def check_parameters(given: list[tuple[str, str]] | list[list[str]], profile: str, *,
                     parse: Callable[[str], Any]) -> None:
    """Refuse a ``-p`` value whose type differs from the profile's for that parameter.

    Args:
        given: the ``-p NAME VALUE`` pairs as typed.
        profile: the batch's profile (a key of :data:`pe_utils.profiles.PROFILES`).
        parse: how the command line turns a typed value into Python (a bool, an int, a JSON
            list, ...): the same function that makes the value the notebooks get.

    Raises:
        PlanError: ``-p NAME VALUE: expected <kind> (the <profile> profile's <section>.<name>
            is <value>)`` for the first value that does not fit.
    """
    from ..profiles import PROFILES

    for name, text in given:
        value = parse(text)
        if value is None:   # "the profile's value"
            continue
        found = [(section, values[name]) for section, values in PROFILES[profile].items() if name in values]
        if not found or any(v is None for _, v in found):   # not a profile setting, or any value
            continue
        if any(_fits(value, _kind(v)) for _, v in found):
            continue
        section, example = found[0]
        raise PlanError(f"-p {name} {text}: expected {_EXPECTED.get(_kind(example), type(example).__name__)} "
                        f"(the {profile} profile's {section}.{name} is {example!r})")
