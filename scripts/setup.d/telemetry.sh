#!/usr/bin/env bash
# Python peer for the telemetry tests (tests/telemetry_*.rs): python3 and the
# `opentelemetry-proto` PyPI package, whose generated protobuf classes decode the OTLP
# requests the exporter sends (tests/peers/py/otlp_receiver.py). Idempotent: does nothing
# when `python3 -c 'import opentelemetry.proto'` already works.
set -euo pipefail

have_otlp_proto() {
    python3 -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' >/dev/null 2>&1
}

command -v python3 >/dev/null 2>&1 || { echo "python3 is required by tests/telemetry_*.rs" >&2; exit 1; }

if have_otlp_proto; then
    exit 0
fi
echo "installing the opentelemetry-proto PyPI package" >&2
python3 -m pip install --user --quiet opentelemetry-proto \
    || python3 -m pip install --user --quiet --break-system-packages opentelemetry-proto \
    || true
have_otlp_proto || { echo "could not install opentelemetry-proto for python3" >&2; exit 1; }
