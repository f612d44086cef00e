"""The dashboard's keys, read from the Textual `Binding`s of the App and of the widgets that own
keys: the `?` help screen and the command palette are made from them, so a key is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode

# The cursor moves of a line-by-line widget (the socket table, the tests pane): one list, both use it.
CURSOR_BINDINGS = [
    Binding("up", "cursor(-1)", "Up", show=False),
    Binding("down", "cursor(1)", "Down", show=False),
    Binding("pageup", "page(-1)", "Page up", show=False),
    Binding("pagedown", "page(1)", "Page down", show=False),
    Binding("home", "jump(0)", "First", show=False),
    Binding("end", "jump(-1)", "Last", show=False),
]


@dataclass(frozen=True)
class KeyAction:
    """One action and every key bound to it, on the node that runs it."""

    keys: tuple[str, ...]  # as the user sees them: "/", "q", "^c"
    action: str
    title: str  # the binding's description: the footer's and the palette's name for it
    help: str  # the binding's tooltip (its description when it has none)
    owner: DOMNode

    @property
    def is_command(self) -> bool:
        """A palette command: an action without arguments (cursor(1), page(-1) are moves, not commands)."""
        return "(" not in self.action


def key_actions(app: App, owners: list[DOMNode]) -> list[KeyAction]:
    """The bindings each owner's class declares itself (not those it inherits), one entry per action."""
    actions: list[KeyAction] = []
    for owner in owners:
        grouped: dict[str, list[Binding]] = {}
        for binding in type(owner).BINDINGS:
            assert isinstance(binding, Binding), "conntui declares its keys as Binding objects"
            grouped.setdefault(binding.action, []).append(binding)
        for action, bindings in grouped.items():
            first = bindings[0]
            keys = tuple(app.get_key_display(key) for binding in bindings for key in _split(binding))
            actions.append(KeyAction(keys, action, first.description, first.tooltip or first.description, owner))
    return actions


def _split(binding: Binding) -> list[Binding]:
    """A binding of "a,b" as one binding per key, so each key is shown as Textual shows it."""
    return [Binding(key.strip(), binding.action) for key in binding.key.split(",")]


def help_rows(actions: list[KeyAction]) -> list[tuple[str, str]]:
    """(keys, what they do) for the help screen: one row per command; one owner's moves (actions
    with arguments) share a row; a row that another owner already listed is not repeated."""
    rows: list[tuple[str, str]] = []
    moves: list[KeyAction] = []

    def add_moves() -> None:
        if moves:
            rows.append((" ".join(key for move in moves for key in move.keys), ", ".join(m.title for m in moves)))
            moves.clear()

    for key_action in actions:
        if moves and (key_action.is_command or key_action.owner is not moves[0].owner):
            add_moves()
        if key_action.is_command:
            rows.append((" ".join(key_action.keys), key_action.help))
        else:
            moves.append(key_action)
    add_moves()
    return list(dict.fromkeys(rows))
