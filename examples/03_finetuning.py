"""Fine-tuning (API.md "Examples / Fine-Tuning Example"): FineTuner from ``hyena-glt-base``.

``hyena-glt-base`` ships inside the package (hyena_glt/assets, see its MODEL_CARD.md), so this
runs on a fresh install with no network; a model you pretrained and registered under the same
name (``hyena-glt pretrain ... --register hyena-glt-base``) takes its place. The base model is a
DNA model, so the task here is DNA: promoter vs non-promoter (bundled human non-TATA promoter
sequences, 251 nt) rather than API.md's protein-function example.

    python examples/03_finetuning.py --quick

Look at: which model directory the name resolved to, the validation metrics after each epoch in
the log, and the held-out accuracy/AUROC of the fine-tuned model at the end.
"""

from __future__ import annotations

import logging

from _common import parser, promoter_split

from hyena_glt.data import GenomicDataset
from hyena_glt.training import FineTuner


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__)
    cli.add_argument("--model", default="hyena-glt-base",
                     help="registered name or model directory (default hyena-glt-base)")
    cli.add_argument("--strategy", default="full",
                     choices=("full", "head_only", "gradual_unfreeze"))
    args = cli.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    # Fine-tune pre-trained model
    finetuner = FineTuner(
        pretrained_model=args.model,
        task_type="sequence_classification",
        num_classes=2,
        strategy=args.strategy,
        backbone_lr=1e-3,
        batch_size=16,
        output_dir=args.out / "finetune_run",
    )
    print(f"{args.model!r} -> {finetuner.source}")

    train, test = promoter_split(*((96, 64) if args.quick else (1400, 600)))
    promoter_dataset, val_dataset = (
        GenomicDataset(frame["sequence"].tolist(), frame["label"].tolist(),
                       tokenizer=finetuner.tokenizer, max_length=256)
        for frame in (train, test))

    # Fine-tune on custom dataset
    finetuned_model = finetuner.finetune(
        train_dataset=promoter_dataset,
        val_dataset=val_dataset,
        num_epochs=1 if args.quick else 3,
        show_progress=False,
    )
    assert finetuner.trainer is not None
    metrics = finetuner.trainer.evaluate(val_dataset)
    print(f"fine-tuned {type(finetuned_model).__name__} on {len(promoter_dataset)} sequences; "
          f"held-out ({len(val_dataset)}):")
    for key in ("eval_accuracy", "eval_f1_macro", "eval_auroc"):
        print(f"  {key} = {metrics[key]:.4f}")
    finetuned_model.save_pretrained(args.out / "promoter_classifier", finetuner.tokenizer)
    print(f"saved the fine-tuned model to {args.out / 'promoter_classifier'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
