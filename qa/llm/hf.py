"""A local transformers causal LM folder (weights, tokenizer and its chat template), on the CPU."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from qa.errors import ConfigError
from qa.llm.base import LLMBackend, Message, import_extra


class TransformersBackend(LLMBackend):
    name = "hf"

    def __init__(self, model_path: str, **limits):
        super().__init__(**limits)
        self.path = Path(model_path).expanduser()
        if not model_path or not self.path.is_dir():
            raise ConfigError(f"QA_LLM=hf needs a local transformers model folder: set QA_LLM_MODEL_PATH (now {model_path!r})")
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"the transformers model {self.path} (QA_LLM_MODEL_PATH)"

    @cached_property
    def loaded(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder, never the hub
        transformers = import_extra("transformers", "hf", self.name)
        transformers.utils.logging.disable_progress_bar()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load {self.path} as a transformers model ({exc}); set QA_LLM_MODEL_PATH") from exc
        if not tokenizer.chat_template:
            raise ConfigError(f"{self.path} has no chat template in its tokenizer; use an instruction-tuned model")
        return transformers, tokenizer, model.eval()

    def _stream(self, messages: list[Message]) -> Iterator[str]:
        with self._lock:
            transformers, tokenizer, model = self.loaded
            inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            streamer = transformers.TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
            stop = threading.Event()
            criteria = transformers.StoppingCriteriaList([_StopWhen(stop)])
            kwargs = dict(
                **inputs, streamer=streamer, max_new_tokens=self.max_tokens, do_sample=False,
                stopping_criteria=criteria, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
            worker = threading.Thread(target=model.generate, kwargs=kwargs, daemon=True)
            worker.start()
            try:
                yield from streamer
            finally:
                stop.set()  # the reader left early (timeout, closed stream): stop generating
                worker.join()


class _StopWhen:
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return self.event.is_set()
