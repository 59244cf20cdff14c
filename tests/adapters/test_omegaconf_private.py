"""The private OmegaConf names trainscope relies on are where `trainscope.adapters.omegaconf_private` reaches for
them: its interpolation grammar (which `config/inert.py` reads a run directory's config with) and its registry."""

from __future__ import annotations

from trainscope.adapters import omegaconf_private
from trainscope.adapters.omegaconf_private import ResolverCall, resolver_calls


def test_every_private_name_is_where_the_adapter_reaches_for_it() -> None:
    omegaconf_private.check()
    assert "oc.create" in omegaconf_private.registered_resolvers()


def test_every_resolver_call_is_found_at_any_depth() -> None:
    assert resolver_calls("${a.b} and \\${oc.create:x}") == []  # a reference, and an escaped text
    assert set(resolver_calls("${a.${oc.decode:'1'}} ${now:${oc.select:{k: v}}}")) == {
        ResolverCall("oc.decode", "'1'", False),
        ResolverCall("now", "${oc.select:{k: v}}", True),  # the container is in a nested argument
        ResolverCall("oc.select", "{k: v}", True),
    }
