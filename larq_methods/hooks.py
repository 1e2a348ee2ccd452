"""Per-step training hooks on layers.

A layer with per-step training state (ReBNN's balance, for one) subclasses `TrainingHook`.
The one training step of `larq_methods.training` calls every such layer of the model it
trains: it watches `hook_variables()` on the gradient tape beside the trainable weights,
calls `before_update()` just before the optimiser's update and `after_update(state,
grads)` just after it, with the state returned before and the gradients of
`hook_variables()` summed over the replicas. `training.transfer_weights` calls
`after_transfer(received)` on the layers it copied weights into. No model subclass is needed, so any model
(a functional one, a distiller's student) gets the hooks of its layers.
"""

from larq_methods import costs


class TrainingHook:
    """A mixin for Keras layers that take part in every training step."""

    def hook_variables(self) -> list:
        """Variables, trainable or not, whose gradient `after_update` needs."""
        return []

    def before_update(self):
        """What the layer needs to remember from just before the optimiser's update."""
        return None

    def after_update(self, state, grads) -> None:
        """Runs after the optimiser's update; `grads` match `hook_variables()`."""

    def after_transfer(self, received: set) -> None:
        """Runs after weights of another model were copied into the layer (step 2 from step
        1, or a run's initial weights); `received` names the weights that got a value
        (`"kernel"`, ...), so the layer can initialise the others from them."""


def hooked_layers(model) -> list:
    """The layers of `model` (nested models included) that are `TrainingHook`s."""
    return [layer for layer in costs.flat_layers(model) if isinstance(layer, TrainingHook)]
