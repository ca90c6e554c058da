"""Rendering N diagnostics against one source: the text renderer (sources split once, lines cached) next to
the former approach that re-split the whole source for every diagnostic. Figures, not pass/fail.

    python bench/render.py
"""

from __future__ import annotations

import time

from mlspec.diagnostics import Diagnostic, Location, render_text


def resplit_each(diagnostics: list[Diagnostic], text: str) -> str:
    out = []
    for d in diagnostics:  # what render_text did before: splitlines() once per diagnostic
        line = text.splitlines()[d.location.line - 1]
        out.append(f"{d.location}: {d.code} {d.message}\n{line}")
    return "\n".join(out)


def main() -> None:
    print(f"{'diagnostics':>12} {'render_text s':>14} {'re-split s':>11} {'ratio':>7}")
    for n in (2_500, 5_000, 10_000):
        text = "serving:\n" + "".join(f"  unknown_{i}: 1\n" for i in range(n))
        diagnostics = [
            Diagnostic("MS104", f"unknown key 'unknown_{i}'", Location("s.yaml", i + 2, 3)) for i in range(n)
        ]
        start = time.perf_counter()
        render_text(diagnostics, {"s.yaml": text})
        new = time.perf_counter() - start
        start = time.perf_counter()
        resplit_each(diagnostics, text)
        old = time.perf_counter() - start
        print(f"{n:>12} {new:>14.3f} {old:>11.3f} {old / new:>7.1f}")


if __name__ == "__main__":
    main()
