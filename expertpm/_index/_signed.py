"""Signed envelopes: `{"signed": {...}, "signatures": [...]}` in canonical JSON (TUF style).

The signatures cover the canonical JSON of `signed`. A signature counts toward a threshold only if
its key id is one of the trusted ids *and* its public key is the trusted public key; signatures by
unknown keys are ignored, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from .._canonical import canonical_json, parse_canonical
from .._errors import FormatError, IndexError_, SignatureError
from .._keys import Signature, SigningKey, verify_signature


@dataclass(frozen=True, slots=True)
class Envelope:
    signed: dict
    signatures: tuple[Signature, ...]
    signed_bytes: bytes
    doc: dict  # the whole parsed file, for schema validation


def seal(signed: dict, keys: Iterable[SigningKey]) -> bytes:
    """The canonical bytes of `signed` wrapped with one signature per distinct key."""
    data = canonical_json(signed)
    by_id = {key.key_id: key.sign(data).to_dict() for key in keys}
    return canonical_json({"signed": signed, "signatures": [by_id[k] for k in sorted(by_id)]})


def add_signatures(envelope: Envelope, keys: Iterable[SigningKey]) -> bytes:
    """Re-seal an envelope with its existing signatures plus those of `keys`."""
    by_id = {s.key_id: s.to_dict() for s in envelope.signatures}
    for key in keys:
        by_id[key.key_id] = key.sign(envelope.signed_bytes).to_dict()
    return canonical_json({"signed": envelope.signed, "signatures": [by_id[k] for k in sorted(by_id)]})


def open_envelope(data: bytes, *, where: str, expect_type: str) -> Envelope:
    """Parse an envelope (structure only; no signature is checked here)."""
    try:
        doc = parse_canonical(data, where=where)
    except FormatError as exc:
        raise IndexError_(exc.message, where=where, hint="index metadata must be canonical JSON") from exc
    if not isinstance(doc, dict) or set(doc) != {"signed", "signatures"}:
        raise IndexError_("not a signed envelope (expected exactly 'signed' and 'signatures')", where=where)
    signed, signatures = doc["signed"], doc["signatures"]
    if not isinstance(signed, dict) or signed.get("type") != expect_type:
        raise IndexError_(f"expected signed {expect_type} metadata, found {signed.get('type')!r}"
                          if isinstance(signed, dict) else "'signed' must be an object", where=where)
    if not isinstance(signatures, list) or len(signatures) > 64:
        raise IndexError_("'signatures' must be a list of at most 64 signatures", where=where)
    sigs = tuple(Signature.from_dict(s, where=where) for s in signatures)
    return Envelope(signed, sigs, canonical_json(signed), doc)


def valid_signers(envelope: Envelope, trusted: Mapping[str, str]) -> set[str]:
    """Ids of the trusted keys whose signature on the envelope verifies."""
    good: set[str] = set()
    for sig in envelope.signatures:
        if trusted.get(sig.key_id) != sig.public_key or sig.key_id in good:
            continue
        try:
            verify_signature(sig, envelope.signed_bytes)
        except SignatureError:
            continue
        good.add(sig.key_id)
    return good


def require_threshold(envelope: Envelope, trusted: Mapping[str, str], threshold: int, *,
                      role: str, where: str) -> set[str]:
    good = valid_signers(envelope, trusted)
    if len(good) < threshold:
        raise SignatureError(
            f"{role} is signed by {len(good)} of the {threshold} required keys", where=where,
            hint="the metadata was not signed by enough trusted keys; refusing it")
    return good
