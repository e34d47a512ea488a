"""Optimization (API.md "Examples / Optimization Example"): quantize and prune a classifier.

Trains a small promoter classifier for a few steps, then applies int8 dynamic quantization
(``ModelQuantizer``) and 50% magnitude pruning (``ModelPruner``) and measures each version the
same way (``measure_model``: stored size, non-zero parameters, latency, held-out accuracy).

    python examples/05_optimization.py --quick

Look at: the table of size/sparsity/latency/accuracy for the original, quantized and pruned
models; quantization should shrink the stored size with accuracy close to the original, and
pruning should show about 50% zero weights.
"""

from __future__ import annotations

import logging

from _common import parser, promoter_split, small_config
from torch.utils.data import DataLoader

from hyena_glt.data import DNATokenizer, GenomicDataset
from hyena_glt.model import HyenaGLTForSequenceClassification
from hyena_glt.optimization import (
    ModelPruner,
    ModelQuantizer,
    PruningConfig,
    QuantizationConfig,
    measure_model,
)
from hyena_glt.training import HyenaGLTTrainer, seed_everything


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    seed_everything(0)
    train, test = promoter_split(*((96, 64) if args.quick else (1400, 600)))
    tokenizer = DNATokenizer()
    train_dataset, test_dataset = (
        GenomicDataset(f["sequence"].tolist(), f["label"].tolist(), tokenizer=tokenizer,
                       max_length=256) for f in (train, test))
    config = small_config(num_classes=2, num_epochs=1 if args.quick else 3,
                          task_type="sequence_classification")
    model = HyenaGLTForSequenceClassification(config)
    HyenaGLTTrainer(model, config, train_dataset, output_dir=args.out / "optimization_run",
                    show_progress=False).train()
    model.eval()
    train_dataloader = DataLoader(train_dataset, batch_size=16)
    test_dataloader = DataLoader(test_dataset, batch_size=16)

    # Quantize model
    quantizer = ModelQuantizer(QuantizationConfig(quantization_type="dynamic"))
    quantized_model = quantizer.quantize(model)

    # Prune model
    pruner = ModelPruner(PruningConfig(pruning_type="magnitude", sparsity=0.5))
    pruned_model = pruner.prune(model, train_dataloader)

    print(f"{'model':<10} {'size_bytes':>11} {'nonzero/params':>16} {'latency_ms':>11} "
          f"{'accuracy':>9}")
    for name, candidate in (("original", model), ("quantized", quantized_model),
                            ("pruned", pruned_model)):
        m = measure_model(candidate, test_dataloader)
        print(f"{name:<10} {m.size_bytes:>11,} {m.nonzero_parameters / m.parameters:>16.3f} "
              f"{m.latency_ms:>11.1f} {m.metric:>9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
