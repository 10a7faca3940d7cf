"""Synthetic full-band speech from an HTS voice (Open JTalk), regenerated from scratch: training data or held-out
speech for scoring.

The 48 kHz HTS voices have real content up to 24 kHz that follows the phones, which little recorded speech under a
permissive licence has. ``pip install pyopenjtalk-plus`` (not a specsr dependency) brings the engine, its
dictionary and the female voice "Mei" (MMDAgent Project / Nagoya Institute of Technology, CC BY 3.0); the male
voice "NIT ATR503 M001" (CC BY 3.0) is Debian's ``hts-voice-nitech-jp-atr503-m001`` (``--voice PATH``). Texts:
built-in sentences and random kana strings, each at a random speed and pitch shift drawn from ``--seed``, so the
same command writes the same files. Outputs: ``OUT/<prefix>_NNN.flac`` (48 kHz, 24-bit) and ``OUT/README.md``
with the voice's attribution.

    python scripts/synth_speech.py -o data/mei --count 120 --seed 0
    python scripts/synth_speech.py -o data/m001 --voice VOICE.htsvoice   # e.g. Debian's NIT ATR503 M001
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SENTENCES = (
    "こんにちは、今日はとてもいい天気ですね。", "昨日の夜、駅の近くで古い友達に会いました。",
    "この道をまっすぐ行って、二つ目の信号を右に曲がってください。", "新しい研究の結果は来週の会議で発表されます。",
    "雨が降りそうなので、傘を持って出かけましょう。", "彼女は静かな声で、昔の話をゆっくり始めた。",
    "すみません、この電車は東京駅に止まりますか。", "春になると、川沿いの桜が一斉に咲き始めます。",
    "音声の帯域を広げる技術は、電話の声を聞きやすくします。", "三時までに資料をまとめて、先生に送ってください。",
    "子供たちは公園で、夕方まで元気に遊んでいました。", "強い風のせいで、庭の木の枝が何本も折れてしまった。",
    "お茶とコーヒー、どちらがよろしいですか。", "図書館は月曜日が休みなので、火曜日に行きます。",
    "静かな夜に、遠くで犬の鳴く声が聞こえた。", "その映画の最後の場面は、本当に美しかった。",
)
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわん" \
       "がぎぐげござじずぜぞだでどばびぶべぼぱぴぷぺぽきゃしゅちょっ"
SPEED_RANGE = (0.8, 1.3)
HALF_TONE_RANGE = (-4.0, 4.0)

ATTRIBUTION = """# Synthetic speech ({voice})

Written by `scripts/synth_speech.py` (specsr) with Open JTalk via pyopenjtalk-plus (engine: Modified BSD licence)
and the HTS voice file `{voice}`.

- HTS voice "Mei": MMDAgent Project Team, Copyright (c) 2009-2013 Nagoya Institute of Technology, Department of
  Computer Science, licensed under Creative Commons Attribution 3.0 (CC BY 3.0).
- HTS voice "NIT ATR503 M001": Copyright (c) 2003-2012 Nagoya Institute of Technology, Department of Computer
  Science, CC BY 3.0.

These clips are derived works of the voice named above and carry its licence (CC BY 3.0, attribution as above).
Command: `{command}`
"""


def random_kana(rng: np.random.Generator) -> str:
    """A phrase of 3-6 random 'words' of kana, comma-separated: phone sequences the sentences lack."""
    words = ["".join(rng.choice(list(KANA), size=int(rng.integers(2, 6)))) for _ in range(int(rng.integers(3, 7)))]
    return "、".join(words) + "。"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    parser.add_argument("--count", type=int, default=120, help="number of clips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voice", default=None, help=".htsvoice file (default: pyopenjtalk-plus's Mei)")
    parser.add_argument("--prefix", default=None, help="file name prefix (default: the voice's name)")
    parser.add_argument("--random-fraction", type=float, default=0.5, help="share of random-kana texts")
    args = parser.parse_args()
    try:
        import pyopenjtalk
    except ImportError:
        print("synth_speech: needs pyopenjtalk-plus: pip install pyopenjtalk-plus", file=sys.stderr)
        return 2
    if args.count < 1:
        print("synth_speech: --count must be >= 1", file=sys.stderr)
        return 2
    from pyopenjtalk.htsengine import HTSEngine

    voice = Path(args.voice) if args.voice is not None else Path(pyopenjtalk.DEFAULT_HTS_VOICE.decode("utf-8"))
    if not voice.is_file():
        print(f"synth_speech: no voice file {voice}", file=sys.stderr)
        return 2
    engine = HTSEngine(str(voice).encode("utf-8"))
    voice_name = voice.stem
    prefix = args.prefix or voice_name
    rng = np.random.default_rng(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        text = random_kana(rng) if rng.random() < args.random_fraction else str(rng.choice(SENTENCES))
        speed = float(rng.uniform(*SPEED_RANGE))
        half_tone = float(rng.uniform(*HALF_TONE_RANGE))
        engine.set_speed(speed)
        engine.add_half_tone(half_tone)  # sets the shift (HTS_Engine_add_half_tone), does not accumulate
        wav, sr = engine.synthesize(pyopenjtalk.extract_fullcontext(text)), engine.get_sampling_frequency()
        wav = np.asarray(wav, dtype=np.float64) / 32768.0
        peak = float(np.abs(wav).max()) if wav.size else 0.0
        if peak > 0:
            wav *= 10 ** (-3 / 20) / peak  # -3 dBFS peak
        sf.write(args.output / f"{prefix}_{i:03d}.flac", wav.astype(np.float32), sr, subtype="PCM_24")
        print(f"\r{i + 1}/{args.count}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    command = "python scripts/synth_speech.py " + " ".join(sys.argv[1:])
    (args.output / "README.md").write_text(ATTRIBUTION.format(voice=voice_name, command=command), encoding="utf-8")
    print(f"{args.count} clips in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
