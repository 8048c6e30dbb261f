#!/usr/bin/env python3
"""A real OTLP/HTTP (protobuf) receiver for the telemetry tests.

Listens on 127.0.0.1:PORT, decodes POST /v1/traces as ExportTraceServiceRequest and
POST /v1/metrics as ExportMetricsServiceRequest with the official generated classes of the
`opentelemetry-proto` PyPI package, and prints one JSON line per request to stdout:

  {"signal": "traces", "resource": {...}, "spans": [{name, trace_id, span_id,
   parent_span_id, start, end, kind, attributes}]}
  {"signal": "metrics", "resource": {...}, "metrics": [{name, unit, type, points:
   [{attributes, value | count, sum, quantiles}]}]}

A body that does not decode prints {"signal": ..., "error": "..."} and answers 400.
`--fail-first N` answers 503 to the first N requests (to exercise retries).
Exits after `--max-seconds` so a test that dies never leaves it running.
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def any_value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def decode_traces(body):
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    out = {"signal": "traces", "resource": {}, "spans": []}
    for rs in req.resource_spans:
        out["resource"] = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            out["scope"] = ss.scope.name
            for s in ss.spans:
                out["spans"].append({
                    "name": s.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "kind": s.kind,
                    "attributes": attrs(s.attributes),
                })
    return out, ExportTraceServiceResponse()


def number(p):
    kind = p.WhichOneof("value")
    return getattr(p, kind) if kind else None


def decode_metrics(body):
    req = ExportMetricsServiceRequest()
    req.ParseFromString(body)
    out = {"signal": "metrics", "resource": {}, "metrics": []}
    for rm in req.resource_metrics:
        out["resource"] = attrs(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                entry = {"name": m.name, "unit": m.unit, "type": kind, "points": []}
                if kind in ("gauge", "sum"):
                    data = getattr(m, kind)
                    if kind == "sum":
                        entry["monotonic"] = data.is_monotonic
                        entry["temporality"] = data.aggregation_temporality
                    for p in data.data_points:
                        entry["points"].append({
                            "attributes": attrs(p.attributes),
                            "value": number(p),
                            "start": p.start_time_unix_nano,
                            "time": p.time_unix_nano,
                        })
                elif kind == "summary":
                    for p in m.summary.data_points:
                        entry["points"].append({
                            "attributes": attrs(p.attributes),
                            "count": p.count,
                            "sum": p.sum,
                            "quantiles": {str(q.quantile): q.value for q in p.quantile_values},
                        })
                out["metrics"].append(entry)
    return out, ExportMetricsServiceResponse()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    failures_left = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with Handler.lock:
            if Handler.failures_left > 0:
                Handler.failures_left -= 1
                emit({"signal": "refused", "path": self.path})
                self.reply(503)
                return
        decoders = {"/v1/traces": decode_traces, "/v1/metrics": decode_metrics}
        decoder = decoders.get(self.path)
        if decoder is None:
            self.reply(404)
            return
        if self.headers.get("Content-Type") != "application/x-protobuf":
            emit({"signal": self.path, "error": "content-type " + str(self.headers.get("Content-Type"))})
            self.reply(415)
            return
        try:
            out, resp = decoder(body)
        except DecodeError as e:
            emit({"signal": self.path, "error": str(e)})
            self.reply(400)
            return
        emit(out)
        self.reply(200, resp.SerializeToString())


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    args = ap.parse_args()
    Handler.failures_left = args.fail_first
    server = HTTPServer(("127.0.0.1", args.port), Handler)
    server.timeout = 0.2
    timer = threading.Timer(args.max_seconds, lambda: server.shutdown())
    timer.daemon = True
    timer.start()
    emit({"signal": "ready", "port": server.server_address[1]})
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
