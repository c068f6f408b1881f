"""train.packing: several examples in one row, each attending only to itself."""

import torch

from citetune.params import default_params
from citetune.training import build_trainer, load_split


def test_packed_examples_are_scored_as_if_each_were_alone(tiny_base, sft_dir, tmp_path):
    train_ds, _ = load_split(sft_dir / "train.jsonl")
    params = default_params("train", quantization="none", batch_size=2, max_length=448, packing=True)
    trainer = build_trainer(params, train_ds, None, tiny_base, tmp_path, device="cpu")
    assert len(trainer.train_dataset) < len(train_ds)  # rows hold several examples
    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model.eval()
    ids, positions = batch["input_ids"][:1], batch["position_ids"][:1]
    starts = (positions[0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    assert len(starts) > 2  # at least two examples in the row
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions).logits[0]
        for begin, end in zip(starts, starts[1:]):
            alone = model(input_ids=ids[:, begin:end]).logits[0]
            assert torch.allclose(packed[begin:end], alone, atol=1e-4)
    # The loss stays on the answers: every labelled token is a completion token of some example.
    labels = batch["labels"][0]
    assert (labels != -100).sum() < (labels.numel() // 2)
