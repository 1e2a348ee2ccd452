"""Ctrl-C and SIGTERM during training, acted on where it is safe to stop."""

from __future__ import annotations

import signal
import threading

import tensorflow as tf

HANDLED = (signal.SIGINT, signal.SIGTERM)


class DeferredSignals:
    """Holds back the handlers of SIGINT and SIGTERM (those set in Python: by default
    SIGINT's, which raises KeyboardInterrupt) until `check` is called.

    A KeyboardInterrupt raised wherever Python happens to be can land inside TensorFlow's
    own bookkeeping (while it traces a data pipeline's function, say) and leave it broken,
    which shows as a traceback when the process ends. So while the context is open a
    signal is only noted, and the next `check` (the loop calls it between steps and
    between evaluation batches) runs the handler it held back. A second signal before that
    runs it at once: a person who presses Ctrl-C twice does not wait. Outside the main
    thread, where Python runs no handler, this does nothing.
    """

    def __init__(self, signals=HANDLED):
        self.signals, self.previous, self.pending = signals, {}, None

    def __enter__(self) -> DeferredSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                handler = signal.getsignal(signum)
                if callable(handler):  # not SIG_DFL or SIG_IGN: the caller chose to handle it
                    self.previous[signum] = handler
                    signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous, self.pending = {}, None

    def _note(self, signum, frame) -> None:
        if self.pending is None:
            self.pending = signum
        else:
            self.pending = None
            self.previous[signum](signum, frame)

    def check(self) -> None:
        """Runs the handler of a signal received since the last check (it raises
        KeyboardInterrupt, by default)."""
        if self.pending is not None:
            signum, self.pending = self.pending, None
            self.previous[signum](signum, None)


class CheckSignals(tf.keras.callbacks.Callback):
    """Calls `signals.check()` after every batch of `Model.evaluate`."""

    def __init__(self, signals: DeferredSignals):
        super().__init__()
        self.signals = signals

    def on_test_batch_end(self, batch, logs=None):
        self.signals.check()
