"""Executing a notebook in a real ipykernel (nbclient) while recording every message each cell
sent, and reading the HTML of its displays back with html.parser."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

CELL_TIMEOUT_S = 300


class RecordingClient(NotebookClient):  # type: ignore[misc]
    """A NotebookClient that also keeps each cell's IOPub messages in order: the final outputs
    show only the last state of an updated display; the messages show that it was live."""

    def __init__(self, nb: Any, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.messages: dict[int, list[dict[str, Any]]] = defaultdict(list)

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        self.messages[cell_index].append(msg)
        return super().process_message(msg, cell, cell_index)


@dataclass
class Cell:
    id: str
    source: str
    tags: list[str]
    outputs: list[dict[str, Any]]
    messages: list[dict[str, Any]]

    def html(self) -> list[str]:
        """The HTML of every display and result, in order."""
        return [
            o["data"]["text/html"]
            for o in self.outputs
            if o.get("output_type") in ("display_data", "execute_result")
            and "text/html" in o.get("data", {})
        ]

    def plain(self) -> str:
        """The text/plain of the cell's result ("" without one)."""
        for o in self.outputs:
            if o.get("output_type") == "execute_result":
                return str(o["data"].get("text/plain", ""))
        return ""

    def errors(self) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o.get("output_type") == "error"]

    def display_updates(self) -> list[str]:
        """The HTML of each display and display update the kernel sent, in order."""
        return [
            m["content"]["data"]["text/html"]
            for m in self.messages
            if m["msg_type"] in ("display_data", "update_display_data")
            and "text/html" in m["content"].get("data", {})
        ]


def execute(path: Path, workdir: Path) -> dict[str, Cell]:
    """Run the notebook at `path` with `workdir` as the kernel's folder (so its code has no
    file: cells are `__main__`); saves the executed copy there and returns its code cells."""
    nb = nbformat.read(path, as_version=4)
    client = RecordingClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    nbformat.write(nb, workdir / path.name)
    return {
        c["id"]: Cell(
            c["id"],
            c["source"],
            list(c.get("metadata", {}).get("tags", [])),
            list(c["outputs"]),
            client.messages.get(i, []),
        )
        for i, c in enumerate(nb.cells)
        if c["cell_type"] == "code"
    }


@dataclass
class Tag:
    name: str
    attrs: dict[str, str]
    text: str = ""  # the text directly and deeply inside it


@dataclass
class Page:
    """One display's HTML, parsed: its elements with attributes and text."""

    tags: list[Tag] = field(default_factory=list)

    def find(self, name: str | None = None, **attrs: str) -> list[Tag]:
        """Elements named `name` whose attributes hold `attrs` (`class_` matches one class,
        `data_x` is `data-x`); an attribute given as "*" only needs to be there."""
        out = []
        for tag in self.tags:
            if name is not None and tag.name != name:
                continue
            ok = True
            for key, want in attrs.items():
                attr = key.rstrip("_").replace("_", "-")
                have = tag.attrs.get(attr)
                if have is None:
                    ok = False
                elif attr == "class":
                    ok = ok and want in have.split()
                elif want != "*":
                    ok = ok and have == want
            if ok:
                out.append(tag)
        return out

    def one(self, name: str | None = None, **attrs: str) -> Tag:
        found = self.find(name, **attrs)
        assert len(found) == 1, f"{len(found)} <{name} {attrs}> in the display"
        return found[0]

    def text(self) -> str:
        return self.tags[0].text if self.tags else ""


class _Parser(HTMLParser):
    VOID = {"br", "img", "input", "meta", "hr", "link", "line", "rect"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page([Tag("#root", {})])
        self.open: list[Tag] = [self.page.tags[0]]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Tag(tag, {k: v or "" for k, v in attrs})
        self.page.tags.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags.append(Tag(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, 0, -1):
            if self.open[i].name == tag:
                del self.open[i:]
                return

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1].name == "style":
            return
        for element in self.open:
            element.text += data


def parse(html: str) -> Page:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page
