"""train: fine-tune a LoRA adapter on the SFT set with TRL, or a plain PyTorch loop (train.loop: manual);
train.quantization: 4bit makes it QLoRA on a 4-bit base."""

from citetune.cli import run_stage, stage_parser
from citetune.io import write_json
from citetune.training import is_main_process, train_adapter


def main(args, params):
    metrics = train_adapter(params, args.train, args.validation, args.base_dir, args.out_dir, args.live_dir,
                            checkpoint_dir=args.checkpoint_dir)
    if not is_main_process():  # accelerate launch: the first process reports for all
        return
    write_json(args.metrics, metrics)
    print(f"train: {metrics['steps']} steps in {metrics['seconds']} s on {metrics['device']} "
          f"({metrics['quantization']}), loss {metrics['train_loss_first']:.3f} -> {metrics['train_loss_final']:.3f}, "
          f"eval loss {metrics['eval_loss']} -> {args.out_dir}"
          + (f" (resumed at step {metrics['resumed_from_step']})" if metrics["resumed_from_step"] else ""))


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--train", required=True, help="the qa stage's train.jsonl")
    parser.add_argument("--validation", required=True, help="the qa stage's validation.jsonl")
    parser.add_argument("--base-dir", required=True, help="the base stage's model")
    parser.add_argument("--out-dir", required=True, help="the adapter")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--live-dir", required=True, help="DVCLive logs and plots")
    parser.add_argument("--checkpoint-dir", help="checkpoints every train.save_steps, resumed after a kill "
                        "(removed once the adapter is saved)")
    run_stage("train", parser, main)
