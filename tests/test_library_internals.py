"""Each private library attribute medllm/library_internals.py touches still exists and does what we rely on."""

import torch

from conftest import four_example_trainer


def test_trl_triton_switch_and_dispatch_exist(lib):
    from trl.kernels import chunked_logprob

    assert hasattr(chunked_logprob, "_TRITON_AVAILABLE") and hasattr(chunked_logprob, "_use_triton")
    lib.use_trl_triton_loss(False)
    assert chunked_logprob._TRITON_AVAILABLE is False
    assert lib.trl_uses_triton(torch.device("cpu")) is False


def test_sdpa_gqa_switch_restores_the_original(lib):
    from transformers.integrations import sdpa_attention

    original = getattr(sdpa_attention, "_medllm_use_gqa_in_sdpa", sdpa_attention.use_gqa_in_sdpa)
    lib.use_sdpa_gqa(False)
    assert sdpa_attention.use_gqa_in_sdpa is not original and sdpa_attention.use_gqa_in_sdpa() is False
    lib.use_sdpa_gqa(True)
    assert sdpa_attention.use_gqa_in_sdpa is original


def test_force_one_gpu_sets_what_n_gpu_reports(lib, tmp_path):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert hasattr(args, "_n_gpu")
    assert lib.force_one_gpu(args).n_gpu == 1


def test_trl_metrics_are_appended_where_sfttrainer_logs_them(lib, embedded_model, tmp_path):
    model, tokenizer = embedded_model
    trainer = four_example_trainer(lib, model, tokenizer, tmp_path, lib.MedSFTTrainer)
    before = trainer._total_train_tokens
    lib.log_trl_metrics(trainer, "train", 1.5, 0.25, train_tokens=7)
    assert trainer._metrics["train"]["entropy"][-1] == 1.5
    assert trainer._metrics["train"]["mean_token_accuracy"][-1] == 0.25
    assert trainer._metrics["train"]["num_tokens"] == [before + 7]
