"""Where custom callbacks import their base class from (README "Custom callbacks"); defined in `trainscope.core`."""

from trainscope.core.callback import Callback, CallbackList

__all__ = ["Callback", "CallbackList"]
