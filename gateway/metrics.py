"""Prometheus metrics (exposed at ``/metrics``)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("yinyi_http_requests_total", "Inbound API requests", ["route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram("yinyi_http_request_seconds", "Inbound API latency", ["route"], registry=REGISTRY,
                         buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
UPSTREAM_CALLS = Counter("yinyi_upstream_calls_total", "Calls to channels and other upstreams",
                         ["interface", "outcome"], registry=REGISTRY)
UPSTREAM_LATENCY = Histogram("yinyi_upstream_call_seconds", "Upstream call latency", ["interface"],
                             registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
PAYMENT_TRANSITIONS = Counter("yinyi_payment_transitions_total", "Payment and refund status changes",
                              ["kind", "to_status"], registry=REGISTRY)
RESOLVER_RUNS = Counter("yinyi_resolver_items_total", "Items handled by the unknown-outcome resolver",
                        ["kind", "result"], registry=REGISTRY)
