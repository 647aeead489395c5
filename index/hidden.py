"""What a reader of an HTML page never sees, dropped before its text is extracted: elements
marked `hidden`, styled invisible (display:none, visibility:hidden, zero size or opacity,
pushed off-screen) and <template>s. An article cannot carry text for a model that no person
reads (trafilatura already leaves out scripts, comments and `<p style="display:none">`).
"""

from __future__ import annotations

import re

HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|(font-size|opacity)\s*:\s*0(?![.\d]*[1-9])"
    r"|(^|[;\s])(left|top|text-indent)\s*:\s*-\d{3,}",
    re.I,
)


def visible_tree(html: str):
    """The page parsed, its hidden elements removed (their tail text kept); the string when unparseable."""
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        return html
    for element in tree.xpath("//template | //*[@hidden] | //*[@style]"):
        if element.tag == "template" or element.get("hidden") is not None or HIDDEN_STYLE.search(element.get("style", "")):
            _drop(element)
    return tree


def _drop(element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:  # the text after the element belongs to its parent
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
