"""What a table's columns are, decided once from the file and stored with the model: dates and times
become numbers, ID-like columns are left out, missing cells are imputed, rare categories grouped.

Each decision is a plain-JSON entry of the `preprocessing` dict (see tabular.py), so eval and predict
apply exactly what training decided:
  "derived":    {column: "date" | "time"}: a date -> year, day of year, weekday (and hour when the
                cells carry a time); a time of day -> hours since midnight
  "fill":       {feature: median (numbers) or most frequent category (text)}, from the training rows
  "indicators": [feature, ...]: the features that get a 0/1 "is missing" input
  "grouped":    [feature, ...]: categories rarer than data.min_category_count in the training rows
                (and unseen ones) share the category OTHER
"""

import re

import numpy as np

from .csvfile import Column

OTHER = "(other)"
DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?: ?([AaPp][Mm]))?$")
ID_NAME = re.compile(r"^(id|.*[ _.]id|.*ID)$", re.IGNORECASE)
ID_MIN_DISTINCT = 20  # fewer distinct values than this are categories, however few rows there are


# --- dates, times and IDs -------------------------------------------------------------------------


def derived_names(column, kind, hours=True):
    if kind == "time":
        return [f"{column} hours"]
    return [f"{column} year", f"{column} day of year", f"{column} weekday"] + ([f"{column} hour"] if hours else [])


def analyse(table, features, dates="features", ids="drop"):
    """(derived {column: kind}, dropped [columns], notes) for the feature columns of `table`: a text
    column whose values are dates or times of day is derived (or dropped with data.dates: drop); a
    column with a distinct text per row, or an integer ID column, is dropped (data.ids: drop); a column
    with no value in any row is dropped."""
    derived, dropped, notes = {}, [], []
    for f in features:
        c = table[f]
        present = c.text[~c.missing] if c.text is not None else None
        if present is not None and not len(present):
            dropped.append(f)
            notes.append(f"{f!r} has no value in any row: left out")
            continue
        if not c.numeric and present is not None:
            distinct = np.unique(present)
            kind = _time_kind(distinct)
            if kind is not None:
                if dates == "drop":
                    dropped.append(f)
                    notes.append(f"{f!r} holds {kind}s: left out (data.dates: drop)")
                else:
                    derived[f] = kind
                    parts = ", ".join(n[len(f) + 1:] for n in derived_names(f, kind, _has_hours(distinct)))
                    notes.append(f"{f!r} holds {kind}s: used as {parts} (data.dates: drop to leave out)")
                continue
            if ids == "drop" and len(distinct) >= ID_MIN_DISTINCT and len(distinct) * 2 > len(present):
                dropped.append(f)
                notes.append(f"{f!r} is ID-like ({len(distinct):,} distinct texts in {len(present):,} rows): left out "
                             "(data.ids: keep to one-hot it)")
        elif c.numeric and ids == "drop" and ID_NAME.match(f):
            v = c.numbers
            if np.isfinite(v).all() and (v == np.round(v)).all() and len(np.unique(v)) == len(v) > 1:
                dropped.append(f)
                notes.append(f"{f!r} is an ID (distinct integers): left out (data.ids: keep to use it)")
    return derived, dropped, notes


def _time_kind(distinct):
    """"date" when at least 90 % of the distinct values are dates, "time" when they are times of day."""
    sample = distinct[:: max(1, len(distinct) // 200)]  # the regex runs on a few hundred values at most
    for kind, patterns in (("date", (DATE, US_DATE)), ("time", (TIME,))):
        hits = sum(1 for v in sample if any(p.match(v) for p in patterns))
        if hits * 10 >= 9 * len(sample):
            return kind
    return None


def _has_hours(distinct):
    return any((m := DATE.match(v) or US_DATE.match(v)) and m.group(4) is not None for v in distinct[:200])


def derive(table, derived):
    """The table with each derived column replaced by its numeric parts (NaN where a cell is missing or
    not a date), in place of the original column."""
    if not derived:
        return table
    names, columns = [], {}
    for n in table.names:
        if n not in derived:
            names.append(n)
            columns[n] = table[n]
            continue
        c, kind = table[n], derived[n]
        distinct, inverse = np.unique(c.text, return_inverse=True)
        parts = _date_parts(distinct) if kind == "date" else _time_parts(distinct)
        for j, name in enumerate(derived_names(n, kind)):
            names.append(name)
            columns[name] = Column(name, True, parts[inverse, j])
    return type(table)(table.path, names, columns, table._lines, table.delimiter, table.notes)


def _date_parts(values):
    """(len(values), 4) float64: year, day of year (1-366), weekday (Monday 0), hour (NaN without a time)."""
    ymd = np.full((len(values), 3), -1, np.int64)
    hour = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        m = DATE.match(v)
        if m:
            ymd[i] = int(m.group(1)), int(m.group(2)), int(m.group(3))
        elif m := US_DATE.match(v):
            ymd[i] = int(m.group(3)), int(m.group(1)), int(m.group(2))
        if m and m.group(4) is not None:
            hour[i] = int(m.group(4)) + int(m.group(5)) / 60
    ok = (ymd[:, 1] >= 1) & (ymd[:, 1] <= 12) & (ymd[:, 2] >= 1) & (ymd[:, 2] <= 31)
    text = np.array([f"{y:04d}-{mo:02d}-{d:02d}" if good else "NaT" for (y, mo, d), good in zip(ymd, ok)])
    try:
        days = text.astype("datetime64[D]")
    except ValueError:  # an impossible date (31 February): parse one by one
        days = np.array([_day(t) for t in text], "datetime64[D]")
    valid = ~np.isnat(days)
    out = np.full((len(values), 4), np.nan)
    d = days[valid]
    out[valid, 0] = ymd[valid, 0]
    out[valid, 1] = (d - d.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
    out[valid, 2] = (d.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    out[:, 3] = hour
    return out


def _day(text):
    try:
        return np.datetime64(text, "D")
    except ValueError:
        return np.datetime64("NaT")


def _time_parts(values):
    out = np.full((len(values), 1), np.nan)
    for i, v in enumerate(values):
        m = TIME.match(v)
        if m:
            h = int(m.group(1))
            if m.group(4):  # 12:30 AM is 0.5, 1 PM is 13
                h = h % 12 + (12 if m.group(4).lower() == "pm" else 0)
            out[i, 0] = h + int(m.group(2)) / 60 + int(m.group(3) or 0) / 3600
    return out


# --- missing cells and rare categories ------------------------------------------------------------


def fit_fill(train, features, numeric):
    """({feature: median or most frequent category}, [features with a missing cell in `train`])."""
    fill, indicators = {}, []
    for f in features:
        c = train[f]
        bad = np.isnan(c.numbers) if f in numeric else c.missing
        if f in numeric:
            good = c.numbers[~bad]
            fill[f] = float(np.median(good)) if len(good) else 0.0
        else:
            values, counts = np.unique(c.text[~bad], return_counts=True)
            fill[f] = str(values[np.argmax(counts)]) if len(values) else ""
        if bad.any():
            indicators.append(f)
    return fill, indicators


def impute(table, prep):
    """(table with missing cells filled and "is missing" columns added, {feature: cells filled})."""
    fill, indicators, numeric = prep["fill"], set(prep["indicators"]), set(prep["numeric"])
    names, columns, filled = [], {}, {}
    for n in table.names:
        c = table[n]
        names.append(n)
        columns[n] = c
        if n not in fill:
            continue
        bad = np.isnan(c.numbers) if n in numeric else c.missing
        if bad.any():
            filled[n] = int(bad.sum())
            numbers = np.where(bad, fill[n], c.numbers) if n in numeric else c.numbers
            text = c.text if n in numeric or c.text is None else np.where(bad, fill[n], c.text)
            columns[n] = Column(n, c.numeric, numbers, text)
        if n in indicators:
            names.append(f"{n} missing")
            columns[f"{n} missing"] = Column(f"{n} missing", True, bad.astype(np.float64))
    return type(table)(table.path, names, columns, table._lines, table.delimiter, table.notes), filled


def fit_categories(train, categorical, min_count):
    """({feature: sorted categories, OTHER last where grouped}, [grouped features]): a category seen
    fewer than `min_count` times in the training rows joins OTHER when that groups at least two."""
    categories, grouped = {}, []
    for f in categorical:
        values, counts = np.unique(train[f].text, return_counts=True)
        rare = counts < min_count
        if rare.sum() >= 2:
            categories[f] = values[~rare].tolist() + [OTHER]
            grouped.append(f)
        else:
            categories[f] = values.tolist()
    return categories, grouped
