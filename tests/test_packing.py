"""Packed training batches give the same loss as the examples one by one, and prompts carry no labels."""

import pandas as pd
import pytest
import torch

from conftest import ANSWERS, QUESTIONS, four_example_trainer


@pytest.fixture()
def packed(lib, peft_model, tokenizer, tmp_path):
    """One packed batch from SFTTrainer with our recipe, and the trainer itself."""
    trainer = four_example_trainer(lib, peft_model, tokenizer, tmp_path, lib.SFTTrainer)
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer, batch


def test_all_examples_share_one_row_without_padding(packed):
    _, batch = packed
    assert batch["input_ids"].shape[0] == 1
    assert int((batch["position_ids"][0] == 0).sum()) == len(QUESTIONS)
    assert "attention_mask" not in batch


def test_prompt_tokens_never_carry_labels(lib, packed, tokenizer):
    _, batch = packed
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [batch["input_ids"].shape[1]]
    expected = {tuple(lib.encode_for_loss(tokenizer, q, a)["input_ids"]): lib.encode_for_loss(tokenizer, q, a)["labels"]
                for q, a in zip(QUESTIONS, ANSWERS)}
    for begin, end in zip(starts, starts[1:]):
        ids = tuple(batch["input_ids"][0, begin:end].tolist())
        labels = batch["labels"][0, begin:end].tolist()
        assert ids in expected, "a packed segment is not one whole example"
        # the collator also masks each segment's first token; everything else must match answer-only labels
        assert labels[1:] == expected[ids][1:]


def test_packed_loss_equals_token_weighted_unpacked_loss(lib, packed, tokenizer):
    trainer, batch = packed
    model = trainer.model
    model.eval()
    with torch.no_grad():
        packed_loss = trainer.compute_loss(model, dict(batch)).item()
        total, count = 0.0, 0
        for question, answer in zip(QUESTIONS, ANSWERS):
            example = lib.encode_for_loss(tokenizer, question, answer)
            n = sum(label != -100 for label in example["labels"][1:])
            out = model(input_ids=torch.tensor([example["input_ids"]]), labels=torch.tensor([example["labels"]]),
                        use_cache=False)
            total += out.loss.item() * n
            count += n
    unpacked_loss = total / count
    assert abs(packed_loss - unpacked_loss) / unpacked_loss < 1e-4


def test_answer_nll_matches_model_loss(lib, peft_model, tokenizer):
    frame = pd.DataFrame({"question": QUESTIONS, "answer": ANSWERS})
    total, count = lib.answer_nll(peft_model, tokenizer, frame, batch_size=3)
    expected_total, expected_count = 0.0, 0
    with torch.no_grad():
        for question, answer in zip(QUESTIONS, ANSWERS):
            example = lib.encode_for_loss(tokenizer, question, answer)
            n = sum(label != -100 for label in example["labels"][1:])
            loss = peft_model(input_ids=torch.tensor([example["input_ids"]]),
                              labels=torch.tensor([example["labels"]]), use_cache=False).loss.item()
            expected_total += loss * n
            expected_count += n
    assert count == expected_count
    assert abs(total - expected_total) / expected_total < 1e-4
