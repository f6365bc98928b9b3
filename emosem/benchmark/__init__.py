"""Measure latency, throughput and memory of an EmoSEM checkpoint, and the speed ratios.

    python tools/benchmark.py                                   # bundled checkpoint, everything
    python tools/benchmark.py --checkpoint runs/x/best --what infer --threads 2 --out bench.json
    python tools/benchmark.py --quick                           # small and fast (smoke test)

Writes a JSON report (``--out``) and the same figures as a Markdown table next to it
(``.md``), and prints the table. From Python: ``run_benchmark(BenchmarkSettings(...))`` and
``write_report(report, path)``. What is measured and how:

* **Latency** of each stage: median, p90 and min over ``--repeats`` timed calls, after untimed
  calls (``--warmup``; at least one, the one that measures memory). ``cold_start`` runs
  ``tools/infer.py IMAGE --emotion awe --json-only`` in a fresh process: spawn → exit
  (``cold_start``), spawn → its ``results.json`` appears (``cold_start_first_result``, watched
  from here) and the ``cold_start_to_first_result_s`` it writes into its ``summary.json``
  (``cold_start_reported``; that clock starts after the command's own imports).
  ``encode`` = ``predictor.encode`` on the decoded image array (preprocessing + image encoder);
  ``decode`` = ``predictor.predict([e], explain=False)`` on the cached embedding (emotion tokens,
  mask decoder, upsampling to the original resolution); ``explain`` = prefix adapter + KV-cached
  generation of exactly ``--max-new-tokens`` tokens (``min_new_tokens`` forces the length, so
  every timed call does the same work); ``end_to_end`` = ``predictor(image_path, [e])``: read
  the file, encode, decode, explain.
* **Throughput**: images/s = 1 / end-to-end median (one emotion); explanation tokens/s =
  N / explain median; training samples/s = batch / median optimizer step (forward + backward +
  gradient clipping + AdamW step of the checkpoint's architecture, stages ``all`` and
  ``segmenter``, synthetic batches where every sample has a mask, a text and a distribution;
  a plain loop without ``accelerate`` or mixed precision).
* **Ratios**, measured in the same run with the two sides interleaved call by call (so a change
  in background load hits both): (a) nine emotions in one call vs one emotion, decode only and
  decode + explanations (target ≤ 2×; also the bare decoder without upsampling, and plain SAM's
  prompt encoder + mask decoder with as many point prompts in one call, for reference: SAM too
  runs its two-way transformer once per prompt);
  (b) explanation tokens/s vs plain ``generate`` of the same LM (LoRA merged, linears packed:
  as the predictor runs it) from ``input_ids`` of the same length as prefix + instruction, the
  same number of new tokens (target ≥ 0.9×); (c) EmoSEM mask path (encoder + emotion tokens + decoder) vs the
  checkpoint's own SAM modules with one point prompt (``prompt_encoder`` +
  ``mask_decoder(multimask_output=False)``; same weights, same size; target ≤ 1.1×).
* **Weight packing**: ``predict`` with explanations for 1 and 9 emotions with the LM's linears
  prepacked for oneDNN (as the predictor runs them, :mod:`emosem.inference.packed_linear`) and
  again with plain ``nn.Linear`` (unpacked in place, then packed back; the two sides run one
  after the other, not interleaved): the speed-up and ratio (a) without it.
* **Scaling**: against the input image size through the predictor (the model input is fixed;
  what grows is resizing in and upsampling the mask back to the original resolution); against
  the encoder input size (an ``ImageEncoderViT`` with the checkpoint's hyper-parameters built
  at each size with random weights: speed does not depend on the weights); against the number
  of emotions decoded (and explained) in one call.
* **Memory**: the process peak RSS (``ru_maxrss``, kept across the resets below), and per stage
  the rise of the RSS high-water mark during the stage's first (untimed) call above the RSS just
  before it. Before that call ``gc.collect()`` and glibc's ``malloc_trim(0)`` hand freed heap
  memory back to the OS, so the rise is the stage's own working memory rather than what earlier
  stages left in the allocator. On Linux the kernel's high-water mark (``VmHWM``) is reset for
  the call by writing ``5`` to ``/proc/self/clear_refs`` (method ``hwm``: exact). Elsewhere a
  thread samples ``psutil`` RSS every 2 ms (method ``psutil``: can miss short spikes). Weights
  loaded before the stage are not counted. On CUDA, ``torch.cuda.max_memory_allocated`` gives
  the per-stage rise (``cuda_peak_increase_mb``) and the overall peak.
"""

from __future__ import annotations

from emosem.benchmark.markdown import to_markdown
from emosem.benchmark.memory import MEMORY_METHODS, MemoryMonitor
from emosem.benchmark.model_parts import build_encoder, encoder_hparams
from emosem.benchmark.runner import SCHEMA_VERSION, TARGETS, Benchmark, run_benchmark, write_report
from emosem.benchmark.settings import BenchmarkSettingError, BenchmarkSettings
from emosem.benchmark.timing import percentile, summarize
from emosem.benchmark.training import TRAIN_STAGES

__all__ = [
    "MEMORY_METHODS",
    "SCHEMA_VERSION",
    "TARGETS",
    "TRAIN_STAGES",
    "Benchmark",
    "BenchmarkSettingError",
    "BenchmarkSettings",
    "MemoryMonitor",
    "build_encoder",
    "encoder_hparams",
    "percentile",
    "run_benchmark",
    "summarize",
    "to_markdown",
    "write_report",
]
