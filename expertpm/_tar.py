"""The tar layer of `.expert` archives: deterministic headers out, strict parsing and member rules in.

We write plain USTAR entries (PAX only for long names or huge sizes) and read USTAR, POSIX PAX and
GNU long names. Every name is checked before anything is written under it: no absolute paths, no
backslashes, no `..`, `.` or empty components, no links or special files, no duplicates, no two
names that differ only in case, no file that is also a directory of another member.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import IntegrityError, UnsafeArchiveError

if TYPE_CHECKING:
    from ._archive import ArchiveLimits

BLOCK = 512
END = bytes(2 * BLOCK)
_USTAR = b"ustar\x0000"
_GNU = b"ustar  \x00"
_MAX_OCTAL = 8**11 - 1
_CORRUPT = "archive is truncated or corrupt"
_ONLY_FILES = "a package holds only regular files with plain relative paths"
_KINDS = {b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device", b"4": "a block device",
          b"5": "a directory", b"6": "a fifo", b"K": "a hard or symbolic link"}


@dataclass(frozen=True, slots=True)
class TarHeader:
    name: bytes
    size: int
    type: bytes


def tar_entry(name: str, size: int) -> bytes:
    """The header block(s) of one regular file, always the same for the same name and size."""
    raw = name.encode("utf-8")
    records = {}
    if len(raw) > 100:
        records["path"] = name
    if size > _MAX_OCTAL:
        records["size"] = str(size)
    head = b""
    if records:
        pax = b"".join(_pax_record(k, v) for k, v in sorted(records.items()))
        head = _ustar(b"././@PaxHeader", len(pax), b"x") + pax + bytes(-len(pax) % BLOCK)
    return head + _ustar(raw[:100], 0 if size > _MAX_OCTAL else size, b"0")


def _ustar(name: bytes, size: int, typeflag: bytes) -> bytes:
    h = bytearray(BLOCK)
    h[0:len(name)] = name
    h[100:108] = b"0000644\x00"
    h[108:116] = h[116:124] = b"0000000\x00"
    h[124:136] = b"%011o\x00" % size
    h[136:148] = b"00000000000\x00"
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[257:265] = _USTAR
    h[329:337] = h[337:345] = b"0000000\x00"
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode("utf-8")
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def parse_header(block: bytes) -> TarHeader | None:
    """Parse one 512-byte header; None for the zero block that ends an archive."""
    if block == bytes(BLOCK):
        return None
    stored = _number(block[148:156])
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored != computed:
        raise IntegrityError(_CORRUPT)
    name = block[0:100].split(b"\x00", 1)[0]
    if block[257:265] == _USTAR:
        prefix = block[345:500].split(b"\x00", 1)[0]
        name = prefix + b"/" + name if prefix else name
    elif block[257:265] != _GNU:
        raise IntegrityError(_CORRUPT)
    return TarHeader(name=name, size=_number(block[124:136]), type=block[156:157])


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:
        if field[0] == 0xFF:
            raise IntegrityError(_CORRUPT)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise IntegrityError(_CORRUPT) from None


def parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
            key, _, value = data[space + 1:pos + length - 1].partition(b"=")
            records[key.decode("utf-8")] = value.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise IntegrityError(_CORRUPT) from None
        if length <= 0 or data[pos + length - 1:pos + length] != b"\n":
            raise IntegrityError(_CORRUPT)
        pos += length
    if "size" in records and not records["size"].isdigit():
        raise IntegrityError(_CORRUPT)
    return records


class MemberNames:
    """Admits members one by one, refusing every name or type that is unsafe to extract."""

    def __init__(self, limits: "ArchiveLimits", where: str | None) -> None:
        self.limits, self.where = limits, where
        self.count = 0
        self.declared = 0
        self._names: dict[str, str] = {}  # folded name -> name
        self._dirs: dict[str, str] = {}  # folded directory -> a member inside it

    def _refuse(self, message: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(message, where=self.where, hint=_ONLY_FILES)

    def admit(self, raw: bytes, typeflag: bytes, size: int) -> str:
        lim = self.limits
        if len(raw) > lim.max_name_length:
            raise self._refuse(f"a member name is longer than {lim.max_name_length} bytes")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._refuse(f"member name {raw!r} is not valid UTF-8") from None
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise self._refuse(f"member {name!r} has a control character in its name")
        if name.startswith("/"):
            raise self._refuse(f"member {name!r} has an absolute path")
        if "\\" in name:
            raise self._refuse(f"member {name!r} contains a backslash")
        parts = name.split("/")
        if ".." in parts:
            raise self._refuse(f"member {name!r} has a '..' component")
        if typeflag in _KINDS:
            raise self._refuse(f"member {name!r} is {_KINDS[typeflag]}")
        if typeflag not in (b"0", b"\x00"):
            raise self._refuse(f"member {name!r} has unsupported tar type {typeflag.decode('latin-1')!r}")
        if any(part in ("", ".") for part in parts):
            raise self._refuse(f"member {name!r} has an empty or '.' path component")
        self.count += 1
        if self.count > lim.max_members:
            raise self._refuse(f"archive has more than {lim.max_members} members")
        self._check_unique(name, parts)
        if size > lim.max_member_size:
            raise self._refuse(f"member {name!r} is {size} bytes, over the limit of {lim.max_member_size} bytes")
        self.declared += size
        if self.declared > lim.max_total_size:
            raise self._refuse(f"archive expands to more than {lim.max_total_size} bytes")
        return name

    def _check_unique(self, name: str, parts: list[str]) -> None:
        folded = _fold(name)
        if folded in self._names:
            other = self._names[folded]
            if other == name:
                raise self._refuse(f"member {name!r} appears more than once")
            raise self._refuse(f"member {name!r} differs only in case from {other!r}")
        if folded in self._dirs:
            raise self._refuse(f"member {name!r} is also a directory of {self._dirs[folded]!r}")
        prefixes = [_fold("/".join(parts[:i])) for i in range(1, len(parts))]
        for prefix in prefixes:
            if prefix in self._names:
                raise self._refuse(f"member {name!r} is inside {self._names[prefix]!r}, which is a file")
        for prefix in prefixes:
            self._dirs.setdefault(prefix, name)
        self._names[folded] = name


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()
