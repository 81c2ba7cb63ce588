"""Metric names used by PromQL expressions, without a PromQL parser: strings, label matchers, grouping
clauses, range/offset durations and Grafana variables are removed; what is left that looks like an identifier
and is not a function, keyword or number is a metric name. Enough for the dashboard and rule expressions here
(tested on known expressions in test_deploy_metrics.py)."""

from __future__ import annotations

import re

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_NUMBER = re.compile(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("1m", text)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def label_matchers(expr: str) -> set[tuple[str, str]]:
    """(label, value) pairs of the equality matchers in `expr`, e.g. {("label", "PNEUMONIA")}."""
    pairs = set()
    for block in _MATCHERS.findall(expr):
        pairs.update(re.findall(r'(\w+)\s*=\s*"([^"]*)"', block))
    return pairs
