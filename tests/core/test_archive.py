"""The .tar.zst container: deterministic writing, and a reader that refuses every unsafe archive."""

import io
import shutil
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from expertpm import IntegrityError, UnsafeArchiveError
from expertpm._archive import ArchiveLimits, ArchiveReader, iter_archive, write_archive
from expertpm._canonical import sha256_file
from expertpm_testing.packages import tar_member, write_tar_zst

HINT = "a package holds only regular files with plain relative paths"


def read_all(path: Path, limits: ArchiveLimits | None = None) -> dict[str, bytes]:
    with open(path, "rb") as f:
        return {m.name: b"".join(m.read_chunks()) for m in iter_archive(f, limits, where=str(path))}


def refused(path: Path, limits: ArchiveLimits | None = None, error=UnsafeArchiveError):
    with pytest.raises(error) as info:
        read_all(path, limits)
    assert info.value.where == str(path)
    return info.value


def test_write_is_deterministic_and_round_trips(tmp_path):
    payload = tmp_path / "w.bin"
    payload.write_bytes(bytes(range(256)) * 5000)
    long_name = "deep/" + "n" * 140 + ".json"
    members = [("manifest.json", b"{}"), (long_name, b"[1]"), ("w.bin", payload)]
    a = write_archive(tmp_path / "a.expert", members)
    b = write_archive(tmp_path / "b.expert", members)
    assert (tmp_path / "a.expert").read_bytes() == (tmp_path / "b.expert").read_bytes()
    assert a == b and a.size == (tmp_path / "a.expert").stat().st_size
    assert read_all(tmp_path / "a.expert") == {"manifest.json": b"{}", long_name: b"[1]",
                                               "w.bin": payload.read_bytes()}
    with open(tmp_path / "a.expert", "rb") as f:
        reader = ArchiveReader(f)
        list(reader)
    assert (reader.sha256, reader.size) == sha256_file(tmp_path / "a.expert")
    assert a.member_sha256["w.bin"] == sha256_file(payload)[0]
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".*tmp"))


def test_headers_are_zeroed_and_files_only(tmp_path):
    write_archive(tmp_path / "a.expert", [("x/y.txt", b"hi"), ("z", b"")])
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO((tmp_path / "a.expert").read_bytes())).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        infos = tar.getmembers()
    assert [(i.name, i.type, i.mode, i.uid, i.gid, i.mtime, i.uname, i.gname) for i in infos] == [
        ("x/y.txt", tarfile.REGTYPE, 0o644, 0, 0, 0, "", ""), ("z", tarfile.REGTYPE, 0o644, 0, 0, 0, "", "")]


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_reads_gnu_tar_zstd_output(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / ("long" * 40)).write_bytes(b"x" * 1000)
    (src / "a.txt").write_text("a")
    names = ["a.txt", "sub/" + "long" * 40]
    proc = subprocess.run(["tar", "--zstd", "--format=gnu", "-cf", str(tmp_path / "g.tar.zst"), "-C", str(src), *names],
                          capture_output=True)
    if proc.returncode:
        pytest.skip(f"tar cannot write zstd here: {proc.stderr!r}")
    assert read_all(tmp_path / "g.tar.zst") == {"a.txt": b"a", names[1]: b"x" * 1000}


@pytest.mark.parametrize("member,message", [
    (tar_member("/etc/passwd", b"x"), "member '/etc/passwd' has an absolute path"),
    (tar_member("../evil", b"x"), "member '../evil' has a '..' component"),
    (tar_member("a/../../evil", b"x"), "member 'a/../../evil' has a '..' component"),
    (tar_member("a\\b", b"x"), "member 'a\\\\b' contains a backslash"),
    (tar_member("a//b", b"x"), "member 'a//b' has an empty or '.' path component"),
    (tar_member("./a", b"x"), "member './a' has an empty or '.' path component"),
    (tar_member("link", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "member 'link' is a symbolic link"),
    (tar_member("hard", type=tarfile.LNKTYPE, linkname="a"), "member 'hard' is a hard link"),
    (tar_member("tty", type=tarfile.CHRTYPE), "member 'tty' is a character device"),
    (tar_member("sda", type=tarfile.BLKTYPE), "member 'sda' is a block device"),
    (tar_member("pipe", type=tarfile.FIFOTYPE), "member 'pipe' is a fifo"),
    (tar_member("dir", type=tarfile.DIRTYPE), "member 'dir/' is a directory"),
    (tar_member("bad\nname", b"x"), "member 'bad\\nname' has a control character in its name"),
])
def test_unsafe_members_are_refused(tmp_path, member, message):
    path = write_tar_zst(tmp_path / "bad.tar.zst", [tar_member("ok.txt", b"fine"), member])
    error = refused(path)
    assert (error.message, error.hint) == (message, HINT)


@pytest.mark.parametrize("names,message", [
    (["a", "a"], "member 'a' appears more than once"),
    (["README.md", "readme.md"], "member 'readme.md' differs only in case from 'README.md'"),
    (["Stra\u00dfe", "STRASSE"], "member 'STRASSE' differs only in case from 'Stra\u00dfe'"),
    (["a", "a/b"], "member 'a/b' is inside 'a', which is a file"),
    (["A/b", "a"], "member 'a' is also a directory of 'A/b'"),
])
def test_aliasing_members_are_refused(tmp_path, names, message):
    path = write_tar_zst(tmp_path / "dup.tar.zst", [tar_member(n, b"x") for n in names])
    assert refused(path).message == message


def test_member_count_and_size_limits(tmp_path):
    path = write_tar_zst(tmp_path / "many.tar.zst", [tar_member(f"f{i}", b"x" * 200) for i in range(5)])
    assert refused(path, ArchiveLimits(max_members=3)).message == "archive has more than 3 members"
    assert refused(path, ArchiveLimits(max_member_size=100)).message == \
        "member 'f0' is 200 bytes, over the limit of 100 bytes"
    assert refused(path, ArchiveLimits(max_total_size=500)).message == "archive expands to more than 500 bytes"
    assert len(read_all(path)) == 5


def test_oversized_extended_header_is_refused_before_it_is_read(tmp_path):
    info, data = tar_member("a.txt", b"x")
    info.pax_headers = {"comment": "c" * 100_000}
    path = write_tar_zst(tmp_path / "pax.tar.zst", [(info, data)])
    assert refused(path).message.startswith("an extended tar header of 100")


def test_zstd_window_over_the_cap_is_refused(tmp_path):
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    path = write_tar_zst(tmp_path / "wide.tar.zst", [tar_member("a", b"x" * 1000)], zstd_params=params)
    assert refused(path).message == "zstd frame window exceeds the limit of 33554432 bytes"
    assert read_all(path, ArchiveLimits(max_window_size=1 << 27)) == {"a": b"x" * 1000}


def _zero_bomb(path: Path, header: bytes, gib: int) -> Path:
    zero = bytes(64 << 20)
    with open(path, "wb") as f, zstandard.ZstdCompressor(level=1).stream_writer(f) as z:
        z.write(header)
        for _ in range(gib * 16):
            z.write(zero)
    return path


@pytest.mark.parametrize("where", ["member", "after-end"])
def test_zstd_bomb_fails_fast_with_bounded_memory(tmp_path, where):
    info = tarfile.TarInfo("weights.safetensors")
    info.size = 4 << 30 if where == "member" else 0
    header = info.tobuf(tarfile.PAX_FORMAT) if where == "member" else info.tobuf() + bytes(1024)
    path = _zero_bomb(tmp_path / "bomb.tar.zst", header, gib=4)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeArchiveError) as info, open(path, "rb") as f:
            for member in iter_archive(f):
                for _ in member.read_chunks():
                    pass
        error = info.value
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.message == "archive expands more than 200x its compressed size (a zstd bomb)"
    assert peak < 32 << 20


def test_truncated_archives(tmp_path):
    write_archive(tmp_path / "a.expert", [("manifest.json", b"{}"), ("w", bytes(range(256)) * 4000)])
    data = (tmp_path / "a.expert").read_bytes()
    for cut in (len(data) // 2, len(data) - 1, len(data) - 4, 10, 3):
        (tmp_path / "cut.expert").write_bytes(data[:cut])
        error = refused(tmp_path / "cut.expert", error=IntegrityError)
        assert error.message == "archive is truncated or corrupt", cut


def test_corrupt_or_foreign_bytes(tmp_path):
    write_archive(tmp_path / "a.expert", [("manifest.json", b"{}"), ("w", bytes(range(256)) * 4000)])
    data = (tmp_path / "a.expert").read_bytes()
    (tmp_path / "trailing.expert").write_bytes(data + b"garbage")
    (tmp_path / "plain.tar").write_bytes(b"\0" * 1024)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.expert").write_bytes(bytes(flipped))
    for name in ("trailing.expert", "plain.tar", "flipped.expert"):
        assert refused(tmp_path / name, error=IntegrityError).message == "archive is truncated or corrupt", name


def test_data_after_the_end_of_the_tar_stream(tmp_path):
    raw = tar_member("a", b"x")[0].tobuf() + b"x".ljust(512, b"\0") + bytes(1024) + b"junk".ljust(512, b"\0")
    (tmp_path / "junk.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    assert refused(tmp_path / "junk.tar.zst", error=IntegrityError).message == \
        "archive has data after the end of its tar stream"


def test_a_member_is_read_in_bounded_chunks(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(bytes(5 << 20))
    write_archive(tmp_path / "a.expert", [("big", big)])
    with open(tmp_path / "a.expert", "rb") as f:
        (member,) = list(m for m in iter_archive(f) if [len(c) for c in m.read_chunks(1 << 20)] == [1 << 20] * 5)
    assert member.size == 5 << 20
