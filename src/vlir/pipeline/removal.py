"""What a request removes: the ops it names, or, blind or automatic, those found."""

from __future__ import annotations

from vlir.degradations import RestorationPrompt, get_op
from vlir.perception import Analysis


def removed_ops(request: RestorationPrompt, analysis: Analysis) -> set[str]:
    """What a request removes: the ops it names, or, blind, the ops found."""
    if request.blind:
        return {finding.op for finding in analysis.found}
    return {item.op for item in request.items}


def removes_blur(request: RestorationPrompt, analysis: Analysis) -> bool:
    """Whether a blur (camera shake, defocus, Gaussian) is among what a request removes."""
    return any(get_op(name).family == "blur" for name in removed_ops(request, analysis))


def removes_jpeg(prompt: str | None, analysis: Analysis) -> bool:
    """Whether JPEG artifacts are among what a request removes: named in it, or found by the
    analyzer where the request is automatic, blind or in free words. Only then does a JPEG
    grid off the photo's corner matter. A grid is also read in some photos that never were
    JPEGs (5 of 40 clean BSD400 photos). Moving their frame by a few pixels changed nothing
    of note on the 12-photo checks, but on the whole of CBSD68 it tipped the reading of a
    faint blur on 4 photos: 170057 with a Gaussian blur of sigma 0.3 fell from 46.55 to
    30.19 dB, and 147091 with defocus lost 6.31 dB."""
    if prompt is not None:
        request = RestorationPrompt.parse(prompt)
        if request.item_for("jpeg") is not None:
            return True
        if not (request.blind or request.text):
            return False
    return any(finding.op == "jpeg" for finding in analysis.found)
