"""Test hook: a TrainerCallback that ends the process abruptly after optimizer step MEDLLM_FAULT_AFTER_STEP.

The product only knows MEDLLM_CALLBACKS ("module:ClassName", importable); tests set
MEDLLM_CALLBACKS=fault_hook:FaultAfterStep with this folder on PYTHONPATH, like a disconnect mid-training.
"""

import os

from transformers import TrainerCallback


class FaultAfterStep(TrainerCallback):
    """End the process abruptly (os._exit, no clean-up) after optimizer step MEDLLM_FAULT_AFTER_STEP."""

    def __init__(self):
        """Read the step after which to end the process."""
        self.step = int(os.environ["MEDLLM_FAULT_AFTER_STEP"])

    def on_step_end(self, args, state, control, **kwargs):
        """Kill the process at the chosen step."""
        if state.global_step == self.step:
            print(f"MEDLLM_FAULT_AFTER_STEP={self.step}: killing the process now.", flush=True)
            os._exit(3)
