"""Every place that depends on a library's private state (TRL, transformers, Trainer), gathered to be checked at once.

Each function names the private attribute it touches; tests/test_library_internals.py checks each one still exists
in the installed versions, so an upgrade that renames one fails there instead of somewhere in a training run.
"""


def use_trl_triton_loss(enabled):
    """Switch TRL's Triton kernel for the fused LM-head loss on or off (off: TRL's torch tiles, as on a CPU)."""
    from transformers.utils import is_triton_available
    from trl.kernels import chunked_logprob

    chunked_logprob._TRITON_AVAILABLE = bool(enabled) and is_triton_available()  # private: TRL's module flag


def trl_uses_triton(device):
    """Whether TRL's fused LM head takes its Triton path on `device` (it then skips ignored positions itself)."""
    from trl.kernels.chunked_logprob import _use_triton  # private: TRL's dispatch test

    return _use_triton(device)


def use_sdpa_gqa(enabled):
    """Let transformers hand grouped key/value heads to SDPA as they are (enable_gqa), or repeat them first (False)."""
    from transformers.integrations import sdpa_attention

    if not hasattr(sdpa_attention, "use_gqa_in_sdpa"):
        return
    original = getattr(sdpa_attention, "_medllm_use_gqa_in_sdpa", sdpa_attention.use_gqa_in_sdpa)
    sdpa_attention._medllm_use_gqa_in_sdpa = original
    # private: transformers' module-level helper, looked up by name on every attention call
    sdpa_attention.use_gqa_in_sdpa = original if enabled else (lambda *args, **kwargs: False)


def force_one_gpu(args):
    """Make TrainingArguments report one GPU (Trainer.__init__ does the same for a model split over devices)."""
    args._n_gpu = 1  # private: the attribute behind TrainingArguments.n_gpu
    return args


def log_trl_metrics(trainer, mode, entropy, accuracy, train_tokens=0):
    """Append to TRL's logged entropy and token accuracy, and add `train_tokens` to its token count."""
    trainer._metrics[mode]["entropy"].append(entropy)  # private: SFTTrainer's per-mode metric lists
    trainer._metrics[mode]["mean_token_accuracy"].append(accuracy)
    trainer._total_train_tokens += train_tokens  # private: SFTTrainer's running token count
    trainer._metrics[mode]["num_tokens"] = [trainer._total_train_tokens]
