"""Human-in-the-loop approval: stream a refund decision, pause for a human, resume, stream the rest.

Run it with ``python examples/approval.py`` (answer at the prompt, or pass ``--answer
approve``). The thread lives in a SQLite file, so you can also stop after the question
(``--answer ''``) and resume later, even from another process::

    python examples/approval.py --db refunds.db --answer ''        # streams up to the question
    python examples/approval.py --db refunds.db --answer approve   # resumes the same thread

Every chunk goes to OpenTelemetry (an OTLP-JSON file by default, or
``OTEL_EXPORTER_OTLP_ENDPOINT``): the interrupted run ends with outcome ``interrupted``, the
resumed run's span links to it, and ``otelstream replay <file> --thread <id>`` gives back
both streams.
"""

from __future__ import annotations

import argparse
import operator
import os
import sys
import time
from typing import Annotated, Any, TypedDict

import otelstream
from otelstream import END, START, Command, CompiledStateGraph, StateGraph, StreamMode, interrupt, write_progress


class Refund(TypedDict):
    order: str
    amount: float
    evidence: list[str]
    decision: str
    log: Annotated[list[str], operator.add]


def gather(state: Refund) -> dict[str, Any]:
    evidence = []
    for i, source in enumerate(("order history", "delivery scan", "support chat"), start=1):
        time.sleep(0.05)  # a slow lookup
        evidence.append(f"{source}: ok")
        write_progress(i, 3, unit="sources", message=f"Checked {source} ({i}/3)")
    return {"evidence": evidence, "log": ["gathered evidence"]}


def review(state: Refund) -> dict[str, Any]:
    # runs twice: once to ask (interrupt() raises), once more on resume (interrupt() returns)
    answer = interrupt({"question": f"Refund {state['amount']:.2f} for order {state['order']}?"})
    decision = "approved" if str(answer).strip().lower() in ("approve", "approved", "yes", "y") else "rejected"
    return {"decision": decision, "log": [f"reviewer said {answer!r}"]}


def notify(state: Refund) -> dict[str, Any]:
    write_progress(1, 1, unit="emails", message=f"Told the customer: refund {state['decision']}")
    return {"log": [f"customer notified ({state['decision']})"]}


def build_graph(checkpointer: otelstream.BaseCheckpointSaver) -> CompiledStateGraph:
    """gather -> review (pauses for a human) -> notify."""
    graph = StateGraph(Refund)
    graph.add_node(gather)
    graph.add_node(review)
    graph.add_node(notify)
    graph.add_edge(START, "gather")
    graph.add_edge("gather", "review")
    graph.add_edge("review", "notify")
    graph.add_edge("notify", END)
    return graph.compile(checkpointer=checkpointer, name="refund-approval")


def show(chunks: Any) -> list[Any]:
    """Print ``(mode, chunk)`` pairs as they stream; return the interrupts met."""
    interrupts: list[Any] = []
    for mode, chunk in chunks:
        if mode == "custom":
            print(f"  progress  {chunk.get('message', chunk)}", flush=True)
        elif "__interrupt__" in chunk:
            interrupts.extend(chunk["__interrupt__"])
            print(f"  paused    {[i.value for i in chunk['__interrupt__']]}", flush=True)
        else:
            print(f"  {mode:<9} {chunk}", flush=True)
    return interrupts


def main() -> int:
    """Stream to the question, ask it, resume with the answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="otelstream-telemetry/approval-threads.db", help="SQLite thread store")
    parser.add_argument("--thread", default="refund-1042", help="thread id")
    parser.add_argument("--answer", default=None, help="the reviewer's answer ('' stops at the question)")
    parser.add_argument("--telemetry", default="otelstream-telemetry/approval.otlp.jsonl", help="OTLP-JSON file")
    args = parser.parse_args()

    os.makedirs(os.path.dirname(args.db) or ".", exist_ok=True)
    os.makedirs(os.path.dirname(args.telemetry) or ".", exist_ok=True)
    export = otelstream.ExportOptions(
        otlp=True if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else None,
        file=None if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else args.telemetry,
    )
    otelstream.configure(export=export, service_name="refund-approval")
    config = {"configurable": {"thread_id": args.thread}}
    modes: list[StreamMode] = ["updates", "custom"]
    with otelstream.SqliteSaver(args.db) as saver:
        graph = build_graph(saver)
        state = graph.get_state(config)
        if state.interrupts:
            print(f"Thread {args.thread} is waiting for: {state.interrupts[0].value['question']}")
            interrupts = list(state.interrupts)
        else:
            print(f"Thread {args.thread}: streaming a new refund request")
            interrupts = show(graph.stream({"order": "A-1042", "amount": 39.9, "log": []}, config, stream_mode=modes))
        if interrupts:
            answer = args.answer
            if answer is None:
                question = f"{interrupts[0].value['question']} [approve/reject] "
                answer = input(question) if sys.stdin.isatty() else "approve"
            if answer == "":
                print(f"Stopped at the question; resume with: python {sys.argv[0]} --db {args.db} --answer approve")
                otelstream.shutdown()
                return 0
            print(f"Resuming thread {args.thread} with {answer!r}")
            show(graph.stream(Command(resume=answer), config, stream_mode=modes))
        final = graph.get_state(config)
        print(f"Decision: {final.values.get('decision')}; log: {final.values.get('log')}")
    otelstream.shutdown()
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        print(f"Replay both runs of the thread: otelstream replay {args.telemetry} --thread {args.thread}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
