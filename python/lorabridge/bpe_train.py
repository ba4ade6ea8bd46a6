"""Trains a small byte-level BPE vocabulary in CLIP's file format from text the project writes itself.

The demo model needs a tokenizer, and OpenAI's CLIP vocabulary may not ship inside the project.  The files
written here have exactly the layout of CLIP's HF-style `vocab.json` + `merges.txt`, so the same tokenizer
code reads either:

* ids 0-255: the byte symbols in the order of CLIP's `bytes_to_unicode` table; 256-511: the same with `</w>`;
* then one token per merge, in merge order (a merge's id is 512 + its rank);
* then `<|startoftext|>` and `<|endoftext|>` as the last two ids;
* `merges.txt`: a `#version: 0.2` header, then one `left right` pair per line in rank order.

Training is plain BPE (most frequent adjacent pair first, ties broken by the pair's text), so the result is
a pure function of the corpus and the merge count.
"""
from __future__ import annotations

import heapq
import json
import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable

__all__ = [
    "BOS",
    "EOS",
    "DEMO_CORPUS",
    "bytes_to_unicode",
    "pretokenize",
    "train_bpe",
    "build_vocab",
    "write_tokenizer_files",
    "write_demo_tokenizer",
    "encode",
]

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"
DEMO_CORPUS = Path(__file__).with_name("demo_corpus.txt")
DEMO_MERGES = 1500

# CLIP's pre-tokenizer uses the `regex` module's \p{L} / \p{N}; the stdlib equivalents below agree on
# letters, decimal digits and punctuation, which is all the demo corpus contains.
_WORD_RE = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+", re.IGNORECASE)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte → printable character table: printable latin-1 bytes map to themselves,
    the others to code points from 256 upward, in byte order.  Dict order is the vocabulary order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def pretokenize(text: str) -> list[str]:
    """CLIP's word split (whitespace collapsed, lower-cased); each word is a byte-symbol string."""
    table = bytes_to_unicode()
    text = re.sub(r"\s+", " ", text).strip().lower()
    return ["".join(table[b] for b in w.encode("utf-8")) for w in _WORD_RE.findall(text)]


def _corpus_words(text: str) -> Counter[str]:
    lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return Counter(w for line in lines for w in pretokenize(line) if w not in (BOS, EOS))


def train_bpe(text: str, num_merges: int, min_frequency: int = 1) -> list[tuple[str, str]]:
    """Learns up to `num_merges` merges from `text` (lines starting with '#' are comments).

    Stops early when no pair occurs `min_frequency` times.  A pair whose joined text is already a token is
    skipped, so every token has exactly one id (the file format cannot express duplicates)."""
    words: list[list[str]] = []
    freqs: list[int] = []
    for word, n in sorted(_corpus_words(text).items()):
        words.append(list(word[:-1]) + [word[-1] + END_OF_WORD])
        freqs.append(n)

    counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, syms in enumerate(words):
        for pair in zip(syms, syms[1:]):
            counts[pair] += freqs[i]
            where[pair].add(i)
    # Max-heap on (count, then the smallest pair text) with lazy deletion: stale entries are skipped on pop.
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)

    table = bytes_to_unicode()
    tokens = set(table.values()) | {s + END_OF_WORD for s in table.values()}
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges and heap:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg:
            continue
        if -neg < min_frequency:
            break
        joined = pair[0] + pair[1]
        if joined in tokens:
            del counts[pair]
            continue
        merges.append(pair)
        tokens.add(joined)
        touched: set[tuple[str, str]] = set()
        for i in sorted(where.pop(pair, ())):
            syms, f = words[i], freqs[i]
            for old in zip(syms, syms[1:]):
                counts[old] -= f
                touched.add(old)
            merged: list[str] = []
            j = 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == pair[0] and syms[j + 1] == pair[1]:
                    merged.append(joined)
                    j += 2
                else:
                    merged.append(syms[j])
                    j += 1
            words[i] = merged
            for new in zip(merged, merged[1:]):
                counts[new] += f
                where[new].add(i)
                touched.add(new)
        counts.pop(pair, None)
        for p in touched:
            c = counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                counts.pop(p, None)
                where.pop(p, None)
    return merges


def build_vocab(merges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """CLIP's id layout for the given merges."""
    base = list(bytes_to_unicode().values())
    tokens = base + [s + END_OF_WORD for s in base] + [a + b for a, b in merges] + [BOS, EOS]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("merges produce a duplicate token; ids would not be contiguous")
    return vocab


def write_tokenizer_files(out_dir: "str | Path", merges: list[tuple[str, str]]) -> tuple[Path, Path]:
    """Writes `vocab.json` and `merges.txt` into `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(merges)
    vocab_path, merges_path = out / "vocab.json", out / "merges.txt"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8", newline="\n")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8", newline="\n")
    return vocab_path, merges_path


@lru_cache(maxsize=4)
def demo_merges(num_merges: int = DEMO_MERGES) -> tuple[tuple[str, str], ...]:
    """The demo vocabulary's merges, trained from the committed corpus."""
    return tuple(train_bpe(DEMO_CORPUS.read_text(encoding="utf-8"), num_merges))


def write_demo_tokenizer(out_dir: "str | Path", num_merges: int = DEMO_MERGES) -> dict[str, int]:
    """Writes the demo `vocab.json` + `merges.txt` into `out_dir` and returns the vocabulary."""
    merges = list(demo_merges(num_merges))
    write_tokenizer_files(out_dir, merges)
    return build_vocab(merges)


def encode(text: str, vocab: dict[str, int], merges: list[tuple[str, str]]) -> list[int]:
    """CLIP's BPE over these files (no BOS/EOS, no truncation): merges applied lowest rank first per word.
    A reference for tests and Python-only tools; the application tokenizes in C#."""
    ranks = {m: r for r, m in enumerate(merges)}
    ids: list[int] = []
    for word in pretokenize(text):
        if word in (BOS, EOS):
            ids.append(vocab[word])
            continue
        syms = list(word[:-1]) + [word[-1] + END_OF_WORD]
        while len(syms) > 1:
            best = min(zip(syms, syms[1:]), key=lambda p: ranks.get(p, 1 << 60))
            if best not in ranks:
                break
            merged, j = [], 0
            while j < len(syms):
                if j + 1 < len(syms) and (syms[j], syms[j + 1]) == best:
                    merged.append(syms[j] + syms[j + 1])
                    j += 2
                else:
                    merged.append(syms[j])
                    j += 1
            syms = merged
        ids.extend(vocab[s] for s in syms)
    return ids


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Write the demo BPE vocabulary (vocab.json + merges.txt).")
    ap.add_argument("out_dir")
    ap.add_argument("--merges", type=int, default=DEMO_MERGES)
    args = ap.parse_args()
    v = write_demo_tokenizer(args.out_dir, args.merges)
    print(f"wrote {len(v)} tokens to {args.out_dir}")
