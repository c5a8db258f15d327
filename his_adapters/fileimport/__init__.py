"""Daily bills imported from CSV/.xlsx files, for business systems with no interface."""
from __future__ import annotations

from .parser import BillFileError, RowError, parse_bill_file
from .writer import write_bill_csv, write_bill_xlsx

__all__ = ["BillFileError", "RowError", "parse_bill_file", "write_bill_csv", "write_bill_xlsx"]
