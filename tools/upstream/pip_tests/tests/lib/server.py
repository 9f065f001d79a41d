"""A responder that serves byte ranges, for the fast-deps tests."""

import re


def ranged_file_response(
    path: pathlib.Path, claimed_start: int | None = None
) -> "WSGIApplication":
    """Answer as a server that serves ranges: 206 and the bytes of one range
    (``first-last`` or ``-suffix``), 200 and the whole file without one.

    ``claimed_start`` makes the Content-Range header lie about where the
    bytes start, as a broken proxy might.
    """
    data = path.read_bytes()

    def responder(environ: "WSGIEnvironment", start_response: "StartResponse") -> Body:
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", environ.get("HTTP_RANGE", ""))
        if match is None or not any(match.groups()):
            start_response("200 OK", [("Content-Length", str(len(data)))])
            return [data]
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last) if last else len(data) - 1, len(data) - 1)
        else:
            start, end = max(len(data) - int(last), 0), len(data) - 1
        shown_start = start if claimed_start is None else claimed_start
        start_response(
            "206 Partial Content",
            [
                ("Content-Range", f"bytes {shown_start}-{end}/{len(data)}"),
                ("Content-Length", str(end + 1 - start)),
            ],
        )
        return [data[start : end + 1]]

    return responder
