"""The self-checks' machinery: a check run quietly for the errors it reports (probe, quiet),
copies of a bundle each doctored one way and the check expected to refuse each or accept it
(expect_refusals), and a chart rendered with other values, expected to render or to be
refused by its schema or templates (chart_variants)."""

from __future__ import annotations

import copy
import os
import sys
from typing import Callable

from .common import Report, helm
from .render import render_values


def quiet(fn, *args) -> list[str]:
    """The errors `fn(report, *args)` reports, its output discarded."""
    r = Report(False)
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            fn(r, *args)
        finally:
            sys.stdout = stdout
    return r.errors


def probe(fn, *args) -> list[str]:
    """The errors a check `fn(report, label, *args)` reports, quietly (label "probe")."""
    return quiet(fn, "probe", *args)


def expect_refusals(report: Report, cases, errors_of: Callable[..., list[str]], accepted: str, rejected: str, shown: int = 2) -> None:
    """Put each finding back and see it refused. Each case is (what, base, doctor, want,
    *extra): a deep copy of `base`, doctored by `doctor(copy)` (None: `base` is the variant
    itself), is given to `errors_of(copy, *extra)`. With `want` None nothing may be reported
    (the check `accepted`), else an error containing `want` must be (the check `rejected`);
    both are formats of {what}, and `shown` of the errors are quoted when they fail."""
    for what, base, doctor, want, *extra in cases:
        b = copy.deepcopy(base)
        if doctor is not None:
            doctor(b)
        errs = errors_of(b, *extra)
        if want is None:
            report.check(not errs, accepted.format(what=what), str(errs[:shown]))
        else:
            report.check(any(want in e for e in errs), rejected.format(what=what), f"errors: {errs[:shown]}")


def chart_variants(report: Report, chart: str, variants: list[tuple[dict, bool]], what: Callable[[dict, bool], str],
                   then: Callable[[dict, list[dict]], None]) -> None:
    """Each (values, ok): the chart rendered with those values must render (ok) or be refused
    by its schema or a template (not ok), the check `what(values, ok)`; `then(values, objects)`
    checks each rendering that was to be."""
    for values, ok in variants:
        label = what(values, ok)
        try:
            objects = render_values(chart, values)
        except helm.HelmError as e:
            report.check(not ok, label, f"helm: {e}")
            continue
        if report.check(ok, label, "it renders"):
            then(values, objects)
