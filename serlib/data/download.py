"""Download and unpack the openly available corpora (LibriSpeech, TED-LIUM 2, Emo-DB).

``download(name, to)`` fetches the archive of ``ARCHIVES[name]`` into ``to`` (resuming a partial
``.part`` file with an HTTP Range request), checks its size and checksum before anything is
unpacked, unpacks it through a staging folder that refuses members escaping the target (absolute
paths, ``..``, links pointing outside, device files) and returns the corpus folder to give to
``serlib.data.loaders.load``. A finished download leaves a ``.serlib-<name>.done`` marker, so running
the same command again does nothing.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


class DownloadError(ValueError):
    """A download, its verification or its unpacking failed; the message says what to do."""


@dataclass(frozen=True)
class Archive:
    """One downloadable archive: where it is, how to verify it, and where its corpus lands.

    ``size`` (bytes), ``md5`` and ``sha256`` are checked when given; ``unpack_to`` is the folder under
    the download target that the archive is unpacked into, ``root`` the corpus folder returned.
    """

    url: str
    filename: str
    size: int | None
    md5: str | None = None
    sha256: str | None = None
    unpack_to: str = "."
    root: str = "."
    description: str = ""


def _librispeech(subset: str, size: int, md5: str) -> Archive:
    # Sizes are the final release's (Kaldi's egs/librispeech download_and_untar.sh "sizes_new");
    # MD5s are openslr.org/resources/12/md5sum.txt, confirmed in several independent download scripts.
    return Archive(
        url=f"https://www.openslr.org/resources/12/{subset}.tar.gz",
        filename=f"{subset}.tar.gz",
        size=size,
        md5=md5,
        root="LibriSpeech",
        description=f"LibriSpeech {subset} (openslr.org/12, CC BY 4.0)",
    )


ARCHIVES: dict[str, Archive] = {
    "librispeech-dev-clean": _librispeech("dev-clean", 337926286, "42e2234ba48799c1f50f24a7926300a1"),
    "librispeech-dev-other": _librispeech("dev-other", 314305928, "c8d0bcc9cca99d4f8b62fcc847357931"),
    "librispeech-test-clean": _librispeech("test-clean", 346663984, "32fa31d27d2e1cad72775fee3f4849a9"),
    "librispeech-test-other": _librispeech("test-other", 328757843, "fb5a50374b501bb3bac4815ee91d3135"),
    "librispeech-train-clean-100": _librispeech(
        "train-clean-100", 6387309499, "2a93770f6d5c6c964bc36631d331a522"
    ),
    "librispeech-train-clean-360": _librispeech(
        "train-clean-360", 23049477885, "c0e676e450a7ff2f54aeade5171606fa"
    ),
    "librispeech-train-other-500": _librispeech(
        "train-other-500", 30593501606, "d1a0fd59409feb2c614ce4d30c387708"
    ),
    # TED-LIUM release 2 (about 35 GB): the exact byte size is not known to us, so only the SHA-256
    # is checked; it is the one torchaudio's TEDLIUM dataset pins for this URL.
    "tedlium2": Archive(
        url="https://www.openslr.org/resources/19/TEDLIUM_release2.tar.gz",
        filename="TEDLIUM_release2.tar.gz",
        size=None,
        sha256="93281b5fcaaae5c88671c9d000b443cb3c7ea3499ad12010b3934ca41a7b9c58",
        root="TEDLIUM_release2",
        description="TED-LIUM release 2 (openslr.org/19, CC BY-NC-ND 3.0)",
    ),
    # Emo-DB (about 40 MB): its website publishes no checksum and we know none with certainty, so the
    # archive is unverified; the download logs its SHA-256, and the emodb loader checks the contents.
    "emodb": Archive(
        url="http://emodb.bilderbar.info/download/download.zip",
        filename="emodb-download.zip",
        size=None,
        unpack_to="emodb",
        root="emodb",
        description="Berlin Database of Emotional Speech (emodb.bilderbar.info)",
    ),
}


def download(
    name: str,
    to: str | os.PathLike[str],
    url: str | None = None,
    keep_archive: bool = False,
    progress: bool = True,
    timeout_s: float = 60.0,
) -> Path:
    """Download, verify and unpack archive ``name`` into folder ``to``; return the corpus folder.

    ``url`` replaces the official address (e.g. a mirror such as us.openslr.org); the size and
    checksum stay those of the registry. An interrupted download resumes from its ``.part`` file.
    The archive is deleted after unpacking unless ``keep_archive``.
    """
    if name not in ARCHIVES:
        raise DownloadError(f"unknown archive {name!r}; known: {', '.join(sorted(ARCHIVES))}")
    archive = ARCHIVES[name]
    target = Path(to)
    target.mkdir(parents=True, exist_ok=True)
    root = target / archive.root
    marker = target / f".serlib-{name}.done"
    if marker.is_file() and root.exists():
        log.info("%s is already unpacked in %s", name, root)
        return root
    archive_path = target / archive.filename
    if archive_path.is_file():
        log.info("%s: using the archive already at %s", name, archive_path)
        _verify(archive_path, archive, delete_on_failure=False)
    else:
        part = archive_path.with_name(archive_path.name + ".part")
        _fetch(url or archive.url, part, archive.size, progress, timeout_s)
        _verify(part, archive, delete_on_failure=True)
        os.replace(part, archive_path)
    _unpack(archive_path, target / archive.unpack_to, target / f".serlib-unpack-{name}", progress)
    marker.write_text(f"{archive.url}\n", encoding="utf-8")
    if not keep_archive:
        archive_path.unlink()
    return root


# -- fetching --------------------------------------------------------------------------------------
def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout_s: float) -> None:
    """Fetch ``url`` into ``part``, continuing after the bytes it already holds (HTTP Range)."""
    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset == size:
        return
    if size is not None and offset > size:
        log.warning("%s is larger than the archive (%d > %d bytes): starting again", part, offset, size)
        offset = 0
    if size is not None:
        free = shutil.disk_usage(part.parent).free
        if free < size - offset:
            raise DownloadError(
                f"{part.parent} has {free / 1e9:.1f} GB free but the download needs {(size - offset) / 1e9:.1f} GB"
            )
    request = urllib.request.Request(url, headers={"User-Agent": "serlib-download"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            log.info(
                "%s: the server has nothing after byte %d; treating the part file as complete", url, offset
            )
            return
        raise DownloadError(
            f"{url}: HTTP {error.code} {error.reason}; check the address or pass url="
        ) from None
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(
            f"{url}: cannot connect ({error}); check the network or pass a mirror url="
        ) from None
    with response:
        resumed = offset > 0 and response.status == 206
        if resumed and not str(response.headers.get("Content-Range", "")).startswith(f"bytes {offset}-"):
            raise DownloadError(
                f"{url}: the server answered range {response.headers.get('Content-Range')!r} for bytes={offset}-; "
                f"delete {part} and run again"
            )
        if offset and not resumed:
            log.info("%s: the server ignored the range request; downloading from the start", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else size
        received = offset
        try:
            with (
                open(part, "ab" if resumed else "wb") as out,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=part.name[: -len(".part")],
                    disable=not progress,
                ) as bar,
            ):
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as error:
            raise DownloadError(
                f"{url}: interrupted after {received} bytes ({error}); run the same command again to resume"
            ) from None
    if total is not None and received < total:
        raise DownloadError(
            f"{url}: the connection closed after {received} of {total} bytes; run the same command again to resume"
        )


def _verify(path: Path, archive: Archive, delete_on_failure: bool) -> None:
    """Check the archive's size and checksums; a bad download is deleted so that a rerun starts clean."""
    problems = []
    actual_size = path.stat().st_size
    if archive.size is not None and actual_size != archive.size:
        problems.append(f"size {actual_size} bytes, expected {archive.size}")
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    if not problems:
        with open(path, "rb") as stream:
            while chunk := stream.read(CHUNK_BYTES * 8):
                md5.update(chunk)
                sha256.update(chunk)
        if archive.md5 is not None and md5.hexdigest() != archive.md5.lower():
            problems.append(f"MD5 {md5.hexdigest()}, expected {archive.md5}")
        if archive.sha256 is not None and sha256.hexdigest() != archive.sha256.lower():
            problems.append(f"SHA-256 {sha256.hexdigest()}, expected {archive.sha256}")
    if problems:
        if delete_on_failure:
            path.unlink()
        action = (
            "it was deleted; run again to download it afresh"
            if delete_on_failure
            else f"delete {path} and run again"
        )
        raise DownloadError(f"{path.name}: {'; '.join(problems)}; nothing was unpacked ({action})")
    if archive.md5 is None and archive.sha256 is None:
        log.warning(
            "%s has no published checksum; unverified download with SHA-256 %s (%d bytes)",
            path.name,
            sha256.hexdigest(),
            actual_size,
        )


# -- unpacking -------------------------------------------------------------------------------------
def _unpack(archive_path: Path, destination: Path, staging: Path, progress: bool) -> None:
    """Unpack into ``staging`` (member by member, each checked first), then move it into ``destination``.

    A refused member stops the unpacking and removes the staging folder, so nothing reaches the
    destination.
    """
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive_path):
            _unpack_zip(archive_path, staging, progress)
        elif tarfile.is_tarfile(archive_path):
            _unpack_tar(archive_path, staging, progress)
        else:
            raise DownloadError(f"{archive_path} is neither a tar nor a zip archive")
        destination.mkdir(parents=True, exist_ok=True)
        _merge(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _member_path(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path; absolute paths, drive letters and '..' are refused."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DownloadError(f"{archive}: member {name!r} would be written outside the target folder; refused")
    return path


def _inside(relative: str) -> bool:
    """Whether a normalised path relative to the staging root stays inside it."""
    normal = posixpath.normpath(relative)
    return not (normal == ".." or normal.startswith("../") or posixpath.isabs(normal))


def _unpack_tar(archive_path: Path, staging: Path, progress: bool) -> None:
    data_filter = getattr(tarfile, "data_filter", None)
    with (
        tarfile.open(archive_path, "r:*") as tar,
        tqdm(unit=" files", desc="unpacking", disable=not progress) as bar,
    ):
        for member in tar:
            path = _member_path(member.name, archive_path)
            if member.issym():
                if posixpath.isabs(member.linkname) or not _inside(
                    posixpath.join(str(path.parent), member.linkname)
                ):
                    raise DownloadError(
                        f"{archive_path}: link {member.name!r} -> {member.linkname!r} "
                        "points outside the target folder; refused"
                    )
            elif member.islnk():
                if not _inside(member.linkname) or posixpath.isabs(member.linkname):
                    raise DownloadError(
                        f"{archive_path}: hard link {member.name!r} -> {member.linkname!r} "
                        "points outside the target folder; refused"
                    )
            elif not (member.isfile() or member.isdir()):
                raise DownloadError(f"{archive_path}: member {member.name!r} is a device or pipe; refused")
            resolved = (staging / path).resolve()
            if resolved != staging.resolve() and staging.resolve() not in resolved.parents:
                raise DownloadError(
                    f"{archive_path}: member {member.name!r} resolves outside the target folder; refused"
                )
            if data_filter is not None:
                try:  # the data filter also resolves links through earlier links (x -> ., y -> x/..)
                    tar.extract(member, staging, filter="data")
                except tarfile.FilterError as error:
                    raise DownloadError(f"{archive_path}: member {member.name!r}: {error}; refused") from None
            else:  # Python without extraction filters: the checks above are the protection
                tar.extract(member, staging)
            bar.update(1)


def _unpack_zip(archive_path: Path, staging: Path, progress: bool) -> None:
    with zipfile.ZipFile(archive_path) as archive:
        members = archive.infolist()
        for info in members:  # zip has a central directory: check every member before writing any
            _member_path(info.filename, archive_path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DownloadError(
                    f"{archive_path}: member {info.filename!r} is a symbolic link; links in zip archives are refused"
                )
        for info in tqdm(members, unit=" files", desc="unpacking", disable=not progress):
            archive.extract(info, staging)


def _merge(source: Path, destination: Path) -> None:
    """Move the unpacked tree into ``destination``, merging folders that exist already (LibriSpeech/)."""
    for entry in sorted(source.iterdir()):
        target = destination / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            _merge(entry, target)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
