"""The private names of OmegaConf that trainscope relies on: its interpolation grammar and its resolver registry.

A config read back from a run directory is untrusted input, and an interpolation in it (`${oc.create:...}`,
`${oc.decode:...}`) runs a resolver when the value is read. To decide which interpolations such a config may hold
before any is resolved, trainscope parses each value with OmegaConf's own grammar (the same parser that resolves
it, so nothing is read differently) and lists every resolver call in it, nested ones included. The tests list
every resolver OmegaConf, Hydra and trainscope register from the registry itself, not from a hand-written list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainscope.adapters.private_names import PrivateNames

OMEGACONF = PrivateNames("omegaconf", __name__)

_GRAMMAR_PARSER = "omegaconf.grammar.gen.OmegaConfGrammarParser"


@dataclass(frozen=True)
class ResolverCall:
    """One `${name:arguments}` in a value: the resolver's name, its first argument's text (None without one) and
    whether any argument is a `[...]` or `{...}` container (which `oc.create` and friends turn into configs)."""

    name: str
    first_argument: str | None
    container_argument: bool


def _parser() -> Any:
    return OMEGACONF.imported(_GRAMMAR_PARSER, "OmegaConfGrammarParser")


def resolver_calls(value: str) -> list[ResolverCall]:
    """Every resolver call in `value`, at any depth; ValueError when OmegaConf could not parse it."""
    grammar_parser = OMEGACONF.imported("omegaconf.grammar_parser", "parse")
    parser = _parser()
    try:
        tree = grammar_parser(value)
    except Exception as error:  # noqa: BLE001 - GrammarParseError and ANTLR's own errors alike
        raise ValueError(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    calls: list[ResolverCall] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, OMEGACONF.attribute(parser, "InterpolationResolverContext")):
            arguments = node.sequence()
            elements = arguments.element() if arguments is not None else []
            containers = (
                OMEGACONF.attribute(parser, "DictContainerContext"),
                OMEGACONF.attribute(parser, "ListContainerContext"),
            )
            calls.append(
                ResolverCall(
                    name=node.resolverName().getText(),
                    first_argument=elements[0].getText() if elements else None,
                    container_argument=_contains(arguments, containers) if arguments is not None else False,
                )
            )
        pending.extend(node.getChildren() if hasattr(node, "getChildren") else [])
    return calls


def _contains(node: Any, kinds: tuple[type, ...]) -> bool:
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, kinds):
            return True
        pending.extend(current.getChildren() if hasattr(current, "getChildren") else [])
    return False


def registered_resolvers() -> list[str]:
    """The names of every resolver registered in this process (OmegaConf's, Hydra's, trainscope's, an app's)."""
    base_container = OMEGACONF.imported("omegaconf.basecontainer", "BaseContainer")
    return sorted(OMEGACONF.attribute(base_container, "_resolvers"))


def check() -> None:
    """Raise PrivateNameMoved for the first private name above that this OmegaConf no longer has where expected."""
    parser = _parser()
    for name in ("InterpolationResolverContext", "DictContainerContext", "ListContainerContext"):
        OMEGACONF.attribute(parser, name)
    registered_resolvers()
    if set(resolver_calls("${oc.env:A,${hydra:b}} ${oc.create:{a:1}}")) != {
        ResolverCall("oc.env", "A", False),
        ResolverCall("hydra", "b", False),
        ResolverCall("oc.create", "{a:1}", True),
    }:
        raise OMEGACONF.moved("the interpolation grammar's parse tree", "changed shape in")
