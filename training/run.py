"""One training run, the same pipeline for every method: check inputs, load, train with
checkpoints, save the output folder atomically, evaluate it, write its card and registry entry.

Under `torchrun` / `accelerate launch` every process runs this pipeline: the Trainer does the data
parallelism, every process checks the inputs and none starts unless all agree, the end-of-run
evaluation is split across the processes, and only the main process writes the output folder,
the card, the loss plot and the registry entry, and prints (`summarizer.distributed`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from summarizer import distributed
from summarizer.data import resolve_source
from summarizer.errors import ModelLoadError, UserError, one_line
from summarizer.registry import ModelSpec, resolve_registry_path
from summarizer.templates import Template, resolve_template, template_argument

from . import checkpoints
from .card import model_card, plot_losses, short_location
from .config import RunSettings, as_dict
from .data import collator, load_training_data, token_mean_loss, tokenize
from .methods import get_method
from .params import count_parameters


@dataclass
class TrainResult:
    output: Path
    model: object  # the trained model in memory (a PeftModel for adapters)
    tokenizer: object
    spec: ModelSpec
    registry_entry: str
    global_step: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # logged training losses, in order
    rouge: dict | None = None
    resumed_from: Path | None = None


def _say(message: str) -> None:
    if distributed.is_main_process():
        print(message, file=sys.stderr, flush=True)


def _local_or_hub(location: str) -> str:
    """Local folders become absolute paths (adapter configs and registry entries outlive the cwd)."""
    path = Path(location).expanduser()
    return str(path.resolve()) if path.exists() else location


def probe_base(base: str) -> None:
    """Cheap checks that the base can load (its folder and weights file, or its config on the
    hub), so that a wrong --base fails before the data is downloaded and tokenized."""
    from transformers import AutoConfig

    path = Path(base).expanduser()
    looks_local = base.startswith((".", "/", "~")) or base.count("/") != 1
    if looks_local and not path.is_dir():
        raise ModelLoadError(f"base model folder not found: {base}")
    if path.is_dir() and not any((path / f).is_file() for f in
                                 ("model.safetensors", "model.safetensors.index.json")):
        raise ModelLoadError(f"{base}: no model.safetensors (weights load from safetensors only)")
    try:
        AutoConfig.from_pretrained(base, trust_remote_code=False)
    except Exception as err:
        raise ModelLoadError(f"cannot load base model {base}: {one_line(err)}") from None


def load_base(base: str):
    """(tokenizer, model) of the base, safetensors only, no remote code; one-line errors."""
    from transformers import AutoTokenizer

    from summarizer.checkpoints import load_seq2seq

    probe_base(base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        # float32 whatever the weights are stored in: T5 overflows in float16, and CPUs are
        # slow in half precision
        model = load_seq2seq(base, use_safetensors=True, dtype="float32", trust_remote_code=False)
    except Exception as err:  # offline, unknown repo, corrupt file: one line for the user
        raise ModelLoadError(f"cannot load base model {base}: {one_line(err)}") from None
    return tokenizer, model


def registry_toml(spec: ModelSpec, registry_file: Path | None) -> str:
    """The entry, with local paths relative to the registry file's folder when the two share a
    folder below the filesystem's root (a project that moves, jobs folder and assets together,
    keeps its entries working); others (another disk, /data beside /home) stay absolute."""
    def rel(location):
        if not (location and registry_file is not None and Path(location).is_absolute()):
            return location
        here, target = registry_file.resolve().parent, Path(location).resolve()
        try:
            shared = Path(os.path.commonpath([here, target]))
            relative = os.path.relpath(target, here)
        except ValueError:  # another drive (Windows)
            return location
        if shared == Path(shared.anchor):
            return location
        # "./" keeps a relative folder from reading as a hub id ("owner/name").
        return relative if relative.startswith("..") else "./" + relative
    return ModelSpec(spec.name, spec.kind, rel(spec.path), rel(spec.base),
                     description=spec.description, speakers=spec.speakers,
                     template=spec.template).to_toml()


def check_registration(registry_file: Path, name: str) -> None:
    """Before training: the name must be free in the registry file (or the file new)."""
    import tomllib

    if not registry_file.exists():
        return
    try:
        models = tomllib.loads(registry_file.read_text(encoding="utf-8")).get("models", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{registry_file}: not valid TOML ({err})") from None
    if name in models:
        raise UserError(f"{registry_file} already lists a model named {name!r}; "
                        f"choose another with --name")


def register(registry_file: Path, entry: str) -> None:
    registry_file.parent.mkdir(parents=True, exist_ok=True)
    existing = registry_file.read_text(encoding="utf-8") if registry_file.exists() else ""
    separator = "" if not existing or existing.endswith("\n\n") else (
        "\n" if existing.endswith("\n") else "\n\n")
    checkpoints.write_atomically(registry_file, existing + separator + entry)


def training_arguments(folder: Path, *, learning_rate: float, weight_decay: float,
                       warmup_steps: int, max_steps: int, batch_size: int, save_steps: int,
                       logging_steps: int, seed: int, progress: bool, num_train_epochs: float = 1.0,
                       gradient_accumulation_steps: int = 1, save_total_limit: int = 2,
                       gradient_checkpointing: bool = False, group_by_length: bool = False):
    """The Trainer's arguments, the same for fine-tuning and the mini experiment's pre-training.

    Under a launcher the Trainer runs DDP over the processes, `batch_size` per process."""
    import torch
    from transformers import Seq2SeqTrainingArguments

    cuda = torch.cuda.is_available()
    return Seq2SeqTrainingArguments(
        output_dir=str(folder),
        learning_rate=learning_rate, weight_decay=weight_decay,
        num_train_epochs=num_train_epochs, warmup_steps=warmup_steps, max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        save_strategy="steps", save_steps=save_steps, save_total_limit=save_total_limit,
        logging_steps=logging_steps, logging_first_step=True,
        seed=seed, report_to=[], disable_tqdm=not progress,
        bf16=cuda and torch.cuda.is_bf16_supported(), use_cpu=not cuda,
        label_names=["labels"], remove_unused_columns=False, dataloader_pin_memory=cuda,
        # transformers' new name for gradient checkpointing
        activation_checkpointing=gradient_checkpointing,
        # Batches of similar length pad less: DialogSum prompts average ~180 tokens but a random
        # batch of 16 pads to ~360, so grouping about halves the encoder's work.
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        ddp_backend=distributed.backend(),
        # Every trainable weight (all of them, LoRA's A and B, the soft prompt) takes part in every
        # step, so DDP need not walk the graph after each backward looking for unused ones.
        ddp_find_unused_parameters=False,
    )


def marker_callback():
    from transformers import TrainerCallback

    class MarkComplete(TrainerCallback):
        """Runs after the Trainer has written every file of a checkpoint. Under DDP each process
        writes its own files (the main one the weights and state, each its RNG state): the
        checkpoint is marked once, by the process that wrote the weights, after all have saved."""

        def on_save(self, args, state, control, **kwargs):
            args.distributed_state.wait_for_everyone()
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if args.should_save and folder.is_dir():
                checkpoints.mark_complete(folder, state.global_step)

    return MarkComplete()


@dataclass
class _Plan:
    """A run whose inputs have all been checked: nothing left that a user could have got wrong."""
    method: str
    module: object
    settings: RunSettings
    config: object
    output: Path
    name: str
    base: str
    data: str
    train_rows: list
    eval_rows: list
    resume_from: Path | None
    register_file: Path | None
    template: Template


def plan(method: str, settings: RunSettings, config=None,
         register_file: Path | None = None) -> _Plan:
    """Every check a user can fail, cheapest first, before any long work."""
    module = get_method(method)
    config = config if config is not None else module.Config()
    template = resolve_template(template_argument(settings.prompt))
    if not settings.output:
        raise UserError("--output is required: the folder to write the trained model to")
    output = Path(settings.output).expanduser().resolve()
    checkpoints.check_output(output, settings.overwrite, settings.resume)
    for flag, value in (("--max-steps", settings.max_steps), ("--save-steps", settings.save_steps)):
        if value == 0 or value < -1 or (flag == "--save-steps" and value < 1):
            raise UserError(f"{flag} must be a positive number of steps, got {value}")
    name = settings.name or output.name
    if register_file is not None:
        check_registration(register_file, name)
    base = _local_or_hub(settings.base)
    probe_base(base)
    data = resolve_source(settings.data)
    train_rows, eval_rows = load_training_data(data, settings.limit_train, settings.eval_split,
                                               settings.limit_eval)
    resume_from = checkpoints.latest_complete_checkpoint(output) if settings.resume else None
    if resume_from is not None:
        checkpoints.check_method(resume_from, module.KIND)
    return _Plan(method, module, settings, config, output, name, base, data, train_rows, eval_rows,
                 resume_from, register_file, template)


def train(method: str, settings: RunSettings, config=None, *, progress: bool = True,
          register_file: Path | None = None, callbacks=()) -> TrainResult:
    run = distributed.agree(lambda: plan(method, settings, config, register_file))
    if len(set(distributed.gather([str(run.resume_from)]))) > 1:
        raise UserError(f"the processes found different checkpoints in "
                        f"{checkpoints.checkpoint_dir(run.output)}: every process must see the "
                        f"same folder (a shared file system)")
    # Only now, with every process's checks done, does anyone delete or tidy checkpoints.
    distributed.on_main(lambda: _prepare_checkpoints(run))
    trainer, tokenizer, model, state, seconds, loss_curve, counts = _fit(run, progress, callbacks)
    losses = [loss for _, loss in loss_curve]
    spec = ModelSpec(name=run.name, kind=run.module.KIND, path=str(run.output),
                     description=f"{method} on {short_location(run.data)} from "
                                 f"{short_location(settings.base)} "
                                 f"(python -m training {method})",
                     speakers="dialogsum",  # trained on DialogSum-format dialogues (#Person1# tags)
                     template=_registry_template(run.template),
                     **run.module.registry_entry(run.config, run.base))
    # Printed entries are relative to the default registry file, where they are meant to go.
    entry = registry_toml(spec, register_file or resolve_registry_path(None))
    rouge = _write_output(run, trainer, tokenizer, spec, entry, state.global_step, seconds,
                          loss_curve, counts, progress)
    if register_file is not None and distributed.is_main_process():
        register(register_file, entry)
    return TrainResult(output=run.output, model=model, tokenizer=tokenizer, spec=spec,
                       registry_entry=entry, global_step=state.global_step, seconds=seconds,
                       losses=losses, rouge=rouge, resumed_from=run.resume_from)


def _registry_template(template: Template) -> str:
    """A built-in by name; a user's template by its text (its custom- name alone could not be
    resolved again when the registry is read)."""
    return template.name if template.builtin else template.text


def _prepare_checkpoints(run: _Plan) -> None:
    """Clear or tidy the checkpoint folder (main process only, once every process has checked)."""
    settings = run.settings
    if settings.overwrite:
        checkpoints.clear_checkpoints(run.output)
    if settings.resume:
        for path in checkpoints.discard_partial(run.output):
            _say(f"deleted unfinished checkpoint {path.name}")
        _say(f"resuming from {run.resume_from}" if run.resume_from else
             "no complete checkpoint to resume from: starting at step 0")


def _fit(run: _Plan, progress: bool, callbacks):
    """Load the base, wrap it for the method and train with checkpoints."""
    from transformers import Seq2SeqTrainer, set_seed

    settings = run.settings
    tokenizer, model = load_base(run.base)
    set_seed(settings.seed)  # LoRA's A matrices and the data order
    model = run.module.wrap(model, run.config, run.base)
    counts = count_parameters(model)
    _say(f"{run.method}: {counts[0]:,} of {counts[1]:,} parameters trainable "
         f"({100 * counts[0] / counts[1]:.3f}%), {len(run.train_rows)} training rows")
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_arguments(
            checkpoints.checkpoint_dir(run.output), learning_rate=run.config.learning_rate,
            weight_decay=run.config.weight_decay, warmup_steps=run.config.warmup_steps,
            max_steps=settings.max_steps, batch_size=settings.per_device_train_batch_size,
            save_steps=settings.save_steps, logging_steps=settings.logging_steps, seed=settings.seed,
            progress=progress, num_train_epochs=run.config.num_train_epochs,
            gradient_accumulation_steps=settings.gradient_accumulation_steps,
            save_total_limit=settings.save_total_limit,
            gradient_checkpointing=settings.gradient_checkpointing,
            group_by_length=settings.group_by_length),
        train_dataset=tokenize(run.train_rows, tokenizer, settings.max_source_length,
                               settings.max_target_length, run.template),
        data_collator=collator(tokenizer, model), processing_class=tokenizer,
        compute_loss_func=token_mean_loss, callbacks=[marker_callback(), *callbacks],
    )
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)
    seconds = time.perf_counter() - started
    loss_curve = [(entry["step"], entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    model = trainer.model
    model.eval()
    return trainer, tokenizer, model, trainer.state, seconds, loss_curve, counts


def _write_output(run: _Plan, trainer, tokenizer, spec: ModelSpec, entry: str, global_step: int,
                  seconds: float, loss_curve: list[tuple[int, float]], counts: tuple[int, int],
                  progress: bool) -> dict | None:
    """Weights, tokenizer, evaluation, card: all in a temporary folder renamed into place by the
    main process; under a launcher every process takes part in the evaluation."""
    settings, rouge, model = run.settings, None, trainer.model
    losses = [loss for _, loss in loss_curve]
    # FSDP and DeepSpeed hold a share of the weights on each process: gathering the whole state
    # dict is a collective, so every process asks for it (DDP and one process have it already).
    state_dict = (trainer.accelerator.get_state_dict(model)
                  if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled else None)
    main = distributed.is_main_process()
    with (checkpoints.atomic_folder(run.output) if main else nullcontext()) as folder:
        def save() -> str:
            run.module.save(model, folder, settings.save_dtype, settings.max_shard_size,
                            state_dict=state_dict)
            tokenizer.save_pretrained(folder)
            return str(folder)

        saved = Path(distributed.on_main(save))  # the others wait for the files they evaluate
        if run.eval_rows:  # scored from the saved files, through the registry, as the app loads them
            from .evaluation import evaluate_spec
            rouge = evaluate_spec(ModelSpec(run.name, spec.kind, str(saved), spec.base,
                                            template=spec.template), run.eval_rows,
                                  settings.eval_batch_size, settings.eval_max_new_tokens, progress)
        if not main:
            return rouge
        (folder / "training_config.json").write_text(json.dumps(
            {"method": run.method, "settings": as_dict(settings), "config": as_dict(run.config),
             "template": {"name": run.template.name, "text": run.template.text},
             "global_step": global_step, "seconds": seconds, "rouge": rouge, "losses": losses,
             "trainable_parameters": counts[0], "all_parameters": counts[1],
             "processes": trainer.args.world_size}, indent=2))
        from_file = Path(run.data).expanduser().is_file()
        plotted = plot_losses(loss_curve, folder / "training_loss.png")
        (folder / "README.md").write_text(model_card(
            method=run.method, kind=spec.kind, base=settings.base, data=run.data,
            n_train=len(run.train_rows), settings=settings, config=run.config, trainable=counts[0],
            total=counts[1], seconds=seconds, global_step=global_step,
            resumed_from=str(run.resume_from) if run.resume_from else None,
            final_loss=losses[-1] if losses else None, rouge=rouge, registry_entry=entry,
            loss_plot="training_loss.png" if plotted else None, processes=trainer.args.world_size,
            template=run.template,
            eval_description=(f"the last {len(run.eval_rows)} rows of the file, held out from training"
                              if from_file else
                              f"the first {len(run.eval_rows)} rows of the {settings.eval_split} split")))
    return rouge
