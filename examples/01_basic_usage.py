"""Basic usage (API.md "Examples / Basic Usage"): config -> model + tokenizer -> forward pass.

    python examples/01_basic_usage.py            # the API's config (d_model 512, 8 layers)
    python examples/01_basic_usage.py --quick    # a tiny config, same code path

Look at: the logits shape ``(batch, num_classes)`` and the class probabilities of each sequence
(an untrained model: close to uniform, and different for the two sequences).
"""

from __future__ import annotations

import torch
from _common import parser

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import DNATokenizer
from hyena_glt.model import HyenaGLTForSequenceClassification


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)  # --quick: d_model 64, 2 layers (--out: unused)
    torch.manual_seed(0)

    # Configuration (as in API.md; --quick only shrinks the model)
    config = HyenaGLTConfig(
        vocab_size=8192,
        d_model=64 if args.quick else 512,
        n_layers=2 if args.quick else 8,
        num_classes=10,
        task_type="dna_sequence_modeling",
    )

    # Model and tokenizer
    model = HyenaGLTForSequenceClassification(config).eval()
    tokenizer = DNATokenizer(vocab_size=config.vocab_size)

    # Prepare data
    sequences = ["ATCGATCGATCG", "GCTAGCTAGCTA"]
    tokens = [tokenizer.encode(seq) for seq in sequences]
    input_ids = torch.tensor(tokens)

    # Forward pass
    with torch.no_grad():
        outputs = model(input_ids)
    logits = outputs.logits

    print(f"model: {type(model).__name__}, {model.num_parameters():,} parameters")
    print(f"input_ids {tuple(input_ids.shape)} -> logits {tuple(logits.shape)} "
          f"(batch, num_classes)")
    for sequence, probs in zip(sequences, logits.softmax(-1), strict=True):
        print(f"  {sequence}: P(class) = {[round(p, 3) for p in probs.tolist()]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
