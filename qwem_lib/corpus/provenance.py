"""Where the named corpora come from, and how ``qwem data fetch`` rebuilds them.

* ``enwiki2015``: WikiExtractor output of the first 30,729 articles of a 2015 English
  Wikipedia dump, kept as 400 files (``text/AA/wiki_00`` … ``text/AD/wiki_99``) in the
  public GitHub repository ``jason-feng/wikiVisual`` at commit ``1c0fac9…`` (the files
  were removed in a later commit, so the commit is pinned).  Their concatenation in
  path order is the corpus; its sha256 is checked before the file is kept.
* ``wiki2015-text8``: derived from ``enwiki2015`` the way text8 was made from its
  dump: every article's text (the ``<doc …>`` line, the title line and ``</doc>``
  dropped) lowercased, each digit spelt out, every run of other characters one space
  (:func:`qwem_lib.corpus.normalise`, scheme ``text8``), the words joined by single
  spaces and cut at the last space within the first 10⁸ + 1 bytes.  Checked by
  sha256.
* ``text8``: downloaded from its public address (:data:`qwem_lib.corpus.data.CORPORA`);
  ``sample``: bundled with the package.

The sources, licences and checksums are in ``qwem_lib/data_files/PROVENANCE.md``.
Files are written to ``cache_dir()/"corpora"`` (where :func:`qwem_lib.corpus.data.
resolve_corpus` looks), through a temporary file that is kept only when its size and
sha256 match: a failed or interrupted fetch leaves nothing behind.  ``mirror``
replaces the source's base address (e.g. ``file:///srv/mirror`` holding ``text/AA/
wiki_00`` …), for machines that reach the data through a copy.
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
from ..runtime.errors import QwemError
from . import data

__all__ = ["Recipe", "RECIPES", "fetch", "status", "derive_text8"]

_GITHUB_RAW = "https://raw.githubusercontent.com"
_WIKIVISUAL_COMMIT = "1c0fac92f29f17c1603bfffbe864e0dfdff66897"


@dataclass(frozen=True)
class Recipe:
    """How one corpus is rebuilt.

    Attributes
    ----------
    name : str
        Its registry name (:data:`qwem_lib.corpus.data.CORPORA`).
    output : str
        The file written (uncompressed; one of the registry's accepted names).
    sha256, size : str, int
        Of ``output``.
    source : str
        One line for people: where the bytes come from.
    base_url : str
        Parts are fetched from ``base_url + "/" + part``.
    parts : tuple of str
        Relative paths, concatenated in this order.
    derived_from : str or None
        The corpus this one is computed from (then ``parts`` is empty).
    limit : int or None
        Derived text: the first ``limit + 1`` bytes, cut at their last space.
    """

    name: str
    output: str
    sha256: str
    size: int
    source: str
    base_url: str = ""
    parts: tuple[str, ...] = ()
    derived_from: str | None = None
    limit: int | None = None


def _wikivisual_parts() -> tuple[str, ...]:
    return tuple(f"text/{folder}/wiki_{i:02d}" for folder in ("AA", "AB", "AC", "AD")
                 for i in range(100))


RECIPES: dict[str, Recipe] = {
    "enwiki2015": Recipe(
        name="enwiki2015",
        output="enwiki2015_first30729articles_wikiextractor.txt",
        sha256="8483f9bd98aef5a2d9c5ebcff243a531c258c7814c091ee602641aaa303ebef5",
        size=410_864_431,
        source=f"github.com/jason-feng/wikiVisual at {_WIKIVISUAL_COMMIT[:7]}, "
               "400 files text/AA/wiki_00 .. text/AD/wiki_99, concatenated",
        base_url=f"{_GITHUB_RAW}/jason-feng/wikiVisual/{_WIKIVISUAL_COMMIT}",
        parts=_wikivisual_parts()),
    "wiki2015-text8": Recipe(
        name="wiki2015-text8",
        output="wiki2015_text8style_1e8.txt",
        sha256="7561b12026c2eea01e3730b0e91e40ed4a8aa04b05de14514c10388e37829407",
        size=99_999_994,
        source="enwiki2015, text8-normalised, first 10^8 bytes",
        derived_from="enwiki2015",
        limit=10**8),
}


def _corpora_dir(dest_dir) -> Path:
    return Path(dest_dir) if dest_dir is not None else data.cache_dir() / "corpora"


def status(name: str) -> tuple[Path | None, str]:
    """Where corpus ``name`` is now (None: not on this machine) and how it is got."""
    if name not in data.CORPORA:
        raise QwemError(f"unknown corpus {name!r}: known corpora are "
                        f"{', '.join(data.CORPORA)}")
    spec = data.CORPORA[name]
    try:
        path, _ = data.resolve_corpus(name, download=False)
    except QwemError:
        path = None
    if name in RECIPES:
        how = f"qwem data fetch {name} ({RECIPES[name].source})"
    elif spec.url is not None:
        how = f"qwem data fetch {name} (downloads {spec.url})"
    else:
        how = "bundled with qwem_lib"
    return path, how


def _verified(path: Path, recipe: Recipe) -> bool:
    return (path.is_file() and path.stat().st_size == recipe.size
            and data.sha256_file(path) == recipe.sha256)


def _check(digest, n_bytes: int, recipe: Recipe, what: str) -> None:
    if n_bytes != recipe.size or digest.hexdigest() != recipe.sha256:
        raise QwemError(f"{what} gives {n_bytes:,} bytes with sha256 "
                        f"{digest.hexdigest()[:16]}…, expected {recipe.size:,} bytes "
                        f"with sha256 {recipe.sha256[:16]}…: a source file is missing, "
                        f"truncated or changed; nothing was kept (check the mirror, or "
                        f"try again)")


def _fetch_parts(recipe: Recipe, dest: Path, mirror: str | None,
                 progress: bool) -> None:
    from ..runtime.progress import bar as progress_bar

    base = (mirror or recipe.base_url).rstrip("/")
    digest, n_bytes = hashlib.sha256(), 0
    with atomic_path(dest) as tmp, open(tmp, "wb") as out, \
            progress_bar(progress, total=recipe.size, unit="B", unit_scale=True,
                         desc=f"fetching {recipe.name}") as bar:
        for part in recipe.parts:
            url = f"{base}/{part}"
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    n_bytes += data.copy_stream(resp, out, digest, bar)
            except (urllib.error.URLError, http.client.HTTPException, OSError,
                    ValueError) as exc:
                raise QwemError(f"could not fetch {url} "
                                f"({getattr(exc, 'reason', None) or exc}); nothing was "
                                "kept: check the network or the mirror "
                                "(--mirror), and try again") from None
        out.flush()
        _check(digest, n_bytes, recipe, f"the concatenation of {len(recipe.parts)} "
               f"files from {base}")


def derive_text8(source: str | os.PathLike, dest: str | os.PathLike,
                 limit: int | None = None, *, format: str = "wikiextractor",
                 progress: bool = False) -> tuple[int, str]:
    """Write ``source``'s text8 normalisation to ``dest`` (atomically).

    The words of :func:`qwem_lib.corpus.iter_words` (scheme ``text8``; for
    WikiExtractor output the tag and title lines are dropped), joined by single
    spaces, no final newline; with ``limit``, the first ``limit + 1`` bytes cut at
    their last space (text8's own cut).  Returns (bytes, sha256) of ``dest``.
    """
    from .text import iter_words

    cap = None if limit is None else int(limit) + 1
    written = 0
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            for words in iter_words(source, format, "text8", progress=progress):
                chunk = (b" " if written else b"") + b" ".join(words)
                if cap is not None and written + len(chunk) >= cap:
                    out.write(chunk[:cap - written])
                    written = cap
                    break
                out.write(chunk)
                written += len(chunk)
        if cap is not None and written == cap:   # cut at the last space
            with open(tmp, "r+b") as fh:
                fh.seek(max(0, cap - 4096))
                tail = fh.read()
                cut = tail.rfind(b" ")
                keep = (cap - len(tail)) + cut if cut >= 0 else 0
                fh.truncate(keep)
            written = keep
        n_bytes, digest = written, data.sha256_file(tmp)
    return n_bytes, digest


def _derive(recipe: Recipe, dest: Path, mirror, dest_dir, progress: bool) -> None:
    source = fetch(recipe.derived_from, mirror=mirror, dest_dir=dest_dir,
                   progress=progress)
    with atomic_path(dest) as tmp:
        n_bytes, digest = derive_text8(source, tmp, recipe.limit, progress=progress)
        if n_bytes != recipe.size or digest != recipe.sha256:
            raise QwemError(f"the text8 normalisation of {source} gives {n_bytes:,} "
                            f"bytes with sha256 {digest[:16]}…, expected "
                            f"{recipe.size:,} with {recipe.sha256[:16]}…: the source "
                            f"is not the registered {recipe.derived_from!r}; nothing "
                            "was kept")


def fetch(name: str, *, mirror: str | None = None, dest_dir=None,
          progress: bool = True) -> Path:
    """The file of corpus ``name``, fetched or derived if it is not on this machine.

    Parameters
    ----------
    name : str
        A registry name (:data:`qwem_lib.corpus.data.CORPORA`).
    mirror : str, optional
        Base address replacing the source's (``https://…`` or ``file://…``).
    dest_dir : path, optional
        Where to write (default ``cache_dir()/"corpora"``).
    progress : bool

    Returns
    -------
    Path
        The corpus file (an existing copy, wherever :func:`~qwem_lib.corpus.data.
        resolve_corpus` finds it, is returned as it is).

    Raises
    ------
    QwemError
        Unknown name; a source that cannot be read; a size or checksum that does
        not match (nothing is then left behind).
    """
    if name not in data.CORPORA:
        raise QwemError(f"unknown corpus {name!r}: known corpora are "
                        f"{', '.join(data.CORPORA)}")
    if dest_dir is None:
        try:
            return data.resolve_corpus(name, download=False)[0]
        except QwemError:
            pass
    recipe = RECIPES.get(name)
    if recipe is None:          # a corpus with a public address (text8)
        return data.resolve_corpus(name, download=True)[0]
    dest = _corpora_dir(dest_dir) / recipe.output
    if _verified(dest, recipe):
        return dest
    if recipe.derived_from is None:
        _fetch_parts(recipe, dest, mirror, progress)
    else:
        _derive(recipe, dest, mirror, dest_dir, progress)
    return dest
