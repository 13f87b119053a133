"""The server's Prometheus metrics, in a registry of its own (several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServeMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """Counters, gauges and histograms for requests, batches, the cache, cascades, shadows and drift."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("frugal_requests", "Requests answered, by endpoint and HTTP status",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("frugal_request_latency_seconds", "Request latency (arrival to answer)",
                                 ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.items = Counter("frugal_items", "Items (inputs) answered, by endpoint", ["endpoint"], registry=r)
        self.batch_size = Histogram("frugal_batch_size", "Items per inference batch",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.batch_latency = Histogram("frugal_batch_latency_seconds", "Inference time per batch",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("frugal_queue_depth", "Items waiting for a batch", registry=r)
        self.cache_hits = Counter("frugal_cache_hits", "Items answered from the response cache", registry=r)
        self.cache_misses = Counter("frugal_cache_misses", "Items not in the response cache", registry=r)
        self.errors = Counter("frugal_errors", "Failed requests, by kind", ["kind"], registry=r)
        self.cascade_items = Counter("frugal_cascade_items", "Items answered by each cascade stage", ["stage"],
                                     registry=r)
        self.shadow = Counter("frugal_shadow", "Shadow comparisons, by outcome (agree, disagree, error, dropped)",
                              ["outcome"], registry=r)
        self.shadow_latency = Histogram("frugal_shadow_batch_latency_seconds", "Shadow model time per batch",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.drift_score = Gauge("frugal_drift_score", "Drift statistic of the live window against the reference",
                                 ["feature", "test"], registry=r)
        self.drift_alert = Gauge("frugal_drift_alert", "1 while a drift test is over its threshold", ["feature", "test"],
                                 registry=r)
