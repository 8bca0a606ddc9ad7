"""The LM head runs only on answer positions, and the loss, gradients and logged metrics equal TRL's own."""

import pytest
import torch

from conftest import ANSWERS, QUESTIONS, four_example_trainer


@pytest.fixture()
def trainer(lib, peft_model, tokenizer, tmp_path):
    """A MedSFTTrainer with our recipe on four examples (fp32, CPU); TRL's fused forward is removed afterwards."""
    made = four_example_trainer(lib, peft_model, tokenizer, tmp_path, lib.MedSFTTrainer)
    made.model.train()
    for param in made.model.parameters():  # non-zero LoRA B, so that every LoRA gradient is non-trivial
        if param.requires_grad:
            torch.nn.init.normal_(param, std=0.02)
    yield made
    lib.release_memory("cpu", peft_model.get_base_model())


def packed_batch(trainer):
    """The collator's padding-free row of all four examples."""
    return trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])


def padded_batch(trainer, tokenizer, lib):
    """Two examples as a padded batch of two rows with an attention mask (the non-packed case)."""
    encoded = [lib.encode_for_loss(tokenizer, q, a) for q, a in zip(QUESTIONS[:2], ANSWERS[:2])]
    width = max(len(e["input_ids"]) for e in encoded)
    pad = lambda seq, value: seq + [value] * (width - len(seq))  # noqa: E731
    return {"input_ids": torch.tensor([pad(e["input_ids"], tokenizer.pad_token_id) for e in encoded]),
            "labels": torch.tensor([pad(e["labels"], -100) for e in encoded]),
            "attention_mask": torch.tensor([pad([1] * len(e["input_ids"]), 0) for e in encoded])}


def loss_and_grads(trainer, compute, inputs, num_items_in_batch=None):
    """A loss from compute(trainer, model, inputs, ...), its backward, and a copy of every trainable gradient."""
    model = trainer.model
    model.zero_grad(set_to_none=True)
    loss = compute(trainer, model, dict(inputs), num_items_in_batch=num_items_in_batch)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


@pytest.mark.parametrize("num_items", [None, 97])
def test_loss_and_gradients_equal_trl_on_a_packed_row(lib, trainer, num_items):
    batch = packed_batch(trainer)
    items = None if num_items is None else torch.tensor(num_items)
    ours, ours_grads = loss_and_grads(trainer, lib.MedSFTTrainer.compute_loss, batch, items)
    theirs, their_grads = loss_and_grads(trainer, lib.SFTTrainer.compute_loss, batch, items)
    assert abs(ours.item() - theirs.item()) <= 1e-5
    assert ours_grads.keys() == their_grads.keys() and len(ours_grads) > 0
    for name, grad in ours_grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(grad, their_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_loss_and_gradients_equal_trl_on_a_padded_batch(lib, trainer, tokenizer):
    batch = padded_batch(trainer, tokenizer, lib)
    ours, ours_grads = loss_and_grads(trainer, lib.MedSFTTrainer.compute_loss, batch)
    theirs, their_grads = loss_and_grads(trainer, lib.SFTTrainer.compute_loss, batch)
    assert abs(ours.item() - theirs.item()) <= 1e-5
    for name, grad in ours_grads.items():
        torch.testing.assert_close(grad, their_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_the_head_projects_only_answer_positions(lib, trainer):
    batch = packed_batch(trainer)
    seen = []
    head = trainer.model.get_output_embeddings()
    handle = head.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[-2]))
    try:
        trainer.compute_loss(trainer.model, dict(batch))
    finally:
        handle.remove()
    scored = int((batch["labels"][:, 1:] != -100).sum())
    assert seen == [scored]
    assert scored < batch["input_ids"].shape[1] * 0.9  # the prompts are not projected


def test_logged_metrics_equal_trl(lib, trainer):
    batch = packed_batch(trainer)
    logged = {}
    for name, cls in [("ours", lib.MedSFTTrainer), ("trl", lib.SFTTrainer)]:
        trainer._metrics["train"].clear()
        trainer._total_train_tokens = 0
        with torch.no_grad():
            cls.compute_loss(trainer, trainer.model, dict(batch))
        logged[name] = {key: list(values) for key, values in trainer._metrics["train"].items()}
    assert logged["ours"].keys() == logged["trl"].keys() >= {"entropy", "mean_token_accuracy", "num_tokens"}
    assert logged["ours"]["num_tokens"] == logged["trl"]["num_tokens"] == [batch["input_ids"].shape[1]]
    for key in ("entropy", "mean_token_accuracy"):
        assert logged["ours"][key] == pytest.approx(logged["trl"][key], abs=1e-5)


def test_answer_positions_are_those_with_a_next_token_label(lib):
    labels = torch.tensor([[-100, -100, 5, 6, -100], [-100, -100, -100, 7, 8]])
    assert lib.answer_positions(labels).int().tolist() == [[0, 1, 1, 0, 0], [0, 0, 1, 1, 0]]
    assert not lib.answer_positions(torch.full((1, 4), -100)).any()


def test_a_row_without_answer_tokens_gives_a_finite_zero_loss(lib, trainer):
    batch = packed_batch(trainer)
    batch["labels"] = torch.full_like(batch["labels"], -100)
    loss = trainer.compute_loss(trainer.model, dict(batch))
    assert loss.item() == 0.0
    loss.backward()  # still connected to the model, like TRL's
    trainer.model.zero_grad(set_to_none=True)
