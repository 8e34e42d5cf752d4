"""Reading a CSV file (its encoding, delimiter and records) and the values of its cells:
dates, numbers, booleans as people write them."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from resolvers.csv_fields import normalise
from resolvers.dates import in_range

DELIMITERS = ",;\t|"


class UnusableInput(ValueError):
    """The file (or the mapping, or the options) cannot be imported at all: nothing is
    tried. `field` names the input at fault (file, mapping, match, duplicates)."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.field = field

# --- reading -------------------------------------------------------------------------


@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (line number of the record's first line, cells)
    encoding: str
    delimiter: str


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding: UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's "Unicode
    text"), else Windows-1252, else ISO-8859-1."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise UnusableInput("The file starts as UTF-8 but is not valid UTF-8.") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise UnusableInput("The file starts as UTF-16 but is not valid UTF-16.") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined (0x81, 0x8d, ...)
        return data.decode("latin-1"), "iso-8859-1"


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header into the most columns and the first records
    into as many cells as the header (quoted values may hold any delimiter)."""
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[:sample.rindex("\n")]
    best: tuple[int, int, int] | None = None
    chosen = ","
    for rank, delimiter in enumerate(DELIMITERS):
        try:
            records = list(itertools.islice(
                csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter), 50
            ))
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        body = [r for r in records[1:] if any(c.strip() for c in r)]
        fitting = sum(1 for r in body if len(r) == width)
        score = (fitting, width, -rank)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


def read_table(data: bytes) -> Table:
    if data.startswith(b"PK\x03\x04"):
        raise UnusableInput("This is a spreadsheet workbook (.xlsx), not CSV: save it as CSV.")
    text, encoding = decode(data)
    if "\x00" in text:
        raise UnusableInput("The file holds NUL bytes: it is not CSV text.")
    if not text.strip():
        raise UnusableInput("The file is empty.")
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if not headers:
                if any(c.strip() for c in cells):
                    headers = [h.strip() for h in cells]
            elif any(c.strip() for c in cells):
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise UnusableInput(f"Line {reader.line_num}: the file is not valid CSV ({exc}).") from None
    return Table(headers, rows, encoding, delimiter)


# --- values ----------------------------------------------------------------------------

DATE_FORMS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?$"),  # ISO, maybe with a time
    re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?: .*)?$"),  # dd/mm/yyyy and kin
)


@lru_cache(maxsize=8192)  # a file repeats its dates; a bad one raises, and is not kept
def parse_date(text: str) -> dt.date:
    value = text.strip()
    for i, form in enumerate(DATE_FORMS):
        m = form.match(value)
        if m:
            a, b, c = (int(g) for g in m.groups())
            year, month, day = (a, b, c) if i == 0 else (c, b, a)
            try:
                day_read = dt.date(year, month, day)
            except ValueError:
                break
            return in_range(day_read)  # ValueError out of 1900–2999
    raise ValueError(f"{text!r} is not a date (use 2027-03-31 or 31/03/2027)")


_NOISE = re.compile(r"[\s\u00a0\u202f'’€$£%]")
_CODE = re.compile(r"^[A-Za-z]{3}(?=[-\d.,])|(?<=[\d.,])[A-Za-z]{3}$")  # EUR 10, 10 EUR


def parse_number(text: str, decimal_comma: bool) -> Decimal:
    """'1.234,56', '1,234.56', '1234,56', '€ 1 234,56', '1.234.567' and plain numbers; a
    lone separator before exactly three digits is a thousands one when decimal_comma says
    the other is the decimal one. Thousands separators must group by three."""
    s = _CODE.sub("", _NOISE.sub("", text))
    sign = ""
    if s[:1] in ("-", "+"):
        sign, s = s[0], s[1:]
    commas, dots = s.count(","), s.count(".")
    decimal: str | None
    if commas and dots:
        decimal = "," if s.rfind(",") > s.rfind(".") else "."
    elif commas > 1 or dots > 1:
        decimal = None
    elif commas:
        decimal = None if re.fullmatch(r"\d{1,3},\d{3}", s) and not decimal_comma else ","
    elif dots:
        decimal = None if re.fullmatch(r"\d{1,3}\.\d{3}", s) and decimal_comma else "."
    else:
        decimal = None
    thousands = {",": ".", ".": ","}[decimal] if decimal else ("," if commas else ".")
    whole, _, fraction = s.partition(decimal) if decimal else (s, "", "")
    if thousands in whole:
        if not re.fullmatch(rf"\d{{1,3}}(\{thousands}\d{{3}})+", whole):
            raise ValueError(f"{text!r} is not a number")
        whole = whole.replace(thousands, "")
    try:
        if thousands in fraction or (decimal and decimal in fraction):
            raise InvalidOperation
        number = Decimal(sign + whole + ("." + fraction if decimal else ""))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a number")
    return number


def _cents(number: Decimal) -> Decimal:
    """vtiger writes money with eight decimals (1500.00000000): zeros beyond the cents go."""
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        rounded = number.quantize(Decimal("0.01"))
        if rounded == number:
            return rounded
    return number


def decimal_comma_of(values: Sequence[str], default: bool) -> bool:
    """Whether a file's numbers use a decimal comma, by what its numeric cells show: a
    separator followed by other than three digits is the decimal one, and so is the last of
    two different ones. Without evidence, `default` (the semicolon files of Europe)."""
    comma = dot = 0
    for value in values:
        s = _NOISE.sub("", value)
        last_comma, last_dot = s.rfind(","), s.rfind(".")
        if last_comma >= 0 and last_dot >= 0:
            comma, dot = comma + (last_comma > last_dot), dot + (last_dot > last_comma)
        elif last_comma >= 0:
            if s.count(",") > 1:
                dot += 1
            elif len(s) - last_comma - 1 != 3:
                comma += 1
        elif last_dot >= 0:
            if s.count(".") > 1:
                comma += 1
            elif len(s) - last_dot - 1 != 3:
                dot += 1
    if comma != dot:
        return comma > dot
    return default


def parse_bool(text: str) -> bool:
    value = normalise(text)
    if value in ("true", "1", "yes", "si", "y", "vero", "x"):
        return True
    if value in ("false", "0", "no", "n", "falso"):
        return False
    raise ValueError(f"{text!r} is not true or false")

