"""Built-in datasets that need no download.

- ``zoo:digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images), 64 pixel features
  in [0, 16], with a fixed stratified 80/20 train/test split (``split`` column).
- ``zoo:stdlib-docs``: English sentences extracted at run time from the docstrings of the
  installed Python standard library. Files are parsed with :mod:`ast` and never imported (importing
  some modules has side effects), walked in sorted order, and sentences are de-duplicated, so the
  result is deterministic for a given Python version. ``source`` names the module family (a
  subgroup and a classification label); ``module`` the top-level module; ``split`` a stable
  hash-based 80/20 split.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import re
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from frugalml._cache import atomic_write_bytes, cache_dir
from frugalml.datasets._dataset import Dataset

__all__ = ["STDLIB_FAMILIES", "ZOO_DATASETS", "load_zoo_dataset"]

log = logging.getLogger(__name__)

# Top-level standard-library names grouped by what they are about. The family is the ``source``
# column: coarse enough to be a useful label (8 classes), uneven enough that some groups are small.
STDLIB_FAMILIES: dict[str, tuple[str, ...]] = {
    "concurrency": ("asyncio", "concurrent", "multiprocessing", "threading", "_threading_local", "queue",
                    "sched", "selectors", "subprocess", "signal", "contextvars"),
    "network": ("email", "http", "urllib", "smtplib", "poplib", "imaplib", "ftplib", "socket", "socketserver",
                "ssl", "mailbox", "mimetypes", "ipaddress", "xmlrpc", "wsgiref", "webbrowser", "nntplib",
                "telnetlib", "uuid", "base64", "quopri", "uu", "netrc", "smtpd", "asynchat", "asyncore", "cgi"),
    "data": ("json", "csv", "pickle", "pickletools", "copyreg", "shelve", "dbm", "sqlite3", "xml", "plistlib",
             "configparser", "tomllib", "zipfile", "tarfile", "gzip", "bz2", "lzma", "zlib", "zipimport",
             "struct", "codecs", "encodings", "binascii", "hashlib", "hmac", "secrets", "marshal", "array",
             "collections", "heapq", "bisect", "dataclasses", "enum", "decimal", "fractions", "numbers",
             "statistics", "random", "datetime", "_strptime", "_pydecimal", "calendar", "zoneinfo", "copy"),
    "text": ("string", "re", "textwrap", "difflib", "unicodedata", "stringprep", "locale", "gettext", "shlex",
             "html", "_markupbase", "fnmatch", "glob", "pprint", "reprlib", "argparse", "optparse", "getopt",
             "_pydatetime", "tokenize", "token", "keyword"),
    "system": ("os", "sys", "shutil", "pathlib", "posixpath", "ntpath", "genericpath", "tempfile", "io", "_pyio",
               "stat", "filecmp", "fileinput", "platform", "sysconfig", "site", "logging", "getpass", "pty", "tty",
               "mmap", "ctypes", "venv", "ensurepip", "_compression", "_osx_support", "_aix_support", "shutil"),
    "language": ("ast", "dis", "inspect", "importlib", "pkgutil", "types", "typing", "abc", "functools",
                 "itertools", "operator", "contextlib", "weakref", "warnings", "traceback", "linecache", "code",
                 "codeop", "compileall", "py_compile", "symtable", "modulefinder", "runpy", "builtins", "gc",
                 "opcode", "_collections_abc", "annotationlib", "tracemalloc", "_pydecimal"),
    "devtools": ("unittest", "doctest", "pdb", "bdb", "cProfile", "profile", "pstats", "timeit", "trace",
                 "pydoc", "pydoc_data", "idlelib", "lib2to3", "distutils", "tabnanny", "cmd", "faulthandler", "_pyrepl"),
    "interface": ("tkinter", "turtle", "turtledemo", "curses", "colorsys", "wave", "audioop", "sndhdr",
                  "imghdr", "chunk", "aifc", "sunau", "rlcompleter", "readline"),
}
_FAMILY_OF = {module: family for family, modules in STDLIB_FAMILIES.items() for module in modules}

# A sentence: starts with a capital letter, ends with a period, 6-40 words. Docstrings hold code,
# tables and argument lists too; the filters below keep prose.
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CODEY = re.compile(r"(>>>|\.\.\.|[{}\[\]<>=_`|*#@\\$]|\w\(|::|--|\s{2,}|https?:)")
_WORD = re.compile(r"[A-Za-z][a-z']*")


def _clean_sentences(doc: str) -> list[str]:
    # Paragraphs are joined into single lines first; docstrings wrap prose at ~72 columns.
    paragraphs = [" ".join(line.strip() for line in block.splitlines()) for block in re.split(r"\n\s*\n", doc)]
    out = []
    for paragraph in paragraphs:
        for sentence in _SENTENCE_SPLIT.split(paragraph.strip()):
            sentence = sentence.strip()
            words = sentence.split()
            if not (6 <= len(words) <= 40) or not sentence[0].isupper() or not sentence.endswith("."):
                continue
            if _CODEY.search(sentence):
                continue
            # Mostly dictionary-like words: at least 80% of tokens alphabetic.
            if sum(bool(_WORD.fullmatch(w.strip(",.;:()'\""))) for w in words) < 0.8 * len(words):
                continue
            out.append(sentence)
    return out


def _docstrings(tree: ast.AST) -> list[str]:
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                docs.append(doc)
    return docs


def _stdlib_files(root: Path) -> list[tuple[str, Path]]:
    files = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        top = rel.parts[0].removesuffix(".py")
        # Tests, third-party packages and demo scripts are not standard-library prose.
        if top in {"test", "site-packages", "dist-packages", "__phello__", "idlelib"} or "tests" in rel.parts:
            continue
        files.append((top, path))
    return files


_CORPUS_VERSION = 1  # bump when the extraction rules change, to invalidate cached corpora


@lru_cache(maxsize=1)
def _stdlib_docs_frame() -> pd.DataFrame:
    root = Path(sysconfig.get_paths()["stdlib"])
    key = hashlib.sha256(f"{_CORPUS_VERSION}|{sys.version}|{root}".encode()).hexdigest()[:16]
    cached = cache_dir() / f"stdlib-docs-{key}.json"
    if cached.exists():
        try:
            return pd.DataFrame(json.loads(cached.read_text(encoding="utf-8")))
        except (ValueError, OSError):
            log.warning("ignoring unreadable cache file %s; rebuilding", cached)
    frame = _extract_stdlib_docs(root)
    atomic_write_bytes(cached, json.dumps(frame.to_dict(orient="list")).encode("utf-8"))
    return frame


def _extract_stdlib_docs(root: Path) -> pd.DataFrame:
    seen: set[str] = set()
    rows = []
    for top, path in _stdlib_files(root):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            log.debug("skipping unparsable stdlib file %s", path)
            continue
        for doc in _docstrings(tree):
            for sentence in _clean_sentences(doc):
                key = " ".join(sentence.lower().split())
                if key in seen:
                    continue
                seen.add(key)
                rows.append((sentence, _FAMILY_OF.get(top, "misc"), top))
    frame = pd.DataFrame(rows, columns=["text", "source", "module"])
    # A split by content hash stays the same when sentences are added or removed elsewhere.
    digest = frame["text"].map(lambda s: int(hashlib.sha256(s.encode()).hexdigest()[:8], 16) % 100)
    frame["split"] = np.where(digest < 80, "train", "test")
    log.info("zoo:stdlib-docs: %d sentences from %s", len(frame), root)
    return frame


def _stdlib_docs() -> Dataset:
    return Dataset(name="zoo:stdlib-docs", frame=_stdlib_docs_frame().copy(), text_column="text",
                   label_column="source", group_column="source")


@lru_cache(maxsize=1)
def _digits_frame() -> pd.DataFrame:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    frame = pd.DataFrame(bunch.data.astype(np.float32), columns=[f"px{i}" for i in range(64)])
    frame["label"] = bunch.target.astype(np.int64)
    train_idx, _ = train_test_split(np.arange(len(frame)), test_size=0.2, random_state=0, stratify=bunch.target)
    split = np.full(len(frame), "test", dtype=object)
    split[train_idx] = "train"
    frame["split"] = split
    return frame


def _digits() -> Dataset:
    frame = _digits_frame().copy()
    return Dataset(name="zoo:digits", frame=frame, feature_columns=tuple(f"px{i}" for i in range(64)),
                   label_column="label", feature_shape=(64,))


_FAIR_FRACTION = 0.10  # of each digit's rows, rotated: the under-represented subgroup of zoo:digits-fair


@lru_cache(maxsize=1)
def _digits_fair_frame() -> pd.DataFrame:
    """zoo:digits with 10% of each class's rows rotated by 90 degrees (group ``rotated``).

    The rotated rows are a real subgroup: a model trained on the mix learns them from far fewer
    examples, so compression that keeps the average accuracy can still lose them.
    """
    frame = _digits_frame().copy()
    rng = np.random.default_rng(7)
    rotated = np.zeros(len(frame), dtype=bool)
    for (_, _), rows in frame.groupby(["label", "split"]).groups.items():
        rows = np.asarray(rows)
        rotated[rng.choice(rows, size=max(1, round(_FAIR_FRACTION * len(rows))), replace=False)] = True
    pixels = [f"px{i}" for i in range(64)]
    images = frame.loc[rotated, pixels].to_numpy().reshape(-1, 8, 8)
    frame.loc[rotated, pixels] = np.rot90(images, k=1, axes=(1, 2)).reshape(-1, 64)
    frame["group"] = np.where(rotated, "rotated", "upright")
    return frame


def _digits_fair() -> Dataset:
    frame = _digits_fair_frame().copy()
    return Dataset(name="zoo:digits-fair", frame=frame, feature_columns=tuple(f"px{i}" for i in range(64)),
                   label_column="label", group_column="group", feature_shape=(64,))


ZOO_DATASETS = {"digits": _digits, "digits-fair": _digits_fair, "stdlib-docs": _stdlib_docs}


def load_zoo_dataset(name: str) -> Dataset:
    return ZOO_DATASETS[name]()
