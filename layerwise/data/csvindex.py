"""Columns of a CSV file that are not data: a row index written by pandas or R before the first
column, and the empty column a delimiter at the end of every line makes. Both are left out with a
note; an unnamed column that is neither is an error naming it."""

import numpy as np

from ..errors import DataError

# First-column names pandas (df.to_csv: ""; read back: "Unnamed: 0") and R (write.csv: "", Rdatasets:
# "rownames") give a row index.
INDEX_NAMES = ("", "unnamed: 0", "rownames", "index")


def drop_index(path, names, columns, notes):
    """Leave out a first column that is a row index: unnamed (or named like one) and distinct integers
    (pandas' `to_csv()`), or unnamed and distinct texts (R's `write.csv()` row names)."""
    first = names[0] if names else None
    if first is None or len(names) < 2 or first.strip("'\"").lower() not in INDEX_NAMES:
        return names, columns
    c = columns[first]
    v = c.numbers
    if np.isfinite(v).all() and (v == np.round(v)).all() and len(np.unique(v)) == len(v):
        what = "distinct integers"
    elif first == "" and not c.numeric and not c.missing.any() and len(np.unique(c.text)) == len(c.text):
        what = "distinct row names"
    elif first == "":
        raise DataError(f"{path}, line 1: column 1 of the header has no name, and its cells are not a row index "
                        "(distinct integers or distinct row names); give it a name in the header")
    else:
        return names, columns
    notes.append(f"column 1 ({first!r}) is a row index ({what}): left out")
    return names[1:], {n: c for n, c in columns.items() if n != first}


def drop_empty_last(path, names, columns, notes):
    """Leave out an unnamed last column with no value in any row: a delimiter at the end of every line
    (some spreadsheet exports)."""
    last = names[-1] if len(names) > 1 else None
    if last != "":
        return names, columns
    if not columns[last].missing.all():
        raise DataError(f"{path}, line 1: column {len(names)} of the header has no name; give it one")
    notes.append(f"column {len(names)} has no name and no values (a delimiter at the end of each line): left out")
    return names[:-1], {n: c for n, c in columns.items() if n != last}
