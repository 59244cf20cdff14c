"""Where custom callbacks import their base class from (docs/training.md, "Writing a callback"); defined in
`trainscope.core`."""

from trainscope.core.callback import Callback, CallbackList

__all__ = ["Callback", "CallbackList"]
