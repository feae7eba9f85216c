"""``StateGraph``: the builder users define graphs with, and its build-time validation.

Every mistake LangGraph rejects is rejected here too, at ``add_*`` or ``compile()`` time,
with a message that names the node, edge or key at fault.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar, get_type_hints

from otelstream.checkpoint.base import BaseCheckpointSaver
from otelstream.checkpoint.serde import register_type, schema_types
from otelstream.engine.compiled import CompiledStateGraph
from otelstream.engine.schema import SchemaField, schema_fields
from otelstream.engine.topology import BranchSpec, NodeSpec
from otelstream.engine.types import END, START, RetryPolicy
from otelstream.errors import ErrorCode, InvalidGraphError

__all__ = ["BranchSpec", "NodeSpec", "StateGraph"]

logger = logging.getLogger(__name__)

StateT = TypeVar("StateT")

_RESERVED_CHARACTERS = ("|", ":")


def _call_method(action: Any) -> Any:
    # the bound ``__call__`` of a callable object (not ``callable()``: we need the method)
    try:
        return action.__call__
    except AttributeError:
        return None


def _callable_of(action: Any) -> Any:
    if inspect.isfunction(action) or inspect.ismethod(action):
        return action
    return _call_method(action) or action


def _is_async(action: Any) -> bool:
    return inspect.iscoroutinefunction(action) or inspect.iscoroutinefunction(_call_method(action))


def _parameters(action: Any) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(action).parameters)
    except (TypeError, ValueError):
        return {}


def _takes_writer(params: dict[str, inspect.Parameter]) -> bool:
    # LangGraph injects by parameter name; the annotation, if any, must be StreamWriter
    # itself (or the string "StreamWriter"), and the parameter nameable
    param = params.get("writer")
    if param is None or param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
        return False
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        return True
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return text == "StreamWriter"


def _first_param_schema(action: Any) -> Any:
    # LangGraph's inference: the first parameter's annotation, when it is a class with
    # annotations (``state: Any`` or ``state: dict`` read the graph's state schema)
    if not (inspect.isfunction(action) or inspect.ismethod(action) or inspect.ismethod(_call_method(action))):
        return None
    try:
        hints = get_type_hints(_call_method(action)) or get_type_hints(action)
        if not hints:
            return None
        hint = hints.get(next(iter(inspect.signature(action).parameters)))
        if isinstance(hint, type) and get_type_hints(hint):
            return hint
    except (NameError, TypeError, StopIteration, ValueError):
        pass
    return None


def _literal_ends(path: Any) -> dict[Hashable, str] | None:
    # a path annotated ``-> Literal["a", "b"]`` maps its results as a path_map would
    try:
        returns = get_type_hints(_callable_of(path)).get("return")
    except Exception:
        return None
    if typing.get_origin(returns) is typing.Literal:
        return {name: name for name in typing.get_args(returns)}
    return None


def _same_reducer(a: Any, b: Any) -> bool:
    # LangGraph's test: lambdas all look alike, so a lambda matches any reducer
    if a is None:
        return False
    if getattr(a, "__name__", None) == "<lambda>" or getattr(b, "__name__", None) == "<lambda>":
        return True
    return bool(a is b)


class StateGraph(Generic[StateT]):
    """A graph whose nodes read and write a shared state.

    Example:
        >>> from typing import Annotated, TypedDict
        >>> import operator
        >>> class State(TypedDict):
        ...     log: Annotated[list[str], operator.add]
        >>> g = StateGraph(State)
        >>> _ = g.add_node("a", lambda s: {"log": ["a"]})
        >>> _ = g.add_edge(START, "a")
        >>> g.compile().invoke({"log": []})
        {'log': ['a']}
    """

    def __init__(
        self,
        state_schema: type[StateT],
        input_schema: type[Any] | None = None,
        output_schema: type[Any] | None = None,
    ) -> None:
        """Create an empty graph over ``state_schema``.

        Args:
            state_schema: TypedDict, dataclass or pydantic model; ``Annotated[T, reducer]``
                fields combine concurrent writes with ``reducer(current, new)``.
            input_schema: Keys accepted as input (default: the state schema).
            output_schema: Keys ``invoke()`` returns (default: the state schema).

        Raises:
            InvalidGraphError: a schema is not a supported class, or a reducer is invalid.
        """
        self.state_schema = state_schema
        self.input_schema = input_schema or state_schema
        self.output_schema = output_schema or state_schema
        self.fields: dict[str, SchemaField] = {}
        self._schemas: set[Any] = set()
        for schema in (state_schema, self.input_schema, self.output_schema):
            self._add_schema(schema)
        self.input_keys = [f.key for f in schema_fields(self.input_schema)]
        self.output_keys = [f.key for f in schema_fields(self.output_schema)]
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: set[tuple[str, str]] = set()
        self.waiting_edges: set[tuple[tuple[str, ...], str]] = set()
        self.branches: dict[str, dict[str, BranchSpec]] = {}
        self.compiled = False

    def _add_schema(self, schema: Any) -> None:
        # a schema's keys become state keys (a node's input schema may add private keys);
        # a key declared twice must keep its reducer, as LangGraph requires
        if schema in self._schemas:
            return
        for field in schema_fields(schema):
            known = self.fields.get(field.key)
            if known is None:
                self.fields[field.key] = field
            elif field.reducer is not None and not _same_reducer(known.reducer, field.reducer):
                raise InvalidGraphError(
                    f"Channel '{field.key}' already exists with a different type",
                    code=ErrorCode.INVALID_STATE_SCHEMA,
                )
        self._schemas.add(schema)

    def add_node(
        self,
        node: str | Any,
        action: Any | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        input_schema: type[Any] | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        destinations: dict[str, str] | tuple[str, ...] | None = None,
    ) -> StateGraph[StateT]:
        """Add a node: a function of the state, or a compiled graph used as a subgraph.

        Args:
            node: The node's name, or the action itself (named after its ``__name__``).
            action: The function (sync or async) or compiled graph to run.
            metadata: Metadata attached to the node's task (shown in ``tasks`` events).
            input_schema: The keys the node reads, if not the whole state.
            retry_policy: How to retry the node when it raises.
            destinations: Where a node returning ``Command(goto=...)`` may go.

        Returns:
            The graph, for chaining.

        Raises:
            InvalidGraphError: the name is taken, reserved or holds a reserved character.
        """
        if not isinstance(node, str):
            action = node
            node = getattr(action, "name", None) or getattr(action, "__name__", None)
            if not isinstance(node, str):
                raise InvalidGraphError(
                    f"Node name must be provided if action is not a function: {action!r}",
                    code=ErrorCode.INVALID_NODE,
                )
        if action is None:
            raise InvalidGraphError(f"Node `{node}` has no action", code=ErrorCode.INVALID_NODE)
        if self.compiled:
            logger.warning(
                "Adding a node to a graph that has already been compiled. "
                "This will not be reflected in the compiled graph."
            )
        if node in self.nodes:
            raise InvalidGraphError(f"Node `{node}` already present.", code=ErrorCode.INVALID_NODE)
        if node in (START, END):
            raise InvalidGraphError(f"Node `{node}` is reserved.", code=ErrorCode.INVALID_NODE)
        for character in _RESERVED_CHARACTERS:
            if character in node:
                raise InvalidGraphError(
                    f"'{character}' is a reserved character and is not allowed in the node names (node `{node}`).",
                    code=ErrorCode.INVALID_NODE,
                )
        is_subgraph = isinstance(action, CompiledStateGraph)
        if not is_subgraph and not callable(action):
            raise InvalidGraphError(
                f"Node `{node}` must be a function or a compiled graph, got {type(action).__name__}",
                code=ErrorCode.INVALID_NODE,
            )
        params = {} if is_subgraph else _parameters(action)
        if input_schema is None and not is_subgraph:
            input_schema = _first_param_schema(action)
        if retry_policy is None:
            policies: tuple[RetryPolicy, ...] = ()
        elif isinstance(retry_policy, RetryPolicy):
            policies = (retry_policy,)
        else:
            policies = tuple(retry_policy)
        if isinstance(destinations, dict):
            ends: tuple[str, ...] = tuple(destinations)
        else:
            ends = tuple(destinations or ())
        self.nodes[node] = NodeSpec(
            name=node,
            action=action,
            metadata=metadata,
            retry_policy=policies,
            input_schema=input_schema or self.state_schema,
            is_async=not is_subgraph and _is_async(action),
            takes_config="config" in params,
            takes_writer=_takes_writer(params),
            is_subgraph=is_subgraph,
            ends=ends,
        )
        if input_schema is not None:
            self._add_schema(input_schema)
        return self

    def add_edge(self, start_key: str | Sequence[str], end_key: str) -> StateGraph[StateT]:
        """Run ``end_key`` after ``start_key``; a list of starts waits for all of them.

        Raises:
            InvalidGraphError: END as a start, START as an end, or an unknown node in a join.
        """
        if self.compiled:
            logger.warning(
                "Adding an edge to a graph that has already been compiled. "
                "This will not be reflected in the compiled graph."
            )
        if isinstance(start_key, str):
            if start_key == END:
                raise InvalidGraphError("END cannot be a start node", code=ErrorCode.INVALID_EDGE)
            if end_key == START:
                raise InvalidGraphError("START cannot be an end node", code=ErrorCode.INVALID_EDGE)
            self.edges.add((start_key, end_key))
            return self
        for start in start_key:
            if start == END:
                raise InvalidGraphError("END cannot be a start node", code=ErrorCode.INVALID_EDGE)
            if start not in self.nodes:
                raise InvalidGraphError(f"Need to add_node `{start}` first", code=ErrorCode.INVALID_EDGE)
        if end_key == START:
            raise InvalidGraphError("START cannot be an end node", code=ErrorCode.INVALID_EDGE)
        if end_key != END and end_key not in self.nodes:
            raise InvalidGraphError(f"Need to add_node `{end_key}` first", code=ErrorCode.INVALID_EDGE)
        self.waiting_edges.add((tuple(start_key), end_key))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: dict[Hashable, str] | list[str] | None = None,
    ) -> StateGraph[StateT]:
        """After ``source``, call ``path(state)`` to pick the next node(s) or ``Send``s.

        Args:
            source: The node after which the branch runs (or START).
            path: Returns a node name, a ``Send``, or a list of them (or keys of ``path_map``).
            path_map: Maps ``path``'s results to node names; a list maps each name to itself.

        Returns:
            The graph, for chaining.

        Raises:
            InvalidGraphError: a branch with the same name already leaves ``source``.
        """
        name = getattr(path, "__name__", None) or type(path).__name__
        if name == "<lambda>":
            name = "condition"
        if name in self.branches.get(source, {}):
            raise InvalidGraphError(
                f"Branch with name `{name}` already exists for node `{source}`",
                code=ErrorCode.INVALID_EDGE,
            )
        if isinstance(path_map, list):
            ends: dict[Hashable, str] | None = {p: p for p in path_map}
        elif isinstance(path_map, dict):
            ends = dict(path_map)
        else:
            ends = _literal_ends(path)
        params = _parameters(path)
        input_schema = _first_param_schema(path)
        self.branches.setdefault(source, {})[name] = BranchSpec(
            path=path,
            ends=ends,
            is_async=_is_async(path),
            takes_config="config" in params,
            input_schema=input_schema,
        )
        if input_schema is not None:
            self._add_schema(input_schema)
        return self

    def set_entry_point(self, key: str) -> StateGraph[StateT]:
        """Equivalent to ``add_edge(START, key)``."""
        return self.add_edge(START, key)

    def set_finish_point(self, key: str) -> StateGraph[StateT]:
        """Equivalent to ``add_edge(key, END)``."""
        return self.add_edge(key, END)

    def set_conditional_entry_point(
        self, path: Callable[..., Any], path_map: dict[Hashable, str] | list[str] | None = None
    ) -> StateGraph[StateT]:
        """Equivalent to ``add_conditional_edges(START, path, path_map)``."""
        return self.add_conditional_edges(START, path, path_map)

    def add_sequence(self, nodes: Sequence[Any]) -> StateGraph[StateT]:
        """Add ``nodes`` (actions or ``(name, action)`` pairs) and chain them with edges."""
        if not nodes:
            raise InvalidGraphError("Sequence requires at least one node.", code=ErrorCode.INVALID_NODE)
        previous: str | None = None
        for item in nodes:
            if isinstance(item, tuple):
                name, action = item
                self.add_node(name, action)
            else:
                name = getattr(item, "name", None) or item.__name__
                self.add_node(name, item)
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    def validate(self) -> None:
        """Check the graph is well formed, naming the first problem found.

        Raises:
            InvalidGraphError: an edge leaves or reaches an unknown node, or there is no
                entry point.
        """
        sources = {start for start, _ in self.edges}
        sources.update(start for starts, _ in self.waiting_edges for start in starts)
        sources.update(self.branches)
        sources.update(name for name, spec in self.nodes.items() if spec.ends)
        for source in sorted(sources):
            if source not in self.nodes and source != START:
                raise InvalidGraphError(f"Found edge starting at unknown node '{source}'", code=ErrorCode.INVALID_EDGE)
        if START not in sources:
            raise InvalidGraphError(
                "Graph must have an entrypoint: add at least one edge from START to another node",
                code=ErrorCode.INVALID_EDGE,
            )
        targets = {end for _, end in self.edges}
        targets.update(end for _, end in self.waiting_edges)
        for start, branches in self.branches.items():
            for name, branch in branches.items():
                if branch.ends is None:
                    continue
                for end in branch.ends.values():
                    if end not in self.nodes and end != END:
                        raise InvalidGraphError(
                            f"At '{start}' node, '{name}' branch found unknown target '{end}'",
                            code=ErrorCode.INVALID_EDGE,
                        )
        for spec in self.nodes.values():
            targets.update(spec.ends)
        for target in sorted(targets):
            if target not in self.nodes and target != END:
                raise InvalidGraphError(f"Found edge ending at unknown node `{target}`", code=ErrorCode.INVALID_EDGE)

    def compile(
        self,
        checkpointer: BaseCheckpointSaver | None = None,
        *,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        name: str | None = None,
    ) -> CompiledStateGraph:
        """Validate the graph and return a runnable, streamable graph.

        Args:
            checkpointer: Where runs keep their state between supersteps
                (:class:`~otelstream.InMemorySaver`, :class:`~otelstream.SqliteSaver`):
                enables threads, ``get_state()``, interrupts that can be resumed, and
                the ``"checkpoints"`` mode.
            interrupt_before: Nodes to pause before (``"*"`` for every node).
            interrupt_after: Nodes to pause after (``"*"`` for every node).
            name: The graph's name in telemetry and namespaces (default ``"LangGraph"``,
                LangGraph's own default).

        Returns:
            The compiled graph.

        Raises:
            InvalidGraphError: the graph is invalid (see :meth:`validate`), a breakpoint
                names an unknown node, or ``checkpointer`` is not a checkpointer.
        """
        self.validate()
        if checkpointer is not None and not isinstance(checkpointer, BaseCheckpointSaver):
            raise InvalidGraphError(
                f"checkpointer must be a checkpointer such as InMemorySaver or SqliteSaver, "
                f"got {type(checkpointer).__name__}"
            )
        for nodes in (interrupt_before, interrupt_after):
            for node in () if nodes is None or nodes == "*" else [nodes] if isinstance(nodes, str) else nodes:
                if node not in self.nodes:
                    raise InvalidGraphError(f"Interrupt node `{node}` not found", code=ErrorCode.INVALID_NODE)
        # the classes the state schemas name are the application's own: checkpoints and replay
        # may rebuild them (both rebuild only allow-listed types)
        schemas = {self.state_schema, self.input_schema, self.output_schema}
        schemas.update(node.input_schema for node in self.nodes.values() if node.input_schema is not None)
        for schema in schemas:
            register_type(*schema_types(schema))
        self.compiled = True
        return CompiledStateGraph(
            self,
            name=name or "LangGraph",
            checkpointer=checkpointer,
            interrupt_before=_breakpoints(interrupt_before),
            interrupt_after=_breakpoints(interrupt_after),
        )


def _breakpoints(nodes: Sequence[str] | str | None) -> list[str] | str:
    if nodes is None:
        return []
    if nodes == "*":
        return "*"
    return [nodes] if isinstance(nodes, str) else list(nodes)
