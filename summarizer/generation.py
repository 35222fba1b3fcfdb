"""The one path from dialogues to summaries, for any set of registry models.

Work is grouped by the base weights it runs on: rows for a base model and for the LoRA adapters
on it decode together in one batch (PEFT's `adapter_names`, "__base__" for the plain model);
soft-prompt rows run on the same base with their prompt vectors in front. Within a group, prompts
are sorted by length before batching so that padding (wasted compute) stays small.
"""

from __future__ import annotations

import copy
import os
import time
import weakref
from dataclasses import dataclass, field, fields, replace
from typing import Callable, Sequence

from . import distributed, settings, speakers as speaker_styles
from .baseline import longest_utterances
from .data import Example
from .errors import ModelLoadError, UserError, one_line
from .hosting import gpu_task as on_gpu, on_zero_gpu  # before any model touches CUDA, as ZeroGPU requires
from .prompts import (DEFAULT_MAX_PROMPT_TOKENS, Prompt, ShotSettings, TokenizerCounter, WordCounter,
                      build_prompt, choose_shots, clean_text)
from .request import DecodingSettings, SummaryRequest
from .templates import DEFAULT_TEMPLATE, Template
from .registry import LoadedModel, Registry

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch

# ZeroGPU runs the wrapped function in a forked worker and pickles its arguments to it, so the
# function takes plain data and finds its model in this table, which the worker inherits (the
# models a request uses are loaded before its first GPU call). Weak: an unloaded model goes.
_BACKBONES: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()
ZERO_GPU = on_zero_gpu()


@dataclass
class Result:
    model: str
    example_id: str
    summary: str | None
    prompt: Prompt | None = None
    error: str | None = None
    seconds: float = 0.0  # wall time of the batch that produced this summary
    batch_size: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    # Speakers (summarizer.speakers): `summary` is what the user sees, names restored;
    # `raw_summary` is the model's own text (with #Person1# tags where it read them).
    raw_summary: str | None = None
    speakers: list[str] = field(default_factory=list)  # as found, in order of first turn
    speaker_format: str = ""  # dialogsum | name | timestamped | whatsapp | transcript | none ("" kept as pasted)
    speaker_mapping: dict[str, str] = field(default_factory=dict)  # name -> #PersonN# the model read
    speaker_note: str = ""
    template: str = DEFAULT_TEMPLATE  # the name of the prompt template (summarizer.templates)
    # The chat as summarizer.speakers.parse read it (not serialized): the faithfulness check
    # reuses it instead of parsing the dialogue again.
    parsed: object = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if f.name not in ("parsed", "prompt")}
        data["prompt"] = self.prompt.text if self.prompt else None
        data["notices"] = self.prompt.notices if self.prompt else []
        return data


@dataclass
class _Item:
    index: int  # position in the caller's (model, template, example) order
    model: LoadedModel
    example: Example  # with the dialogue as this model reads it (speakers prepared)
    prompt: Prompt
    speakers: tuple | None = None  # (SpeakerMapping | None, ParsedDialogue) unless kept as pasted
    template: str = DEFAULT_TEMPLATE


PartialCallback = Callable[[str, str, str], None]  # (model name, example id, text so far)
# (model name, template name, example id, text so far): what runs inside, and what a caller
# comparing templates of one model needs to tell its rows apart
TemplatePartialCallback = Callable[[str, str, str, str], None]


def summarize(registry: Registry, model_names: Sequence[str], examples: Sequence[Example],
              shots: ShotSettings = ShotSettings(), decoding: DecodingSettings = DecodingSettings(),
              shot_pool: Sequence[Example] | None = None, progress: bool = False,
              on_partial: PartialCallback | None = None, processes=None,
              speakers: str = "auto", templates: Sequence[Template | str] | None = None,
              on_template_partial: TemplatePartialCallback | None = None) -> list[Result]:
    """Summaries of every example by every model in every template, ordered model by model,
    template by template, example by example.

    The arguments are checked once, as a `SummaryRequest` (see `summarize_request`, which callers
    holding a request use directly). `templates` (Template objects, built-in names or template
    texts): each model runs in each; None or empty runs each model in its registry entry's
    default template. `on_partial` streams (model, example id, text); `on_template_partial`
    streams (model, template, example id, text).
    """
    request = SummaryRequest(tuple(examples), tuple(model_names), shots, decoding, speakers,
                             tuple(templates or ()))
    return summarize_request(registry, request, shot_pool, progress, on_partial, processes, on_template_partial)


def summarize_request(registry: Registry, request: SummaryRequest, shot_pool: Sequence[Example] | None = None,
                      progress: bool = False, on_partial: PartialCallback | None = None, processes=None,
                      on_template_partial: TemplatePartialCallback | None = None) -> list[Result]:
    """Summaries for a validated request (see `summarize`).

    A model that cannot load gives results with `error` set; the other models still run.
    `processes` (Accelerate's PartialState of a multi-process run) splits the work: the batches
    are formed exactly as one process would form them, each process decodes every N-th batch,
    and every process returns all the results. Same batches, same greedy outputs.
    `request.speakers` "auto" writes each model's dialogue the way its registry entry says it
    reads speakers (names or #PersonN# tags, `summarizer.speakers.prepare`) and puts the names
    back in its summary; "keep" sends the text as pasted.
    """
    request.check_models(registry)
    if request.shots.shots and not shot_pool:
        raise UserError("one- and few-shot prompts need solved examples: give a train split as the shot pool")
    results, items = _items(registry, request, shot_pool)
    on_partial = _partial_callback(on_partial, on_template_partial, items)
    groups = distributed.share(_group(items, request.decoding), processes)
    main = processes is None or processes.is_main_process
    bar = _progress_bar(sum(len(g) for g in groups), progress and main)
    done: list[tuple[int, Result]] = []
    for group, group_results in _run_groups(groups, request.decoding, on_partial):
        done += [(item.index, _with_speakers(result, item)) for result, item in zip(group_results, group)]
        bar.update(len(group))
    bar.close()
    for index, result in (distributed.gather(done) if processes is not None else done):
        results[index] = result
    return results


def _items(registry: Registry, request: SummaryRequest, shot_pool) -> tuple[list, list[_Item]]:
    """One work item per model x template x example (None placeholders for their results), and
    the results of models that could not load."""
    chosen_shots = {e.id: choose_shots(shot_pool or [], request.shots, e) for e in request.examples}
    results: list[Result | None] = []
    items: list[_Item] = []
    prompts: dict[tuple, Prompt] = {}  # models sharing a tokenizer (and speaker style) share prompts
    prepared: dict[tuple, tuple] = {}
    for name in request.models:
        templates = request.templates or (registry.spec(name).default_template,)
        try:
            model = registry.get(name)
        except ModelLoadError as err:
            results.extend(Result(name, e.id, None, error=str(err), template=t.name)
                           for t in templates for e in request.examples)
            continue
        counter = TokenizerCounter(model.tokenizer) if model.tokenizer else WordCounter()
        style = model.spec.speakers if request.speakers == "auto" else "keep"
        for template in templates:
            for example in request.examples:
                if (style, example.id) not in prepared:
                    prepared[style, example.id] = _prepare(example, style)
                seen, mapping_and_parse = prepared[style, example.id]
                key = (id(model.tokenizer), style, template.text, example.id)
                if key not in prompts:
                    prompts[key] = build_prompt(seen.dialogue, chosen_shots[example.id], counter,
                                                request.decoding.max_prompt_tokens, template)
                items.append(_Item(len(results), model, seen, prompts[key], mapping_and_parse, template.name))
                results.append(None)
    return results, items


def _prepare(example: Example, style: str) -> tuple[Example, tuple | None]:
    """The example as a model of this speaker style reads it, and (mapping, parse)."""
    if style == "keep":
        return example, None
    text, mapping, parsed = speaker_styles.prepare(example.dialogue, style)
    return replace(example, dialogue=text), (mapping, parsed)


def _with_speakers(result: Result, item: _Item) -> Result:
    """The result with the names back in its summary (the model's own text kept as raw_summary)."""
    result.raw_summary = result.summary
    if item.speakers is None:
        return result
    mapping, parsed = item.speakers
    result.parsed = parsed
    result.speakers, result.speaker_format, result.speaker_note = list(parsed.speakers), parsed.format, parsed.note
    if mapping is not None:
        result.speaker_mapping = dict(mapping.names)
        if result.summary is not None:
            result.summary = mapping.restore(result.summary)
    return result


def _partial_callback(on_partial: PartialCallback | None, on_template_partial: TemplatePartialCallback | None,
                      items: list[_Item]) -> TemplatePartialCallback | None:
    """One callback for the streamer, calling the caller's, with the names back in the text
    as the finished summary will have them."""
    if on_partial is None and on_template_partial is None:
        return None
    mappings = {(it.model.spec.name, it.example.id): it.speakers[0] for it in items
                if it.speakers is not None and it.speakers[0] is not None}

    def restored(model: str, template: str, example_id: str, text: str) -> None:
        mapping = mappings.get((model, example_id))
        text = mapping.restore(text) if mapping else text
        if on_partial is not None:
            on_partial(model, example_id, text)
        if on_template_partial is not None:
            on_template_partial(model, template, example_id, text)
    return restored


PARALLEL_ENV = "SUMMARIZER_PARALLEL_BACKBONES"  # "0" turns concurrent backbones off


def _parallel_enabled() -> bool:
    return settings.flag(PARALLEL_ENV)


def _run_groups(groups: list[list[_Item]], decoding: DecodingSettings,
                on_partial: TemplatePartialCallback | None):
    """(batch, results) for every batch; batches on different backbones run at the same time.

    Batches on one backbone run one after another (its lock serialises them anyway), but two
    backbones (e.g. the base model and a fully fine-tuned one) decode concurrently in two threads,
    splitting torch's intra-op threads between them: batch-1 decoding is bound by memory traffic
    and per-token Python overhead, and torch releases the GIL inside each op, so two decodes
    with one thread each finish sooner than two in a row with two threads each. The greedy
    arithmetic is the same, so outputs are too.
    """
    import torch

    lanes: dict[int, list[list[_Item]]] = {}
    for group in groups:
        backbone = group[0].model.backbone
        lanes.setdefault(id(backbone) if backbone is not None else 0, []).append(group)
    model_lanes = [lane for key, lane in lanes.items() if key != 0]
    on_cpu = all(str(getattr(lane[0][0].model.backbone, "device", "cpu")) == "cpu" for lane in model_lanes)
    total_threads = torch.get_num_threads()
    workers = min(len(model_lanes), total_threads)
    if workers < 2 or not on_cpu or not _parallel_enabled():
        for group in groups:
            yield group, _run_group(group, decoding, on_partial)
        return

    import queue
    import threading

    per_worker = max(1, total_threads // workers)
    callback_lock = threading.Lock()
    if on_partial is not None:
        user_callback = on_partial

        def on_partial(*args):  # noqa: F811 - callers see one callback at a time
            with callback_lock:
                user_callback(*args)

    done: queue.Queue = queue.Queue()
    # Longest lanes first, each to the least busy worker: balanced by number of rows.
    order = sorted(model_lanes, key=lambda lane: -sum(len(g) for g in lane))
    assignments: list[list[list[_Item]]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for lane in order:
        target = loads.index(min(loads))
        assignments[target].extend(lane)
        loads[target] += sum(len(g) for g in lane)

    def work(batches):
        torch.set_num_threads(per_worker)  # this thread's intra-op pool only
        for group in batches:
            try:
                done.put((group, _run_group(group, decoding, on_partial)))
            except BaseException as err:  # never leave the caller waiting
                done.put((group, err))

    threads = [threading.Thread(target=work, args=(batches,), daemon=True, name=f"summarize-{i}")
               for i, batches in enumerate(assignments)]
    for thread in threads:
        thread.start()
    try:
        for group in lanes.get(0, []):  # the extractive baseline needs no weights
            yield group, _run_group(group, decoding, on_partial)
        remaining = sum(len(batches) for batches in assignments)
        for _ in range(remaining):
            group, outcome = done.get()
            if isinstance(outcome, BaseException):
                raise outcome
            yield group, outcome
    finally:
        for thread in threads:
            thread.join()


def _group(items: list[_Item], decoding: DecodingSettings) -> list[list[_Item]]:
    """Batches that can run as one generate call, shortest prompts first within each."""
    buckets: dict[tuple, list[_Item]] = {}
    for item in items:
        model = item.model
        if model.backbone is None:
            key = ("extractive", model.spec.name)
        elif model.soft_prompt is not None or decoding.num_beams > 1:
            key = (id(model.backbone), model.spec.name)
        else:  # base and LoRA rows on one backbone share batches
            key = (id(model.backbone), "mixed")
        buckets.setdefault(key, []).append(item)
    batches = []
    for bucket in buckets.values():
        bucket.sort(key=lambda it: it.prompt.n_tokens)
        size = len(bucket) if bucket[0].model.backbone is None else decoding.batch_size
        batches += [bucket[i:i + size] for i in range(0, len(bucket), size)]
    return batches


def _run_group(batch: list[_Item], decoding: DecodingSettings,
               on_partial: TemplatePartialCallback | None) -> list[Result]:
    started = time.perf_counter()
    first = batch[0].model
    if first.backbone is None:
        summaries = [longest_utterances(it.example.dialogue) for it in batch]
        elapsed = time.perf_counter() - started
        return [Result(it.model.spec.name, it.example.id, s, it.prompt, seconds=elapsed / len(batch),
                       input_tokens=it.prompt.n_tokens, output_tokens=len(s.split()), template=it.template)
                for it, s in zip(batch, summaries)]
    try:
        texts, out_tokens, in_tokens = _generate(batch, decoding, on_partial)
    except Exception as err:  # e.g. out of memory: this batch fails, the caller still gets results
        message = f"generation failed: {one_line(err)}"
        return [Result(it.model.spec.name, it.example.id, None, it.prompt, error=message, template=it.template)
                for it in batch]
    elapsed = time.perf_counter() - started
    return [Result(it.model.spec.name, it.example.id, text, it.prompt, seconds=elapsed,
                   batch_size=len(batch), input_tokens=n_in, output_tokens=n_out, template=it.template)
            for it, text, n_in, n_out in zip(batch, texts, in_tokens, out_tokens)]


def _generate(batch: list[_Item], decoding: DecodingSettings, on_partial: TemplatePartialCallback | None):
    backbone = batch[0].model.backbone
    _BACKBONES[id(backbone)] = backbone
    soft_prompt = batch[0].model.soft_prompt
    # The streamer calls back into this process: not across ZeroGPU's process boundary.
    stream = None
    if on_partial is not None and decoding.num_beams == 1 and not ZERO_GPU:
        stream = ([(it.model.spec.name, it.template, it.example.id) for it in batch], on_partial)
    generated, in_tokens = _decode(id(backbone), [it.prompt.text for it in batch],
                                   [it.model.adapter or BASE_ADAPTER for it in batch], soft_prompt,
                                   decoding, stream)
    tokenizer = backbone.tokenizer
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    texts = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    out_tokens = ((generated != pad) & (generated != eos)).sum(dim=1).tolist()
    if soft_prompt is not None:
        in_tokens = [n + soft_prompt.shape[0] for n in in_tokens]
    return texts, out_tokens, in_tokens


# One batch per GPU call, its duration computed from the batch (hosting.decode_seconds): each
# call stays short, as ZeroGPU's queue and per-visitor quota want.
@on_gpu
def _decode(backbone_id: int, prompts: list[str], adapters: list[str], soft_prompt,
            decoding: DecodingSettings, stream):
    """(generated token ids on the CPU, prompt lengths) of one batch on one backbone."""
    import torch

    backbone = _BACKBONES[backbone_id]
    tokenizer = backbone.tokenizer
    encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(backbone.device)
    kwargs = decoding.generate_kwargs()
    if stream is not None:
        kwargs["streamer"] = _RowStreamer(tokenizer, *stream)
    with backbone.lock, torch.inference_mode():
        if decoding.do_sample:
            torch.manual_seed(decoding.seed)
        if soft_prompt is not None:
            output = _with_adapters(backbone, [BASE_ADAPTER], lambda extra: _run_generate(
                backbone.model, _soft_prompt_inputs(backbone.model, soft_prompt, encoded), kwargs))
        else:
            output = _with_adapters(backbone, adapters, lambda extra: _run_generate(
                backbone.module(), {**encoded, **extra}, kwargs))
    generated = output[:, 1:].cpu()  # drop the decoder start token
    return generated, encoded["attention_mask"].sum(dim=1).cpu().tolist()


def _run_generate(model, inputs: dict, kwargs: dict):
    """The fast decode loop (summarizer.fast_decode) where it applies, else `model.generate`.

    The loop runs on the CPU by default and gives the same tokens (tests/test_fast_decode.py,
    benchmarks/check_fast_decode.py); SUMMARIZER_DECODER=generate forces `generate`.
    """
    from . import fast_decode

    if fast_decode.applies(model):
        try:
            return fast_decode.generate(model, **inputs, **kwargs)
        except fast_decode.Unsupported:
            pass
    return model.generate(**inputs, **kwargs)


def _with_adapters(backbone, adapters: list[str], run):
    """Run with the right LoRA adapters active: one for all rows, none, or one per row."""
    if backbone.peft is None:
        return run({})
    distinct = set(adapters)
    if distinct == {BASE_ADAPTER}:
        with backbone.peft.disable_adapter():
            return run({})
    if len(distinct) == 1:
        backbone.peft.set_adapter(adapters[0])
        return run({})
    return run({"adapter_names": adapters})


def _soft_prompt_inputs(model, soft_prompt, encoded) -> dict:
    """Prompt tuning as PEFT does it for seq2seq: virtual token vectors before the input embeddings."""
    import torch

    embeds = model.get_input_embeddings()(encoded["input_ids"])
    n = embeds.shape[0]
    prompt = soft_prompt.to(embeds.device, embeds.dtype).unsqueeze(0).expand(n, -1, -1)
    mask = torch.ones(n, prompt.shape[1], dtype=encoded["attention_mask"].dtype, device=embeds.device)
    return {"inputs_embeds": torch.cat([prompt, embeds], dim=1),
            "attention_mask": torch.cat([mask, encoded["attention_mask"]], dim=1)}


class _RowStreamer:
    """Calls back with each row's text so far as tokens are generated (greedy or sampling only)."""

    def __init__(self, tokenizer, rows: list[tuple[str, str, str]], callback: TemplatePartialCallback):
        self.tokenizer, self.rows, self.callback = tokenizer, rows, callback
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.texts = [""] * len(rows)
        self.started = False

    def put(self, value):
        if not self.started:  # the first call carries the decoder start tokens
            self.started = True
            return
        values = value.reshape(-1).tolist()
        if len(values) != len(self.rows):
            return
        for i, token in enumerate(values):
            self.tokens[i].append(token)
            text = self.tokenizer.decode(self.tokens[i], skip_special_tokens=True).strip()
            if text != self.texts[i]:
                self.texts[i] = text
                self.callback(*self.rows[i], text)

    def end(self):
        pass


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="summarizing", unit="summary")
