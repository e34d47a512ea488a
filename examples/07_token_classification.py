"""Token classification from FASTA + GFF3: per-base CDS labels, fine-tuned from the base model.

Labels every base of the bundled Arabidopsis chloroplast genome (resources/genomes, 154 kb)
1 inside a GFF3 ``CDS`` feature (resources/annotation), else 0, cuts it into windows and holds
out 20% of them, spread over the genome (``ingest_annotation(split=0.8)``: no window crosses a
cut, and held-out copies of the inverted repeat are dropped), and fine-tunes ``hyena-glt-base``
with a per-base head (``task_type="token_classification"``).

    python examples/07_token_classification.py --quick

Look at: the windows and the fraction of CDS bases in each part (the majority-class accuracy to
beat), then the held-out per-base accuracy, F1 and AUROC, and the first held-out window's true
vs predicted CDS track.
"""

from __future__ import annotations

import logging

import torch
from _common import RESOURCES, parser

from hyena_glt.data import GenomeAnnotationDataset
from hyena_glt.ingest.annotation import ingest_annotation
from hyena_glt.training import FineTuner


def track(labels: torch.Tensor, width: int = 64) -> str:
    """A window's 0/1 labels as a text track: '#' where most bases of a bin are CDS."""
    bins = labels.float().view(width, -1).mean(1)
    return "".join("#" if value > 0.5 else "." for value in bins.tolist())


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__)
    cli.add_argument("--model", default="hyena-glt-base",
                     help="registered name or model directory (default hyena-glt-base)")
    args = cli.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    window = 256 if args.quick else 1024

    finetuner = FineTuner(pretrained_model=args.model, task_type="token_classification",
                          num_classes=2, backbone_lr=1e-3, batch_size=8,
                          output_dir=args.out / "token_classification_run")
    shards = args.out / "chloroplast_cds"
    counts = ingest_annotation(RESOURCES / "genomes" / "NC_000932.1.fa.gz",
                               RESOURCES / "annotation" / "NC_000932.1.gff3.gz", shards,
                               feature="CDS", window=window, split=0.8,
                               tokenizer=finetuner.tokenizer)
    for part, c in counts.items():
        print(f"{part}: {c['windows']} windows of {window} nt, "
              f"CDS fraction {c['feature_bases'] / c['bases']:.3f}")
    train = GenomeAnnotationDataset(shards / "train", max_length=window)
    test = GenomeAnnotationDataset(shards / "test", max_length=window)

    model = finetuner.finetune(train, num_epochs=1, max_steps=6 if args.quick else None,
                               show_progress=False)
    assert finetuner.trainer is not None
    metrics = finetuner.trainer.evaluate(test)
    print(f"held-out per-base metrics ({len(test)} windows):")
    for key in ("eval_accuracy", "eval_f1_macro", "eval_auroc"):
        print(f"  {key} = {metrics[key]:.4f}")
    item = test[0]
    with torch.no_grad():
        predicted = model(item["input_ids"][None]).logits.argmax(-1)[0]
    print("first held-out window, CDS track (# = CDS):")
    print(f"  true      {track(item['labels'].clamp(min=0))}")
    print(f"  predicted {track(predicted)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
