"""Where data lives: the corpus registry, downloads, the bundled files and the
identity of a corpus (the content of its files, for cache keys).

Every chapter asks for a corpus by name (``"sample"``, ``"wiki2015-text8"``,
``"enwiki2015"``, ``"text8"``) or by path; :func:`resolve_corpus` turns that into a
file on disk and a :class:`CorpusSpec` saying how to read it.  Files are looked for, in
order, in the folders of the ``QWEM_DATA`` environment variable, in the package's own
``data_files/`` (the bundled sample) and in ``cache_dir()/"corpora"``; a corpus with a
public URL is downloaded there when missing.  Nothing here touches the disk or the
network at import time.

The paper (arXiv 2502.09863) trains on a 2-billion-token Wikipedia dump; the corpora here are
smaller stand-ins, described in ``data_files/ATTRIBUTION.md`` and
``data_files/PROVENANCE.md``; :mod:`qwem_lib.corpus.provenance` rebuilds the ones without a
download address from their public sources (``qwem data fetch``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..runtime._atomic import atomic_path
from ..runtime.cache import cache_dir, file_identity
from ..runtime.errors import QwemError
from ..runtime.options import CORPUS_FORMATS

__all__ = [
    "CorpusSpec",
    "CORPORA",
    "EVAL_FILES",
    "data_dirs",
    "corpus_identity",
    "bundled_dir",
    "resolve_corpus",
    "resolve_corpora",
    "first_available",
    "download",
    "eval_path",
    "sha256_file",
]

FORMATS = CORPUS_FORMATS


@dataclass(frozen=True)
class CorpusSpec:
    """How to find and read one corpus.

    Attributes
    ----------
    name : str
        Registry name (or the file name, for a corpus given by path).
    filename : str
        File name looked for in the data folders and the cache.
    format : {'plain', 'wikiextractor', 'mediawiki'}
        ``plain``: running text; ``wikiextractor``: ``<doc …>`` … ``</doc>`` articles
        as written by WikiExtractor; ``mediawiki``: a raw ``pages-articles`` XML dump.
    normalised : bool
        True when the text is already text8-normalised (only ``a``-``z`` and single
        spaces), so it only needs splitting.
    url : str or None
        Public download address; None when the file must be provided by the user.
    sha256 : str or None
        Checksum of the file as stored/downloaded (compressed), if known.
    description, licence : str
        One line each, shown to users.
    size : int or None
        Size in bytes of the file as stored/downloaded, if known (a cheap check).
    also_accept : tuple of str
        Other file names that hold the same corpus (e.g. the extracted ``text8``).
    """

    name: str
    filename: str
    format: str
    normalised: bool
    url: str | None = None
    sha256: str | None = None
    description: str = ""
    licence: str = ""
    size: int | None = None
    also_accept: tuple[str, ...] = ()

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {self.format!r}")


_WIKI_LICENCE = "CC BY-SA 3.0 (and GFDL), Wikipedia contributors; derived work"

CORPORA: dict[str, CorpusSpec] = {
    "text8": CorpusSpec(
        name="text8",
        filename="text8.zip",
        format="plain",
        normalised=True,
        url="http://mattmahoney.net/dc/text8.zip",
        # Not verified here (no network on the machine this was written on).  The
        # checksum is the value that two unrelated public code bases pin for this URL
        # and check before use (one through torchtext's _download_extract_validate,
        # one in its own verifier, both also pinning the extracted file's sha256
        # 6e890197…dca7); the size 31,344,016 bytes is the one TensorFlow's word2vec
        # tutorial checks.  If the server's file ever differs, download() says so.
        sha256="a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232",
        size=31_344_016,
        also_accept=("text8",),
        description="Matt Mahoney's text8: first 10^8 bytes of a 2006 English "
        "Wikipedia dump, normalised by wikifil.pl (17,005,207 tokens)",
        licence="Wikipedia text (GFDL / CC BY-SA), prepared by Matt Mahoney",
    ),
    "wiki2015-text8": CorpusSpec(
        name="wiki2015-text8",
        filename="wiki2015_text8style_1e8.txt.bz2",
        format="plain",
        normalised=True,
        url=None,
        sha256="cef36391842485fb2d3bf6f95649bcc0277bdee14ce06b0c9f7af30580e5625b",
        size=25_837_370,
        also_accept=("wiki2015_text8style_1e8.txt",),  # as `qwem data fetch` writes it
        description="first 10^8 bytes of the text8-normalised 2015 Wikipedia "
        "articles of 'enwiki2015' (16,943,230 tokens)",
        licence=_WIKI_LICENCE,
    ),
    "enwiki2015": CorpusSpec(
        name="enwiki2015",
        filename="enwiki2015_first30729articles_wikiextractor.txt.bz2",
        format="wikiextractor",
        normalised=False,
        url=None,
        sha256="1478182619d0266bc0cd5fd7560e3db60c3a443a1d6a2774a00f0464f4996246",
        size=118_632_739,
        also_accept=("enwiki2015_first30729articles_wikiextractor.txt",),
        description="first 30,729 articles of a 2015 English Wikipedia dump, "
        "WikiExtractor format (~70.3M tokens once normalised)",
        licence=_WIKI_LICENCE,
    ),
    "sample": CorpusSpec(
        name="sample",
        filename="wiki2015_sample.txt.bz2",
        format="plain",
        normalised=True,
        url=None,
        sha256="6249a3f505d5cf3acbb6c6de56dfd1f07c22061a8d1053822a7470aa4d6ae024",
        size=3_085_815,
        description="first 2,000,000 tokens of 'wiki2015-text8', bundled with "
        "qwem_lib",
        licence=_WIKI_LICENCE,
    ),
}

#: Evaluation files bundled in ``data_files/eval/`` (see ATTRIBUTION.md).
EVAL_FILES: dict[str, str] = {
    "questions-words": "questions-words.txt",
    "men": "men_natural.txt",
    "ws353": "wordsim353.tsv",
    "ws353_sim": "ws353_similarity.txt",
    "ws353_rel": "ws353_relatedness.txt",
}


def data_dirs() -> list[Path]:
    """Folders named by the ``QWEM_DATA`` environment variable, in order.

    ``QWEM_DATA`` holds one or more folders separated by ``os.pathsep`` (``:`` on
    Linux/macOS); unset or empty gives ``[]``.
    """
    raw = os.environ.get("QWEM_DATA", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def bundled_dir() -> Path:
    """The package's ``data_files/`` folder (bundled sample corpus and eval sets)."""
    return Path(__file__).resolve().parents[1] / "data_files"


def eval_path(name: str) -> Path:
    """Path of a bundled evaluation file.

    Parameters
    ----------
    name : {'questions-words', 'men', 'ws353', 'ws353_sim', 'ws353_rel'}
        Google analogies (paper, Fig. 3b), MEN, WordSim-353 and its similarity /
        relatedness splits.
    """
    if name not in EVAL_FILES:
        raise QwemError(f"unknown evaluation set {name!r}; choose one of "
                        f"{', '.join(EVAL_FILES)}")
    path = bundled_dir() / "eval" / EVAL_FILES[name]
    if not path.is_file():
        raise QwemError(f"the bundled evaluation file {path} is missing; reinstall "
                        "qwem_lib (pip install --force-reinstall ...)")
    return path


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: str | None = None,
             size: int | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, keeping it only if it matches the checksum.

    The data streams into a temporary file beside ``dest`` (see
    :func:`qwem_lib.runtime._atomic.atomic_path`) that is renamed to ``dest`` only when the
    size and sha256, where given, match; otherwise nothing is left behind.

    Parameters
    ----------
    url : str
        Any URL urllib can open (``http(s)://``, ``file://``).
    dest : path
        Final file name; its folder is created.
    sha256, size : optional
        Expected hex checksum and byte count.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    Path
        ``dest``.
    """
    from ..runtime.progress import bar as progress_bar

    dest = Path(dest)
    fix = (f"download it yourself (e.g. `curl -L -o {dest} {url}`), or put the file in "
           "a folder named by the environment variable QWEM_DATA")
    digest = hashlib.sha256()
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, \
                    open(tmp, "wb") as out:
                total = resp.headers.get("Content-Length") if resp.headers else None
                total = int(total) if total and total.isdigit() else size
                with progress_bar(progress, total=total, unit="B", unit_scale=True,
                                  unit_divisor=1024,
                                  desc=f"downloading {dest.name}") as bar:
                    n_bytes = copy_stream(resp, out, digest, bar)
        except (urllib.error.URLError, http.client.HTTPException, OSError,
                ValueError) as exc:
            raise QwemError(f"could not download {url} ({exc}); check the network "
                            f"connection, or {fix}") from exc
        if size is not None and n_bytes != size:
            raise QwemError(f"the download of {url} has {n_bytes:,} bytes, expected "
                            f"{size:,} (truncated or changed on the server); try "
                            f"again, or {fix}")
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise QwemError(f"checksum mismatch for {url}: expected sha256 {sha256}, "
                            f"got {actual}; the download is corrupt or the file has "
                            f"changed on the server; try again, or {fix}")
    return dest


def copy_stream(src, out, digest, bar) -> int:
    """Copy the readable ``src`` into ``out`` in 1 MiB blocks, feeding each block to
    ``digest`` (a hashlib object) and ``bar``; returns the bytes copied."""
    n_bytes = 0
    while block := src.read(1 << 20):
        out.write(block)
        digest.update(block)
        n_bytes += len(block)
        bar.update(len(block))
    return n_bytes


_fetch = download  # resolve_corpus's own `download` argument shadows the function


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or (os.altsep or os.sep) in text or text.startswith("~")
            or Path(text).suffix != "")


def _infer_format(path: Path) -> str:
    """'wikiextractor', 'mediawiki' or 'plain', from the first decompressed bytes."""
    from .files import _utf8_head, open_binary

    with open_binary(path) as fh:
        head = fh.read(4096)  # 1024 characters even in UTF-32
    head = _utf8_head(head).lstrip()
    if head.startswith(b"<doc "):
        return "wikiextractor"
    if b"<mediawiki" in head:
        return "mediawiki"
    return "plain"


def _spec_for_path(path: Path) -> CorpusSpec:
    return CorpusSpec(name=path.name, filename=path.name, format=_infer_format(path),
                      normalised=False, description=f"user file {path}",
                      licence="unknown (user file)")


def _check_size(path: Path, spec: CorpusSpec) -> None:
    if spec.size is None or path.name != spec.filename:
        return
    actual = path.stat().st_size
    if actual != spec.size:
        source = (f"from {spec.url}" if spec.url else
                  f"(qwem data fetch {spec.name}; see qwem_lib/data_files/PROVENANCE.md)")
        raise QwemError(f"{path} has {actual:,} bytes, but corpus {spec.name!r} should "
                        f"have {spec.size:,}: the file is truncated or a different "
                        f"one; replace it with a fresh copy {source}")


def resolve_corpus(name_or_path: str | os.PathLike,
                   download: bool = True) -> tuple[Path, CorpusSpec]:
    """Find a corpus file: by registry name or by path.

    Parameters
    ----------
    name_or_path : str or path
        A key of :data:`CORPORA` or an existing file.  For a file, the format is
        inferred from its first bytes (after decompression): ``<doc `` →
        ``wikiextractor``, ``<mediawiki`` in the first KB → ``mediawiki``, else
        ``plain``; it is treated as not normalised.
    download : bool
        Download a registry corpus that has a URL when it is not found locally.

    Returns
    -------
    path : Path
    spec : CorpusSpec

    Notes
    -----
    A registry name is looked for in ``data_dirs()``, then the package's bundled
    ``data_files/``, then ``cache_dir()/"corpora"``, and finally downloaded there.
    """
    key = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and key in CORPORA:
        spec = CORPORA[key]
        names = (spec.filename, *spec.also_accept)
        folders = [*data_dirs(), bundled_dir()]
        for folder in folders:
            for fname in names:
                if (folder / fname).is_file():
                    _check_size(folder / fname, spec)
                    return folder / fname, spec
        corpora = cache_dir() / "corpora"
        for fname in names:
            if (corpora / fname).is_file():
                _check_size(corpora / fname, spec)
                return corpora / fname, spec
        if spec.url is None:
            where = ", ".join(str(f) for f in [*data_dirs(), corpora])
            raise QwemError(f"corpus {key!r} ({spec.filename}) was not found (looked "
                            f"in: {where}); get it with `qwem data fetch {key}` "
                            f"(rebuilt from its public source), or set QWEM_DATA to "
                            f"the folder holding {spec.filename}")
        dest = corpora / spec.filename
        if not download:
            raise QwemError(f"corpus {key!r} is not downloaded yet: run `qwem data "
                            f"fetch {key}` (resolve_corpus(..., download=True)), or "
                            f"download {spec.url} to {dest}, or set QWEM_DATA to a "
                            f"folder holding {spec.filename}")
        _fetch(spec.url, dest, sha256=spec.sha256, size=spec.size)
        return dest, spec
    path = Path(key).expanduser()
    if path.is_file():
        return path, _spec_for_path(path)
    if path.is_dir():
        raise QwemError(f"{path} is a folder, not a file: a corpus of several files "
                        "is read by qwem embed, train and theory (qwem_lib.corpus.shards); "
                        "here pass one file inside it")
    if path.exists():
        raise QwemError(f"{path} is not a file; pass the corpus file itself")
    if isinstance(name_or_path, str) and not _looks_like_path(key):
        raise QwemError(f"unknown corpus {key!r}: known corpora are "
                        f"{', '.join(CORPORA)}; or pass the path of a text file")
    raise QwemError(f"corpus file {path} does not exist; check the path, or use one "
                    f"of the registered corpora ({', '.join(CORPORA)})")


_GLOB_CHARS = "*?["


def _files_of(item: str | os.PathLike, download: bool) -> list[tuple[Path, CorpusSpec]]:
    """The files one ``--corpus`` value names: itself, a folder's files or a glob's."""
    key = os.fspath(item)
    path = Path(key).expanduser()
    if isinstance(item, str) and key in CORPORA or path.is_file():
        return [resolve_corpus(item, download=download)]
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if not p.name.startswith(".") and p.is_file())
        if not files:
            raise QwemError(f"the folder {path} holds no corpus files (hidden files "
                            "and sub-folders are not read); give a folder of corpus "
                            "files, e.g. one written by `qwem shard`")
        return [(p, _spec_for_path(p)) for p in files]
    if any(c in key for c in _GLOB_CHARS) and not path.exists():
        import glob

        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(key))
                       if Path(p).is_file())
        if not files:
            raise QwemError(f"no corpus file matches {key!r}; check the pattern (quote "
                            "it, so that the shell does not expand it first)")
        return [(p, _spec_for_path(p)) for p in files]
    return [resolve_corpus(item, download=download)]


def resolve_corpora(corpus, download: bool = True) -> list[tuple[Path, CorpusSpec]]:
    """The files of a corpus given as one name or path, a folder, a glob or several.

    Parameters
    ----------
    corpus : str, path, or a list or tuple of them
        Each item is a registry name or a file (as :func:`resolve_corpus`), a folder
        (its regular, not hidden files; sub-folders are not read) or a glob pattern
        (``"shards/*.gz"``, ``~`` expanded).
    download : bool
        As for :func:`resolve_corpus`.

    Returns
    -------
    list of (Path, CorpusSpec)
        Sorted by path (the order in which the files are read as one corpus), each
        file once; each with its own format, inferred from its content.

    Raises
    ------
    QwemError
        For a name or path that does not resolve, an empty folder, a pattern that
        matches nothing, or a file named twice.
    """
    items = list(corpus) if isinstance(corpus, (list, tuple)) else [corpus]
    if not items:
        raise QwemError("no corpus given; name a corpus, a file, a folder or a glob")
    for item in items:              # '' would be read as the current folder
        if not os.fspath(item).strip():
            raise QwemError("an empty corpus name was given (--corpus ''); name a "
                            "corpus, a file, a folder or a glob")
    found = [pair for item in items for pair in _files_of(item, download)]
    seen: dict[tuple, Path] = {}
    for path, _spec in found:
        st = path.stat()          # one file however named: links, hard links too
        real = (st.st_dev, st.st_ino)
        if real in seen:
            raise QwemError(f"the corpus names {path} twice (also as {seen[real]}); "
                            "each file must be counted once")
        seen[real] = path
    if len(found) == 1:
        return found
    return sorted(found, key=lambda pair: os.fspath(pair[0]))


def first_available(candidates, *, echo=print) -> tuple[str, str]:
    """The first ``(name, scheme)`` of ``candidates`` whose corpus can be found.

    Only ``"text8"`` may be downloaded (when a network exists); every other name must
    already be on disk (``QWEM_DATA``, the cache or the bundled sample).  The chapters
    use this to fall back from the largest corpus to smaller ones.

    Parameters
    ----------
    candidates : sequence of (str, str)
        Corpus names (or paths) with the normalisation scheme to use for each.
    echo : callable or None
        Called with a message for each candidate that is skipped.

    Raises
    ------
    QwemError
        If none of them can be found.
    """
    for name, scheme in candidates:
        try:
            resolve_corpus(name, download=(name == "text8"))
            return name, scheme
        except QwemError:
            if echo is not None:
                echo(f"corpus {name!r} not available, trying the next one")
    raise QwemError(f"none of {[c for c, _ in candidates]} could be found")


def corpus_identity(corpus) -> dict | list:
    """The identity of a corpus: of the file a name or path resolves to, or a list
    of those of its files (a folder, a glob, several files or a list of them).

    The content of each file (:func:`file_identity`), with its detected format; the
    name as typed is not part of it, so the same text under two names shares entries
    and two texts under one name never do.
    """
    files = resolve_corpora(corpus)
    ids = [{**file_identity(path), "format": spec.format,
            "normalised": bool(spec.normalised)} for path, spec in files]
    if isinstance(corpus, (list, tuple)) or len(ids) > 1:
        return ids
    return ids[0]
