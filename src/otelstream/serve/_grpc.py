"""The gateway's OTLP/gRPC receiver (the Collector's load-balancing exporter speaks only gRPC).

It runs on the same asyncio loop as the HTTP side (``grpc.aio``), so records from both reach
the one store from one thread. The generated ``LogsServiceServicer`` / ``TraceServiceServicer``
bases come from ``opentelemetry-proto``; grpcio is installed with the gRPC OTLP exporter.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otelstream.serve._ingest import Batch, OTLPError, decode_grpc
from otelstream.serve._options import GatewayOptions

__all__ = ["start_grpc"]

logger = logging.getLogger("otelstream.serve")

_MAX_PROBLEMS_IN_MESSAGE = 3


class _Receiver:
    def __init__(self, ingest: Callable[[Batch], None], token: str | None) -> None:
        self.ingest = ingest
        self.expected = f"Bearer {token}" if token else None

    async def take(
        self, request: ExportLogsServiceRequest | ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> Batch | None:
        if self.expected is not None:
            given = dict(context.invocation_metadata() or ()).get("authorization", "")
            if not (isinstance(given, str) and hmac.compare_digest(given, self.expected)):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            batch = decode_grpc(request)
        except OTLPError as exc:
            logger.warning("refused OTLP/gRPC request: %s", exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return None
        self.ingest(batch)
        return batch


def _message(batch: Batch) -> str:
    return "; ".join(batch.received.problems[:_MAX_PROBLEMS_IN_MESSAGE])


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: _Receiver) -> None:
        self.receiver = receiver

    async def Export(  # the generated service's method name
        self, request: ExportLogsServiceRequest, context: grpc.aio.ServicerContext
    ) -> ExportLogsServiceResponse:
        batch = await self.receiver.take(request, context)
        response = ExportLogsServiceResponse()
        if batch is not None and batch.rejected:
            response.partial_success.rejected_log_records = batch.rejected
            response.partial_success.error_message = _message(batch)
        return response


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: _Receiver) -> None:
        self.receiver = receiver

    async def Export(  # the generated service's method name
        self, request: ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> ExportTraceServiceResponse:
        batch = await self.receiver.take(request, context)
        response = ExportTraceServiceResponse()
        if batch is not None and batch.rejected:
            response.partial_success.rejected_spans = batch.rejected
            response.partial_success.error_message = _message(batch)
        return response


async def start_grpc(ingest: Callable[[Batch], None], options: GatewayOptions) -> grpc.aio.Server:
    """Start the gRPC receiver on ``options.host:options.grpc_port``; the caller stops it.

    Raises:
        RuntimeError: the port cannot be bound.
    """
    limit = options.max_body
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", 1024 * 1024)]
    )
    receiver = _Receiver(ingest, options.token)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(receiver), server)  # type: ignore[no-untyped-call]
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(receiver), server)  # type: ignore[no-untyped-call]
    address = f"{options.host}:{options.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"cannot listen for OTLP/gRPC on {address}")
    await server.start()
    logger.info("receiving OTLP/gRPC on %s", address)
    return server
