"""Tiny FunASR models with random weights, built with funasr's own model classes and saved in the
layout FunASR's published models use (config.yaml, model.pt, tokenizer files, am.mvn and a
configuration.json mapping them), so ``funasr.AutoModel(model=folder)`` loads them offline.
Plus ``speech_wav``: real speech from espeak-ng as 16 kHz mono int16 PCM.

Tests and benchmark scripts import these (bench scripts put tests/ on sys.path).

The SenseVoice model's weights are random except that a few optimiser steps (well under a second)
teach it to open every transcript with rich tags ``<|zh|><|NEUTRAL|><|Speech|><|withitn|>``,
so the path from model output to a tagged Transcript runs end to end; the text after them is noise.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

SAMPLE_RATE = 16000
SENSEVOICE_TAGS = ("<|zh|>", "<|NEUTRAL|>", "<|Speech|>")  # then <|withitn|> or <|woitn|>, as asked
_RICH_TAGS = ["<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>",
              "<|HAPPY|>", "<|SAD|>", "<|ANGRY|>", "<|NEUTRAL|>", "<|EMO_UNKNOWN|>",
              "<|Speech|>", "<|BGM|>", "<|Laughter|>", "<|Applause|>", "<|Event_UNK|>",
              "<|withitn|>", "<|woitn|>"]
_TEXT = ["你好 世界 今天 天气 很好", "我们 一起 去 公园 散步", "hello world this is a test",
         "the quick brown fox jumps over the lazy dog", "欢迎 大家 来 体验 语音 识别"]


def _fbank_frontend(lfr_m: int, lfr_n: int, online: bool = False) -> dict:
    return {"frontend": "WavFrontendOnline" if online else "WavFrontend",
            "frontend_conf": {"fs": SAMPLE_RATE, "window": "hamming", "n_mels": 80, "frame_length": 25,
                              "frame_shift": 10, "lfr_m": lfr_m, "lfr_n": lfr_n, "dither": 0.0}}


def _write_cmvn(path: Path, dim: int, shift: float = -10.0, scale: float = 0.25) -> None:
    """A Kaldi nnet-format am.mvn, as FunASR's frontends read it: add ``shift``, then multiply by ``scale``."""
    vec = lambda v: "[ " + " ".join([f"{v:g}"] * dim) + " ]"  # noqa: E731
    path.write_text(f"<Nnet>\n<Splice> {dim} {dim}\n[ 0 ]\n<AddShift> {dim} {dim}\n<LearnRateCoef> 0 {vec(shift)}\n"
                    f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 {vec(scale)}\n</Nnet>\n")


def _save(folder: Path, model, config: dict, files: dict) -> Path:
    """model.pt, config.yaml and configuration.json (whose ``file_path_metas`` maps config keys to files)."""
    import torch
    import yaml

    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    metas = {"init_param": "model.pt", "config": "config.yaml", **files}
    (folder / "configuration.json").write_text(json.dumps({"framework": "pytorch", "task": "auto-speech-recognition",
                                                           "file_path_metas": metas}, indent=2))
    return folder


def _bpe_model(path: Path, vocab_size: int = 96) -> None:
    """A sentencepiece BPE model trained on a few lines, with SenseVoice's rich tags as whole pieces."""
    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_TEXT * 4), model_writer=out, model_type="bpe",
                                   vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0,
                                   user_defined_symbols=_RICH_TAGS, minloglevel=2)
    path.write_bytes(out.getvalue())


def write_tiny_sensevoice(folder: Path, dim: int = 32, seed: int = 0) -> Path:
    """A ~90k-parameter SenseVoiceSmall in ``folder`` (created); returns the folder."""
    import sentencepiece as spm
    import torch
    from funasr.register import tables

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _bpe_model(folder / "bpe.model")
    sp = spm.SentencePieceProcessor(model_file=str(folder / "bpe.model"))
    encoder_conf = {"output_size": dim, "attention_heads": 2, "linear_units": 2 * dim, "num_blocks": 2,
                    "tp_blocks": 1, "dropout_rate": 0.0, "positional_dropout_rate": 0.0,
                    "attention_dropout_rate": 0.0, "input_layer": "pe", "normalize_before": True,
                    "kernel_size": 11, "sanm_shfit": 0, "selfattention_layer_type": "sanm"}
    torch.manual_seed(seed)
    model = tables.model_classes["SenseVoiceSmall"](encoder="SenseVoiceEncoderSmall", encoder_conf=encoder_conf,
                                                    input_size=560, vocab_size=sp.get_piece_size())
    _teach_tags(model, sp)
    _write_cmvn(folder / "am.mvn", 560)
    config = {"model": "SenseVoiceSmall",
              "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
              "encoder": "SenseVoiceEncoderSmall", "encoder_conf": encoder_conf,
              "tokenizer": "SentencepiecesTokenizer",
              "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
              **_fbank_frontend(lfr_m=7, lfr_n=6)}
    return _save(folder, model, config, {"tokenizer_conf": {"bpemodel": "bpe.model"},
                                         "frontend_conf": {"cmvn_file": "am.mvn"}})


def _teach_tags(model, sp, steps: int = 60) -> None:
    """Fit the CTC outputs of the four query positions (language, emotion, event, text normalisation)
    to SenseVoice's usual opening tags, and those of the audio frames to random text pieces, on random
    features of random lengths: the model then opens with the tags and goes on with arbitrary text."""
    import torch

    text_ids = torch.tensor([i for i in range(sp.get_piece_size()) if not (
        sp.is_control(i) or sp.is_unknown(i) or sp.id_to_piece(i).startswith("<|"))])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest on one thread
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(steps):
        frames = int(torch.randint(4, 60, ()))
        language = step % 2 * model.lid_dict["zh"]  # "auto" or "zh"
        itn = ("withitn", "woitn")[step // 2 % 2]
        queries = model.embed(torch.tensor([[language, 1, 2, model.textnorm_dict[itn]]])).repeat(2, 1, 1)
        encoded, _ = model.encoder(torch.cat((queries, torch.randn(2, frames, 560)), dim=1),
                                   torch.tensor([frames + 4] * 2))
        logits = model.ctc.ctc_lo(encoded)
        tags = [sp.piece_to_id(tag) for tag in (*SENSEVOICE_TAGS, f"<|{itn}|>")]
        target = torch.cat((torch.tensor([tags] * 2), text_ids[torch.randint(len(text_ids), (2, frames))]), dim=1)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    torch.set_num_threads(threads)
    model.eval()


def write_tiny_paraformer_streaming(folder: Path, dim: int = 32, seed: int = 0) -> Path:
    """A tiny ParaformerStreaming (SANM chunk encoder, CIF predictor, SANM decoder, character tokens)."""
    import torch
    from funasr.register import tables

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = {w for line in _TEXT for w in line.split()}
    units = sorted({c for w in words if not w.isascii() for c in w} | {w for w in words if w.isascii()})
    tokens = ["<blank>", "<s>", "</s>", *units, "<unk>"]
    (folder / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False))
    encoder_conf = {"output_size": dim, "attention_heads": 2, "linear_units": 2 * dim, "num_blocks": 2,
                    "dropout_rate": 0.0, "positional_dropout_rate": 0.0, "attention_dropout_rate": 0.0,
                    "input_layer": "pe_online", "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0,
                    "selfattention_layer_type": "sanm", "chunk_size": [12, 15], "stride": [8, 10],
                    "pad_left": [0, 0], "encoder_att_look_back_factor": [4, 4],
                    "decoder_att_look_back_factor": [1, 1]}
    decoder_conf = {"attention_heads": 2, "linear_units": 2 * dim, "num_blocks": 2, "dropout_rate": 0.0,
                    "positional_dropout_rate": 0.0, "self_attention_dropout_rate": 0.0,
                    "src_attention_dropout_rate": 0.0, "att_layer_num": 2, "kernel_size": 11, "sanm_shfit": 5}
    predictor_conf = {"idim": dim, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45}
    model_conf = {"ctc_weight": 0.0, "lsm_weight": 0.1, "length_normalized_loss": True, "predictor_weight": 1.0,
                  "predictor_bias": 1, "sampling_ratio": 0.75}
    torch.manual_seed(seed)
    model = tables.model_classes["ParaformerStreaming"](
        encoder="SANMEncoderChunkOpt", encoder_conf=encoder_conf, decoder="ParaformerSANMDecoder",
        decoder_conf=decoder_conf, predictor="CifPredictorV2", predictor_conf=predictor_conf,
        input_size=560, vocab_size=len(tokens), **model_conf)
    _write_cmvn(folder / "am.mvn", 560)
    config = {"model": "ParaformerStreaming", "model_conf": model_conf,
              "encoder": "SANMEncoderChunkOpt", "encoder_conf": encoder_conf,
              "decoder": "ParaformerSANMDecoder", "decoder_conf": decoder_conf,
              "predictor": "CifPredictorV2", "predictor_conf": predictor_conf,
              "tokenizer": "CharTokenizer", "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
              **_fbank_frontend(lfr_m=7, lfr_n=6, online=True)}
    return _save(folder, model, config, {"tokenizer_conf": {"token_list": "tokens.json"},
                                         "frontend_conf": {"cmvn_file": "am.mvn"}})


def write_tiny_fsmn_vad(folder: Path, seed: int = 0) -> Path:
    """A tiny FsmnVADStreaming. Its random FSMN scores call nearly every frame speech, so its
    ``decibel_thres`` (a setting of the real model, -100 dB there) does the separating: a 25 ms frame
    whose samples (in [-1, 1]) have a sum of squares under -30 dB is silence."""
    import torch
    from funasr.register import tables

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder_conf = {"input_dim": 400, "input_affine_dim": 16, "fsmn_layers": 2, "linear_dim": 16, "proj_dim": 8,
                    "lorder": 4, "rorder": 0, "lstride": 1, "rstride": 0, "output_affine_dim": 16,
                    "output_dim": 248}
    model_conf = {"sample_rate": SAMPLE_RATE, "detect_mode": 1, "max_end_silence_time": 800,
                  "max_single_segment_time": 60000, "speech_noise_thres": 0.6, "decibel_thres": -30.0}
    torch.manual_seed(seed)
    model = tables.model_classes["FsmnVADStreaming"](encoder="FSMN", encoder_conf=encoder_conf, **model_conf)
    _write_cmvn(folder / "am.mvn", 400)
    config = {"model": "FsmnVADStreaming", "model_conf": model_conf, "encoder": "FSMN",
              "encoder_conf": encoder_conf, **_fbank_frontend(lfr_m=5, lfr_n=1, online=True)}
    return _save(folder, model, config, {"frontend_conf": {"cmvn_file": "am.mvn"}})


def speech_wav(text: str, path: Path, voice: str = "cmn") -> bytes:
    """``text`` spoken by espeak-ng (its WAV written at ``path``) as 16 kHz mono int16 PCM."""
    from zishu.audio import read_pcm

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-w", str(path), "-v", voice, text], check=True, capture_output=True)
    return read_pcm(Path(path), SAMPLE_RATE)
