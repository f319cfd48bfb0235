"""The ``llama-cpp`` chat engine: a GGUF model answering with its own chat template (the GGUF's
``tokenizer.chat_template``), streaming its reply, with at most one GGUF LoRA adapter applied."""

from __future__ import annotations

import secrets
from collections.abc import Generator

from zishu.engines import ChatOptions, EngineInfo, ModelRef
from zishu.errors import EngineError

from .gguf_header import GGUFHeader, read_header
from .loading import LlamaEngine, OneAtATime

ROLES_HINT = 'each message is {"role": "system"|"user"|"assistant", "content": "..."}'


class LlamaChatEngine(LlamaEngine):
    info = EngineInfo(kind="llm", name="llama-cpp", formats=("gguf",),
                      capabilities=frozenset({"streaming", "lora", "gpu"}),
                      description="llama.cpp: GGUF chat models on the CPU or a GPU, with their own chat "
                                  "template and a GGUF LoRA.")

    def load(self, model: ModelRef, device: str = "cpu") -> LlamaChat:
        import jinja2  # a dependency of llama-cpp-python, which renders the template with it

        file, header = self.header(model)
        settings = self.adapter_settings(model, header)
        if header.chat_template is None:
            settings["chat_format"] = "chatml"  # llama.cpp's own fallback for a GGUF without a template
        try:
            llm = self.open(model, file, header, device, **settings)
        except RuntimeError as e:  # llama-cpp-python's "Failed to initialize LoRA adapter ..."
            raise EngineError(f"{self.info.name}: llama.cpp could not apply the LoRA to {model.label}: {e}") from e
        except jinja2.TemplateError as e:
            raise EngineError(f"{self.info.name}: the chat template in {model.label} is not valid Jinja: {e}") from e
        return LlamaChat(OneAtATime(llm, model.label))

    def adapter_settings(self, model: ModelRef, header: GGUFHeader) -> dict:
        """lora_path/lora_scale for the model's one adapter, after checking that the adapter is a GGUF
        LoRA whose tensors fit this base model (llama.cpp alone would only say that it failed)."""
        if not model.adapters:
            return {}
        if len(model.adapters) > 1:
            names = ", ".join(adapter.label for adapter, _ in model.adapters)
            raise EngineError(f"{self.info.name} applies one LoRA at a time (llama-cpp-python takes a single "
                              f"lora_path); {len(model.adapters)} were given: {names}")
        adapter, weight = model.adapters[0]
        file = adapter.file(".gguf")
        check_lora(read_header(file, self.info.name), header, self.info.name)
        return {"lora_path": str(file), "lora_scale": float(weight)}


def check_lora(lora: GGUFHeader, base: GGUFHeader, who: str) -> None:
    """EngineError unless ``lora`` is a GGUF LoRA adapter whose A/B pairs fit ``base``'s tensors."""
    where = f"{who}: {lora.path}"
    if lora.type != "adapter":
        raise EngineError(f"{where} is not a LoRA adapter: its general.type is {lora.type!r}, not 'adapter' "
                          f"(a GGUF LoRA is made with llama.cpp's convert_lora_to_gguf.py)")
    kind = lora.fields.get("adapter.type")
    if kind != "lora":
        raise EngineError(f"{where}: adapter.type is {kind!r}; llama-cpp applies only 'lora' adapters")
    if lora.arch != base.arch:
        raise EngineError(f"{where} is a LoRA for {lora.arch or 'an unknown'} models; the base model "
                          f"{base.path.name} is {base.arch}")
    for name, a in lora.tensors.items():
        if not name.endswith(".lora_a"):
            continue
        target = name.removesuffix(".lora_a")
        b, weight = lora.tensors.get(target + ".lora_b"), base.tensors.get(target)
        if b is None:
            raise EngineError(f"{where}: {name} has no matching {target}.lora_b")
        if weight is None:
            raise EngineError(f"{where} changes {target}, which the base model {base.path.name} does not have")
        if target == "token_embd.weight":
            continue  # stored the other way round; llama.cpp checks it
        if a.shape[0] != weight.shape[0] or b.shape[1] != weight.shape[1] or a.shape[1] != b.shape[0]:
            raise EngineError(f"{where}: {target} is {weight.shape[0]}×{weight.shape[1]} in the base model "
                              f"{base.path.name}, but its LoRA pair is {a.shape[0]}×{a.shape[1]} and "
                              f"{b.shape[0]}×{b.shape[1]}: a LoRA for another base model")


class LlamaChat:
    """A loaded chat model: ``chat(messages, options)`` yields the reply as it is generated, until
    ``options.deadline`` passes or ``options.cancelled()``; ``count_tokens`` and ``context_length``
    let the host fit its prompt to the context."""

    def __init__(self, llama: OneAtATime) -> None:
        self.llama = llama
        self.context_length = llama.context_length

    def count_tokens(self, text: str) -> int:
        return self.llama.count_tokens(text)

    def chat(self, messages: list[dict], options: ChatOptions | None = None) -> Generator[str, None, str | None]:
        """The reply's pieces; the generator returns why it ended ("stop", "length"), None when cut short."""
        return self._reply(checked_messages(messages, self.llama.label), options or ChatOptions())

    def close(self) -> None:
        self.llama.close()

    def _reply(self, messages: list[dict], options: ChatOptions) -> Generator[str, None, str | None]:
        import jinja2

        with self.llama.use(options.deadline, options.cancelled) as llm:
            if llm is None or options.over():  # cancelled while waiting for the model
                return None
            try:
                stream = llm.create_chat_completion(messages=messages, stream=True, **sampling(options))
                try:
                    for chunk in stream:
                        if self.llama.closing or options.over():
                            return None
                        choice = chunk["choices"][0]
                        piece = choice["delta"].get("content")
                        if piece:
                            yield piece
                        if choice.get("finish_reason"):
                            return choice["finish_reason"]  # "length": cut at max_tokens
                finally:
                    stream.close()
            except (ValueError, jinja2.TemplateError) as e:  # a template's raise_exception, a prompt too long
                raise EngineError(f"{self.llama.label} cannot answer these messages: {e}") from e
            except RuntimeError as e:  # llama_decode failed
                raise EngineError(f"llama.cpp failed while {self.llama.label} was answering: {e}") from e
        return None


def sampling(options: ChatOptions) -> dict:
    """ChatOptions as create_chat_completion's arguments. Without a seed each reply draws a fresh one
    (llama-cpp-python would otherwise repeat the same sequence of seeds after every load)."""
    return {"max_tokens": options.max_tokens, "temperature": options.temperature, "top_p": options.top_p,
            "top_k": options.top_k, "min_p": options.min_p, "repeat_penalty": options.repeat_penalty,
            "seed": options.seed if options.seed is not None else secrets.randbits(32),
            "stop": list(options.stop), **json_grammar(options.json_schema)}


def json_grammar(schema: dict | None) -> dict:
    """``{"grammar": ...}`` holding the reply to ``schema`` (llama.cpp's JSON-schema grammar), or {}.
    Built here rather than through ``response_format``, which falls back to any JSON without a word
    when the schema cannot become a grammar."""
    if schema is None:
        return {}
    import json

    from llama_cpp import LlamaGrammar

    try:
        return {"grammar": LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)}
    except Exception as e:  # llama.cpp's converter raises plain exceptions on schemas it cannot express
        raise EngineError(f"llama-cpp cannot hold a reply to this JSON schema: {e}") from e


def checked_messages(messages: list[dict], label: str) -> list[dict]:
    """``messages`` as the template expects them; EngineError naming the first one that is not."""
    if isinstance(messages, (str, dict)) or not messages:
        raise EngineError(f"{label}: chat needs a non-empty list of messages; {ROLES_HINT}")
    checked = []
    for i, message in enumerate(messages):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            raise EngineError(f"{label}: message {i} is {message!r}; {ROLES_HINT}")
        checked.append({"role": message["role"], "content": message["content"]})
    return checked
