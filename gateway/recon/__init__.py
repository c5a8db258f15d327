"""Reconciliation (对账): matching the HIS bill, the gateway's ledger and the channel's bill for a day."""
