"""A fake PACS on a real loopback HTTP server, for the answers a real Orthanc cannot be made to give on demand (a
200 with a FailedSOPSequence, a full archive's 0xA700, a 401 that goes away): it answers each STOW-RS request
with the next scripted answer, then with the last one again."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydicom.dataset import Dataset

DICOM_JSON = "application/dicom+json"


@dataclass(frozen=True)
class Answer:
    status: int
    failure_reasons: tuple[int, ...] = ()
    stored: bool = True
    """A success lists the instance in ReferencedSOPSequence (else the sequence is empty)."""
    content_type: str = DICOM_JSON

    def body(self, sop_instance_uid: str) -> bytes:
        response = Dataset()
        if self.status < 300:  # listing what was stored: ours, or nothing
            item = Dataset()
            item.ReferencedSOPInstanceUID = sop_instance_uid
            response.ReferencedSOPSequence = [item] if self.stored else []
        if self.failure_reasons:
            failed = []
            for reason in self.failure_reasons:
                item = Dataset()
                item.ReferencedSOPInstanceUID = sop_instance_uid
                item.FailureReason = reason
                failed.append(item)
            response.FailedSOPSequence = failed
        return json.dumps(response.to_json_dict()).encode()


@dataclass
class ScriptedPacs:
    answers: list[Answer]
    received: list[bytes] = field(default_factory=list)
    url: str = ""

    def next_answer(self) -> Answer:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _sop_instance_uid(body: bytes) -> str:
    """The SOP Instance UID of the (one) instance in a STOW-RS body, found by its tag in the Part 10 bytes."""
    import io

    from pydicom import dcmread

    start = body.find(b"DICM") - 128
    return str(dcmread(io.BytesIO(body[start:]), stop_before_pixels=True, force=True).SOPInstanceUID)


@contextmanager
def scripted_pacs(*answers: Answer) -> Iterator[ScriptedPacs]:
    pacs = ScriptedPacs(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self._body()
            pacs.received.append(body)
            answer = pacs.next_answer()
            payload = answer.body(_sop_instance_uid(body))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))
            chunks = []
            while size := int(self.rfile.readline().strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    pacs.url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pacs
    finally:
        server.shutdown()
        server.server_close()
