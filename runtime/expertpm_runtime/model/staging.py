"""Moving mmapped tensors to the device.

On CPU a mapped tensor is used as it is (zero copy: its pages come from the page cache). On
CUDA each tensor is copied once into a reusable pinned staging buffer and sent with one
asynchronous host-to-device copy; `wait()` blocks until the copies are done, so the buffer can
be reused and the mapping closed.
"""

from __future__ import annotations

import torch


class Stager:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self._buffer: torch.Tensor | None = None  # pinned bytes
        self._offset = 0
        self._event = None

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        if not self.cuda:
            return t
        out = torch.empty(t.shape, dtype=t.dtype, device=self.device)
        out.copy_(self._stage(t), non_blocking=True)
        self._record()
        return out

    def _record(self) -> None:
        self._event = torch.cuda.Event()
        self._event.record()

    def _stage(self, t: torch.Tensor) -> torch.Tensor:
        """A pinned copy of host tensor t, in the staging buffer (valid until `wait`)."""
        nbytes = t.numel() * t.element_size()
        start = (self._offset + 255) // 256 * 256
        if self._buffer is None or start + nbytes > self._buffer.numel():
            self.wait()  # the old buffer may still be in flight
            size = max(nbytes, 2 * (self._buffer.numel() if self._buffer is not None else 0), 16 << 20)
            self._buffer = torch.empty(size, dtype=torch.uint8, pin_memory=True)
            start = 0
        staged = self._buffer[start:start + nbytes].view(t.dtype).view(t.shape)
        staged.copy_(t)
        self._offset = start + nbytes
        return staged

    def copy_into(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        """dst (on the device) <- src (host); on CUDA through pinned staging, asynchronously."""
        if not self.cuda:
            dst.copy_(src)
        else:
            dst.copy_(self._stage(src), non_blocking=True)
            self._record()

    def wait(self) -> None:
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        self._offset = 0
