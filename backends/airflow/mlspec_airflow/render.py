"""The jinja2 environment for the DAG templates: spec data enters templates only as Python literals."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from mlspec_airflow import pyliteral


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlspec_airflow", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # the output is Python source; escaping is pyliteral's job
    )
    env.globals["lit"] = pyliteral.literal
    env.filters["py"] = pyliteral.flat
    env.globals["names"] = names
    env.globals["call"] = pyliteral.call
    env.globals["fits"] = pyliteral.fits
    return env


def names(items: list[str], indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """A list of Python names (not strings) laid out like pyliteral.literal lays out a list."""
    one_line = prefix + ("[" + ", ".join(items) + "]" if len(items) != 1 else items[0]) + suffix
    if indent + len(one_line) <= pyliteral.LINE_LENGTH or len(items) == 1:
        return one_line
    pad = " " * (indent + 4)
    return "\n".join([prefix + "["] + [f"{pad}{item}," for item in items] + [" " * indent + "]" + suffix])


def render(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)
