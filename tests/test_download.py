"""serlib.download against archives served by a local, Range-capable HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from serlib.app import cli
from serlib.data import download


class _Server:
    """Serves ``files`` (path -> bytes); honours ``Range: bytes=N-`` unless ``ignore_range``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ignore_range = False
        self.cut_after: int | None = None  # close the connection after this many body bytes, once
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                wanted = self.headers.get("Range")
                server.requests.append((self.path, wanted))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if wanted and not server.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(body[start : start + server.cut_after])
                    server.cut_after = None
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    instance = _Server()
    yield instance
    instance.close()


def _tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def _register(
    monkeypatch: pytest.MonkeyPatch,
    server: _Server,
    name: str,
    body: bytes,
    checksum: str | None = "md5",
    **fields,
) -> None:
    filename = fields.pop("filename", f"{name}.tar.gz")
    server.files[f"/{filename}"] = body
    archive = download.Archive(
        url=server.url(f"/{filename}"),
        filename=filename,
        size=len(body),
        md5=hashlib.md5(body).hexdigest() if checksum == "md5" else None,
        sha256=hashlib.sha256(body).hexdigest() if checksum == "sha256" else None,
        **fields,
    )
    monkeypatch.setitem(download.ARCHIVES, name, archive)


CORPUS = {
    "Toy/SPEAKERS.TXT": b"19 | F | train-clean-100 | 25.19 | Reader\n",
    "Toy/train/19/198/19-198-0000.flac": bytes(range(256)) * 40,
    "Toy/train/19/198/19-198-0001.flac": b"second file",
}


def test_download_verifies_unpacks_and_is_idempotent(server: _Server, monkeypatch, tmp_path: Path) -> None:
    _register(monkeypatch, server, "toy", _tar(CORPUS), checksum="sha256", root="Toy")
    root = download.download("toy", tmp_path / "data", progress=False)
    assert root == tmp_path / "data" / "Toy"
    for name, data in CORPUS.items():
        assert (tmp_path / "data" / name).read_bytes() == data
    assert not (tmp_path / "data" / "toy.tar.gz").exists()  # archive removed after unpacking
    assert not list((tmp_path / "data").glob("*.part"))
    assert not list((tmp_path / "data").glob(".serlib-unpack-*"))
    requests = len(server.requests)
    assert download.download("toy", tmp_path / "data", progress=False) == root
    assert len(server.requests) == requests  # finished downloads are not fetched again


def test_download_merges_into_an_existing_corpus_folder(server: _Server, monkeypatch, tmp_path: Path) -> None:
    _register(monkeypatch, server, "part-a", _tar({"Toy/a/1.txt": b"a", "Toy/README": b"old"}), root="Toy")
    _register(monkeypatch, server, "part-b", _tar({"Toy/b/2.txt": b"b", "Toy/README": b"new"}), root="Toy")
    download.download("part-a", tmp_path, progress=False)
    download.download("part-b", tmp_path, progress=False, keep_archive=True)
    assert (tmp_path / "Toy/a/1.txt").read_bytes() == b"a"
    assert (tmp_path / "Toy/b/2.txt").read_bytes() == b"b"
    assert (tmp_path / "Toy/README").read_bytes() == b"new"
    assert (tmp_path / "part-b.tar.gz").is_file()


def test_download_resumes_a_partial_file_with_a_range_request(
    server: _Server, monkeypatch, tmp_path: Path
) -> None:
    body = _tar(CORPUS)
    _register(monkeypatch, server, "toy", body, root="Toy")
    half = len(body) // 2
    (tmp_path / "toy.tar.gz.part").write_bytes(body[:half])
    download.download("toy", tmp_path, progress=False)
    assert server.requests == [("/toy.tar.gz", f"bytes={half}-")]
    assert (tmp_path / "Toy/train/19/198/19-198-0001.flac").read_bytes() == b"second file"


def test_interrupted_download_resumes_on_the_next_run(server: _Server, monkeypatch, tmp_path: Path) -> None:
    body = _tar(CORPUS)
    _register(monkeypatch, server, "toy", body, root="Toy")
    half = len(body) // 2
    server.cut_after = half
    with pytest.raises(download.DownloadError, match="run the same command again to resume"):
        download.download("toy", tmp_path, progress=False)
    assert (tmp_path / "toy.tar.gz.part").stat().st_size == half
    assert not (tmp_path / "Toy").exists()
    download.download("toy", tmp_path, progress=False)
    assert server.requests[-1] == ("/toy.tar.gz", f"bytes={half}-")
    assert (tmp_path / "Toy/train/19/198/19-198-0000.flac").read_bytes() == CORPUS[
        "Toy/train/19/198/19-198-0000.flac"
    ]


def test_download_restarts_when_the_server_ignores_range(
    server: _Server, monkeypatch, tmp_path: Path
) -> None:
    body = _tar(CORPUS)
    _register(monkeypatch, server, "toy", body, root="Toy")
    server.ignore_range = True
    (tmp_path / "toy.tar.gz.part").write_bytes(b"garbage that must not stay in front")
    download.download("toy", tmp_path, progress=False)
    assert (tmp_path / "Toy/SPEAKERS.TXT").read_bytes() == CORPUS["Toy/SPEAKERS.TXT"]


def test_checksum_mismatch_is_refused_and_nothing_unpacked(
    server: _Server, monkeypatch, tmp_path: Path
) -> None:
    body = _tar(CORPUS)
    _register(monkeypatch, server, "toy", body, root="Toy")
    server.files["/toy.tar.gz"] = body[:-1] + bytes([body[-1] ^ 1])  # same size, one bit flipped
    with pytest.raises(download.DownloadError, match="MD5 .* expected .*nothing was unpacked"):
        download.download("toy", tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # bad part file deleted, nothing unpacked


def test_wrong_size_is_refused(server: _Server, monkeypatch, tmp_path: Path) -> None:
    _register(monkeypatch, server, "toy", _tar(CORPUS), root="Toy")
    server.files["/toy.tar.gz"] += b"extra"
    with pytest.raises(download.DownloadError, match="size"):
        download.download("toy", tmp_path, progress=False)
    assert not (tmp_path / "Toy").exists()


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"Toy/ok.txt": b"ok", "../escape.txt": b"x"}, None),
        ({"Toy/ok.txt": b"ok", "/tmp/serlib-absolute.txt": b"x"}, None),
        ({"Toy/ok.txt": b"ok", "Toy/../../escape.txt": b"x"}, None),
        ({"Toy/ok.txt": b"ok"}, {"Toy/link": "../../outside"}),
        ({"Toy/ok.txt": b"ok"}, {"Toy/link": "/etc"}),
        ({"Toy/ok.txt": b"ok"}, {"Toy/here": ".", "Toy/up": "here/../.."}),  # escapes only when resolved
    ],
)
def test_malicious_tar_members_are_refused(server, monkeypatch, tmp_path: Path, members, links) -> None:
    _register(monkeypatch, server, "evil", _tar(members, links), root="Toy")
    target = tmp_path / "target"
    with pytest.raises(download.DownloadError, match="refused"):
        download.download("evil", target, progress=False)
    assert not (target / "Toy").exists()
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/serlib-absolute.txt").exists()
    assert not list(target.glob(".serlib-*"))


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "emodb/../../escape.txt", "C:/windows.txt"])
def test_malicious_zip_members_are_refused(server, monkeypatch, tmp_path: Path, name: str) -> None:
    body = _zip({"wav/03a01Fa.wav": b"RIFF", name: b"x"})
    _register(monkeypatch, server, "evil", body, filename="evil.zip", unpack_to="emodb", root="emodb")
    with pytest.raises(download.DownloadError, match="outside the target folder; refused"):
        download.download("evil", tmp_path / "target", progress=False)
    assert not (tmp_path / "target" / "emodb").exists()  # the good member was not written either
    assert not (tmp_path / "escape.txt").exists()


def test_zip_unpacks_into_its_subfolder_without_checksum(server, monkeypatch, tmp_path: Path, caplog) -> None:
    body = _zip({"wav/03a01Fa.wav": b"RIFF", "erkennung.txt": b"t"})
    _register(
        monkeypatch, server, "zipped", body, checksum=None, filename="z.zip", unpack_to="emodb", root="emodb"
    )
    with caplog.at_level("WARNING"):
        root = download.download("zipped", tmp_path, progress=False)
    assert root == tmp_path / "emodb"
    assert (root / "wav/03a01Fa.wav").read_bytes() == b"RIFF"
    assert hashlib.sha256(body).hexdigest() in caplog.text  # unverified archives log their checksum


def test_unknown_name_and_unreachable_server_give_clear_errors(server, monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(download.DownloadError, match="known: .*librispeech-train-clean-100"):
        download.download("no-such-corpus", tmp_path)
    _register(monkeypatch, server, "toy", b"x", root="Toy")
    with pytest.raises(download.DownloadError, match="HTTP 404"):
        download.download("toy", tmp_path, url=server.url("/missing.tar.gz"), progress=False)


def test_cli_download_prints_the_corpus_folder(server, monkeypatch, tmp_path: Path, capsys) -> None:
    _register(monkeypatch, server, "toy", _tar(CORPUS), root="Toy")
    assert cli.main(["download", "toy", "--out", str(tmp_path), "--keep-archive"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "Toy")
    assert (tmp_path / "toy.tar.gz").is_file()
    assert cli.main(["download", "nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown archive 'nonsense'" in capsys.readouterr().err


def test_registry_holds_the_official_addresses() -> None:
    archive = download.ARCHIVES["librispeech-train-clean-100"]
    assert archive.url == "https://www.openslr.org/resources/12/train-clean-100.tar.gz"
    assert (archive.size, archive.md5) == (6387309499, "2a93770f6d5c6c964bc36631d331a522")
    assert download.ARCHIVES["tedlium2"].url.startswith("https://www.openslr.org/resources/19/")
    assert download.ARCHIVES["emodb"].url == "http://emodb.bilderbar.info/download/download.zip"
    for archive in download.ARCHIVES.values():
        assert archive.md5 is None or len(archive.md5) == 32
        assert archive.sha256 is None or len(archive.sha256) == 64
