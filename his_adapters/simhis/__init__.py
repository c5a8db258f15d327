"""A simulated hospital shared by the HIS simulators (REST, SOAP …)."""
from __future__ import annotations

from .faults import Fault, FaultPlan
from .model import (BILL_TYPES, CST, Charge, InsuranceEntry, Item, Patient, Record, SimHisRefusal, SimHospital,
                    Visit)

__all__ = ["BILL_TYPES", "CST", "Charge", "Fault", "FaultPlan", "InsuranceEntry", "Item", "Patient", "Record",
           "SimHisRefusal", "SimHospital", "Visit"]
